import itertools
import logging
import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.mfa import mfa_backup_codes_replace
from accounts.roles import Role
from audit.models import AuditEvent
from support_pin import services
from support_pin.models import AccountPins
from support_pin.views import CONSOLE_OUTCOME, SHOW_WITHIN
from tests.factories import confirm_identity, make_user
from tests.support_pin.helpers import ARABIC_INDIC, FULL_WIDTH, current_pin, mentions, wrong_pin

VIEW = "/account/pins/support/"
GENERATE = "/account/pins/support/generate/"
APP = "/account/pins/app/"
CONSOLE = "/support/validate/"
VALIDATE = "/support/validate/pin/"


@pytest.fixture
def agent_client(agent):
    client = Client()
    client.force_login(agent)
    return client


def test_account_pages_show_both_pins_masked_with_the_seed_texts(
    unusual_pins, provider_client, provider
):
    page = provider_client.get("/account/settings/").content.decode()
    for text in (
        "App Unlock PIN",
        "View/Edit",
        "4-digit numeric PIN for unlocking the mobile EHR app from inactivity.",
        "This is not your Support PIN.",
        "Support PIN",
        "Generate New PIN",
        "4-digit numeric PIN for account identity verification when you contact customer support.",
        "Enter Your Password",
        "To view your PIN codes, please enter your password.",
        "Confirm",
        "••••",
    ):
        assert text in page, text
    assert not mentions(page, current_pin(provider))
    assert not mentions(page, current_pin(provider, "app_pin"))


def test_staff_page_has_the_same_pin_rows(unusual_pins, nurse_client, nurse):
    page = nurse_client.get("/account/staff/").content.decode()
    assert "Generate New PIN" in page and "View/Edit" in page
    assert not mentions(page, current_pin(nurse))


def test_the_prompt_works_without_javascript(provider_client, provider, password):
    prompt = provider_client.get(VIEW)
    assert "Enter Your Password" in prompt.content.decode()
    response = provider_client.post(VIEW, {"password": password}, follow=True)
    assert response.status_code == 200
    assert (
        f'<p class="pin" id="pin-value" aria-label="Support PIN">{current_pin(provider)}</p>'
        in (response.content.decode())
    )
    assert "no-store" in response["Cache-Control"]


def test_the_prompt_page_asks_enrolled_accounts_for_their_code_too(agent_client, agent, password):
    """The page (no script, or after a refusal in the dialog) has every field the form needs."""
    page = agent_client.get(VIEW).content.decode()
    assert 'name="password"' in page and 'name="code"' in page and 'name="method"' in page
    wrong = agent_client.post(VIEW, {"password": "not-mine", "method": "app", "code": "000000"})
    assert 'name="code"' in wrong.content.decode()
    code = mfa_backup_codes_replace(acting_user=agent, ip=None)[0]
    response = agent_client.post(VIEW, {"password": password, "method": "backup", "code": code})
    assert response.status_code == 302 and response["Location"] == "/account/pins/shown/"


def test_a_wrong_password_shows_an_error_and_no_pin(
    unusual_pins, provider_client, provider, password
):
    response = provider_client.post(VIEW, {"password": "not-it"})
    assert response.status_code == 400
    assert "The password is not correct." in response.content.decode()
    assert not mentions(response.content.decode(), current_pin(provider))
    for _ in range(4):
        response = provider_client.post(VIEW, {"password": "not-it"})
    # The fifth locks the prompts and signing in: they are counted as sign-in failures.
    assert response.status_code == 429
    assert not mentions(response.content.decode(), current_pin(provider))
    response = provider_client.post(VIEW, {"password": password})  # even the right one
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.content.decode()
    assert not mentions(response.content.decode(), current_pin(provider))


def test_generate_is_post_only_with_csrf(provider, provider_client):
    before = current_pin(provider)
    assert provider_client.get(GENERATE).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(provider)
    assert strict.post(GENERATE).status_code == 403
    assert current_pin(provider) == before
    response = provider_client.post(GENERATE)  # signing in is not a fresh confirmation
    assert response["Location"].startswith("/account/confirm/")
    assert current_pin(provider) == before
    confirm_identity(provider_client)
    response = provider_client.post(GENERATE)
    assert response.status_code == 302
    assert current_pin(provider) != before
    assert (
        "A new Support PIN was generated"
        in provider_client.get("/account/settings/").content.decode()
    )


def test_app_pin_view_and_edit(provider_client, provider, password):
    response = provider_client.post(APP, {"password": password}, follow=True)
    assert current_pin(provider, "app_pin") in response.content.decode()
    assert "It is not your Support PIN." in response.content.decode()
    response = provider_client.post(
        APP, {"password": password, "new_app_pin": " 2468 "}, follow=True
    )
    assert "Your App Unlock PIN was changed." in response.content.decode()
    assert current_pin(provider, "app_pin") == "2468"
    for bad in (ARABIC_INDIC, FULL_WIDTH, "12345", "12a4"):
        response = provider_client.post(APP, {"password": password, "new_app_pin": bad})
        assert response.status_code == 400
        assert "Enter exactly 4 digits (0-9)." in response.content.decode()
    assert current_pin(provider, "app_pin") == "2468"


@pytest.mark.parametrize(
    ("trivial", "reason"),
    [
        ("0000", "it repeats one digit"),
        ("7777", "it repeats one digit"),
        ("1234", "its digits count up in a row"),
        ("7890", "its digits count up in a row"),
        ("4321", "its digits count down in a row"),
        ("3210", "its digits count down in a row"),
    ],
)
def test_a_trivial_app_unlock_pin_is_refused_with_the_reason(
    provider_client, provider, password, trivial, reason
):
    before = current_pin(provider, "app_pin")
    events = AuditEvent.objects.count()
    response = provider_client.post(APP, {"password": password, "new_app_pin": trivial})
    assert response.status_code == 400
    page = response.content.decode()
    assert f"This PIN is too easy to guess: {reason}. Choose another 4 digits." in page
    assert current_pin(provider, "app_pin") == before
    assert AuditEvent.objects.count() == events  # nothing changed, nothing shown


def test_pin_pages_need_sign_in(client, db):
    for url in (VIEW, APP):
        assert client.get(url).status_code == 302
    assert client.post(GENERATE).status_code == 302


# Support console


def test_console_is_for_support_agents_only(client, provider_client, agent_client):
    assert provider_client.get(CONSOLE).status_code == 403
    assert agent_client.get(CONSOLE).status_code == 200
    client.logout()
    assert Client().get(CONSOLE).status_code == 302


@pytest.mark.parametrize("query", ["dorothy", "DOROTHY@example.org", "496094", "dor lud", "Ludwig"])
def test_console_finds_accounts_by_username_email_doctor_id_or_name(agent_client, provider, query):
    response = agent_client.get(CONSOLE, {"q": query})
    page = response.content.decode()
    assert "?q=" in page and f"account={provider.pk}" in page
    assert "dorothy Ludwig" in page and "Ludwig Family Medicine" in page
    assert provider.email not in page  # no contact details, no PHI


def test_console_search_that_matches_nothing(agent_client, provider):
    assert "No account matches." in agent_client.get(CONSOLE, {"q": "zz-nobody"}).content.decode()
    assert "No account matches." in agent_client.get(CONSOLE, {"q": "9"}).content.decode()
    # One letter names nobody, and the page says what a search matches.
    assert "by the first two letters or more of each word" in (
        agent_client.get(CONSOLE, {"q": "d"}).content.decode()
    )


def test_console_validation_flow(unusual_pins, agent_client, provider):
    page = agent_client.get(CONSOLE, {"account": provider.pk}).content.decode()
    assert "Support PIN the caller gives" in page
    wrong = wrong_pin(provider)
    response = agent_client.post(VALIDATE, {"account": provider.pk, "pin": wrong}, follow=True)
    assert "The Support PIN did not match." in response.content.decode()
    assert not mentions(response.content.decode().split("</h2>", 1)[1], wrong)
    pin = current_pin(provider)
    response = agent_client.post(VALIDATE, {"account": provider.pk, "pin": f" {pin} "})
    # The answer is the console's own address: reloading it sends no PIN again.
    assert response.status_code == 302
    assert response["Location"] == f"{CONSOLE}?account={provider.pk}"
    events = AuditEvent.objects.count()
    page = agent_client.get(response["Location"]).content.decode()
    assert "The Support PIN matched." in page
    assert not mentions(page, pin) and not mentions(page, current_pin(provider))
    reloaded = agent_client.get(response["Location"]).content.decode()
    assert "The Support PIN matched." not in reloaded  # shown once
    assert "did not match" not in reloaded
    assert AuditEvent.objects.count() == events
    assert AccountPins.objects.get(user=provider).failed_validations == 0


def test_after_validating_from_a_search_the_console_keeps_the_search(agent_client, provider, nurse):
    response = agent_client.post(
        f"{VALIDATE}?q=dorothy", {"account": provider.pk, "pin": wrong_pin(provider)}
    )
    assert response["Location"] == f"{CONSOLE}?q=dorothy&account={provider.pk}"
    # Another account's console (another tab) does not show it, nor use it up.
    other = agent_client.get(CONSOLE, {"account": nurse.pk}).content.decode()
    assert "did not match" not in other and "matched" not in other
    page = agent_client.get(response["Location"]).content.decode()
    assert "The Support PIN did not match." in page and "dorothy" in page


def test_two_tabs_validating_two_accounts_each_show_their_own(agent_client, provider, nurse):
    first = agent_client.post(VALIDATE, {"account": provider.pk, "pin": wrong_pin(provider)})
    second = agent_client.post(VALIDATE, {"account": nurse.pk, "pin": current_pin(nurse)})
    assert "The Support PIN matched." in agent_client.get(second["Location"]).content.decode()
    assert "did not match." in agent_client.get(first["Location"]).content.decode()


def test_an_outcome_whose_page_never_came_is_not_shown_later(agent_client, provider, nurse):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        agent_client.post(VALIDATE, {"account": provider.pk, "pin": wrong_pin(provider)})
        clock.shift(SHOW_WITHIN + 1)
        page = agent_client.get(CONSOLE, {"account": provider.pk}).content.decode()
        assert "did not match" not in page
        # Nor kept: the next validation leaves only its own in the session.
        agent_client.post(VALIDATE, {"account": provider.pk, "pin": wrong_pin(provider)})
        clock.shift(SHOW_WITHIN + 1)
        agent_client.post(VALIDATE, {"account": nurse.pk, "pin": wrong_pin(nurse)})
    assert list(agent_client.session[CONSOLE_OUTCOME]) == [str(nurse.pk)]


def test_console_rejects_malformed_pins_without_counting_them(agent_client, provider):
    for bad in (ARABIC_INDIC, FULL_WIDTH, "12345", "abcd", ""):
        response = agent_client.post(VALIDATE, {"account": provider.pk, "pin": bad})
        assert response.status_code == 400
    assert AccountPins.objects.get(user=provider).failed_validations == 0


# Random per response, letters and digits: one could contain "12a4" by chance.
CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.mark.parametrize(
    "typed",
    ["12a4", "98765", "\u0663\u0664\u0665\u0666", "<b>7391</b>"],  # 3456 in Arabic-Indic digits
)
def test_a_malformed_console_pin_is_not_echoed(agent_client, provider, typed):
    """What an agent typed may be most of the caller's PIN; the page never repeats it."""
    response = agent_client.post(
        reverse("support_console_validate"), {"account": provider.pk, "pin": typed}
    )
    assert response.status_code == 400
    body = CSRF_VALUE.sub("", response.content.decode())
    assert "Enter exactly 4 digits (0-9)." in body
    assert typed not in body and escape(typed) not in body


def test_console_shows_the_lock(agent_client, provider):
    for _ in range(5):
        agent_client.post(VALIDATE, {"account": provider.pk, "pin": wrong_pin(provider)})
    page = agent_client.get(CONSOLE, {"account": provider.pk}).content.decode()
    assert "Validation is locked for this account until" in page
    assert ">Validate</button>" not in page  # nothing to type: it would not be checked
    response = agent_client.post(
        VALIDATE, {"account": provider.pk, "pin": current_pin(provider)}, follow=True
    )
    assert "Validation is locked; the PIN was not checked." in response.content.decode()


def test_console_unknown_or_malformed_account(agent_client):
    assert agent_client.post(VALIDATE, {"account": 999999, "pin": "1234"}).status_code == 400
    assert agent_client.get(CONSOLE, {"account": "../../1"}).status_code == 200
    assert agent_client.post(VALIDATE, {"account": "x", "pin": "1234"}).status_code == 400


def test_the_pin_never_reaches_logs_pages_admin_or_audit(
    unusual_pins, client, provider, agent, password, caplog, django_user_model
):
    services.support_pin_generate(account=provider, acting_user=provider, ip=None)
    caplog.set_level(logging.DEBUG)
    admin = make_user(Role.NURSE, practice=provider.practice, username="root", mfa=True)
    django_user_model.objects.filter(pk=admin.pk).update(is_staff=True, is_superuser=True)
    pins_seen = set()

    client.force_login(provider)
    pins_seen.add(current_pin(provider))
    client.post(VIEW, {"password": "wrong"})
    shown = client.post(VIEW, {"password": password}, follow=True)
    assert current_pin(provider) in shown.content.decode()  # the one response that carries it
    settings_page = client.get("/account/settings/").content.decode()
    audit_page = client.get("/audit/").content.decode()

    client.force_login(agent)
    pins_seen.add(current_pin(provider))
    client.post(VALIDATE, {"account": provider.pk, "pin": current_pin(provider)})
    pins_seen.add(current_pin(provider))
    console = client.get(CONSOLE, {"account": provider.pk}).content.decode()

    client.force_login(admin)
    pins_row = AccountPins.objects.get(user=provider)
    responses = [
        client.get("/admin/support_pin/accountpins/"),
        client.get(f"/admin/support_pin/accountpins/{pins_row.pk}/change/"),
        client.get("/admin/audit/auditevent/"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    admin_pages = [r.content.decode() for r in responses]
    for page in [settings_page, audit_page, console, *admin_pages]:
        for pin in pins_seen:
            assert not mentions(page, pin)
    assert pins_row.support_pin not in admin_pages[1]  # not even the ciphertext
    # The messages, not caplog.text: its timestamps are digits of their own.
    log = "\n".join(record.getMessage() for record in caplog.records)
    for pin in pins_seen:
        assert not mentions(log, pin)
        for event in AuditEvent.objects.values(
            "details", "data", "actor_label", "account_label", "user_agent"
        ):
            assert pin not in " ".join(str(v) for v in event.values())


@pytest.mark.sqlite_only
def test_the_database_holds_no_pin_in_clear(provider, agent, password, monkeypatch, client):
    """Dump the whole SQLite database as SQL text and look for the PINs as values."""
    import re

    from django.db import connection

    draws = itertools.cycle([7391, 5826, 3047, 8152])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
    services.support_pin_generate(account=provider, acting_user=provider, ip=None)
    services.app_pin_change(acting_user=provider, new_app_pin="5826", ip=None)
    client.force_login(provider)
    client.post(VIEW, {"password": password})
    known = {current_pin(provider), current_pin(provider, "app_pin")}
    assert known == {"7391", "5826"}
    dump = "\n".join(connection.connection.iterdump())
    assert "support_pin_accountpins" in dump
    for pin in known:
        # As a value on its own: a quoted string, a number, or a word in a sentence.
        assert not re.search(rf"(?<![0-9A-Za-z_\-]){pin}(?![0-9A-Za-z_\-])", dump), pin
