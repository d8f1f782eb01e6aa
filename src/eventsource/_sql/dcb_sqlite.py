"""The SQL of dynamic consistency boundaries on SQLite: the tag table and the query matcher,
built per query (SQLite has no arrays to pass a query in)."""

from __future__ import annotations

__all__ = ["DDL", "INSERT_TAG", "match_sql", "read_sql"]

DDL = """
CREATE TABLE IF NOT EXISTS event_tags (
    tag TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (tag, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_event_tags_position ON event_tags (position);
CREATE INDEX IF NOT EXISTS idx_events_event_type ON events (event_type, id);
"""
INSERT_TAG = "INSERT INTO event_tags (tag, position, event_type) VALUES (?, ?, ?)"

Item = tuple[list[str], list[str]]  # (types, tags) of one query item


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))


def match_sql(items: list[Item], after: bool) -> tuple[str, list[object]]:
    """A SELECT of the positions of the events matching any item (`after`: only above the
    position passed as the last parameter), and its parameters."""
    parts: list[str] = []
    params: list[object] = []
    type_only = sorted({name for types, tags in items if not tags for name in types})
    for types, tags in items:
        if not tags:
            continue
        sql = f"SELECT position FROM event_tags WHERE tag IN ({_marks(tags)})"
        params += tags
        if types:
            sql += f" AND event_type IN ({_marks(types)})"
            params += types
        parts.append(f"{sql} GROUP BY position HAVING count(*) = {len(tags)}")
    if type_only:
        parts.append(f"SELECT id AS position FROM events WHERE event_type IN ({_marks(type_only)})")
        params += type_only
    sql = " UNION ".join(parts)
    if after:
        sql = f"SELECT position FROM ({sql}) WHERE position > ? ORDER BY position"
    return sql, params


def read_sql(items: list[Item]) -> tuple[str, list[object]]:
    """The events matching any item, in position order, each with its tags (NUL-separated),
    in the columns of the SQLite store's layout."""
    matched, params = match_sql(items, after=False)
    return (
        "SELECT id, event_id, event_type, payload, version, aggregate_id, aggregate_type,"
        " created_at, (SELECT group_concat(tag, char(0)) FROM event_tags g WHERE g.position = e.id)"
        f" FROM events e WHERE id IN ({matched}) ORDER BY id",
        params,
    )
