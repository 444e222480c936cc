"""Password hashing parameters, chosen on purpose.

Argon2id with 46 MiB of memory, 2 passes and 1 lane: above OWASP's minimum
(19 MiB, t=2, p=1) on every axis, about 100 ms per verification on the 2-core
machines this runs on. Django 5.2's default (100 MiB, t=2, p=8) takes about
175 ms there and spends 8 lanes on 2 cores, which makes each sign-in a larger
denial-of-service lever without making offline cracking proportionally harder.
Hashes with other parameters are re-hashed with these on the next sign-in
(Django's `must_update`).
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idPasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 46 * 1024  # KiB
    parallelism = 1
