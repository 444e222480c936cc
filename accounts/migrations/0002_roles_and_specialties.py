"""Create the role groups and the list of specialties."""

from django.db import migrations

ROLES = [
    "provider",
    "nurse",
    "scheduler",
    "billing",
    "practice_admin",
    "compliance_officer",
    "support_agent",
    "platform_auditor",
]

SPECIALTIES = [
    "Allergy & Immunology",
    "Anesthesiology",
    "Cardiology",
    "Chiropractic",
    "Dermatology",
    "Emergency Medicine",
    "Endocrinology",
    "Family Medicine",
    "Gastroenterology",
    "General Surgery",
    "Geriatrics",
    "Hematology & Oncology",
    "Infectious Disease",
    "Internal Medicine",
    "Nephrology",
    "Neurology",
    "Obstetrics & Gynecology",
    "Ophthalmology",
    "Orthopedic Surgery",
    "Otolaryngology",
    "Pain Medicine",
    "Pathology",
    "Pediatrics",
    "Physical Medicine & Rehabilitation",
    "Physical Therapy",
    "Podiatry",
    "Psychiatry",
    "Psychology",
    "Pulmonology",
    "Radiology",
    "Rheumatology",
    "Sleep Medicine",
    "Sports Medicine",
    "Urology",
]


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Specialty = apps.get_model("accounts", "Specialty")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    for name in SPECIALTIES:
        Specialty.objects.get_or_create(name=name)


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()
    apps.get_model("accounts", "Specialty").objects.filter(name__in=SPECIALTIES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create, remove)]
