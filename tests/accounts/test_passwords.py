import pytest
from django.conf import settings
from django.contrib.auth.hashers import get_hasher, make_password

from accounts.models import User

REAL_HASHERS = [h for h in settings.PASSWORD_HASHERS if "MD5" not in h]


@pytest.fixture
def real_hashers(settings):
    settings.PASSWORD_HASHERS = REAL_HASHERS


def test_argon2id_is_first_with_parameters_above_owasp_minimum(real_hashers):
    hasher = get_hasher("default")
    assert hasher.algorithm == "argon2"
    assert hasher.memory_cost >= 19 * 1024
    assert hasher.time_cost >= 2
    encoded = make_password("some long password")
    assert encoded.startswith("argon2$argon2id$")
    assert f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}" in encoded


def test_an_older_hash_is_upgraded_at_sign_in(real_hashers, client, provider):
    password = "an-old-pbkdf2-password"
    User.objects.filter(pk=provider.pk).update(
        password=make_password(password, hasher="pbkdf2_sha256")
    )
    client.post("/accounts/login/", {"username": provider.username, "password": password})
    provider.refresh_from_db()
    assert provider.password.startswith("argon2$argon2id$")
    assert provider.check_password(password)


def test_argon2_hash_with_weaker_parameters_is_upgraded(real_hashers, client, provider):
    from django.contrib.auth.hashers import Argon2PasswordHasher

    class Weak(Argon2PasswordHasher):
        memory_cost = 8 * 1024
        time_cost = 1

    password = "a-weakly-hashed-password"
    User.objects.filter(pk=provider.pk).update(password=Weak().encode(password, Weak().salt()))
    client.post("/accounts/login/", {"username": provider.username, "password": password})
    provider.refresh_from_db()
    assert f"m={get_hasher('default').memory_cost}" in provider.password


def test_password_hash_never_contains_the_password(real_hashers, provider):
    provider.set_password("visible-secret-phrase")
    assert "visible-secret-phrase" not in provider.password
