"""The alert pages as each role, and as an attacker would try them."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import PRACTICE_ROLES, Role
from alerts.selectors import OpenAlerts, alert_open_for, alert_report_url
from alerts.services import alert_acknowledge, alerts_evaluate
from audit import kinds
from audit.models import AuditEvent
from support_pin.services import support_pin_reveal
from tests.alerts.conftest import fail
from tests.factories import confirm_identity, make_user, sent_mail

NOTE = "Spoke to the agent's manager; the calls were a training script."


@pytest.fixture
def spray(settings, agent, accounts):
    """An open alert of the practice: the agent failed on three of its accounts."""
    settings.ALERT_AGENT_FAILED_VALIDATIONS_PER_HOUR = 3
    for account in accounts[:3]:
        fail(agent, account)
    [alert] = alerts_evaluate()
    return alert


@pytest.fixture
def elsewhere(settings, other_provider):
    """An open alert of the other practice: its provider viewed the PIN too often."""
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=other_provider, ip=None)
    [alert] = alerts_evaluate()
    return alert


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def acknowledge(client, alert, note=NOTE):
    confirm_identity(client)  # an acknowledgement asks who is there first
    return client.post(reverse("alert_acknowledge", kwargs={"alert_id": alert.pk}), {"note": note})


def test_officers_see_their_practices_alerts_and_auditors_all(spray, elsewhere, officer, auditor):
    page = as_user(officer).get(reverse("alert_list")).content.decode()
    assert f"#{spray.pk}<" in page and f"#{elsewhere.pk}<" not in page
    page = as_user(auditor).get(reverse("alert_list")).content.decode()
    assert f"#{spray.pk}<" in page and f"#{elsewhere.pk}<" in page
    # Filtered by rule; an unknown rule is refused with a message and lists nothing.
    client = as_user(auditor)
    page = client.get(reverse("alert_list"), {"rule": "support_pin_views"}).content.decode()
    assert f"#{elsewhere.pk}<" in page and f"#{spray.pk}<" not in page
    response = client.get(reverse("alert_list"), {"rule": "everything"})
    assert response.status_code == 400
    assert "Choose one of the rules in the list." in response.content.decode()


def test_the_detail_links_to_the_events_behind_it(spray, officer):
    response = as_user(officer).get(reverse("alert_detail", kwargs={"alert_id": spray.pk}))
    page = response.content.decode()
    assert page.count("Unsuccessful validation of Support PIN for user") == 3
    # The link's dates are days in the viewer's zone, as the page was drawn: between
    # midnight UTC and midnight in New York they are not today's UTC date.
    with timezone.override(officer.time_zone):
        url = alert_report_url(spray).replace("&", "&amp;")
    assert url in page and "username=agent" in url and "date_from=" in url


def test_the_report_link_lists_the_events_the_rule_counted_and_no_other_kind(spray, officer):
    """The agent's alert links to its failed validations, not the agent's other events (its
    account's creation, in the same days)."""
    client = as_user(officer)
    with timezone.override(officer.time_zone):
        page = client.get(alert_report_url(spray)).content.decode()
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody")[1].split("</tbody>")[0], re.S)
    assert len(rows) == 3
    assert all("Unsuccessful validation of Support PIN for user" in row for row in rows)


def test_the_report_link_covers_the_window_in_the_viewers_time_zone(spray):
    from datetime import UTC, datetime

    spray.window_start = datetime(2024, 3, 19, 2, 30, tzinfo=UTC)  # 10:30 PM EDT on the 18th
    spray.window_end = datetime(2024, 3, 19, 3, 30, tzinfo=UTC)
    with timezone.override("America/New_York"):
        url = alert_report_url(spray)
    assert "date_from=2024-03-18" in url and "date_to=2024-03-18" in url


def test_an_acknowledgement_waits_for_the_officer_to_confirm_it_is_them(spray, officer):
    """A session taken over cannot silence an alert: the note is kept, and the
    acknowledgement is made once the password (and code) are given."""
    from tests.accounts.test_pending_action import action_id, confirm

    client = as_user(officer)
    url = reverse("alert_acknowledge", kwargs={"alert_id": spray.pk})
    # A note missing is said at once, without asking first.
    assert client.post(url, {"note": ""}).status_code == 400
    action = action_id(client.post(url, {"note": NOTE}))
    spray.refresh_from_db()
    assert spray.is_open
    assert confirm(client, officer, action)["Location"] == reverse("alert_list")
    spray.refresh_from_db()
    assert (spray.acknowledged_by, spray.acknowledgement_note) == (officer, NOTE)


def test_acknowledging_takes_a_note_and_happens_once(spray, officer, auditor):
    client = as_user(officer)
    response = acknowledge(client, spray, note="   ")
    assert response.status_code == 400
    assert "Write a note on what you checked" in response.content.decode()
    spray.refresh_from_db()
    assert spray.is_open

    assert acknowledge(client, spray).status_code == 302
    spray.refresh_from_db()
    assert (spray.acknowledged_by, spray.acknowledgement_note) == (officer, NOTE)
    event = AuditEvent.objects.get(kind=kinds.ALERT_ACKNOWLEDGED.code)
    assert event.details == f"Alert #{spray.pk} acknowledged. Note: {NOTE}"
    assert event.actor_id == officer.pk and event.practice_id == spray.practice_id

    response = acknowledge(as_user(auditor), spray, note="Seen again.")
    assert response.status_code == 400
    assert "already acknowledged" in response.content.decode()
    spray.refresh_from_db()
    assert spray.acknowledged_by == officer
    assert AuditEvent.objects.filter(kind=kinds.ALERT_ACKNOWLEDGED.code).count() == 1
    # Listed below the open ones now, with who acknowledged it.
    page = client.get(reverse("alert_list")).content.decode()
    assert "Acknowledged by" in page


def test_another_practices_alert_is_not_found(elsewhere, officer):
    client = as_user(officer)
    url = reverse("alert_detail", kwargs={"alert_id": elsewhere.pk})
    assert client.get(url).status_code == 404
    assert acknowledge(client, elsewhere).status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.is_open


@pytest.mark.parametrize("role", [Role.NURSE, Role.SUPPORT_AGENT, Role.PROVIDER])
def test_staff_and_agents_are_refused(spray, practice, role):
    client = as_user(make_user(role, practice=None if role == Role.SUPPORT_AGENT else practice))
    assert client.get(reverse("alert_list")).status_code == 403
    assert client.get(reverse("alert_detail", kwargs={"alert_id": spray.pk})).status_code == 403
    assert acknowledge(client, spray).status_code == 403
    spray.refresh_from_db()
    assert spray.is_open


def test_nobody_acknowledges_an_alert_about_their_own_account(settings, officer, auditor):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    support_pin_reveal(acting_user=officer, ip=None)
    [alert] = alerts_evaluate()
    # Nor is told of it: the mail goes to the others who watch.
    assert [m.to for m in sent_mail() if m.subject.startswith("Alert")] == [["auditor@example.org"]]
    client = as_user(officer)
    page = client.get(reverse("alert_detail", kwargs={"alert_id": alert.pk})).content.decode()
    assert "someone else acknowledges it" in page
    assert acknowledge(client, alert).status_code == 403
    alert.refresh_from_db()
    assert alert.is_open


def test_acknowledging_needs_the_csrf_token(spray, officer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    assert acknowledge(client, spray).status_code == 403
    spray.refresh_from_db()
    assert spray.is_open


def test_the_list_and_the_dashboard_box_take_fixed_queries(
    settings, spray, auditor, django_assert_num_queries
):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 1
    for role in (Role.NURSE, Role.PROVIDER):
        support_pin_reveal(acting_user=make_user(role, practice=spray.practice), ip=None)
    assert len(alerts_evaluate()) == 2
    alert_acknowledge(alert=spray, acting_user=auditor, note=NOTE, ip=None)
    client = as_user(auditor)
    client.get(reverse("alert_list"))  # warm the session
    # session, user, its device, whether it has a passkey (it signed in with the app, in
    # its grace period), its roles; open alerts, the number of acknowledged ones and their
    # page (practice and people joined): the same for three alerts as for three hundred
    with django_assert_num_queries(8):
        client.get(reverse("alert_list"))
    # Ids and count in one query, then the alerts shown with their practice: two
    # whether fewer wait than the box shows or more.
    with django_assert_num_queries(2):
        box = alert_open_for(viewer=auditor)
    assert box.count == 2 and len(box.alerts) == 2
    with django_assert_num_queries(2):
        newest = alert_open_for(viewer=auditor, limit=1)
    assert newest.count == 2 and newest.alerts == box.alerts[:1]
    # The dashboard's one-line include renders them.
    from django.template.loader import render_to_string

    html = render_to_string("alerts/_open_alerts.html", {"open_alerts": box})
    assert "Open alerts (2)" in html
    assert all(f"/audit/alerts/{alert.pk}/" in html for alert in box.alerts)


def test_the_dashboard_box_counts_only_the_viewers_open_alerts(
    spray, elsewhere, officer, other_officer, auditor, agent, django_assert_num_queries
):
    box = alert_open_for(viewer=officer)
    assert box.count == 1 and box.alerts == [spray]
    assert alert_open_for(viewer=other_officer).alerts == [elsewhere]
    assert alert_open_for(viewer=auditor).count == 2
    # An auditor's dashboard narrowed to one practice lists that practice's alerts; an
    # officer's is their own practice's whatever is asked.
    assert alert_open_for(viewer=auditor, practice_id=elsewhere.practice_id).alerts == [elsewhere]
    assert alert_open_for(viewer=officer, practice_id=elsewhere.practice_id).alerts == [spray]
    # Someone who sees no alerts is not asked about them.
    with django_assert_num_queries(0):
        assert alert_open_for(viewer=agent) == OpenAlerts(count=0, alerts=[])
    # Acknowledged alerts no longer wait; when none waits, one query answers.
    alert_acknowledge(alert=spray, acting_user=officer, note=NOTE, ip=None)
    with django_assert_num_queries(1):
        box = alert_open_for(viewer=officer)
    assert box.count == 0 and box.alerts == []
    assert alert_open_for(viewer=auditor).alerts == [elsewhere]


@pytest.mark.parametrize("role", list(Role))
def test_the_dashboard_box_agrees_with_who_may_see_alerts(spray, elsewhere, practice, role):
    """alert_open_for asks in plain SQL what alert_scope says in the ORM: for every role,
    the same open alerts, newest first."""
    from alerts.selectors import alert_scope
    from tests.factories import make_practice

    place = practice if role in PRACTICE_ROLES else None
    viewer = make_user(role, practice=place)
    waiting = list(alert_scope(viewer=viewer).filter(acknowledged_at__isnull=True))
    waiting.sort(key=lambda alert: (alert.raised_at, alert.pk), reverse=True)
    box = alert_open_for(viewer=viewer)
    assert (box.count, box.alerts) == (len(waiting), waiting[:5])
    # A practice with no alert: its people see none.
    elsewhere_viewer = make_user(role, practice=make_practice("Quiet Clinic") if place else None)
    expected = alert_scope(viewer=elsewhere_viewer).filter(acknowledged_at__isnull=True).count()
    assert alert_open_for(viewer=elsewhere_viewer).count == expected


def acknowledged_copies(alert, count: int) -> list:
    """`count` acknowledged alerts like `alert`, raised a minute apart, the newest last."""
    from datetime import timedelta

    from alerts.models import Alert

    fields = {
        f.attname: getattr(alert, f.attname)
        for f in Alert._meta.concrete_fields
        if not f.primary_key
    }
    return Alert.objects.bulk_create(
        Alert(
            **fields
            | {
                "dedupe_key": f"copy-{n}",
                "raised_at": alert.raised_at - timedelta(minutes=count - n),
            }
        )
        for n in range(count)
    )


def test_acknowledged_alerts_are_paged_newest_first(spray, officer, auditor):
    alert_acknowledge(alert=spray, acting_user=auditor, note=NOTE, ip=None)
    spray.refresh_from_db()
    copies = acknowledged_copies(spray, 119)  # 120 acknowledged with the original
    newest_first = [spray, *reversed(copies)]
    client = as_user(officer)
    shown = []
    for number in (1, 2, 3):
        page = client.get(reverse("alert_list"), {"page": number}).content.decode()
        assert f"Page {number} of 3, newest first." in page and "Acknowledged (120)" in page
        shown += [int(pk) for pk in re.findall(r'href="/audit/alerts/(\d+)/"', page)]
    assert shown == [alert.pk for alert in newest_first]
    # A page past the last shows the last; the links keep the rule.
    last = client.get(reverse("alert_list"), {"page": 99, "rule": spray.rule}).content.decode()
    assert "Page 3 of 3, newest first." in last
    assert f'href="?page=2&amp;rule={spray.rule}"' in last and ">Older<" not in last


@pytest.mark.parametrize(
    ("page", "message"),
    [("x", "Page must be a whole number, such as 2."), ("0", "Page must be 1 or more.")],
)
def test_a_page_that_is_no_page_is_refused_with_a_message(spray, officer, page, message):
    response = as_user(officer).get(reverse("alert_list"), {"page": page})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_service_refuses_another_practices_officer(elsewhere, officer):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        alert_acknowledge(alert=elsewhere, acting_user=officer, note=NOTE, ip=None)
    elsewhere.refresh_from_db()
    assert elsewhere.is_open


def test_the_alerts_page_states_each_rule_with_the_thresholds_in_force(officer, settings):
    settings.ALERT_SUPPORT_PIN_VIEWS_PER_DAY = 7
    settings.ALERT_SIGN_IN_LOCKOUT_WINDOW_MINUTES = 20
    page = as_user(officer).get(reverse("alert_list")).content.decode()
    assert "When an alert is raised" in page
    assert "One account&#x27;s Support PIN is viewed 7 or more times within 24 hours." in page
    assert "sign-in lockouts of one practice&#x27;s accounts within 20 minutes." in page
    assert "the alert goes to the platform&#x27;s auditors only" in page
    assert "docs/audit.md" not in page  # a file of the code, which a user cannot open


def test_an_auditors_dashboard_for_one_practice_lists_its_alerts_and_the_platforms(
    spray, elsewhere, auditor, other_practice
):
    client = as_user(auditor)
    page = client.get(f"/audit/dashboard/?practice={other_practice.group_id}").content.decode()
    assert "Open alerts (1)" in page
    assert f"/audit/alerts/{elsewhere.pk}/" in page and f"/audit/alerts/{spray.pk}/" not in page
    assert "Open alerts (2)" in client.get("/audit/dashboard/").content.decode()
    # A failed verification is the platform's alert: it concerns every practice.
    from audit.chain import Problem
    from audit.integrity import audit_verification_record
    from audit.verification import VerifyResult

    audit_verification_record(VerifyResult(10, 1, 0, None, 0, Problem("edited", chain_id=1, seq=4)))
    [platform] = alerts_evaluate()
    assert platform.practice_id is None
    page = client.get(f"/audit/dashboard/?practice={other_practice.group_id}").content.decode()
    assert "Open alerts (2)" in page and f"/audit/alerts/{platform.pk}/" in page
