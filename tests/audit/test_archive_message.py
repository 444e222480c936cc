"""What `audit_archive` says when a syslog destination is behind: every destination, its
events in all, and the chains it lacks (the first five named, the rest counted)."""

from audit.archive import _undelivered_message
from outbox.audit_stream import Undelivered


def test_each_destination_is_named_with_its_events_and_at_most_five_chains():
    missing = [Undelivered("siem", chain, 10, 19) for chain in range(1, 8)] + [
        Undelivered("backup", 3, 1, 1)
    ]
    message = _undelivered_message("2014-03", missing)
    assert message.startswith(
        "The syslog destination 'siem' has not received 70 events of 2014-03 (chain 1 seq "
        "10-19, chain 2 seq 10-19, chain 3 seq 10-19, chain 4 seq 10-19, chain 5 seq 10-19 "
        "and 2 more chains); The syslog destination 'backup' has not received 1 event of "
        "2014-03 (chain 3 seq 1-1): once the month is dropped they can never be sent."
    )
    assert "chain 6" not in message and "--skip-undelivered" in message


def test_five_chains_are_all_named():
    missing = [Undelivered("siem", chain, 1, 2) for chain in range(1, 6)]
    message = _undelivered_message("2014-03", missing)
    assert "chain 5 seq 1-2)" in message and "more chains" not in message
