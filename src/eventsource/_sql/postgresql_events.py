"""The PostgreSQL event store's reads: every statement it runs on `events` but the append.

Reads come in pairs (unscoped, scoped): the scoped one adds `AND tenant_id = $n` for the tenant
bound by `tenant_scope` (index a pair with `tenant is not None`).
"""

from __future__ import annotations

from eventsource._sql.common import tenant_variants
from eventsource._sql.retention import MARKER, STREAM_VISIBLE, bind

__all__ = [
    "ALL_BACKWARD",
    "ALL_FORWARD",
    "APPEND_AT_HEADS",
    "AT_POSITION",
    "BY_TYPE",
    "COLUMNS",
    "COMMITTED",
    "EXISTS",
    "FIRST_TYPE",
    "GLOBAL_POSITION",
    "HEAD",
    "HOME",
    "LAG",
    "STREAM",
    "STREAM_ANY_TYPE",
    "STREAM_VERSION",
]

# The columns the store turns into StoredEvents (its `_LAYOUT` says where each lies).
COLUMNS = (
    "id, event_id, event_type, aggregate_id, aggregate_type, version, created_at, payload::text"
)
_TIME_BOUNDS = (
    '($2::timestamptz IS NULL OR "timestamp" >= $2) '
    'AND ($3::timestamptz IS NULL OR "timestamp" <= $3)'
)
# A typed stream read applies the stream's retention metadata in its own query
# (`eventsource._sql.retention`): a marker row first, then the visible events; $6 is the time
# events are aged at, $7 whether archived streams are shown.
_RETENTION = {"id": 1, "type": 4, "now": 6, "archived": 7}
_MARKER = bind(MARKER, "postgresql", _RETENTION)[0]
_VISIBLE = bind(STREAM_VISIBLE, "postgresql", _RETENTION)[0]
STREAM = tenant_variants(
    f"""{_MARKER}
    UNION ALL (SELECT {COLUMNS} FROM events
    WHERE aggregate_id = $1 AND aggregate_type = $4 AND version > $5 AND {_TIME_BOUNDS}
      AND {_VISIBLE}{{tenant}}
    ORDER BY version)""",
    "$8",
)
STREAM_ANY_TYPE = tenant_variants(
    f"""SELECT {COLUMNS} FROM events
    WHERE aggregate_id = $1 AND version > $5 AND {_TIME_BOUNDS} AND $4::text IS NULL{{tenant}}
    ORDER BY id""",
    "$6",
)
ALL_FORWARD = tenant_variants(
    f"""SELECT {COLUMNS} FROM events
    WHERE id > $1 AND {_TIME_BOUNDS}{{tenant}} ORDER BY id LIMIT $4""",
    "$5",
)
ALL_BACKWARD = tenant_variants(
    f"""SELECT {COLUMNS} FROM events
    WHERE id < $1 AND id > $5 AND {_TIME_BOUNDS}{{tenant}} ORDER BY id DESC LIMIT $4""",
    "$6",
)
FIRST_TYPE = tenant_variants(
    "SELECT aggregate_type FROM events WHERE aggregate_id = $1{tenant} ORDER BY id LIMIT 1", "$2"
)
STREAM_VERSION = tenant_variants(  # not MAX(version): see the append
    "SELECT COALESCE((SELECT version FROM events "
    "WHERE aggregate_id = $1 AND aggregate_type = $2{tenant} ORDER BY version DESC LIMIT 1), 0)",
    "$3",
)
EXISTS = tenant_variants(
    "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1{tenant})", "$2"
)
GLOBAL_POSITION = (
    "SELECT COALESCE(MAX(id), 0) FROM events",
    "SELECT COALESCE(MAX(id), 0) FROM events WHERE tenant_id = $1",
)
LAG = tenant_variants(
    "SELECT count(*) FROM events WHERE (tx_id, id) > ($1::text::xid8, $2::bigint){tenant}", "$3"
)
# The page, plus one all-NULL row when committed events wait behind the horizon; both parts
# share the statement's snapshot, so the flag describes exactly the horizon the page used.
# Ordered by the xid8 column itself: a bare `ORDER BY tx_id` would sort by the text output
# column of that name, and text order breaks where transaction ids gain a digit.
_COMMITTED_TEMPLATE = f"""(SELECT {COLUMNS}, e.tx_id::text AS tx FROM events e
    WHERE (e.tx_id, e.id) > ($1::text::xid8, $2::bigint)
      AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot()){{tenant_e}}
    ORDER BY e.tx_id, e.id LIMIT $3)
UNION ALL
(SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM events h
    WHERE h.tx_id >= pg_snapshot_xmin(pg_current_snapshot()){{tenant_h}}
    ORDER BY h.tx_id LIMIT 1)"""
COMMITTED = (
    _COMMITTED_TEMPLATE.format(tenant_e="", tenant_h=""),
    _COMMITTED_TEMPLATE.format(tenant_e=" AND e.tenant_id = $4", tenant_h=" AND h.tenant_id = $4"),
)
HEAD = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
AT_POSITION = "SELECT tx_id::text, id FROM events WHERE id <= $1 ORDER BY id DESC LIMIT 1"
HOME = "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = to_regclass('events')"
BY_TYPE = """SELECT event_id, event_type, payload::text FROM events
    WHERE aggregate_type = $1 AND ($2::uuid IS NULL OR tenant_id = $2)
      AND ($3::timestamptz IS NULL OR "timestamp" > $3)
    ORDER BY "timestamp", id"""


# Events of a CTE `t` (event_id, aggregate_id, aggregate_type, event_type, tenant_id, actor_id,
# occurred_at, payload, ord) written at the next versions of their streams, in `ord` order: the
# `heads` and `ins` CTEs of a batch that is appended at any version (a copy-transform batch, a
# DCB append). Format with `returning`, the columns `ins` returns.
APPEND_AT_HEADS = """heads AS (
    SELECT s.aggregate_id, s.aggregate_type,
           COALESCE((SELECT e.version FROM events e
                     WHERE e.aggregate_id = s.aggregate_id AND e.aggregate_type = s.aggregate_type
                     ORDER BY e.version DESC LIMIT 1), 0) AS v
    FROM (SELECT DISTINCT aggregate_id, aggregate_type FROM t) s
), ins AS (
    INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, tenant_id, actor_id,
                        version, "timestamp", payload)
    SELECT t.event_id, t.aggregate_id, t.aggregate_type, t.event_type, t.tenant_id, t.actor_id,
           h.v + row_number() OVER (PARTITION BY t.aggregate_id, t.aggregate_type ORDER BY t.ord),
           t.occurred_at, t.payload::jsonb
    FROM t JOIN heads h USING (aggregate_id, aggregate_type) ORDER BY t.ord
    RETURNING {returning}
)"""
