"""Verify an audit evidence file with nothing but a public key.

    python -m audit.offline EVIDENCE.jsonl --public-key KEYS

(or `manage.py audit_verify --file ... --public-key ...`). Needs Python 3.11 and
the `cryptography` package, plus this file and `audit/hashing.py`; no database,
no server, no secret.

An evidence file (JSON Lines, see docs/audit.md) holds one signed checkpoint
with every chain head it signed (the list rebuilds the signed Merkle root), and
for each chain in the file's scope (every chain, or one practice's and the
legacy chain) every event of the chain from its start to that head.
Verification proves that the events are exactly the ones the signed checkpoint
covers: none edited, dropped, inserted, reordered or moved between chains, and
no chain of the scope left out. In the legacy chain (events from before chains per practice),
a practice's file shows other practices' events as their practice and content
hash only; the hash binds the practice, so none of them can be one of yours.

An archive file (`manage.py audit_archive`) is an evidence file for one month
whose events have left the database: its first line names the month; each
chain starts where the month's events start (`from`: their first seq and the
hash the first links to), its events all fall in that month, and "after" lines
(seq, practice, content hash and links only) carry the chain on to the head
the checkpoint signed, through each head's Merkle path. The first event after
the month ("next") is given whole: its time shows the month ended before it,
so no event of the month hides among the links. So the month's events are
proved to be unedited and in their places in the signed chains, up to the
month's end. An archive alone does not prove that it holds every chain with
events in the month, nor a chain's first events of the month: docs/audit.md
says how the archive before it and the database prove those.
"""

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

try:
    from audit import hashing
except ImportError:  # run as a lone script next to hashing.py
    import hashing  # type: ignore[no-redef]

# Format 2 lists every chain head in an evidence file, and gives an archive's chains
# their first event after the month, against a checkpoint signed after the month
# ended. Format 1 did neither; its files still verify, and the report says what
# they do not show.
FORMAT = "ehr-audit-evidence/2"
FORMATS = ("ehr-audit-evidence/1", FORMAT)
KINDS = ("evidence", "archive")


class EvidenceError(ValueError):
    """The file does not verify; the message says where and why."""


@dataclass(frozen=True)
class ArchivedChain:
    """Where an archive's events of one chain start and end, and what follows them."""

    start_seq: int
    start_hash: str  # the hash its first archived event links to
    last_seq: int
    last_hash: str
    next_seq: int | None  # its first event after the month, when the chain went on
    next_at: str | None


@dataclass
class Report:
    checkpoint: dict | None = None
    month: str | None = None  # an archive file's month, YYYY-MM
    chains: list[str] = field(default_factory=list)
    events: int = 0
    not_shown: list[str] = field(default_factory=list)  # what a format-1 file cannot show
    archived: dict[int, ArchivedChain] = field(default_factory=dict)  # an archive's chains
    joined: list[str] = field(default_factory=list)  # joined to the archive before (join_archives)
    leaves: list[dict] | None = None  # every head the checkpoint signed (format 2 evidence)
    # {chain id: {seq: row hash}} of the events asked for (`watch`), as this file shows them
    hashes: dict[int, dict[int, str]] = field(default_factory=dict)
    extends: list[str] = field(default_factory=list)  # what `extends` found
    problem: str | None = None

    def lines(self) -> list[str]:
        cp = self.checkpoint or {}
        archive = [f"Archive of {self.month}: its events left the database."] if self.month else []
        return [
            *archive,
            f"Evidence verified: checkpoint {cp.get('number')} of {cp.get('created_at')}, "
            f"signed by key {cp.get('key_id')!r}, hash {cp.get('checkpoint_hash')}.",
            *self.chains,
            f"{self.events} events, each present, unedited and in its place.",
            *(f"Not shown: {text}" for text in self.not_shown),
            *self.joined,
            *self.extends,
        ]


def load_public_keys(entries: Iterable[str]) -> dict:
    """Read `id:base64` keys given literally or as files of them."""
    text = []
    for entry in entries:
        path = Path(entry)
        text.append(path.read_text() if ":" not in entry and path.is_file() else entry)
    keys = hashing.parse_public_keys("\n".join(text))
    if not keys:
        raise ValueError("no public key given")
    return keys


def verify_evidence(
    lines: Iterable[bytes | str],
    public_keys: dict,
    *,
    kind: str | None = None,
    watch: dict[int, int] | None = None,
) -> Report:
    """Verify the file; `kind` ("evidence" or "archive") is what the caller expects it to be.

    `watch` ({chain id: seq}): keep the hash this file shows for each of those events
    (`Report.hashes`), for `extends`.
    """
    report = Report()
    try:
        _verify(iter(lines), public_keys, report, kind, watch or {})
    except EvidenceError as error:
        report.problem = str(error)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # a field of a wrong type
        report.problem = f"malformed file: {error!r}"
    return report


def _records(lines):
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if line.strip():
            record = json.loads(line)
            if not isinstance(record, dict):
                raise EvidenceError(f"line {number} is not a JSON object")
            yield number, record


def _verify(lines, public_keys: dict, report: Report, kind: str | None, watch: dict) -> None:
    records = _records(lines)
    _, head = next(records, (0, None))
    if not head or head.get("format") not in FORMATS:
        raise EvidenceError(f"not an evidence file (first line must name {FORMAT})")
    current = head["format"] == FORMAT
    found = "archive" if "archive" in head else "evidence"
    if kind is not None and found != kind:
        raise EvidenceError(f"an {found} file, not the {kind} file you expected")
    checkpoint = head["checkpoint"]
    key = public_keys.get(checkpoint["key_id"])
    if key is None:
        raise EvidenceError(f"checkpoint signed by key {checkpoint['key_id']!r}, not one you gave")
    if not hashing.signature_valid(key, checkpoint, checkpoint["signature"]):
        raise EvidenceError(f"checkpoint {checkpoint['number']}: the signature is not valid")
    if hashing.checkpoint_hash(checkpoint) != checkpoint["checkpoint_hash"]:
        raise EvidenceError(f"checkpoint {checkpoint['number']}: its hash does not match")
    report.checkpoint = checkpoint
    practice = _practice_id(head.get("practice_id"), "the first line")
    month = _month_bounds(head["archive"]["month"]) if "archive" in head else None
    report.month = head["archive"]["month"] if month else None
    signed = None
    if not current:
        report.not_shown.append(
            "that each chain's last events of the month are all here (a format-1 archive "
            "gives no event after its month)."
            if month
            else "that no chain was left out (a format-1 file does not list the chains "
            "the checkpoint signed)."
        )
    elif month is None:
        signed = report.leaves = _signed_leaves(head, checkpoint)
    elif checkpoint["created_at"] < month[1]:
        raise EvidenceError(
            f"checkpoint {checkpoint['number']} was signed before the month ended, so it "
            "cannot show the month's last events"
        )
    seen_chains: set[int] = set()
    walk: _ChainWalk | None = None
    for number, record in records:
        _check_keys(record, number)
        if "chain" in record:
            if walk is not None:
                _close(walk, report)
            walk = _ChainWalk(record, checkpoint, practice, month, signed, current=current)
            walk.watch(watch.get(walk.chain_id), report.hashes)
            if walk.chain_id in seen_chains:
                raise EvidenceError(f"line {number}: chain {walk.chain_id} appears twice")
            seen_chains.add(walk.chain_id)
        elif any(name in record for name in ("event", "other", "next", "after")):
            if walk is None:
                raise EvidenceError(f"line {number}: an event before any chain")
            walk.step(record, number)
            report.events += "event" in record
        else:  # "end", the one record left (_check_keys)
            if walk is not None:
                _close(walk, report)
            end = record["end"]
            if end.get("chains") != len(seen_chains) or end.get("events") != report.events:
                raise EvidenceError("the closing line's counts do not match the file")
            if signed is not None:
                report.chains.append(_every_chain_present(signed, practice, seen_chains))
            if next(records, None) is not None:
                raise EvidenceError("lines after the closing line")
            return
    raise EvidenceError("the file ends without its closing line (cut short)")


def _close(walk: "_ChainWalk", report: Report) -> None:
    report.chains.append(walk.finish())
    if walk.month is not None:
        report.archived[walk.chain_id] = walk.archived()


def join_archives(previous: Report, current: Report) -> list[str]:
    """Check that `current` takes each chain on where `previous`, of the month before, left it.

    Each file alone shows its own events; together they show that no event of a chain
    went missing between them: a chain whose first event after the earlier month falls
    in this one must start here at that event; one whose next event is later wrote
    nothing this month. A chain the earlier archive ended at its signed head may have
    written since, which neither file shows. Both reports must have verified.
    """
    if previous.month is None or current.month is None:
        raise EvidenceError("joining needs two archives")
    if _month_bounds(previous.month)[1] != _month_bounds(current.month)[0]:
        raise EvidenceError(f"the archive of {previous.month} is not of the month before")
    end = _month_bounds(current.month)[1]
    lines, unknown = [], []
    for chain_id, before in sorted(previous.archived.items()):
        now = current.archived.get(chain_id)
        if before.next_at is not None and before.next_at >= end:
            continue  # its next event is of a later month: none of this one (time order)
        if now is None:
            if before.next_seq is not None:
                raise EvidenceError(
                    f"chain {chain_id}: its next event after {previous.month} (seq "
                    f"{before.next_seq}, {before.next_at}) is of this month, and this archive "
                    "does not hold it"
                )
            unknown.append(str(chain_id))
            continue
        if (now.start_seq, now.start_hash) != (before.last_seq + 1, before.last_hash):
            raise EvidenceError(
                f"chain {chain_id}: this archive starts it at seq {now.start_seq}, not where "
                f"the archive of {previous.month} left it (after seq {before.last_seq})"
            )
        lines.append(f"Chain {chain_id} goes on from the archive of {previous.month}.")
    for chain_id in sorted(set(current.archived) - set(previous.archived)):
        lines.append(
            f"Chain {chain_id} is not in the archive of {previous.month}: this archive starts "
            f"it at seq {current.archived[chain_id].start_seq}."
        )
    if unknown:
        lines.append(
            f"Not shown: whether chain {', '.join(unknown)}, which the archive of "
            f"{previous.month} ends at its signed head, wrote in this month."
        )
    return lines


def extends(earlier: Report, later: Report) -> list[str]:
    """Check that `later`'s checkpoint signs the chains `earlier`'s signed, only gone on.

    For an outsider who kept an earlier evidence file: a history rewritten since, even
    one signed with the signing key itself, cannot go on from every head the earlier
    checkpoint signed, since each head's hash fixes every event up to it. Each chain
    both files list must be as long or longer, with the same hash at the earlier head:
    for the chains this file holds, the event at that seq; for the others, equal heads.
    `later` must have been verified watching the earlier heads (`watch`).
    """
    if earlier.leaves is None or later.leaves is None:
        raise EvidenceError("comparing needs two evidence files that list their chains")
    before, after = earlier.checkpoint, later.checkpoint
    if after["number"] < before["number"] or (
        after["number"] == before["number"]
        and after["checkpoint_hash"] != before["checkpoint_hash"]
    ):
        raise EvidenceError(
            f"checkpoint {after['number']} does not come after checkpoint {before['number']} "
            "of the earlier file"
        )
    heads = {leaf["chain_id"]: leaf for leaf in later.leaves}
    shown, unseen = 0, []
    for old in earlier.leaves:
        chain_id, new = old["chain_id"], heads.get(old["chain_id"])
        if new is None:
            raise EvidenceError(f"chain {chain_id}, signed by the earlier checkpoint, is gone")
        if new["seq"] < old["seq"]:
            raise EvidenceError(
                f"chain {chain_id} ends at seq {new['seq']}; the earlier checkpoint signed it "
                f"to seq {old['seq']} (events removed)"
            )
        if new["seq"] == old["seq"]:
            found = new["row_hash"]
        elif old["seq"] in later.hashes.get(chain_id, {}):
            found = later.hashes[chain_id][old["seq"]]
        elif chain_id in later.hashes:
            # The file holds the chain but starts it after the earlier head: nothing
            # here ties the events before its start to what was signed.
            raise EvidenceError(
                f"chain {chain_id} starts at seq {new['start_seq']} in this file, after seq "
                f"{old['seq']} where the earlier checkpoint signed its head, so this file "
                "cannot show it goes on from there; the archives that hold the events between "
                "can (each verified with --file, joined with --previous)"
            )
        else:
            unseen.append(str(chain_id))  # another practice's chain
            continue
        if found != old["row_hash"]:
            raise EvidenceError(
                f"chain {chain_id}, seq {old['seq']}: not the event the earlier checkpoint "
                "signed there (the chain was rewritten)"
            )
        shown += 1
    lines = [
        f"Goes on from checkpoint {before['number']} of the earlier file: {shown} of its "
        f"{len(earlier.leaves)} chains shown unchanged up to the heads it signed."
    ]
    if unseen:
        lines.append(
            f"Not shown: chain {', '.join(unseen)} up to the earlier heads (not held by this "
            "file; those heads are longer or equal here)."
        )
    return lines


def verify_file(
    path: Path,
    public_keys: dict,
    *,
    kind: str | None = None,
    previous: Path | None = None,
    since: Path | None = None,
) -> Report:
    """Verify the file at `path`; with `previous`, the archive of the month before, join them;
    with `since`, an earlier evidence file, check that this one goes on from it (`extends`).

    Raises OSError when a file cannot be read.
    """
    if since is not None:
        with since.open("rb") as handle:
            earlier = verify_evidence(handle, public_keys, kind="evidence")
        if earlier.problem:
            return Report(
                problem=f"the earlier file ({since.name}) does not verify: {earlier.problem}"
            )
        watch = {leaf["chain_id"]: leaf["seq"] for leaf in earlier.leaves or ()}
        with path.open("rb") as handle:
            report = verify_evidence(handle, public_keys, kind="evidence", watch=watch)
        if not report.problem:
            try:
                report.extends = extends(earlier, report)
            except EvidenceError as error:
                report.problem = str(error)
        return report
    with path.open("rb") as handle:
        report = verify_evidence(handle, public_keys, kind="archive" if previous else kind)
    if previous is None or report.problem:
        return report
    with previous.open("rb") as handle:
        before = verify_evidence(handle, public_keys, kind="archive")
    if before.problem:
        report.problem = f"the archive before ({previous.name}) does not verify: {before.problem}"
        return report
    try:
        report.joined = join_archives(before, report)
    except EvidenceError as error:
        report.problem = str(error)
    return report


def _signed_leaves(head: dict, checkpoint: dict) -> list[dict]:
    """Every chain head the checkpoint signed, as the file lists them, checked against its root.

    With the whole list, the file can be held to every chain in its scope: a
    chain left out, or a practice's file without its practice's chain, is found.
    """
    leaves = head.get("leaves")
    if not isinstance(leaves, list):
        raise EvidenceError(
            "the file does not list the chains the checkpoint signed, so it cannot show "
            "that none was left out; download it again"
        )
    if (
        len(leaves) != checkpoint["chain_count"]
        or hashing.merkle_root([hashing.leaf_bytes(leaf) for leaf in leaves])
        != checkpoint["merkle_root"]
    ):
        raise EvidenceError("the chains the file lists are not the ones the checkpoint signed")
    return leaves


_CHAIN_KEYS = {"chain", "index", "path", "from"}
_ONE_KEY = ("event", "other", "next", "after", "end")


def _check_keys(record: dict, number: int) -> None:
    """A record is what its key says and nothing more: no second payload rides along."""
    keys = set(record)
    if "chain" in keys:
        if not {"chain", "index"} <= keys <= _CHAIN_KEYS:
            raise EvidenceError(f"line {number}: a chain line holds {sorted(keys)}")
    elif len(keys) != 1 or not keys <= set(_ONE_KEY):
        raise EvidenceError(f"line {number}: a record holds {sorted(keys)}")


def _practice_id(value, where: str) -> int | None:
    """A practice as the hashes read it: a number or none (`"5"` would hash as 5)."""
    if value is None or type(value) is int:
        return value
    raise EvidenceError(f"{where}: a practice must be a number or null, not {value!r}")


def _in_scope(leaf: dict, practice: int | None) -> bool:
    """A platform file holds every chain; a practice's, its own and the legacy chain."""
    return practice is None or leaf["kind"] == "legacy" or leaf["practice_id"] == practice


def _every_chain_present(leaves: list[dict], practice: int | None, seen: set[int]) -> str:
    wanted = {leaf["chain_id"]: leaf for leaf in leaves if _in_scope(leaf, practice)}
    if practice is not None and not any(leaf["kind"] == "practice" for leaf in wanted.values()):
        raise EvidenceError(f"the checkpoint signed no chain of practice {practice}")
    for chain_id, leaf in wanted.items():
        if chain_id not in seen:
            owner = f"practice {leaf['practice_id']}" if leaf["practice_id"] else leaf["kind"]
            raise EvidenceError(
                f"chain {chain_id} ({owner}) is missing: the checkpoint signed it at seq "
                f"{leaf['seq']}"
            )
    if extra := sorted(seen - set(wanted)):
        raise EvidenceError(f"chain {extra[0]} is not one of practice {practice}'s")
    if practice is None:
        return f"Every chain the checkpoint signed is here ({len(wanted)})."
    return f"Every chain the checkpoint signed for practice {practice} is here ({len(wanted)})."


def _month_bounds(month: str) -> tuple[str, str]:
    """The first instant of `month` (YYYY-MM) and of the next, as event timestamps."""
    year, number = (int(part) for part in month.split("-"))
    after = (year + 1, 1) if number == 12 else (year, number + 1)
    return (
        f"{year:04d}-{number:02d}-01T00:00:00.000000Z",
        "{:04d}-{:02d}-01T00:00:00.000000Z".format(*after),
    )


class _ChainWalk:
    def __init__(
        self,
        record: dict,
        checkpoint: dict,
        practice: int | None,
        month: tuple[str, str] | None = None,
        signed: list[dict] | None = None,
        *,
        current: bool = True,
    ):
        leaf = record["chain"]
        self.leaf, self.chain_id, self.practice = leaf, leaf["chain_id"], practice
        self.month, self.linking = month, False
        self.next_required = current  # format 2: no link before the event after the month
        index = record["index"]
        if signed is not None:
            # The list is checked against the signed root; the head must be the one listed.
            found = 0 <= index < len(signed) and signed[index] == leaf
        else:  # an archive gives each head's Merkle path to the signed root
            root = hashing.merkle_path_root(
                hashing.leaf_bytes(leaf), index, checkpoint["chain_count"], record["path"]
            )
            found = root == checkpoint["merkle_root"]
        if not found:
            raise EvidenceError(f"chain {self.chain_id}: its head is not one the checkpoint signed")
        self.expected_seq, self.prev = leaf["start_seq"], leaf["start_hash"]
        if "from" in record:
            # An archive's chain starts where the month's events start, after older ones
            # that left the database earlier; the link to the signed head proves the rest.
            start = record["from"]
            if month is None:
                raise EvidenceError(f"chain {self.chain_id}: only an archive may start mid-chain")
            if start["seq"] < leaf["start_seq"] or (
                start["seq"] == leaf["start_seq"] and start["prev_hash"] != leaf["start_hash"]
            ):
                raise EvidenceError(f"chain {self.chain_id}: it starts before the signed start")
            self.expected_seq, self.prev = start["seq"], start["prev_hash"]
        self.first, self.first_prev = self.expected_seq, self.prev
        self.shown = self.others = 0
        self.last = (self.expected_seq - 1, self.prev)  # the last event shown, as (seq, hash)
        self.next: tuple[int, str] | None = None
        self.watched: int | None = None
        self.found: dict[int, str] = {}

    def watch(self, seq: int | None, hashes: dict[int, dict[int, str]]) -> None:
        """Keep the hash of event `seq` of this chain, once verified, in `hashes`."""
        if seq is None:
            return
        self.watched, self.found = seq, hashes.setdefault(self.chain_id, {})
        if seq == self.expected_seq - 1:  # where the file starts the chain: the hash it links to
            self.found[seq] = self.prev

    def step(self, record: dict, number: int) -> None:
        where = f"line {number}, chain {self.chain_id}"
        legacy = self.leaf["kind"] == "legacy"
        if "next" in record:
            # An archive's first event after the month, whole: its time closes the month.
            row = record["next"]
            if self.month is None:
                raise EvidenceError(f"{where}: only an archive shows the event after its month")
            if self.linking:
                raise EvidenceError(
                    f"{where}: the event after the month must come before the links"
                )
            if row["occurred_at"] < self.month[1]:
                raise EvidenceError(
                    f"{where}, seq {row['seq']}: an event of the archived month is left out "
                    "of it (shown as the event after the month)"
                )
            self.linking = True
            self.next = (row["seq"], row["occurred_at"])
            computed = hashing.row_hash(row, prev_hash=row["prev_hash"])
        elif "after" in record:
            # An archive's link from the event after the month to the signed head.
            row = record["after"]
            if self.month is None:
                raise EvidenceError(f"{where}: only an archive links events by hash")
            if not self.linking and self.next_required:
                raise EvidenceError(
                    f"{where}: the links start without the event after the month, so the "
                    "month's last events cannot be shown to be all here"
                )
            self.linking = True
            computed = hashing.event_hash(
                prev_hash=row["prev_hash"],
                practice_id=_practice_id(row["practice_id"], where),
                content=row["content"],
            )
        elif "event" in record:
            row = record["event"]
            if self.linking:
                raise EvidenceError(f"{where}: an archived event after the link to the head")
            if self.month is not None and not (self.month[0] <= row["occurred_at"] < self.month[1]):
                raise EvidenceError(f"{where}: the event is not of the archived month")
            if row["chain_id"] != self.chain_id:
                raise EvidenceError(f"{where}: the event names chain {row['chain_id']}")
            if not legacy and row["practice_id"] != self.leaf["practice_id"]:
                raise EvidenceError(f"{where}: the event belongs to another practice")
            for column, hashed in (("actor_id", "actor_ref"), ("account_id", "account_ref")):
                # An archive's row keeps its columns for a restore; the hash covers the ref.
                kept = row.get(column)
                if kept is not None and (type(kept) is not int or kept != row[hashed]):
                    raise EvidenceError(f"{where}: its {column} is not the {hashed} it hashes")
            computed = hashing.row_hash(row, prev_hash=row["prev_hash"])
            self.shown += 1
            self.last = (row["seq"], row["row_hash"])
        else:
            row = record["other"]
            if not legacy or self.month is not None or self.practice is None:
                raise EvidenceError(
                    f"{where}: only a practice's file hides events, in the legacy chain"
                )
            other = _practice_id(row["practice_id"], where)
            if other == self.practice:
                raise EvidenceError(f"{where}: an event of your own practice is hidden")
            computed = hashing.event_hash(
                prev_hash=row["prev_hash"], practice_id=other, content=row["content"]
            )
            self.others += 1
        if row["seq"] != self.expected_seq:
            raise EvidenceError(
                f"{where}: expected seq {self.expected_seq}, found {row['seq']}"
                + (
                    " (events dropped or reordered)"
                    if row["seq"] > self.expected_seq
                    else " (out of order)"
                )
            )
        if row["seq"] > self.leaf["seq"]:
            raise EvidenceError(f"{where}: seq {row['seq']} is beyond the signed head")
        if row["prev_hash"] != self.prev:
            raise EvidenceError(f"{where}, seq {row['seq']}: it does not follow the event before")
        if computed != row["row_hash"]:
            raise EvidenceError(f"{where}, seq {row['seq']}: its content does not match its hash")
        self.expected_seq, self.prev = row["seq"] + 1, row["row_hash"]
        if row["seq"] == self.watched:
            self.found[row["seq"]] = row["row_hash"]

    def archived(self) -> ArchivedChain:
        next_seq, next_at = self.next or (None, None)
        return ArchivedChain(self.first, self.first_prev, *self.last, next_seq, next_at)

    def finish(self) -> str:
        leaf = self.leaf
        if self.expected_seq - 1 != leaf["seq"] or self.prev != leaf["row_hash"]:
            raise EvidenceError(
                f"chain {self.chain_id}: the events end at seq {self.expected_seq - 1}, "
                f"the signed head is seq {leaf['seq']} (events dropped or head mismatch)"
            )
        owner = f"practice {leaf['practice_id']}" if leaf["practice_id"] else leaf["kind"]
        if self.month is not None:
            return (
                f"Chain {self.chain_id} ({owner}): seq {self.first} to "
                f"{self.first + self.shown - 1} archived, linked to the signed head at seq "
                f"{leaf['seq']}."
            )
        text = f"Chain {self.chain_id} ({owner}): seq {leaf['start_seq']} to {leaf['seq']} complete"
        if self.others:
            text += f"; {self.shown} shown, {self.others} of other practices as hashes"
        return text + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--public-key", action="append", required=True)
    parser.add_argument(
        "--kind",
        choices=KINDS,
        help="refuse the file unless it is this kind (an export or an archive)",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        help="the archive of the month before: check that this archive goes on from it",
    )
    parser.add_argument(
        "--since",
        type=Path,
        help="an earlier evidence file you kept: check that this one goes on from it",
    )
    args = parser.parse_args(argv)
    if args.since and args.previous:
        print("--since is for evidence files, --previous for archives: give one", file=sys.stderr)
        return 2
    try:
        keys = load_public_keys(args.public_key)
    except (OSError, ValueError) as error:
        print(f"Public key: {error}", file=sys.stderr)
        return 2
    try:
        report = verify_file(
            args.file, keys, kind=args.kind, previous=args.previous, since=args.since
        )
    except OSError as error:
        print(f"Evidence file: {error.strerror or error}: {error.filename}", file=sys.stderr)
        return 2
    if report.problem:
        print(f"Evidence file not verified: {report.problem}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
