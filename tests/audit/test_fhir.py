"""The FHIR export: the CSV export's rows, as a FHIR R4 Bundle of AuditEvent resources."""

import csv
import io
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle

from audit import export, fhir, kinds, services
from audit.atna import EVENT_KEYS
from audit.models import AuditCheckpoint, AuditEvent
from audit.selectors import audit_event_scope
from audit.verification import audit_log_verify
from break_glass.services import break_glass_open
from tests.audit.helpers import NOW, chart_viewed, record_at
from tests.factories import confirm_identity

STOPPED = [kinds.AUDIT_EXPORT_FAILED.code, kinds.AUDIT_EXPORT_INTERRUPTED.code]


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def bundle_of(response) -> dict:
    content = body(response)
    # Validates the whole Bundle, each entry's AuditEvent included.
    Bundle.model_validate_json(content)
    return json.loads(content)


def resources(document: dict) -> list[dict]:
    return [entry["resource"] for entry in document.get("entry", [])]


def csv_details(client, params) -> list[str]:
    response = client.get("/audit/export.csv", params)
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    return [row[6] for row in rows[1:]]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"username": "dorothy"},
        {"type": "Patient"},
        {"patient": "P-200"},
        {"date_from": "2024-03-08", "date_to": "2024-03-10"},
        {"username": "nobody-by-that-name"},
    ],
)
def test_the_same_filters_give_the_same_events_as_the_csv(client, compliance, log, params):
    client.force_login(compliance)
    confirm_identity(client)
    in_csv = csv_details(client, params)
    response = client.get("/audit/export.fhir.json", params)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    assert response["Content-Disposition"].endswith('.fhir.json"')
    assert "no-store" in response["Cache-Control"]
    document = bundle_of(response)
    assert document["resourceType"] == "Bundle" and document["type"] == "searchset"
    assert document["total"] == int(response["X-Export-Rows"]) == len(resources(document))
    in_fhir = [resource.get("outcomeDesc", "") for resource in resources(document)]
    # The CSV export, recorded first, is the one event the FHIR export has in addition.
    if in_fhir[:1] and in_fhir[0].startswith("Audit log exported:"):
        in_fhir = in_fhir[1:]
    assert in_fhir == in_csv


def test_each_resource_round_trips_through_the_fhir_models(client, compliance, log):
    client.force_login(compliance)
    confirm_identity(client)
    for resource in resources(bundle_of(client.get("/audit/export.fhir.json"))):
        parsed = FhirAuditEvent.model_validate(resource)
        assert json.loads(parsed.model_dump_json(exclude_none=True)) == resource


def test_the_seed_event_reads_as_a_fhir_login(client, compliance, provider, log):
    client.force_login(compliance)
    confirm_identity(client)
    document = bundle_of(client.get("/audit/export.fhir.json", {"username": "dorothy"}))
    seed = next(r for r in resources(document) if r["recorded"].startswith("2024-03-18T21:06:19"))
    chain_id, seq = map(int, seed["id"].split("-"))
    event = AuditEvent.objects.get(chain_id=chain_id, seq=seq)
    assert seed["type"]["code"] == "110114"  # DICOM User Authentication
    assert [c["code"] for c in seed["subtype"]] == ["110122", "security.signed_in"]
    assert (seed["action"], seed["outcome"]) == ("E", "0")
    assert seed["outcomeDesc"] == "Signed in as user dorothy Ludwig"
    (agent,) = seed["agent"]
    assert agent["requestor"] is True
    assert agent["who"]["identifier"]["value"] == str(provider.pk)
    assert agent["who"]["display"] == "496094 (dorothy Ludwig)"
    assert agent["network"] == {"address": "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204", "type": "2"}
    assert seed["source"]["site"] == str(provider.practice_id)
    account, record = seed["entity"]
    assert account["role"]["code"] == "11"
    assert account["what"]["identifier"]["value"] == str(provider.pk)
    assert record["role"]["code"] == "13"
    detail = {d["type"]: d["valueString"] for d in record["detail"]}
    assert detail["chain"] == str(event.chain_id) and detail["seq"] == str(event.seq)
    assert (detail["prev_hash"], detail["row_hash"]) == (event.prev_hash, event.row_hash)


def test_a_patient_and_break_glass_are_in_the_resource(client, compliance, auditor, provider, log):
    chart_viewed(provider, "P-300", "Grace Hopper", NOW - timedelta(minutes=5))
    client.force_login(compliance)
    confirm_identity(client)
    (chart,) = resources(bundle_of(client.get("/audit/export.fhir.json", {"patient": "P-300"})))
    patient = next(e for e in chart["entity"] if e["role"]["code"] == "1")
    assert patient["what"]["identifier"]["value"] == "P-300"
    assert patient["what"]["display"] == "Grace Hopper"
    assert "purposeOfEvent" not in chart


def test_break_glass_access_is_the_purpose_of_its_events(client, agent, provider, auditor, clock):
    grant = break_glass_open(
        acting_user=agent,
        account=provider,
        justification="Caller lost their phone and cannot read the Support PIN",
        minutes=15,
        ip="192.0.2.50",
    )
    assert grant.pk
    client.force_login(auditor)
    confirm_identity(client)
    document = bundle_of(client.get("/audit/export.fhir.json", {"break_glass": "on"}))
    (opened,) = [
        r
        for r in resources(document)
        if any(c["code"] == "break_glass.opened" for c in r["subtype"])
    ]
    assert opened["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
    assert opened["subtype"][0]["code"] == "110127"  # Emergency Override Started


def test_the_export_is_audited_with_its_checkpoint(client, compliance, provider, log):
    client.force_login(compliance)
    confirm_identity(client)
    document = bundle_of(client.get("/audit/export.fhir.json", {"username": " Dorothy"}))
    event = AuditEvent.objects.get(kind=kinds.AUDIT_EXPORTED_FHIR.code)
    checkpoint = AuditCheckpoint.objects.get()
    assert (event.actor_id, event.type, event.action) == (compliance.pk, "Report", "Export")
    assert event.details == (
        "Audit log exported as FHIR AuditEvents: 3 events "
        "(03/13/2024 to 03/19/2024; username filter)"
    )
    assert event.data == {
        "rows": 3,
        "checkpoint": checkpoint.number,
        "username_input": "Dorothy",
        "username_account_id": provider.pk,
    }
    assert document["identifier"] == {
        "system": fhir.CHECKPOINT_SYSTEM,
        "value": str(checkpoint.number),
    }
    assert not AuditEvent.objects.filter(kind__in=STOPPED).exists()


def test_events_written_after_the_checkpoint_stay_out(client, compliance, provider, log):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.fhir.json")
    chart_viewed(provider, "P-400", "Written Later", NOW)
    document = bundle_of(response)
    assert all("Written Later" not in json.dumps(r) for r in resources(document))
    assert document["total"] == len(resources(document))


def test_text_fhir_cannot_carry_is_replaced_and_the_bundle_still_validates(
    client, compliance, provider, clock
):
    chart_viewed(provider, "P-1", "Bell\x07 \u2028Zoë", NOW - timedelta(minutes=1))
    client.force_login(compliance)
    confirm_identity(client)
    (chart,) = resources(bundle_of(client.get("/audit/export.fhir.json", {"type": "Patient"})))
    patient = next(e for e in chart["entity"] if e["role"]["code"] == "1")
    assert patient["what"]["display"] == "Bell\ufffd \u2028Zoë"


def test_a_download_closed_part_way_is_recorded_as_interrupted(compliance, log, monkeypatch):
    monkeypatch.setattr(fhir, "BLOCK", 1)
    monkeypatch.setattr(export, "BATCH", 1)
    result = services.audit_log_export(
        acting_user=compliance,
        ip="192.0.2.9",
        events=audit_event_scope(viewer=compliance),
        filters="all dates",
        filter_data={},
        time_zone=ZoneInfo(compliance.time_zone),
        fhir=True,
    )
    assert result.rows > 2
    content = iter(result.content)
    first, second = next(content), next(content)
    assert first.startswith(b'{"resourceType":"Bundle"') and second.startswith(b',{"fullUrl"')
    content.close()  # what a WSGI server does when the client goes away
    interrupted = AuditEvent.objects.get(kind=kinds.AUDIT_EXPORT_INTERRUPTED.code)
    started = AuditEvent.objects.get(kind=kinds.AUDIT_EXPORTED_FHIR.code)
    assert interrupted.data == {"rows": result.rows, "sent": 2, "export_event": started.pk}
    assert audit_log_verify().problem is None


def test_a_resource_is_the_event_with_every_key(provider, clock):
    event = record_at(NOW, kind=kinds.SIGNED_IN, acting_user=provider, account=provider)
    values = AuditEvent.objects.filter(pk=event.pk).values(*EVENT_KEYS).get()
    resource = fhir.fhir_audit_event(values, source_id="ehr-app-1")
    assert resource["id"] == f"{event.chain_id}-{event.seq}"
    assert resource["source"]["observer"] == {"display": "ehr-app-1"}
    assert resource["recorded"] == "2024-03-19T16:00:00Z"  # FHIR drops zero fractions


def test_a_support_agent_cannot_export(client, agent, log):
    client.force_login(agent)
    confirm_identity(client)
    assert client.get("/audit/export.fhir.json").status_code == 403
    assert not AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED_FHIR.code).exists()
