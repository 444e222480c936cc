"""`ehr.prepared.Code`: a code written into the SQL text, and nothing else."""

import pytest

from audit.kinds import KINDS, EventType
from audit.models import AuditEvent
from ehr.prepared import Code


def test_every_kind_and_type_is_a_code_written_between_quotes():
    for code in [*KINDS, *EventType.values]:
        sql, params = AuditEvent.objects.filter(kind=Code(code)).query.sql_with_params()
        assert f"'{code}'" in sql and code not in params


@pytest.mark.parametrize(
    "value",
    ["", "x'y", "x' OR '1'='1", "back\\slash", "100%", "a;b", "é", "x" * 65, 7, None],
)
def test_anything_else_is_refused(value):
    with pytest.raises(ValueError, match="not a code"):
        Code(value)
