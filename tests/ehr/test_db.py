"""Where reads go (ehr/db.py), without a replica: everything on the primary, as before."""

import pytest
from django.db import router

from audit.models import AuditEvent
from ehr import db as ehr_db


def test_lsns_read_as_byte_positions():
    assert ehr_db.lsn_value("0/0") == 0
    assert ehr_db.lsn_value("0/3000148") == 0x3000148
    assert ehr_db.lsn_value("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert ehr_db.lsn_value("16/B374D848") > ehr_db.lsn_value("15/FFFFFFFF")


BLOCK = 8192
SEGMENT = 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("segment_offset", "moved_back"),
    [
        (40, 40),  # the first page of a segment: just past its long header
        (BLOCK + 24, 24),  # any other page: just past its short header
        (5 * BLOCK + 24, 24),
        (BLOCK + 40, 0),  # a record's tail ended there: a real end of record
        (BLOCK + 104, 0),
    ],
)
def test_an_insert_position_just_past_a_page_header_counts_from_the_page_start(
    segment_offset, moved_back
):
    position = 7 * SEGMENT + segment_offset
    assert ehr_db.page_start_adjusted(position, segment_offset, BLOCK) == position - moved_back


def test_the_router_sends_every_write_and_unmarked_read_to_the_primary():
    assert router.db_for_write(AuditEvent) == "default"
    assert router.db_for_read(AuditEvent) == "default"
    # Even for an object read from another database.
    event = AuditEvent()
    event._state.db = ehr_db.REPLICA
    assert router.db_for_write(AuditEvent, instance=event) == "default"
    assert router.db_for_read(AuditEvent, instance=event) == "default"
    assert router.allow_migrate("default", "audit") is True
    assert router.allow_migrate(ehr_db.REPLICA, "audit") is False


def test_without_a_replica_reports_read_the_primary_and_nothing_waits(
    db, django_assert_num_queries, settings
):
    settings.REPORTING_DATABASE = "default"
    with django_assert_num_queries(0):
        assert ehr_db.read_replica() == "default"
        source = ehr_db.replica_after_writes(timeout=5)
    assert source == ehr_db.ReadSource("default") and source.name == "primary"
    assert source.fallback == ""
