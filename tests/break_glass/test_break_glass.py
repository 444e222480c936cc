import html
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from accounts.roles import PLATFORM_ROLES, PRACTICE_ROLES, Role
from accounts.services import user_admin_update, user_set_active
from audit.dashboard import break_glass_status
from audit.models import AuditEvent
from break_glass.models import BreakGlassGrant
from break_glass.services import break_glass_open, break_glass_review
from tests.concurrency import run_together
from tests.factories import confirm_identity, make_practice, make_user, sent_mail
from tests.support_pin.helpers import current_pin

REASON = "Caller lost her phone and cannot sign in to read her Support PIN; verified by callback."


@pytest.fixture
def compliance(practice):
    return make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="compliance")


@pytest.fixture
def agent_client(agent):
    client = Client()
    client.force_login(agent)
    confirm_identity(client)  # opening break-glass access is behind re-authentication
    return client


def grant_events(grant) -> list[str]:
    return list(
        AuditEvent.objects.filter(data__break_glass=grant.pk)
        .order_by("id")
        .values_list("details", flat=True)
    )


def test_opening_needs_a_real_justification_and_at_most_an_hour(agent, provider):
    with pytest.raises(ValidationError, match="at least 30 characters"):
        break_glass_open(
            acting_user=agent, account=provider, justification="  too   short ", minutes=10, ip=None
        )
    for minutes in (0, 61):
        with pytest.raises(ValidationError, match="between 1 and 60"):
            break_glass_open(
                acting_user=agent, account=provider, justification=REASON, minutes=minutes, ip=None
            )
    assert not BreakGlassGrant.objects.exists()


def test_only_agents_open_it(nurse, provider):
    with pytest.raises(PermissionDenied):
        break_glass_open(
            acting_user=nurse, account=provider, justification=REASON, minutes=10, ip=None
        )


def test_opening_tells_the_owner_and_the_compliance_officers_at_once(
    agent, provider, compliance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        grant = break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=15, ip="203.0.113.4"
        )
    assert len(sent_mail()) == 1  # both keep New York's time: one mail
    assert set(sent_mail()[0].to) == {provider.email, compliance.email}
    assert REASON in sent_mail()[0].body
    opened = timezone.localtime(grant.opened_at, ZoneInfo(provider.time_zone))
    until = timezone.localtime(grant.expires_at, ZoneInfo(provider.time_zone))
    assert (
        f"at {opened:%m/%d/%Y %I:%M %p} {opened.tzname()}, "
        f"until {until:%I:%M %p} {until.tzname()}." in sent_mail()[0].body
    )
    assert grant_events(grant) == [
        f"Break-glass access #{grant.pk} opened for user dorothy Ludwig for 15 minutes: {REASON}"
    ]


def test_using_it_shows_identity_rotates_the_pin_and_audits_every_step(
    agent_client, agent, provider, django_capture_on_commit_callbacks
):
    provider.provider_profile.cell_phone = "+12025550143"
    provider.provider_profile.save()
    response = agent_client.post(
        f"/support/break-glass/{provider.pk}/", {"justification": REASON, "minutes": 20}
    )
    grant = BreakGlassGrant.objects.get()
    assert response["Location"] == f"/support/break-glass/grant/{grant.pk}/"
    page = agent_client.get(response["Location"])
    text = page.content.decode()
    assert "no-store" in page["Cache-Control"]
    assert "496094" in text and provider.email in text and "(202) 555-0143" in text
    assert current_pin(provider) not in text
    before = current_pin(provider)
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(f"/support/break-glass/grant/{grant.pk}/rotate-pin/")
    assert current_pin(provider) != before
    assert any("Support PIN was replaced" in m.subject for m in sent_mail())
    assert all(current_pin(provider) not in m.body for m in sent_mail())
    assert grant_events(grant) == [
        f"Break-glass access #{grant.pk} opened for user dorothy Ludwig for 20 minutes: {REASON}",
        f"Identity details of user dorothy Ludwig viewed under break-glass access #{grant.pk}",
        f"Support PIN of user dorothy Ludwig replaced under break-glass access #{grant.pk}",
    ]


def test_it_stops_at_expiry_and_the_expiry_is_recorded_once(agent_client, agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        response = agent_client.get(f"/support/break-glass/grant/{grant.pk}/")
        assert response["Location"] == "/support/validate/"
        call_command("break_glass_expire")
    assert (
        grant_events(grant)[-1] == f"Break-glass access #{grant.pk} to user dorothy Ludwig expired"
    )
    assert sum("expired" in d for d in grant_events(grant)) == 1


def test_an_expiry_written_early_by_a_clock_that_ran_ahead_ends_the_access(
    agent_client, agent, provider, compliance
):
    """The log says it expired: from then on it is over, whatever the clock says now."""
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        call_command("break_glass_expire")
    grant.refresh_from_db()
    assert grant.expiry_recorded_at is not None and grant.expires_at > timezone.now()
    assert not grant.is_open
    url = f"/support/break-glass/grant/{grant.pk}/"
    assert agent_client.get(url)["Location"] == "/support/validate/"
    assert agent_client.post(f"{url}rotate-pin/")["Location"] == "/support/validate/"
    # The reviewer may review it now, and sees it as ended.
    client = Client()
    client.force_login(compliance)
    listing = client.get("/audit/break-glass/").content.decode()
    assert f">{grant.pk}</a>" in listing and "(open)" not in listing
    status = break_glass_status(viewer=compliance, practice_id=None, now=timezone.now())
    assert (status.open, status.awaiting_review) == (0, 1)
    break_glass_review(grant=grant, acting_user=compliance, ip=None, **REVIEW)
    assert sum("expired" in d for d in grant_events(grant)) == 1


def test_the_minutes_left_are_rounded_up(agent_client, agent, provider):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        grant = break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
        )
        url = f"/support/break-glass/grant/{grant.pk}/"
        assert "Open for 15 more minutes, until" in agent_client.get(url).content.decode()
        clock.shift(30)
        assert "Open for 15 more minutes" in agent_client.get(url).content.decode()
        clock.shift(14 * 60)  # 30 seconds left
        assert "Open for 1 more minute," in agent_client.get(url).content.decode()


def test_another_agent_cannot_use_a_grant(agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    other = make_user(Role.SUPPORT_AGENT)
    client = Client()
    client.force_login(other)
    assert client.get(f"/support/break-glass/grant/{grant.pk}/")["Location"] == "/support/validate/"
    assert not AuditEvent.objects.filter(kind="break_glass.identity_viewed").exists()


NOTE = "Called the owner back on the number on file; she confirmed the call."
REVIEW = {"outcome": "justified", "note": NOTE}


def later(minutes: int):
    """Move the clock on, past the end of the grants the test opened."""
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False)


def test_compliance_reviews_their_practice_only(agent, provider, other_provider, compliance):
    mine = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    theirs = break_glass_open(
        acting_user=agent, account=other_provider, justification=REASON, minutes=5, ip=None
    )
    client = Client()
    client.force_login(compliance)
    with later(6):
        page = client.get("/audit/break-glass/").content.decode()
        assert f'href="/audit/break-glass/{mine.pk}/review/">Review</a>' in page
        assert f">{mine.pk}<" in page
        assert f">{theirs.pk}<" not in page  # another practice's access is not listed
        confirm_identity(client)  # a review asks who is there first
        assert client.post(f"/audit/break-glass/{theirs.pk}/review/", REVIEW).status_code == 404
        client.post(f"/audit/break-glass/{mine.pk}/review/", REVIEW)
        mine.refresh_from_db()
        assert mine.reviewed_by == compliance
        assert grant_events(mine)[-1] == (
            f"Break-glass access #{mine.pk} to user dorothy Ludwig reviewed: Justified. "
            f"Note: {NOTE}"
        )
        with pytest.raises(PermissionDenied):
            break_glass_review(grant=theirs, acting_user=compliance, ip=None, **REVIEW)


def test_a_review_takes_an_outcome_and_a_note_and_waits_for_the_end(agent, provider, compliance):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
    )
    client = Client()
    client.force_login(compliance)
    confirm_identity(client)  # a review asks who is there first
    url = f"/audit/break-glass/{grant.pk}/review/"
    listing = client.get("/audit/break-glass/").content.decode()
    assert "Not reviewed (still open)" in listing and url not in listing
    page = client.get(url).content.decode()
    assert "still open" in page and "Record the review" not in page
    response = client.post(url, REVIEW)  # while open: refused
    assert response.status_code == 400
    assert "is still open: review it once it has ended" in response.content.decode()
    with later(16):
        client.force_login(compliance)  # the earlier session went idle meanwhile
        confirm_identity(client)
        assert "Record the review" in client.get(url).content.decode()
        for data, message in (
            ({}, "Choose whether the access was justified."),
            ({"outcome": "justified"}, "Write what you checked."),
            ({"outcome": "justified", "note": "ok"}, "Write at least 10 characters"),
            ({"outcome": "unrecorded", "note": NOTE}, "Select a valid choice"),
        ):
            response = client.post(url, data)
            assert response.status_code == 400, data
            assert message in response.content.decode(), data
        grant.refresh_from_db()
        assert grant.reviewed_at is None and grant.review_outcome == ""
        assert not AuditEvent.objects.filter(kind="break_glass.reviewed").exists()
        response = client.post(url, {"outcome": "not_justified", "note": NOTE}, follow=True)
        assert f"Break-glass access #{grant.pk} was reviewed." in response.content.decode()
        assert "Not justified: reviewed by" in response.content.decode()
    grant.refresh_from_db()
    assert (grant.review_outcome, grant.review_note) == ("not_justified", NOTE)
    assert grant_events(grant)[-2:] == [
        f"Break-glass access #{grant.pk} to user dorothy Ludwig expired",
        f"Break-glass access #{grant.pk} to user dorothy Ludwig reviewed: Not justified. "
        f"Note: {NOTE}",
    ]
    with pytest.raises(ValidationError, match="already reviewed"):
        break_glass_review(grant=grant, acting_user=compliance, ip=None, **REVIEW)


def test_the_database_keeps_a_review_whole(agent, provider, compliance):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BreakGlassGrant.objects.filter(pk=grant.pk).update(
            reviewed_by=compliance, reviewed_at=timezone.now()
        )


def test_the_report_filters_break_glass_events(agent, provider, compliance):
    break_glass_open(acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None)
    client = Client()
    client.force_login(compliance)
    rows = client.get("/audit/", {"break_glass": "on"}).context["rows"]
    assert rows and all("break-glass" in row["details"].lower() for row in rows)


# Who may be opened: practice members' accounts, never the agent's own.


def nothing_was_opened() -> bool:
    return (
        not BreakGlassGrant.objects.exists()
        and not AuditEvent.objects.filter(kind="break_glass.opened").exists()
        and not sent_mail()
    )


def agent_in_a_practice(practice):
    """A practice member given the support agent role as well, as the Django admin allows."""
    user = make_user(
        Role.NURSE, practice=practice, username="nurseagent", mfa=True, passkey=True, grace=False
    )
    user.groups.add(Group.objects.get(name=Role.SUPPORT_AGENT.value))
    return type(user).objects.get(pk=user.pk)


def test_an_agent_never_opens_its_own_account(practice, django_capture_on_commit_callbacks):
    agent = agent_in_a_practice(practice)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(PermissionDenied, match="its own account"),
    ):
        break_glass_open(
            acting_user=agent, account=agent, justification=REASON, minutes=10, ip=None
        )
    assert nothing_was_opened()


def test_accounts_without_a_practice_are_not_opened(agent, django_capture_on_commit_callbacks):
    for account, refusal in (
        (agent, "its own account"),
        (make_user(Role.SUPPORT_AGENT, username="agent2"), "practice members' accounts only"),
        (make_user(Role.PLATFORM_AUDITOR, username="auditor"), "practice members' accounts only"),
    ):
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(PermissionDenied, match=refusal),
        ):
            break_glass_open(
                acting_user=agent, account=account, justification=REASON, minutes=10, ip=None
            )
    assert nothing_was_opened()


def test_the_open_page_refuses_own_and_platform_accounts_with_a_reason(
    agent_client, agent, provider, django_capture_on_commit_callbacks
):
    other_agent = make_user(Role.SUPPORT_AGENT, username="agent2")
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    for account, reason in (
        (agent, "It is your own account"),
        (other_agent, "It belongs to no practice"),
        (auditor, "It belongs to no practice"),
    ):
        url = f"/support/break-glass/{account.pk}/"
        with django_capture_on_commit_callbacks(execute=True):
            for response in (
                agent_client.get(url),
                agent_client.post(url, {"justification": REASON, "minutes": 20}),
            ):
                assert response.status_code == 403
                assert reason in response.content.decode()
                assert "Nothing was opened or recorded." in response.content.decode()
    assert nothing_was_opened()
    # The page for a practice member's account still offers the form.
    assert (
        "Why is this access needed?"
        in agent_client.get(f"/support/break-glass/{provider.pk}/").content.decode()
    )


def test_the_refusal_comes_before_asking_for_the_password(practice):
    agent = agent_in_a_practice(practice)
    client = Client()
    client.force_login(agent)  # no recent confirmation
    response = client.get(f"/support/break-glass/{agent.pk}/")
    assert response.status_code == 403
    assert "It is your own account" in response.content.decode()


def test_the_console_offers_break_glass_only_where_it_can_be_opened(
    agent_client, agent, provider, practice
):
    offered = "Open break-glass access"

    def console(account):
        return agent_client.get("/support/validate/", {"account": account.pk}).content.decode()

    assert offered in console(provider)
    for account in (
        agent,
        make_user(Role.SUPPORT_AGENT, username="agent2"),
        make_user(Role.PLATFORM_AUDITOR, username="auditor"),
    ):
        page = console(account)
        assert offered not in page and f"/support/break-glass/{account.pk}/" not in page
        assert "it belongs to no practice" in page or "it is your own" in page
    member_agent = agent_in_a_practice(practice)
    client = Client()
    client.force_login(member_agent)
    page = client.get("/support/validate/", {"account": member_agent.pk}).content.decode()
    assert offered not in page and "No break-glass access for this account: it is your own" in page
    page = client.get("/support/validate/", {"account": provider.pk}).content.decode()
    assert offered in page


# Who reviews: every grant that can be opened has a reviewer who can act.


def grant_minutes(grant) -> int:
    return int((grant.expires_at - grant.opened_at).total_seconds() // 60)


def reviewers_of(grant, users: dict[Role, object]) -> set[Role]:
    """The roles of `users` for whom the review URL records a review of `grant` (once it
    has ended)."""
    found = set()
    for role, user in users.items():
        with transaction.atomic(), later(grant_minutes(grant) + 1):
            client = Client()
            client.force_login(user)
            confirm_identity(client)  # a review asks who is there first
            response = client.post(f"/audit/break-glass/{grant.pk}/review/", REVIEW)
            grant.refresh_from_db()
            if response.status_code == 302 and grant.reviewed_by_id == user.pk:
                found.add(role)
            transaction.set_rollback(True)  # the next user finds it unreviewed again
    return found


@pytest.mark.parametrize("owner_role", list(Role))
def test_every_grant_that_opens_has_a_reviewer_who_can_act_and_is_told(
    db, owner_role, django_capture_on_commit_callbacks
):
    practice = make_practice("Ludwig Family Medicine")
    users = {
        role: make_user(
            role,
            practice=practice if role in PRACTICE_ROLES else None,
            username=f"m_{role.value}",
        )
        for role in Role
    }
    agent = make_user(Role.SUPPORT_AGENT, username="opener")
    owner = users[owner_role]
    with django_capture_on_commit_callbacks(execute=True):
        try:
            grant = break_glass_open(
                acting_user=agent, account=owner, justification=REASON, minutes=10, ip=None
            )
        except PermissionDenied:
            grant = None
    if owner_role in PLATFORM_ROLES:
        assert grant is None and nothing_was_opened()
        return
    reviewers = reviewers_of(grant, users)
    assert reviewers  # never a grant that waits for review forever
    expected = {Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER} - {owner_role}
    assert reviewers == expected  # and nobody else, never the owner
    told = set(sent_mail()[0].to) - {owner.email}
    assert told and told <= {users[role].email for role in reviewers}


def test_platform_auditors_are_told_when_the_practice_has_no_other_compliance_officer(
    agent, practice, django_capture_on_commit_callbacks
):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    officer = make_user(Role.COMPLIANCE_OFFICER, practice=practice, username="onlyofficer")
    with django_capture_on_commit_callbacks(execute=True):
        break_glass_open(
            acting_user=agent, account=officer, justification=REASON, minutes=5, ip=None
        )
    assert set(sent_mail()[0].to) == {officer.email, auditor.email}


def test_the_auditor_reviews_any_grant_and_an_officer_never_their_own(agent, provider, compliance):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    on_officer = break_glass_open(
        acting_user=agent, account=compliance, justification=REASON, minutes=5, ip=None
    )
    officer = Client()
    officer.force_login(compliance)
    with later(6):
        page = officer.get("/audit/break-glass/").content.decode()
        assert f">{on_officer.pk}<" in page and "/review/" not in page
        url = f"/audit/break-glass/{on_officer.pk}/review/"
        assert officer.post(url, REVIEW).status_code == 403
        with pytest.raises(PermissionDenied):
            break_glass_review(grant=on_officer, acting_user=compliance, ip=None, **REVIEW)
        on_officer.refresh_from_db()
        assert on_officer.reviewed_at is None
        client = Client()
        client.force_login(auditor)
        confirm_identity(client)  # a review asks who is there first
        assert url in client.get("/audit/break-glass/").content.decode()
        client.post(url, REVIEW)
    on_officer.refresh_from_db()
    assert on_officer.reviewed_by == auditor
    assert grant_events(on_officer)[-1].endswith(f"reviewed: Justified. Note: {NOTE}")


def test_a_grant_opened_on_a_platform_account_before_they_were_refused_is_reviewable(agent):
    # Such rows exist from before platform accounts were refused; they cannot be made now.
    now = timezone.now()
    old = BreakGlassGrant.objects.create(
        agent=agent,
        account=make_user(Role.SUPPORT_AGENT, username="agent2"),
        justification=REASON,
        opened_at=now - timedelta(minutes=10),
        expires_at=now - timedelta(minutes=5),
    )
    client = Client()
    client.force_login(make_user(Role.PLATFORM_AUDITOR, username="auditor"))
    confirm_identity(client)  # a review asks who is there first
    client.post(f"/audit/break-glass/{old.pk}/review/", REVIEW)
    old.refresh_from_db()
    assert old.reviewed_at is not None


def test_an_auditor_who_is_also_an_agent_neither_reviews_nor_is_told_of_its_own_grant(
    provider, django_capture_on_commit_callbacks
):
    opener = make_user(Role.PLATFORM_AUDITOR, username="auditoragent")
    opener.groups.add(Group.objects.get(name=Role.SUPPORT_AGENT.value))  # as the admin allows
    opener = type(opener).objects.get(pk=opener.pk)
    other_auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    with django_capture_on_commit_callbacks(execute=True):
        grant = break_glass_open(
            acting_user=opener, account=provider, justification=REASON, minutes=5, ip=None
        )
    assert set(sent_mail()[0].to) == {provider.email, other_auditor.email}
    with pytest.raises(PermissionDenied):
        break_glass_review(grant=grant, acting_user=opener, ip=None, **REVIEW)
    with later(6):
        break_glass_review(grant=grant, acting_user=other_auditor, ip=None, **REVIEW)
    grant.refresh_from_db()
    assert grant.reviewed_by == other_auditor


def test_a_deactivated_compliance_officer_neither_reviews_nor_is_told(
    agent, provider, practice, compliance, django_capture_on_commit_callbacks
):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="admin")
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    user_set_active(account=compliance, active=False, acting_user=admin, ip=None)
    compliance.refresh_from_db()
    with pytest.raises(PermissionDenied):
        break_glass_review(grant=grant, acting_user=compliance, ip=None, **REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
        )
    assert set(sent_mail()[-1].to) == {provider.email, auditor.email}


def test_a_grants_link_to_the_report_shows_what_was_done_under_it(
    agent, provider, nurse, compliance
):
    """Not every break-glass event of the year: the account's, on the days the access spanned."""
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
    )
    other = break_glass_open(
        acting_user=agent, account=nurse, justification=REASON, minutes=15, ip=None
    )
    client = Client()
    client.force_login(compliance)
    page = client.get(f"/audit/break-glass/{grant.pk}/review/").content.decode()
    link = re.search(r'<a href="(/audit/\?[^"]+)">What was done', page).group(1)
    report = client.get(html.unescape(link)).content.decode()
    assert f"Break-glass access #{grant.pk} opened for user dorothy Ludwig" in report
    assert f"#{other.pk}" not in report
    listing = client.get("/audit/break-glass/").content.decode()
    assert f'href="{link}">{grant.pk}</a>' in listing


def test_the_agent_ends_it_early_and_then_nothing_more_is_shown(agent_client, agent, provider):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    url = f"/support/break-glass/grant/{grant.pk}/"
    assert "End break-glass access now" in agent_client.get(url).content.decode()
    # Another agent cannot end it: it is not theirs.
    other = make_user(Role.SUPPORT_AGENT, username="agent2")
    other_client = Client()
    other_client.force_login(other)
    other_client.post(f"{url}end/")
    grant.refresh_from_db()
    assert grant.expiry_recorded_at is None
    response = agent_client.post(f"{url}end/", follow=True)
    assert f"Break-glass access #{grant.pk} is ended." in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/support/validate/?account={provider.pk}"
    grant.refresh_from_db()
    assert grant.expiry_recorded_at is not None and grant.expires_at <= timezone.now()
    assert agent_client.get(url)["Location"] == "/support/validate/"
    agent_client.post(f"{url}end/")  # twice: once
    call_command("break_glass_expire")  # and no "expired" after it
    ended = f"Break-glass access #{grant.pk} to user dorothy Ludwig ended early by its agent"
    assert grant_events(grant)[-1] == ended
    assert grant_events(grant).count(ended) == 1
    assert not any("expired" in d for d in grant_events(grant))


def test_deactivating_the_account_ends_its_open_access_at_once(
    agent_client, agent, provider, practice
):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    url = f"/support/break-glass/grant/{grant.pk}/"
    assert agent_client.get(url).status_code == 200
    user_set_active(account=provider, active=False, acting_user=admin, ip="192.0.2.9")
    grant.refresh_from_db()
    assert grant.expiry_recorded_at is not None and not grant.is_open
    closed = (
        f"Break-glass access #{grant.pk} to user dorothy Ludwig ended: the account was deactivated"
    )
    assert grant_events(grant)[-1] == closed
    event = AuditEvent.objects.get(details=closed)
    assert event.actor_id == admin.pk and event.ip == "192.0.2.9"
    # Nothing more is shown or done under it, and the expiry is not recorded again.
    assert agent_client.get(url)["Location"] == "/support/validate/"
    pin = current_pin(provider)
    agent_client.post(f"{url}rotate-pin/")
    assert current_pin(provider) == pin
    call_command("break_glass_expire")
    assert grant_events(grant).count(closed) == 1
    assert not any("expired" in d for d in grant_events(grant))
    # Reactivated, the account is helped only under a new access.
    user_set_active(account=provider, active=True, acting_user=admin, ip=None)
    assert agent_client.get(url)["Location"] == "/support/validate/"


def test_a_deactivated_account_is_never_opened(agent, provider, practice):
    from ehr.policies import can_open_break_glass

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    user_set_active(account=provider, active=False, acting_user=admin, ip=None)
    assert not can_open_break_glass(agent, provider)
    with pytest.raises(PermissionDenied, match="deactivated"):
        break_glass_open(
            acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
        )
    assert not BreakGlassGrant.objects.exists()


def test_an_access_that_missed_the_deactivation_is_refused_all_the_same(
    agent_client, agent, provider
):
    """A grant that committed as the account was deactivated escaped the close: it is over."""
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    type(provider).objects.filter(pk=provider.pk).update(is_active=False)
    url = f"/support/break-glass/grant/{grant.pk}/"
    assert agent_client.get(url)["Location"] == "/support/validate/"
    pin = current_pin(provider)
    agent_client.post(f"{url}rotate-pin/")
    assert current_pin(provider) == pin


def test_only_the_agent_who_opened_it_ends_it(agent, provider):
    from break_glass.services import break_glass_end

    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    other = make_user(Role.SUPPORT_AGENT, username="agent2")
    with pytest.raises(PermissionDenied):
        break_glass_end(grant=grant, acting_user=other, ip=None)
    grant.refresh_from_db()
    assert grant.expiry_recorded_at is None
    assert break_glass_end(grant=grant, acting_user=agent, ip=None) is True


def test_a_review_waits_for_the_reviewer_to_confirm_it_is_them(agent, provider, compliance):
    """A session taken over cannot mark misuse justified: the review is kept and recorded
    once the password (and code) are given."""
    from tests.accounts.test_pending_action import action_id, confirm

    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    client = Client()
    with later(6):
        client.force_login(compliance)
        action = action_id(client.post(f"/audit/break-glass/{grant.pk}/review/", REVIEW))
        grant.refresh_from_db()
        assert grant.reviewed_at is None
        assert confirm(client, compliance, action)["Location"] == "/audit/break-glass/"
    grant.refresh_from_db()
    assert grant.reviewed_by == compliance


def test_a_review_of_access_still_open_is_refused_without_asking_first(agent, provider, compliance):
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
    )
    client = Client()
    client.force_login(compliance)  # not confirmed: an open access is refused all the same
    response = client.post(f"/audit/break-glass/{grant.pk}/review/", REVIEW)
    assert response.status_code == 400
    assert "is still open: review it once it has ended" in response.content.decode()


def test_a_review_sent_as_the_access_ends_is_never_recorded_without_asking(
    agent, provider, compliance, monkeypatch
):
    """Open when the view looked, over when the service did (a request timed for the
    moment of expiry): the view's look must not let it skip the prompt."""
    from break_glass import views

    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=5, ip=None
    )
    real = views.services.break_glass_review

    def as_it_ends(**kwargs):
        with time_machine.travel(grant.expires_at + timedelta(seconds=1), tick=False):
            return real(**kwargs)

    monkeypatch.setattr(views.services, "break_glass_review", as_it_ends)
    client = Client()
    client.force_login(compliance)  # not confirmed
    response = client.post(f"/audit/break-glass/{grant.pk}/review/", REVIEW)
    grant.refresh_from_db()
    assert grant.reviewed_at is None
    assert response.status_code == 400
    assert "is still open: review it once it has ended" in response.content.decode()


@pytest.mark.parametrize("minutes", ["0", "-5", "61", "ten", ""])
def test_minutes_out_of_range_are_refused_in_plain_words(agent_client, provider, minutes):
    from break_glass import conf

    response = agent_client.post(
        f"/support/break-glass/{provider.pk}/", {"justification": REASON, "minutes": minutes}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert (
        f"Enter a whole number of minutes, from 1 to {conf.MAX_MINUTES}." in page
        or "Say for how many minutes the access is needed." in page
    )
    assert "Ensure this value" not in page and not BreakGlassGrant.objects.exists()


def test_an_action_under_access_ended_since_its_page_was_shown_is_refused(
    agent, provider, practice
):
    from break_glass.services import break_glass_identity, break_glass_rotate_pin

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=30, ip=None
    )
    pin = current_pin(provider)
    user_set_active(account=provider, active=False, acting_user=admin, ip=None)
    for action in (break_glass_rotate_pin, break_glass_identity):
        with pytest.raises(PermissionDenied, match=f"#{grant.pk} has ended"):
            action(grant=grant, acting_user=agent, ip=None)
    assert current_pin(provider) == pin
    assert not any("viewed" in d or "replaced" in d for d in grant_events(grant))


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_deactivation_racing_the_opening_or_the_end_of_access_leaves_none_open(practice):
    """Each round: an agent opens or ends access while an admin deactivates the account.

    Neither fails, and no access to a deactivated account stays open: the account's row
    orders the opening, and the grant's row the end, before either writes to the log.
    """
    from break_glass.services import break_glass_end

    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    agent = make_user(Role.SUPPORT_AGENT, username="agent")
    for round_ in range(6):
        account = make_user(Role.NURSE, practice=practice, username=f"nurse{round_}")
        grant = None
        if round_ % 2:
            grant = break_glass_open(
                acting_user=agent, account=account, justification=REASON, minutes=30, ip=None
            )

        def work(who, account=account, grant=grant):
            if who == "admin":
                return user_set_active(account=account, active=False, acting_user=admin, ip=None)
            if grant is not None:
                return break_glass_end(grant=grant, acting_user=agent, ip=None)
            return break_glass_open(
                acting_user=agent, account=account, justification=REASON, minutes=30, ip=None
            )

        _results, errors = run_together(work, ["admin", "agent"])
        assert all(isinstance(error, PermissionDenied) for error in errors), errors
        account.refresh_from_db()
        assert not account.is_active
        assert not [g for g in BreakGlassGrant.objects.filter(account=account) if g.is_open]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_admins_save_that_deactivates_never_deadlocks_with_the_agent(practice):
    """The admin's save writes its rename's event before the deactivation ends the access,
    while the agent ends it: the admin locks the account's row and the grant, the agent
    the grant, each before writing to the log.

    Thirty rounds: with the locks taken after the rename's event, two or so deadlocked.
    """
    from break_glass.services import break_glass_end

    root = make_user(Role.SUPPORT_AGENT, username="root")
    type(root).objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    root.refresh_from_db()
    agent = make_user(Role.SUPPORT_AGENT, username="agent")
    failed = []
    for round_ in range(30):
        account = make_user(Role.NURSE, practice=practice, username=f"nurse{round_}")
        grant = break_glass_open(
            acting_user=agent, account=account, justification=REASON, minutes=30, ip=None
        )

        def work(who, account=account, grant=grant, round_=round_):
            if who == "agent":
                return break_glass_end(grant=grant, acting_user=agent, ip=None)
            return user_admin_update(
                account=account,
                changes={"first_name": f"Renamed {round_}"},
                active=False,
                roles=account.roles,
                acting_user=root,
                ip=None,
            )

        _results, errors = run_together(work, ["admin", "agent"])
        failed += errors
    assert failed == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_agent_validating_a_pin_while_ending_its_access_in_another_tab_never_deadlocks(
    practice,
):
    """The validation takes the agent's row first (its validations go one at a time); the
    end's event names the agent, whose row its foreign key reads: the one must not wait
    for the other. Thirty rounds: with the agent's row locked FOR UPDATE, some deadlocked.
    """
    from break_glass.services import break_glass_end
    from support_pin.services import support_pin_validate

    agent = make_user(Role.SUPPORT_AGENT, username="agent")
    caller = make_user(Role.NURSE, practice=practice, username="caller")
    failed = []
    for round_ in range(30):
        account = make_user(Role.NURSE, practice=practice, username=f"nurse{round_}")
        grant = break_glass_open(
            acting_user=agent, account=account, justification=REASON, minutes=30, ip=None
        )

        def work(what, grant=grant):
            if what == "end":
                return break_glass_end(grant=grant, acting_user=agent, ip=None)
            return support_pin_validate(
                acting_user=agent, account=caller, pin=current_pin(caller), ip=None
            )

        _results, errors = run_together(work, ["end", "validate"])
        failed += errors
    assert failed == []


@pytest.mark.postgres_only
def test_using_or_reviewing_access_locks_the_grants_row_and_never_the_accounts(
    agent, provider, compliance
):
    """The account's row is locked only by who changes it (FOR NO KEY UPDATE, at
    deactivation and at opening); a lock of it from the grant's join would wait on the
    events that name the account, and deadlock with them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from break_glass.services import break_glass_identity, break_glass_rotate_pin

    grant = break_glass_open(
        acting_user=agent, account=provider, justification=REASON, minutes=15, ip=None
    )
    with CaptureQueriesContext(connection) as queries:
        break_glass_identity(grant=grant, acting_user=agent, ip=None)
        break_glass_rotate_pin(grant=grant, acting_user=agent, ip=None)
    with later(16), CaptureQueriesContext(connection) as reviewed:
        break_glass_review(grant=grant, acting_user=compliance, ip=None, **REVIEW)
    sent = [q["sql"] or "" for q in [*queries.captured_queries, *reviewed.captured_queries]]
    locks = [sql for sql in sent if " FOR " in sql and '"break_glass_breakglassgrant"' in sql]
    joined = [sql for sql in locks if '"accounts_user"' in sql]
    assert len(joined) == 3  # identity, rotation and review read the account with the grant
    assert all(sql.endswith('FOR UPDATE OF "break_glass_breakglassgrant"') for sql in joined)
