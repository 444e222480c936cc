"""The dashboard page: scoped counts, refused selectors, links that lead to the same rows."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from alerts.services import alert_acknowledge, alerts_evaluate
from audit import kinds
from support_pin.services import support_pin_reveal
from tests.audit.helpers import NOW, record_at
from tests.factories import make_user


@pytest.fixture
def activity(clock, provider, other_provider, agent):
    """Failed validations by the agent: 3 on the officer's practice, 5 on the other."""
    for n in range(3):
        record_at(
            NOW - timedelta(hours=n + 1),
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED,
            acting_user=agent,
            account=provider,
        )
    for n in range(5):
        record_at(
            NOW - timedelta(days=1, hours=n),
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED,
            acting_user=agent,
            account=other_provider,
        )
    record_at(
        NOW - timedelta(hours=2), kind=kinds.SIGN_IN_FAILED, acting_user=None, account=provider
    )


def page(client, user, query=""):
    client.force_login(user)
    return client.get(f"/audit/dashboard/{query}")


def links_to_report(html: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="(/audit/\?[^"]+)"', html)]


def test_an_officer_sees_their_practice_only(client, compliance, activity, agent):
    response = page(client, compliance)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<svg class="chart"') == 5  # four charts by day, and the agents
    assert html.count("<table") == 5  # each with its numbers
    agents = html.split('id="chart-agents"')[1]
    assert ">3</a>" in agents and ">5</a>" not in agents and ">8</a>" not in agents
    assert "practice=" not in html  # no practice in the officer's links
    # No inline script or style for the CSP to refuse.
    assert "style=" not in html and "<script>" not in html and "<style" not in html


def test_a_bar_leads_to_the_events_it_counts(client, compliance, activity, agent):
    html = page(client, compliance).content.decode()
    failed = [
        link
        for link in links_to_report(html)
        if "kind=support_pin.validation_failed" in link and "username" not in link
    ]
    assert failed  # the day's bar (and its cell in the table)
    report = client.get(failed[0]).content.decode()
    assert report.count("Unsuccessful validation of Support PIN") == 3
    per_agent = [link for link in links_to_report(html) if f"username={agent.username}" in link]
    report = client.get(per_agent[0]).content.decode()
    assert report.count("Unsuccessful validation of Support PIN") == 3


def test_an_auditor_chooses_a_practice(client, auditor, activity, other_practice):
    html = page(client, auditor).content.decode()
    assert ">8</a>" in html.split('id="chart-agents"')[1]  # every practice
    html = page(client, auditor, f"?days=7&practice={other_practice.group_id}").content.decode()
    assert ">5</a>" in html.split('id="chart-agents"')[1]
    links = links_to_report(html)
    assert links and all(f"practice={other_practice.group_id}" in link for link in links)
    report = client.get(next(link for link in links if "validation_failed" in link))
    assert report.content.decode().count("Unsuccessful validation of Support PIN") == 5


@pytest.mark.parametrize("query", ["?practice={other}", "?practice=999999", "?practice=x"])
def test_an_officer_cannot_ask_for_another_practice(
    client, compliance, activity, other_practice, query
):
    response = page(client, compliance, query.format(other=other_practice.group_id))
    assert response.status_code == 400
    html = response.content.decode()
    assert "your own practice only" in html
    assert "<svg" not in html and "Unsuccessful" not in html


def test_an_officer_may_name_their_own_practice(client, compliance, activity, practice):
    assert page(client, compliance, f"?practice={practice.group_id}").status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?practice=999999", "No practice has that name or Group ID."),
        ("?practice=No+Such+Clinic", "No practice has that name or Group ID."),
        ("?practice=99999999999999999999999", "No practice has that name or Group ID."),
        ("?days=5", "Choose one of the periods above: the last 7, 30 or 90 days."),
        ("?days=x", "Choose one of the periods above: the last 7, 30 or 90 days."),
    ],
)
def test_a_forged_selector_is_refused(client, auditor, activity, query, message):
    response = page(client, auditor, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<svg" not in response.content.decode()


def test_the_report_filters_by_kind_and_practice(
    client, compliance, auditor, activity, other_practice
):
    """The filters the dashboard links with; an officer has no Practice filter, so a
    practice in the address changes nothing (their practice's scope stays)."""
    query = "?kind=support_pin.validation_failed&last=week"
    client.force_login(auditor)
    assert client.get(query.replace("?", "/audit/?")).content.decode().count("Unsuccessful") == 8
    narrowed = client.get(f"/audit/{query}&practice={other_practice.group_id}").content.decode()
    assert narrowed.count("Unsuccessful") == 5
    client.force_login(compliance)
    assert client.get(f"/audit/{query}").content.decode().count("Unsuccessful") == 3
    assert (
        client.get(f"/audit/{query}&practice={other_practice.group_id}")
        .content.decode()
        .count("Unsuccessful")
        == 3
    )


@pytest.mark.parametrize("who", ["compliance", "auditor"])
def test_the_dashboard_costs_a_fixed_number_of_queries(
    client, request, settings, activity, practice, who, django_assert_num_queries
):
    """Session, user, device, whether it has a passkey (signed in with the app, in its grace
    period), roles; the counts, agents' among them, their names, break-glass, the open
    alerts' ids and number (and the alerts themselves when any wait: one more), and the
    latest verification of the log.

    The counts are two queries when no day of the period is cached (day counters, then
    the quarter hours between UTC midnight and the viewer's), and one once the days that
    have settled are (today's quarter hours). On PostgreSQL, before days are cached, one more asks whether a transaction that began
    before them is still open."""
    user = request.getfixturevalue(who)
    client.force_login(user)
    filling = 1 if connection.vendor == "postgresql" else 0
    with django_assert_num_queries(11 + filling):
        assert client.get("/audit/dashboard/?days=90").status_code == 200
    with django_assert_num_queries(10):
        assert client.get("/audit/dashboard/?days=90").status_code == 200
    # Alerts waiting: the box reads them, one query for one alert or for six.
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    for n in range(6):
        staff = make_user(Role.NURSE, practice=practice)
        support_pin_reveal(acting_user=staff, ip=None)
        alerts_evaluate()
        if n in (0, 5):
            with django_assert_num_queries(11):
                page = client.get("/audit/dashboard/?days=90").content.decode()
            assert f"Open alerts ({n + 1})" in page


def test_a_name_is_text_in_the_charts(client, compliance, provider, clock):
    """An agent's name reaches the SVG and its table escaped, never as markup."""
    from accounts.roles import Role
    from tests.factories import make_user

    named = make_user(
        Role.SUPPORT_AGENT, username="agent_x", first_name='<script>"x', last_name="</svg>"
    )
    record_at(
        NOW - timedelta(hours=1),
        kind=kinds.SUPPORT_PIN_VALIDATION_FAILED,
        acting_user=named,
        account=provider,
    )
    html = page(client, compliance).content.decode()
    assert "&lt;script&gt;&quot;x" in html.split('id="chart-agents"')[1]
    assert "<script>" not in html and html.count("</svg>") == html.count("<svg")


def test_open_alerts_wait_on_the_dashboard_until_acknowledged(
    client, settings, compliance, provider
):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=provider, ip=None)
    [alert] = alerts_evaluate()
    client.force_login(compliance)
    page = unescape(client.get("/audit/dashboard/").content.decode())
    assert "Open alerts (1)" in page and alert.summary in page
    alert_acknowledge(alert=alert, acting_user=compliance, note="Called her; it was her.", ip=None)
    page = client.get("/audit/dashboard/").content.decode()
    assert "Open alerts (0)" in page and "No alert waits to be acknowledged." in page


PERIOD = re.compile(r'<a href="([^"]+)" class="period( active" aria-current="page)?"')


def test_each_period_is_a_link_and_the_one_shown_is_marked(client, compliance):
    client.force_login(compliance)
    links = PERIOD.findall(client.get("/audit/dashboard/").content.decode())
    assert links == [
        ("/audit/dashboard/?days=7", ""),
        ("/audit/dashboard/?days=30", ' active" aria-current="page'),
        ("/audit/dashboard/?days=90", ""),
    ]
    links = PERIOD.findall(client.get("/audit/dashboard/?days=7").content.decode())
    assert [bool(current) for _link, current in links] == [True, False, False]


def test_a_period_link_keeps_the_practice_chosen_and_the_practice_box_the_period(
    client, auditor, other_practice
):
    html = page(client, auditor, f"?days=90&practice={other_practice.group_id}").content.decode()
    group = other_practice.group_id
    assert [unescape(link) for link, _current in PERIOD.findall(html)] == [
        f"/audit/dashboard/?days={days}&practice={group}" for days in (7, 30, 90)
    ]
    assert '<input type="hidden" name="days" value="90">' in html


def test_a_refused_choice_keeps_the_choices_that_were_valid(client, auditor, other_practice):
    group = other_practice.group_id
    html = page(client, auditor, f"?days=5&practice={group}").content.decode()
    assert [unescape(link) for link, _current in PERIOD.findall(html)] == [
        f"/audit/dashboard/?days={days}&practice={group}" for days in (7, 30, 90)
    ]
    response = page(client, auditor, "?days=90&practice=No+Such+Clinic")
    assert response.status_code == 400
    html = response.content.decode()
    assert '<input type="hidden" name="days" value="90">' in html
    assert PERIOD.findall(html)[2][1]  # the period asked for is the one marked
    html = page(client, auditor, "?days=x&practice=No+Such+Clinic").content.decode()
    assert '<input type="hidden" name="days" value="30">' in html  # the default, not "None"
    assert not any(current for _link, current in PERIOD.findall(html))


def test_settled_days_of_two_practices_with_equal_counts_link_to_their_own(
    client, auditor, clock, provider, other_provider, agent, practice, other_practice
):
    """A chart's settled days are kept drawn: another practice's chart with the same counts
    must not be handed the first one's links."""
    for account in (provider, other_provider):
        record_at(
            NOW - timedelta(days=3),
            kind=kinds.SUPPORT_PIN_VALIDATION_FAILED,
            acting_user=agent,
            account=account,
        )
    for chosen in (practice, other_practice):
        html = page(client, auditor, f"?days=7&practice={chosen.group_id}").content.decode()
        links = links_to_report(html)
        assert links and all(f"practice={chosen.group_id}" in link for link in links), chosen


def test_a_second_view_draws_only_the_days_still_counting(client, compliance, activity):
    from audit import charts

    page(client, compliance, "?days=30")
    bars, rows = charts._settled_bars.cache_info(), charts._settled_rows.cache_info()
    html = page(client, compliance, "?days=30").content.decode()
    assert charts._settled_bars.cache_info().hits == bars.hits + 4  # the four charts by day
    assert charts._settled_rows.cache_info().hits == rows.hits + 4
    assert charts._settled_bars.cache_info().misses == bars.misses
    assert html.count('<svg class="chart"') == 5


def test_the_dashboard_says_when_the_log_was_last_verified_and_what_was_found(client, compliance):
    from audit.chain import Problem
    from audit.integrity import audit_verification_record
    from audit.verification import VerifyResult

    client.force_login(compliance)
    box = re.compile(
        r'<section class="card" aria-labelledby="integrity-title">(.*?)</section>', re.S
    )
    [html] = box.findall(client.get("/audit/dashboard/").content.decode())
    assert "The log has not been verified yet." in html and 'href="/audit/integrity/"' in html
    intact = audit_verification_record(VerifyResult(10, 1, 0, None, 0, None))
    [html] = box.findall(client.get("/audit/dashboard/").content.decode())
    when = timezone.localtime(intact.finished_at, compliance.zone)
    assert f"Intact: every chain and signed checkpoint verified {when:%m/%d/%Y %I:%M %p} " in html
    audit_verification_record(VerifyResult(10, 1, 0, None, 0, Problem("edited", chain_id=1, seq=4)))
    [html] = box.findall(client.get("/audit/dashboard/").content.decode())
    assert 'role="alert">A problem was found in the log when it was verified' in html
    assert "edited" not in html  # where is for the platform's auditors, on the Integrity page
