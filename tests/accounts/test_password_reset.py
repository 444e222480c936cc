"""Forgot password, end to end: the request, the mail through the outbox and a real SMTP
server, the link, the new password; and what someone without the mailbox cannot do or learn."""

import re
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import password_reset
from accounts.models import PasswordResetRequest, UserSession
from accounts.roles import Role
from accounts.services import user_set_active
from accounts.tokens import invitation_token_generator
from audit import kinds
from audit.models import AuditEvent
from outbox.models import OutboxItem
from outbox.worker import deliver_pending
from tests.factories import make_user, totp_code

NEW_PASSWORD = "Lantern-Orchard-4471"
LINK = re.compile(r"http://testserver(/accounts/password-reset/[^/\s]+/[^/\s]+/)")
INVALID = "This link is not valid any more"


def ask_for_link(email: str, client: Client | None = None, **extra):
    return (client or Client()).post("/accounts/password-reset/", {"email": email}, **extra)


def delivered(smtp_server) -> list:
    """Run the outbox worker until it is empty; return what the SMTP server received."""
    while deliver_pending():
        pass
    return smtp_server.messages


def body(message) -> str:
    return message.get_payload(decode=True).decode()


def link_in(message) -> str:
    return LINK.search(body(message)).group(1)


def open_link(link: str, client: Client | None = None):
    client = client or Client()
    return client, client.get(link, follow=True)


def choose(client: Client, page, password: str = NEW_PASSWORD):
    """Post the new password to the form the link led to."""
    form_url = page.redirect_chain[-1][0]
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def reset_link(smtp_server, account) -> str:
    assert ask_for_link(account.email).status_code == 302
    return link_in(delivered(smtp_server)[-1])


def sign_in(username: str, password: str) -> tuple[Client, object]:
    client = Client()
    return client, client.post("/accounts/login/", {"username": username, "password": password})


def recorded(kind) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind.code).order_by("id"))


def test_the_sign_in_page_offers_the_reset(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password-reset/"' in page
    assert "Forgot your password?" in page


def test_a_link_arrives_through_the_outbox_and_sets_the_password_once(
    smtp_server, provider, password
):
    response = ask_for_link(provider.email)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert smtp_server.messages == []  # it waits in the outbox, committed with the request
    assert OutboxItem.objects.count() == 1
    (message,) = delivered(smtp_server)
    assert message["To"] == provider.email
    assert message["Subject"] == "Reset your EHR password"
    text = body(message)
    assert "dorothy" in text and "within 60 minutes" in text and "works once" in text
    link = link_in(message)

    browser, page = open_link(link)
    assert page.redirect_chain[-1][0].endswith("/set-password/")  # the token left the address
    assert "Choose a new password" in page.content.decode()
    response = choose(browser, page)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/complete/"
    assert "Your password is changed" in browser.get(response["Location"]).content.decode()

    assert sign_in("dorothy", password)[1].status_code == 200  # the old one is gone
    assert sign_in("dorothy", NEW_PASSWORD)[1].status_code == 302
    # Once: the link, in this browser or any other, no longer opens.
    for again in (open_link(link)[1], open_link(link, browser)[1]):
        assert INVALID in again.content.decode()
    assert [e.details for e in recorded(kinds.PASSWORD_RESET_REQUESTED)] == [
        "Password reset link emailed to user dorothy Ludwig"
    ]
    (reset,) = recorded(kinds.PASSWORD_RESET)
    assert reset.details == "Password reset from an emailed link for user dorothy Ludwig"
    assert reset.actor_id == reset.account_id == provider.pk
    refused = recorded(kinds.PASSWORD_LINK_REFUSED)
    assert len(refused) == 2
    assert refused[0].details == (
        "Password reset link refused for user dorothy Ludwig: not valid, already used or expired"
    )


def test_the_link_ends_every_session_and_signs_nobody_in(smtp_server, provider, password):
    desk, _ = sign_in("dorothy", password)
    laptop, _ = sign_in("dorothy", password)
    assert desk.get("/account/settings/").status_code == 200
    browser, page = open_link(reset_link(smtp_server, provider))
    choose(browser, page)
    for client in (desk, laptop):
        response = client.get("/account/settings/", follow=True)
        assert response.redirect_chain[0][0].startswith("/accounts/login/")
        assert "signed out because the account&#x27;s password was changed" in (
            response.content.decode()
        )
    assert set(UserSession.objects.filter(user=provider).values_list("end_reason", flat=True)) == {
        UserSession.EndReason.PASSWORD_CHANGED
    }
    # The browser that used the link is not signed in.
    assert "_auth_user_id" not in browser.session
    assert browser.get("/account/settings/")["Location"].startswith("/accounts/login/")
    (reset,) = recorded(kinds.PASSWORD_RESET)
    assert reset.data == {"sessions_ended": 2}
    assert not recorded(kinds.SIGNED_IN)[2:]  # the two sign-ins above, and no third


def test_two_factor_is_still_asked_at_the_next_sign_in(smtp_server, agent):
    browser, page = open_link(reset_link(smtp_server, agent))
    choose(browser, page)
    client, response = sign_in(agent.username, NEW_PASSWORD)
    assert response["Location"] == "/accounts/login/mfa/"
    assert client.get("/support/validate/")["Location"].startswith("/accounts/login/")
    response = client.post(
        "/accounts/login/mfa/", {"method": "app", "code": totp_code(agent)}, follow=True
    )
    assert response.status_code == 200
    assert client.get("/support/validate/").status_code == 200


def test_an_expired_link_is_refused(smtp_server, provider, password):
    link = reset_link(smtp_server, provider)
    with time_machine.travel(timezone.now() + timedelta(minutes=59)):
        assert "Set password" in open_link(link)[1].content.decode()  # within the hour
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        browser, page = open_link(link)
        posted = browser.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert page.status_code == posted.status_code == 200
    assert INVALID in page.content.decode() and INVALID in posted.content.decode()
    assert "Ask for a new link" in page.content.decode()
    assert sign_in("dorothy", password)[1].status_code == 302  # unchanged
    assert len(recorded(kinds.PASSWORD_LINK_REFUSED)) == 2  # the page, then the post
    assert not recorded(kinds.PASSWORD_RESET)


def test_a_link_opened_before_the_password_was_set_elsewhere_no_longer_sets_it(
    smtp_server, provider
):
    link = reset_link(smtp_server, provider)
    first, first_page = open_link(link)  # the token now waits in this browser's session
    second, second_page = open_link(link)
    assert choose(second, second_page).status_code == 302
    response = choose(first, first_page, password="Another-Pass-phrase-88")
    assert response.status_code == 200
    assert INVALID in response.content.decode()
    assert sign_in("dorothy", NEW_PASSWORD)[1].status_code == 302


def test_an_address_no_account_uses_gets_the_same_answer_and_no_mail(
    smtp_server, provider, practice
):
    invited = make_user(Role.NURSE, practice=practice, username="newhire")
    invited.set_unusable_password()  # an invitation not yet used: no password to reset
    invited.save()
    retired = make_user(Role.NURSE, practice=practice, username="retired")
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    user_set_active(account=retired, active=False, acting_user=admin, ip=None)

    def answer(email):
        client = Client()
        response = ask_for_link(email, client)
        page = client.get(response["Location"])
        return response.status_code, response["Location"], page.status_code, page.content

    known = answer(provider.email)
    for address in ("nobody@example.org", invited.email, retired.email):
        assert answer(address) == known, address
    assert answer(provider.email.upper()) == known  # an address matches in any case
    messages = delivered(smtp_server)
    assert [m["To"] for m in messages] == [provider.email, provider.email]
    unknown = recorded(kinds.PASSWORD_RESET_REFUSED_UNKNOWN)
    assert len(unknown) == 3
    for event in unknown:
        assert event.account_id is None and event.actor_id is None
        assert event.details == (
            "Password reset refused: no active account with a password uses the email address given"
        )
    # The address is kept only as a keyed digest, the same one the limit counts.
    assert unknown[0].data == {"address": password_reset.address_digests("nobody@example.org")[0]}
    assert unknown[1].data["address"] == password_reset.address_digests(invited.email)[0]


def test_the_typed_address_and_the_token_stay_out_of_the_log(smtp_server, provider):
    ask_for_link("someone.else@example.net")
    link = reset_link(smtp_server, provider)
    token = link.rstrip("/").rsplit("/", 1)[1]
    open_link(link.replace(token, token[:-1] + ("0" if token[-1] != "0" else "1")))
    browser, page = open_link(link)
    choose(browser, page)
    for event in AuditEvent.objects.all():
        text = f"{event.details} {event.data} {event.account_label}"
        assert "someone.else" not in text and "example.net" not in text
        assert provider.email not in text
        assert token not in text and token[:10] not in text


def test_an_unknown_address_does_the_same_work_as_a_known_one(provider, monkeypatch):
    made, composed = [], []
    original_make_token = default_token_generator.make_token
    monkeypatch.setattr(
        default_token_generator,
        "make_token",
        lambda user: made.append(user.pk) or original_make_token(user),
    )
    from accounts import forms

    original_render = forms.render_to_string
    monkeypatch.setattr(
        forms,
        "render_to_string",
        lambda name, context: composed.append(name) or original_render(name, context),
    )
    queued = []
    original_enqueue = forms.mail_enqueue
    monkeypatch.setattr(
        forms,
        "mail_enqueue",
        lambda **mail: queued.append(mail["recipients"]) or original_enqueue(**mail),
    )
    ask_for_link(provider.email)
    ask_for_link("nobody@example.org")
    assert made == [provider.pk, None]  # a token for the account, and for a stand-in
    assert queued == [[provider.email], ["nobody@example.org"]]  # the second taken back
    assert (
        composed
        == [
            "registration/password_reset_subject.txt",
            "registration/password_reset_email.txt",
        ]
        * 2
    )
    assert OutboxItem.objects.count() == 1  # only the real one is queued


# Someone with a link that is not theirs


def test_a_token_opens_only_the_account_it_was_made_for(smtp_server, provider, nurse, password):
    link = reset_link(smtp_server, provider)
    token = link.rstrip("/").rsplit("/", 1)[1]
    nurse_uid = urlsafe_base64_encode(force_bytes(nurse.pk))
    page = open_link(f"/accounts/password-reset/{nurse_uid}/{token}/")[1]
    assert INVALID in page.content.decode()
    assert sign_in("dori", password)[1].status_code == 302
    (refused,) = recorded(kinds.PASSWORD_LINK_REFUSED)
    assert refused.account_id == nurse.pk and refused.actor_id is None


def test_a_link_dies_with_the_account_deactivated(smtp_server, provider, practice, password):
    link = reset_link(smtp_server, provider)
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice)
    user_set_active(account=provider, active=False, acting_user=admin, ip=None)
    assert INVALID in open_link(link)[1].content.decode()
    (refused,) = recorded(kinds.PASSWORD_LINK_REFUSED_UNKNOWN)
    assert refused.account_id is None
    provider.refresh_from_db()
    assert provider.check_password(password)


@pytest.mark.parametrize("uid", ["MTIzNDU2Nzg5", "not-base64!", "Jw", "LTE"])
def test_a_tampered_uid_gets_the_same_page_and_names_nobody(smtp_server, provider, uid):
    link = reset_link(smtp_server, provider)
    token = link.rstrip("/").rsplit("/", 1)[1]
    tampered = open_link(f"/accounts/password-reset/{uid}/{token}/")[1]
    wrong_token = open_link(link.replace(token, "c1xx1-" + "0" * 32))[1]
    assert tampered.status_code == wrong_token.status_code == 200
    assert INVALID in tampered.content.decode()
    assert tampered.content == wrong_token.content
    (unknown,) = recorded(kinds.PASSWORD_LINK_REFUSED_UNKNOWN)
    assert unknown.details == "Password reset link refused: it names no active account"
    assert unknown.account_id is None


def test_the_form_cannot_be_reached_without_a_valid_token_in_the_session(smtp_server, provider):
    reset_link(smtp_server, provider)
    uid = urlsafe_base64_encode(force_bytes(provider.pk))
    client = Client()
    response = client.post(
        f"/accounts/password-reset/{uid}/set-password/",
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200 and INVALID in response.content.decode()
    assert sign_in("dorothy", NEW_PASSWORD)[1].status_code == 200


def test_reset_and_invitation_tokens_do_not_open_each_others_links(provider):
    uid = urlsafe_base64_encode(force_bytes(provider.pk))
    reset_token = default_token_generator.make_token(provider)
    invitation_token = invitation_token_generator.make_token(provider)
    assert INVALID in open_link(f"/accounts/set-password/{uid}/{reset_token}/")[1].content.decode()
    page = open_link(f"/accounts/password-reset/{uid}/{invitation_token}/")[1]
    assert INVALID in page.content.decode()
    assert [e.data for e in recorded(kinds.PASSWORD_LINK_REFUSED)] == [{}, {}]
    assert [e.details.split(" link")[0] for e in recorded(kinds.PASSWORD_LINK_REFUSED)] == [
        "Account invitation",
        "Password reset",
    ]


def test_an_invitation_outlives_an_hour_but_not_its_days(provider, settings):
    uid = urlsafe_base64_encode(force_bytes(provider.pk))
    link = f"/accounts/set-password/{uid}/{invitation_token_generator.make_token(provider)}/"
    with time_machine.travel(timezone.now() + timedelta(hours=5)):
        page = open_link(link)[1]
        assert "Choose your password" in page.content.decode()
        assert INVALID not in page.content.decode()
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.INVITATION_TIMEOUT + 60)):
        assert INVALID in open_link(link)[1].content.decode()


def test_the_new_password_must_pass_the_password_rules(smtp_server, provider):
    browser, page = open_link(reset_link(smtp_server, provider))
    for weak in ("short", "123456789012", "password1234", "dorothy@example.org"):
        response = choose(browser, page, password=weak)
        assert response.status_code == 200, weak
        assert 'aria-invalid="true"' in response.content.decode()
    assert not recorded(kinds.PASSWORD_RESET)
    assert choose(browser, page).status_code == 302


# Limits


def test_one_address_gets_three_links_an_hour_whether_or_not_an_account_uses_it(
    smtp_server, provider
):
    for address in (provider.email, "nobody@example.org"):
        for n in range(3):
            client = Client(REMOTE_ADDR=f"198.51.100.{n + 1}")  # from different clients
            assert ask_for_link(address, client).status_code == 302
        refused = ask_for_link(address, Client(REMOTE_ADDR="198.51.100.9"))
        assert refused.status_code == 429
        assert "Too many password reset requests. Try again in 60 minutes." in (
            refused.content.decode()
        )
        assert refused["Retry-After"] == "3600"
    assert len(delivered(smtp_server)) == 3
    events = recorded(kinds.PASSWORD_RESET_REFUSED_LIMIT)
    assert [e.details for e in events] == [
        "Password reset refused: too many requests for one email address"
    ] * 2
    assert events[0].data == {"address": password_reset.address_digests(provider.email)[0]}
    # Asking refused is no sign-in failure: nothing counts towards a sign-in lock.
    assert not AccessAttempt.objects.exists()
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        assert ask_for_link(provider.email).status_code == 302
        assert PasswordResetRequest.objects.count() == 1  # the old rows went


def test_one_client_gets_twenty_requests_an_hour(db, settings):
    for n in range(settings.PASSWORD_RESET_LIMIT_PER_CLIENT):
        assert ask_for_link(f"person{n}@example.org").status_code == 302
    response = ask_for_link("one.more@example.org")
    assert response.status_code == 429
    (event,) = recorded(kinds.PASSWORD_RESET_REFUSED_LIMIT)
    assert event.details == "Password reset refused: too many requests from one client"
    assert event.ip == "127.0.0.1"
    assert ask_for_link("one.more@example.org", REMOTE_ADDR="192.0.2.7").status_code == 302


def test_an_ipv6_client_counts_by_its_64(db, settings):
    settings.PASSWORD_RESET_LIMIT_PER_CLIENT = 2
    assert ask_for_link("a@example.org", REMOTE_ADDR="2001:db8:1:2::1").status_code == 302
    assert ask_for_link("b@example.org", REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 302
    assert ask_for_link("c@example.org", REMOTE_ADDR="2001:db8:1:2::abcd").status_code == 429
    assert ask_for_link("c@example.org", REMOTE_ADDR="2001:db8:1:3::1").status_code == 302
    assert password_reset.client_network("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert password_reset.client_network("203.0.113.4") == "203.0.113.4"
    assert password_reset.client_network(None) == ""


def test_the_throttled_answer_does_not_tell_known_from_unknown(provider):
    answers = []
    for address in (provider.email, "nobody@example.org"):
        for _ in range(3):
            ask_for_link(address)
        refused = ask_for_link(address, REMOTE_ADDR="192.0.2.50")
        answers.append((refused.status_code, refused["Retry-After"]))
    assert answers[0] == answers[1]


def test_the_address_limit_counts_any_case_and_key(provider, settings):
    for email in (provider.email, provider.email.upper(), f" {provider.email.title()} "):
        assert ask_for_link(email).status_code == 302
    assert ask_for_link(provider.email).status_code == 429


# Sign-in locks


def test_a_reset_does_not_lift_a_sign_in_lock(smtp_server, provider, password, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("dorothy", "wrong-password-guess")
    assert sign_in("dorothy", password)[1].status_code == 429  # locked
    browser, page = open_link(reset_link(smtp_server, provider))
    complete = browser.get(choose(browser, page)["Location"]).content.decode()
    assert "the lock still ends 30 minutes after the last of them" in " ".join(complete.split())
    assert sign_in("dorothy", NEW_PASSWORD)[1].status_code == 429  # still locked
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert sign_in("dorothy", NEW_PASSWORD)[1].status_code == 302


def test_mailed_links_are_built_on_the_site_url_not_on_the_host_asked_with(
    smtp_server, provider, practice, settings
):
    """A request sent with `Host: 127.0.0.1:31337` (allowed by name, any port) would have
    mailed the owner a link handing its token to whoever listens on that port."""
    from tests.factories import confirm_identity

    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    settings.SITE_URL = "https://ehr.example.org"
    assert ask_for_link(provider.email, HTTP_HOST="127.0.0.1:31337").status_code == 302
    text = body(delivered(smtp_server)[-1])
    assert "https://ehr.example.org/accounts/password-reset/" in text
    assert "31337" not in text and "127.0.0.1" not in text
    # A staff invitation, likewise.
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="pam")
    client = Client()
    client.force_login(admin)
    confirm_identity(client)
    response = client.post(
        "/practice/staff/new/",
        {
            "username": "sng",
            "email": "sara@ludwig-family.example",
            "first_name": "Sara",
            "last_name": "Ng",
            "role": "scheduler",
        },
        HTTP_HOST="127.0.0.1:31337",
    )
    assert response.status_code == 302
    invitation = body(delivered(smtp_server)[-1])
    assert "https://ehr.example.org/accounts/set-password/" in invitation
    assert "31337" not in invitation
    # Without SITE_URL (development) a link takes the request's own address: every other
    # test here reads its link as http://testserver/... (LINK).
