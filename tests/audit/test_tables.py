"""The report's rows drawn in Python are the markup the template drew, value for value."""

import re

import pytest
from django.template import engines

from audit.tables import report_rows

# The report's row loop as the template wrote it before the rows were drawn in Python.
TEMPLATE = (
    "{% for row in rows %}"
    '<tr><td>{{ row.date }}</td><td class="nowrap">{{ row.time }}</td><td>'
    '{% if row.patient_url %}<a href="{{ row.patient_url }}" title="Audit history of this '
    'patient">{{ row.patient }}</a>{% else %}{{ row.patient }}{% endif %}</td><td>'
    '{% if row.user_url %}<a href="{{ row.user_url }}" title="Audit history of this account">'
    "{{ row.user }}</a>{% else %}{{ row.user }}{% endif %}</td><td>{{ row.type }}</td>"
    '<td>{{ row.action }}</td><td>{{ row.details }}</td><td class="ip">{{ row.ip }}</td></tr>'
    "\n{% empty %}"
    '<tr><td colspan="8" class="empty">No events match these filters.</td></tr>'
    "{% endfor %}"
)
AWKWARD = ['<script>alert("x")</script>', "O'Brien & Sons", "", "Ünïcode ✓", "=cmd|' /C calc'!A0"]


def template_rows(rows) -> str:
    return engines["django"].from_string(TEMPLATE).render({"rows": rows}).strip()


def row(text: str, *, linked: bool) -> dict:
    return {
        "date": "03/08/2026",
        "time": "02:30:00 AM",
        "patient": text,
        "patient_url": f"/audit/subject/patient/1/{text}/?a=1&b=2" if linked else None,
        "user": f"{text} (Provider)",
        "user_url": "/audit/subject/account/7/" if linked else "",
        "type": "Patient",
        "action": "View",
        "details": f"Viewed {text}",
        "ip": "2001:db8::1",
    }


@pytest.mark.parametrize("linked", [True, False])
def test_rows_are_the_templates_markup(linked):
    rows = [row(text, linked=linked) for text in AWKWARD]
    ours = str(report_rows(rows))
    assert re.sub(r"\n", "", ours) == re.sub(r"\n", "", template_rows(rows))
    assert "<script>" not in ours and "&lt;script&gt;" in ours


def test_no_rows_says_so():
    assert str(report_rows([])) == template_rows([])
