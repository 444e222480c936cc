"""A sign-in lock is explained in one wording wherever it is met: what is locked, until
when, and who can lift it sooner (accounts/lockout.py, `lock_message`)."""

import html
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from django.test import Client

from accounts.roles import Role
from tests.factories import make_user

PIN_PROMPT = "/account/pins/support/"
LOCKED = "Too many wrong passwords: signing in and every password prompt of this account"


def page(response) -> str:
    return html.unescape(response.content.decode())


def lock_at_the_prompt(client) -> str:
    """Five wrong passwords at the PIN prompt; return what the fifth answer says."""
    for n in range(5):
        # (a code too, for accounts with a second factor: the password is checked first)
        data = {"password": f"wrong-{n}", "method": "app", "code": "000000"}
        response = client.post(PIN_PROMPT, data)
    assert response.status_code == 429
    return page(response)


def test_the_prompt_says_until_when_and_names_the_practice_admin(provider_client, provider):
    moment = datetime(2026, 3, 18, 21, 6, tzinfo=ZoneInfo("UTC"))
    with time_machine.travel(moment, tick=False):
        text = lock_at_the_prompt(provider_client)
    until = (moment + timedelta(minutes=30)).astimezone(ZoneInfo(provider.time_zone))
    expected = (
        f"{LOCKED} are locked until {until:%I:%M %p %Z} (30 minutes after the last wrong "
        "password). A practice administrator of Ludwig Family Medicine can unlock it sooner "
        "under Account > Practice Staff."
    )
    assert expected in text
    assert "Back to sign in" not in text
    with time_machine.travel(moment + timedelta(minutes=1), tick=False):
        # Every page with a prompt says the same before anything is typed.
        for url in ("/account/settings/", PIN_PROMPT, "/account/confirm/"):
            assert expected in page(provider_client.get(url)), url
        # And a further try at any prompt, in the same words.
        again = provider_client.post("/account/confirm/", {"password": "wrong-again"})
        assert again.status_code == 429 and expected in page(again)
    with time_machine.travel(moment + timedelta(minutes=31), tick=False):
        assert LOCKED not in page(provider_client.get("/account/settings/"))


def test_a_practice_admin_is_pointed_to_another_one(practice):
    admin = make_user(Role.PRACTICE_ADMIN, practice=practice, username="padmin")
    client = Client()
    client.force_login(admin)
    text = lock_at_the_prompt(client)
    assert "Another practice administrator of Ludwig Family Medicine can unlock it" in text


def test_accounts_without_a_practice_are_pointed_to_a_platform_administrator(db):
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    client = Client()
    client.force_login(auditor)
    text = lock_at_the_prompt(client)
    assert "A platform administrator can unlock it sooner." in text


def test_the_sign_in_page_says_it_in_the_same_words_naming_no_account(client, provider):
    for n in range(5):
        response = client.post("/accounts/login/", {"username": "dorothy", "password": f"x{n}"})
    assert response.status_code == 429
    text = page(response)
    assert f"{LOCKED} are locked for 30 minutes after the last wrong password." in text
    assert "Ludwig Family Medicine" not in text  # the practice would confirm the account
    assert "Back to sign in" in text
