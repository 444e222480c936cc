"""Bar charts as inline SVG, drawn on the server: no script, no inline style.

Not pygal: its SVG always carries a `<style>` element (its base CSS, whatever
`css` is set to) and a `<script>` element (`window.config = ...`, written even
with `js=[]`), both of which the Content Security Policy refuses (`style-src`
and `script-src` are 'self' only, ehr/settings.py), and it links bars with
`xlink:href` and `target="_blank"`. Here every shape takes its colour from a
class in static/css/app.css, and every bar is a plain `<a href>` to the report
filtered to it.

The charts are pictures for the eye (`aria-hidden`, their links out of the tab
order); each one's numbers are a table beside it, with the same links, for
screen readers and the keyboard (templates/audit/dashboard.html).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from html import escape  # the standard library's: a few hundred links a chart

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220  # the viewBox; the SVG scales to its box (app.css)
CACHED_PARTS = 64  # settled bars, and as many tables, kept drawn in each process
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24  # room for the axis labels


@dataclass(frozen=True)
class Series:
    """One colour of a chart: a label, a value per day, and where each day's bar leads."""

    key: str
    label: str
    values: Sequence[int]
    links: Sequence[str]  # one per day, escaped; hashable by value (a tuple, `_DayLinks`)


def nice_ceiling(value: int) -> int:
    """Return the axis' top: the smallest 1, 2 or 5 x 10^k at or above `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= factor * step:
                return factor * step
        step *= 10


def _number(value: float) -> str:
    """`value` to one decimal, without a trailing `.0` (coordinates in the viewBox)."""
    tenths = round(value * 10)
    whole, tenth = divmod(abs(tenths), 10)
    sign = "-" if tenths < 0 else ""
    return f"{sign}{whole}.{tenth}" if tenth else f"{sign}{whole}"


def day_labels(day: date) -> tuple[str, str]:
    """`11/24` and `11/24/2026`: the axis' and the tooltip's (and table's) text of a day.

    Written from the date's fields: `strftime` costs some 4 us, and a 90-day
    dashboard writes each of its days in three charts and three tables.
    """
    short = f"{day.month:02d}/{day.day:02d}"
    return short, f"{short}/{day.year:04d}"


# Heights and heights from the top, in tenths of the viewBox' units, as text: a bar's
# two such numbers are looked up rather than formatted (a 90-day chart has a few
# hundred bars).
_TENTHS = [_number(tenths / 10) for tenths in range(HEIGHT * 10 + 1)]


@lru_cache(maxsize=16)
def _columns(count: int) -> tuple[str, tuple[tuple[str, str | None], ...]]:
    """Return the bar width of a chart of `count` days, and each day's x (the start of
    its rect's attributes) and, under every few days, where its date goes."""
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / max(count, 1)
    bar_w = max(slot * 0.8, 1)
    label_every = max(1, round(count / 8))  # about eight dates under the axis
    columns = []
    for n in range(count):
        x = LEFT + n * slot + (slot - bar_w) / 2
        tick = _number(x + bar_w / 2) if n % label_every == 0 else None
        columns.append((f'" x="{_number(x)}" y="', tick))
    return _number(bar_w), tuple(columns)


def stacked_bars(*, days: Sequence[date], series: Sequence[Series], settled: int = 0) -> SafeString:
    """Return an SVG of one bar per day, its series stacked in order, each part a link.

    The bars of the first `settled` days, whose counts no longer change, are drawn
    once and kept (`_settled_bars`); see `_settled_bars` for why a kept drawing is
    never stale.
    """
    values = tuple(tuple(s.values) for s in series)
    totals = [sum(day) for day in zip(*values, strict=True)] if values else []
    top = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    # What every bar of a day, or of a series, shares is written once.
    labels = tuple(escape(s.label) for s in series)
    links = tuple(s.links for s in series)
    scale = plot_h * 10 / top  # tenths of a unit per event
    settled = max(0, min(settled, len(days)))
    parts = [_axis(top, plot_w, plot_h)]
    if settled:
        parts.append(
            _settled_bars(
                tuple(days[:settled]), len(days), scale, labels, links, _head(values, settled)
            )
        )
    parts.append(
        _bars(days[settled:], len(days), scale, labels, links, _tail(values, settled), settled)
    )
    return _svg(parts)


def _bars(
    days: Sequence[date],
    count: int,
    scale: float,
    labels: tuple[str, ...],
    links: tuple[Sequence[str], ...],
    values: tuple[tuple[int, ...], ...],
    first: int = 0,
) -> str:
    """Return the bars of `days`, days `first` on of a chart of `count` days."""
    width, columns = _columns(count)
    floor = float((HEIGHT - BOTTOM) * 10)  # the axis, in tenths
    parts = []
    for n, day in enumerate(days):
        start, tick = columns[first + n]
        short, long = day_labels(day)
        if tick is not None:
            parts.append(
                f'<text class="tick" x="{tick}" y="{HEIGHT - 6}" text-anchor="middle">{short}</text>'
            )
        base = floor
        for index, label in enumerate(labels):
            value = values[index][n]
            if not value:
                continue
            height = scale * value
            base -= height
            parts.append(
                f'<a href="{links[index][first + n]}" tabindex="-1"><rect class="series-{index}'
                f'{start}{_TENTHS[round(base)]}" width="{width}" '
                f'height="{_TENTHS[max(round(height), 5)]}">'
                f"<title>{label}, {long}: {value}</title></rect></a>"
            )
    return "".join(parts)


def day_table(
    *, days: Sequence[date], series: Sequence[Series], caption: str, settled: int = 0
) -> SafeString:
    """Return the chart's numbers as a table: a row per day (newest first), a column per
    series, and the period's totals.

    Each number above zero links where its bar does. Drawn here with the chart rather
    than by a template loop: a 90-day table is some 500 cells, and a template takes
    several times longer over them than the whole page's queries. The rows of the
    first `settled` days are drawn once and kept, as the bars are.
    """
    head = "".join(f'<th scope="col">{escape(s.label)}</th>' for s in series)
    values = tuple(tuple(s.values) for s in series)
    links = tuple(s.links for s in series)
    settled = max(0, min(settled, len(days)))
    rows = _rows(days[settled:], links, _tail(values, settled), settled)
    if settled:
        rows += _settled_rows(tuple(days[:settled]), links, _head(values, settled))
    sums = [sum(column) for column in values]
    foot = "".join(f"<td>{value}</td>" for value in sums)
    return mark_safe(  # noqa: S308  # nosec B308, B703  (numbers, dates and escaped text only)
        f'<table class="audit"><caption class="visually-hidden">{escape(caption)}</caption>'
        f'<thead><tr><th scope="col">Day</th>{head}<th scope="col">Total</th></tr></thead>'
        f'<tbody>{rows}</tbody><tfoot><tr><th scope="row">Period</th>{foot}'
        f"<td>{sum(sums)}</td></tr></tfoot></table>"
    )


def _rows(
    days: Sequence[date],
    links: tuple[Sequence[str], ...],
    values: tuple[tuple[int, ...], ...],
    first: int = 0,
) -> str:
    """Return the rows of `days`, days `first` on of the chart, newest first."""
    rows = []
    for n in range(len(days) - 1, -1, -1):  # newest first, as the report lists
        total = 0
        cells = []
        for index, column in enumerate(values):
            value = column[n]
            if value:
                total += value
                cells.append(f'<td><a href="{links[index][first + n]}">{value}</a></td>')
            else:
                cells.append("<td>0</td>")
        rows.append(
            f'<tr><th scope="row" class="nowrap">{day_labels(days[n])[1]}</th>{"".join(cells)}'
            f"<td>{total}</td></tr>"
        )
    return "".join(rows)


# The settled days' bars and rows, drawn once and kept in each process: they were most
# of the dashboard's own work at every view, and the dashboard has a stated speed target
# (bench/README.md). They are kept by everything they are drawn from, their counts and
# links included, so a day whose counts change after all is drawn afresh, never shown
# as it was, and a drawing is handed to another viewer only when it is exactly theirs
# (links name the practice chosen): being settled only says which days are worth
# keeping. Links must therefore hash by value. A dense 90-day chart's settled bars are
# some 85 KB and its rows 50 KB, so the two caches hold some 9 MB at most.
_settled_bars = lru_cache(maxsize=CACHED_PARTS)(_bars)
_settled_rows = lru_cache(maxsize=CACHED_PARTS)(_rows)


def _head(values: tuple[tuple[int, ...], ...], n: int) -> tuple[tuple[int, ...], ...]:
    return tuple(column[:n] for column in values)


def _tail(values: tuple[tuple[int, ...], ...], n: int) -> tuple[tuple[int, ...], ...]:
    return tuple(column[n:] for column in values)


def legend(series: Sequence[Series]) -> SafeString:
    """Return the chart's legend: each series' swatch (its colour class) and label."""
    items = "".join(
        f'<li><span class="swatch series-{index}"></span>{escape(s.label)}</li>'
        for index, s in enumerate(series)
    )
    return mark_safe(f'<ul class="legend">{items}</ul>')  # noqa: S308  # nosec B308, B703  (escaped text only)


def horizontal_bars(rows: Sequence[tuple[str, int, str]]) -> SafeString:
    """Return an SVG of one bar per (label, value, link), longest first as given."""
    row_h = 26
    height = TOP + row_h * max(len(rows), 1) + BOTTOM
    label_w = 220
    plot_w = WIDTH - label_w - RIGHT - 40
    top = nice_ceiling(max((value for _label, value, _link in rows), default=0))
    parts = []
    for n, (label, value, link) in enumerate(rows):
        y = TOP + n * row_h
        width = plot_w * value / top
        parts.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + 17}" text-anchor="end">'
            f"{escape(_clip(label))}</text>"
            f'<a href="{escape(link)}" tabindex="-1"><rect class="series-2" x="{label_w}" '
            f'y="{y + 4}" width="{_number(max(width, 0.5))}" height="{row_h - 8}">'
            f"<title>{escape(label)}: {value}</title></rect></a>"
            f'<text class="tick" x="{_number(label_w + width + 6)}" y="{y + 17}">{value}</text>'
        )
    return _svg(parts, height=height)


def _clip(label: str, length: int = 32) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def _axis(top: int, plot_w: float, plot_h: float) -> str:
    lines = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h - plot_h * fraction
        value = top * fraction
        if value != int(value):
            continue
        lines.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_number(y)}" '
            f'y2="{_number(y)}"/><text class="tick" x="{LEFT - 6}" y="{_number(y + 4)}" '
            f'text-anchor="end">{int(value)}</text>'
        )
    return "".join(lines)


def _svg(parts: list[str], *, height: int = HEIGHT) -> SafeString:
    # Every value above is a number, a date, or text passed through escape().
    return mark_safe(  # noqa: S308  # nosec B308, B703
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg" '
        f'aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
    )
