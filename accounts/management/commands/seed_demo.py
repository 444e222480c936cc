"""Create the demo practice and accounts of the product spec (development only)."""

from base64 import b32decode

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.mfa import mfa_device, mfa_enroll_with_key, mfa_required
from accounts.models import Practice, User
from accounts.passkeys import passkey_required
from accounts.roles import Role
from accounts.services import practice_create, user_create
from audit import kinds
from audit.services import audit_event_record

DEMO_PASSWORD = "demo-pass-2024"  # noqa: S105  (documented development-only password)
# Base32 TOTP secret of the demo accounts whose role requires MFA (development only).
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # noqa: S105  (documented in README, development only)

# Chart views of a few demo patients, as the EHR's clinical modules record them, so the
# report's patient box and a patient's history have something to find: (who, patient
# id, patient name), recorded as the demo is seeded.
CHART_VIEWS = [
    ("dorothy", "P-10231", "Ana Lopez"),
    ("dori", "P-10231", "Ana Lopez"),
    ("dorothy", "P-10487", "Marcus Webb"),
    ("dori", "P-10502", "Grace Kim"),
    ("dorothy", "P-10231", "Ana Lopez"),
]

PRACTICES = [
    {"key": "main", "name": "Ludwig Family Medicine", "group_id": 120450},
    {"key": "other", "name": "Harbor Street Clinic", "group_id": 120977},
]

ACCOUNTS = [
    {
        "username": "dorothy",
        "first_name": "dorothy",  # lower case, as in the seed's audit log
        "last_name": "Ludwig",
        "email": "dorothy@ludwig-family.example",
        "role": Role.PROVIDER,
        "practice": "main",
        "doctor_id": 496094,
    },
    {
        "username": "dori",
        "first_name": "Dori",
        "last_name": "Mendez",
        "email": "dori@ludwig-family.example",
        "role": Role.NURSE,
        "practice": "main",
    },
    {
        "username": "agent",
        "first_name": "Sam",
        "last_name": "Rivera",
        "email": "agent@support.example",
        "role": Role.SUPPORT_AGENT,
        "practice": None,
    },
    {
        "username": "compliance",
        "first_name": "Carol",
        "last_name": "Okafor",
        "email": "compliance@ludwig-family.example",
        "role": Role.COMPLIANCE_OFFICER,
        "practice": "main",
    },
    {
        "username": "auditor",
        "first_name": "Avery",
        "last_name": "Chen",
        "email": "auditor@platform.example",
        "role": Role.PLATFORM_AUDITOR,
        "practice": None,
    },
    {
        "username": "otherdoc",
        "first_name": "Omar",
        "last_name": "Haddad",
        "email": "omar@harbor-street.example",
        "role": Role.PROVIDER,
        "practice": "other",
        "doctor_id": 518233,
    },
    {
        "username": "padmin",
        "first_name": "Priya",
        "last_name": "Shah",
        "email": "padmin@ludwig-family.example",
        "role": Role.PRACTICE_ADMIN,
        "practice": "main",
    },
]


class Command(BaseCommand):
    help = "Create the demo practices and accounts (idempotent; refuses when DEBUG is off)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates accounts with a known password: DEBUG must be on."
            )
        with transaction.atomic():
            practices = {}
            for spec in PRACTICES:
                practice = Practice.objects.filter(group_id=spec["group_id"]).first()
                if practice is None:
                    practice = practice_create(
                        name=spec["name"], group_id=spec["group_id"], acting_user=None
                    )
                practices[spec["key"]] = practice
            created = []
            for spec in ACCOUNTS:
                if User.objects.filter(username=spec["username"]).exists():
                    continue
                user_create(
                    username=spec["username"],
                    email=spec["email"],
                    password=DEMO_PASSWORD,
                    first_name=spec["first_name"],
                    last_name=spec["last_name"],
                    role=spec["role"],
                    practice=practices[spec["practice"]] if spec["practice"] else None,
                    doctor_id=spec.get("doctor_id"),
                    acting_user=None,
                )
                created.append(spec["username"])
            for user in User.objects.filter(username__in=[a["username"] for a in ACCOUNTS]):
                if mfa_required(user) and mfa_device(user) is None:
                    mfa_enroll_with_key(user=user, key_hex=b32decode(DEMO_TOTP_SECRET).hex())
                    # As accounts that had only an app when the passkey policy came: they
                    # sign in with the app, told to add a passkey (README: how).
                    if passkey_required(user) and user.passkey_grace_from is None:
                        User.objects.filter(pk=user.pk).update(passkey_grace_from=timezone.now())
            if "dorothy" in created:  # the first seeding: the demo patients' chart views
                for who, patient_id, patient_name in CHART_VIEWS:
                    user = User.objects.get(username=who)
                    audit_event_record(
                        kind=kinds.PATIENT_CHART_VIEWED,
                        acting_user=user,
                        account=user,
                        ip=None,
                        patient_id=patient_id,
                        patient_name=patient_name,
                        params={"patient": patient_name},
                    )
        if created:
            self.stdout.write(f"Created demo accounts: {', '.join(created)}")
        else:
            self.stdout.write("Demo accounts already present.")
