"""The SQL of dynamic consistency boundaries on PostgreSQL (see `eventsource.dcb.postgresql` for
why it is correct): the tag table, the query matcher (written once, used by the read and by
the append's check), and the append function.

A query travels as five arrays: the tags of the items that have tags, each with its item's
index (`want_tags`, `want_items`), those items' event types likewise (`kind_types`,
`kind_items`), and the event types of the type-only items (`type_only`).
"""

from __future__ import annotations

from eventsource._sql.postgresql_events import APPEND_AT_HEADS

__all__ = ["APPEND", "CALL", "DDL", "READ", "SCHEMA_READY"]

DDL = """
CREATE TABLE IF NOT EXISTS event_tags (
    tag TEXT NOT NULL,
    tx_id XID8 NOT NULL DEFAULT pg_current_xact_id(),
    position BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (tag, tx_id, position)
);
CREATE INDEX IF NOT EXISTS idx_event_tags_position ON event_tags (position);
CREATE INDEX IF NOT EXISTS idx_events_type_tx_id ON events (event_type, tx_id, id);
"""
SCHEMA_READY = (
    "SELECT to_regclass('event_tags') IS NOT NULL AND to_regprocedure("
    "'eventsource_dcb_append(bigint[], boolean[], text, boolean, text[], int[], text[], int[],"
    " text[], uuid[], uuid[], text[], text[], uuid[], text[], timestamptz[], text[], uuid[],"
    " text[], int)') IS NOT NULL"
)

# Positions of the events matching a query, among the rows `{seen}` lets through (`t` a tag
# row, `e` an event row). A tagged item matches an event carrying all its tags (their count)
# whose type is one of the item's, if it names any.
_MATCH = """WITH want AS (
    SELECT * FROM unnest({want_tags}::text[], {want_items}::int[]) AS w(tag, item)
), need AS (
    SELECT item, count(*) AS n FROM want GROUP BY item
), kinds AS (
    SELECT * FROM unnest({kind_types}::text[], {kind_items}::int[]) AS k(type, item)
), hits AS (
    SELECT t.position FROM want w JOIN event_tags t ON t.tag = w.tag
    WHERE {seen_t}
    GROUP BY t.position, w.item, t.event_type
    HAVING count(*) = (SELECT n FROM need WHERE need.item = w.item)
       AND (NOT EXISTS (SELECT 1 FROM kinds k WHERE k.item = w.item)
            OR EXISTS (SELECT 1 FROM kinds k WHERE k.item = w.item AND k.type = t.event_type))
    UNION
    SELECT e.id FROM events e WHERE e.event_type = ANY({type_only}::text[]) AND {seen_e}
)"""


def _match(names: tuple[str, str, str, str, str], seen: str) -> str:
    want_tags, want_items, kind_types, kind_items, type_only = names
    return _MATCH.format(
        want_tags=want_tags, want_items=want_items, kind_types=kind_types,
        kind_items=kind_items, type_only=type_only,
        seen_t=seen.format(row="t"), seen_e=seen.format(row="e"),
    )


# The read: matching events in commit-safe order (the order of `read_committed`), each with
# its tags, and the snapshot the statement read in (the token). One row, with NULL columns,
# when nothing matches. Only the columns an event is decoded from (`_READ_LAYOUT` in
# `eventsource.dcb.postgresql`): the client decodes every column it is sent, and the stream
# columns are in the payload too.
READ = _match(("$1", "$2", "$3", "$4", "$5"), "true") + """
SELECT e.id, e.event_id, e.event_type, e.payload::text,
       ARRAY(SELECT g.tag FROM event_tags g WHERE g.position = e.id) AS tags,
       s.snap
FROM (SELECT pg_current_snapshot()::text AS snap) s
LEFT JOIN LATERAL (SELECT * FROM events WHERE id IN (SELECT position FROM hits)) e ON true
ORDER BY e.tx_id, e.id"""

# The rows the reader's snapshot did not see (rows below its xmin it saw: they had committed).
_UNSEEN = (
    "{row}.tx_id >= pg_snapshot_xmin(p_snap::pg_snapshot) "
    "AND NOT pg_visible_in_snapshot({row}.tx_id, p_snap::pg_snapshot)"
)
_CHECK_NAMES = ("p_want_tags", "p_want_items", "p_kind_types", "p_kind_items", "p_type_only")

_INSERT = """WITH t AS (
    SELECT * FROM unnest(p_ids, p_aggregate_ids, p_aggregate_types, p_types, p_tenants, p_actors,
                         p_times, p_payloads) WITH ORDINALITY
        AS t(event_id, aggregate_id, aggregate_type, event_type, tenant_id, actor_id,
             occurred_at, payload, ord)
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.event_id)
), {append}, tagged AS (
    INSERT INTO event_tags (tag, position, event_type)
    SELECT g.tag, ins.id, ins.event_type
    FROM unnest(p_tag_ids, p_tags) AS g(event_id, tag) JOIN ins USING (event_id)
)
SELECT false, ins.id, ins.version FROM ins ORDER BY ins.id""".replace(
    "{append}", APPEND_AT_HEADS.format(returning="id, event_id, event_type, version")
)

# The append, as one function call (one round trip). In READ COMMITTED every statement of a
# volatile PL/pgSQL function takes a fresh snapshot, so the check, which runs after the locks
# are held, sees every transaction that committed while this one waited for them.
APPEND = f"""CREATE OR REPLACE FUNCTION eventsource_dcb_append(
    p_keys bigint[], p_exclusive boolean[], p_snap text, p_checked boolean,
    p_want_tags text[], p_want_items int[], p_kind_types text[], p_kind_items int[],
    p_type_only text[],
    p_ids uuid[], p_aggregate_ids uuid[], p_aggregate_types text[], p_types text[],
    p_tenants uuid[], p_actors text[], p_times timestamptz[], p_payloads text[],
    p_tag_ids uuid[], p_tags text[], p_expected int
) RETURNS TABLE (o_conflict boolean, o_position bigint, o_version int)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_current int;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        IF p_exclusive[i] THEN
            PERFORM pg_advisory_xact_lock(p_keys[i]);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(p_keys[i]);
        END IF;
    END LOOP;
    IF p_checked THEN
        IF p_snap IS NULL THEN
            RETURN QUERY {_match(_CHECK_NAMES, "true")}
                SELECT true, position, NULL::int FROM hits ORDER BY position;
        ELSE
            RETURN QUERY {_match(_CHECK_NAMES, _UNSEEN)}
                SELECT true, position, NULL::int FROM hits ORDER BY position;
        END IF;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF p_expected IS NOT NULL THEN  -- append_stream: one stream, at an expected version
        v_current := COALESCE((SELECT version FROM events
                               WHERE aggregate_id = p_aggregate_ids[1]
                                 AND aggregate_type = p_aggregate_types[1]
                               ORDER BY version DESC LIMIT 1), 0);
        IF NOT (p_expected = -1 OR (p_expected = -2 AND v_current > 0)
                OR v_current = p_expected) THEN
            RETURN QUERY SELECT NULL::boolean, NULL::bigint, v_current;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY {_INSERT};
END
$fn$"""

# The append, called with `eventsource.dcb.postgresql.append_args`.
CALL = "SELECT * FROM eventsource_dcb_append(" + ", ".join(f"${n}" for n in range(1, 21)) + ")"
