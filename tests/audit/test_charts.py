"""The dashboard's SVG bars: where each one stands, and what its links and labels say."""

import re
from datetime import date, timedelta

from audit.charts import BOTTOM, HEIGHT, TOP, Series, day_table, nice_ceiling, stacked_bars

RECT = re.compile(
    r'<a href="([^"]*)" tabindex="-1"><rect class="series-(\d)" x="([\d.]+)" y="([\d.]+)" '
    r'width="([\d.]+)" height="([\d.]+)"><title>([^<]*)</title></rect></a>'
)


def test_bars_stack_in_order_to_their_totals_within_a_tenth():
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(90)]
    first = [n * 7 % 23 for n in range(90)]
    second = [0 if n % 5 else 1 for n in range(90)]  # small: drawn at least half a unit high
    third = [1000 - n for n in range(90)]
    series = [
        Series(key, label, values, tuple(f"/audit/?k={key}&amp;d={n}" for n in range(90)))
        for key, label, values in (
            ("a", "First", first),
            ("b", "Second <b>", second),
            ("c", "Third", third),
        )
    ]
    svg = stacked_bars(days=days, series=series)
    bars = RECT.findall(svg)
    assert len(bars) == sum(1 for values in (first, second, third) for v in values if v)
    top = nice_ceiling(max(a + b + c for a, b, c in zip(first, second, third, strict=True)))
    floor, plot_h = HEIGHT - BOTTOM, HEIGHT - TOP - BOTTOM
    by_day: dict[str, list] = {}
    for link, index, x, y, _width, height, title in bars:
        by_day.setdefault(x, []).append((link, int(index), float(y), float(height), title))
    assert len(by_day) == 90
    assert len({bar[4] for bar in bars}) == 1  # one width for every bar
    xs = sorted(by_day, key=float)
    for n, x in enumerate(xs):
        stack = by_day[x]
        assert [index for _l, index, *_ in stack] == sorted(index for _l, index, *_ in stack)
        edge = floor
        for link, index, y, height, title in stack:
            value = (first, second, third)[index][n]
            exact = plot_h * value / top
            assert abs(height - max(exact, 0.5)) <= 0.051
            edge -= exact
            assert abs(y - edge) <= 0.051, (n, index)
            assert link == f"/audit/?k={'abc'[index]}&amp;d={n}"
            label = ("First", "Second &lt;b&gt;", "Third")[index]
            assert title == f"{label}, {days[n]:%m/%d/%Y}: {value}"
    # About eight dates under the axis, the first day's among them.
    ticks = re.findall(r'text-anchor="middle">(\d\d/\d\d)</text>', svg)
    assert ticks[0] == "11/01" and 7 <= len(ticks) <= 9


def test_the_table_lists_days_newest_first_with_each_number_linked_and_the_totals():
    days = [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]
    series = [
        Series("a", "Viewed", [1, 0, 3], ("/a/22", "/a/23", "/a/24")),
        Series("b", "Failed <x>", [0, 2, 0], ("/b/22", "/b/23", "/b/24")),
    ]
    html = str(day_table(days=days, series=series, caption="PIN activity per day"))
    assert '<caption class="visually-hidden">PIN activity per day</caption>' in html
    assert '<th scope="col">Failed &lt;x&gt;</th>' in html
    rows = re.findall(r"<tr><th scope=\"row\"[^>]*>([^<]+)</th>(.*?)</tr>", html)
    assert rows == [
        ("11/24/2026", '<td><a href="/a/24">3</a></td><td>0</td><td>3</td>'),
        ("11/23/2026", '<td>0</td><td><a href="/b/23">2</a></td><td>2</td>'),
        ("11/22/2026", '<td><a href="/a/22">1</a></td><td>0</td><td>1</td>'),
        ("Period", "<td>4</td><td>2</td><td>6</td>"),
    ]


def test_numbers_keep_one_decimal_and_their_sign():
    from audit.charts import _number

    cases = {0: "0", 0.04: "0", 0.06: "0.1", 12.0: "12", 12.34: "12.3", -0.3: "-0.3", -12.0: "-12"}
    assert {value: _number(value) for value in cases} == cases


def _ninety_days(third_day_ten: int = 1000):
    days = [date(2026, 9, 1) + timedelta(days=n) for n in range(90)]
    values = {
        "a": [n * 7 % 23 for n in range(90)],
        "b": [0 if n % 5 else 1 for n in range(90)],
        "c": [third_day_ten if n == 10 else 1000 - n for n in range(90)],
    }
    series = [
        Series(key, key.upper(), column, tuple(f"/audit/?k={key}&amp;d={n}" for n in range(90)))
        for key, column in values.items()
    ]
    return days, series


def test_a_chart_reads_the_same_wherever_its_settled_days_end():
    days, series = _ninety_days()
    bars = str(stacked_bars(days=days, series=series))
    table = str(day_table(days=days, series=series, caption="c"))
    for settled in (1, 45, 89, 90, 200):
        assert str(stacked_bars(days=days, series=series, settled=settled)) == bars, settled
        assert str(day_table(days=days, series=series, caption="c", settled=settled)) == table


def test_settled_days_are_drawn_once_and_drawn_again_when_their_counts_differ():
    from audit import charts

    days, series = _ninety_days()
    stacked_bars(days=days, series=series, settled=89)
    day_table(days=days, series=series, caption="c", settled=89)
    bars_hits = charts._settled_bars.cache_info().hits
    rows_hits = charts._settled_rows.cache_info().hits
    stacked_bars(days=days, series=series, settled=89)
    day_table(days=days, series=series, caption="c", settled=89)
    assert charts._settled_bars.cache_info().hits == bars_hits + 1
    assert charts._settled_rows.cache_info().hits == rows_hits + 1
    # A settled day's count that changes anyway (the same chart otherwise) is not shown
    # as it was kept.
    days, changed = _ninety_days(third_day_ten=7)
    svg = str(stacked_bars(days=days, series=changed, settled=89))
    table = str(day_table(days=days, series=changed, caption="c", settled=89))
    assert svg == str(stacked_bars(days=days, series=changed))
    assert table == str(day_table(days=days, series=changed, caption="c"))
    assert "C, 09/11/2026: 7<" in svg and ">7</a></td>" in table


def test_a_chart_with_nothing_settled_keeps_nothing_and_takes_any_sequence_of_links():
    from audit import charts

    days = [date(2026, 11, 24)]
    series = [Series("a", "A", [2], ["/a/24"])]  # a list: not hashable
    before = charts._settled_bars.cache_info().currsize, charts._settled_rows.cache_info().currsize
    assert 'href="/a/24"' in stacked_bars(days=days, series=series)
    assert 'href="/a/24"' in day_table(days=days, series=series, caption="c")
    after = charts._settled_bars.cache_info().currsize, charts._settled_rows.cache_info().currsize
    assert after == before
