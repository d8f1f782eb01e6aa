"""The personal-data key tables and statements, written once for SQLite and PostgreSQL.

`personal_data_keys` holds one wrapped data key per (subject, group); `personal_data_erasures`
records each erasure (group `*`: the whole subject) and, once re-enrolled, when. Every value
is TEXT (wrapped keys base64), so both dialects take the same statements; named `:param`
placeholders suit sqlite3 and SQLAlchemy's `text()`. Only the set of subject ids a fetch asks
for is spelt per dialect (`subjects_in`): a JSON array expanded by the database.
"""

from __future__ import annotations

__all__ = [
    "ALL_GROUPS",
    "CREATE_KEY",
    "DDL",
    "ENROL",
    "FORGET_DELETE",
    "FORGET_RECORD",
    "KNOWN",
    "NOTIFY_CHANNEL",
    "REWRAP",
    "WRAPPED_KEYS",
    "fetch_sql",
]

ALL_GROUPS = "*"  # an erasure of every group of a subject
NOTIFY_CHANNEL = "eventsource_personal_data"  # PostgreSQL: erasures and enrolments, by subject

DDL = (
    """CREATE TABLE IF NOT EXISTS personal_data_keys (
    subject_id TEXT NOT NULL,
    key_group TEXT NOT NULL,
    key_id TEXT NOT NULL UNIQUE,
    wrapped_key TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (subject_id, key_group))""",
    """CREATE TABLE IF NOT EXISTS personal_data_erasures (
    subject_id TEXT NOT NULL,
    key_group TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    enrolled_at TEXT,
    PRIMARY KEY (subject_id, key_group))""",
)

_SUBJECTS = {
    "sqlite": "SELECT value FROM json_each(:subjects)",
    "postgresql": "SELECT jsonb_array_elements_text(CAST(:subjects AS JSONB))",
}


def fetch_sql(dialect: str) -> str:
    """Every key and erasure of the subjects in JSON array `:subjects`, in one statement:
    (subject, group, key id, wrapped key, KEK id, NULL) for a key, (subject, group, NULL, NULL,
    NULL, 1 while erased / 0 once re-enrolled) for an erasure."""
    subjects = _SUBJECTS[dialect]
    return f"""SELECT subject_id, key_group, key_id, wrapped_key, kek_id, NULL
FROM personal_data_keys WHERE subject_id IN ({subjects})
UNION ALL
SELECT subject_id, key_group, NULL, NULL, NULL, CASE WHEN enrolled_at IS NULL THEN 1 ELSE 0 END
FROM personal_data_erasures WHERE subject_id IN ({subjects})"""


# A new key, unless the subject (or this group of it) is erased and not re-enrolled, or a key
# exists already (another writer was first: the caller reads back the one that won).
CREATE_KEY = """INSERT INTO personal_data_keys
    (subject_id, key_group, key_id, wrapped_key, kek_id, created_at)
SELECT CAST(:subject_id AS TEXT), CAST(:key_group AS TEXT), CAST(:key_id AS TEXT),
    CAST(:wrapped_key AS TEXT), CAST(:kek_id AS TEXT), CAST(:created_at AS TEXT)
WHERE NOT EXISTS (SELECT 1 FROM personal_data_erasures e WHERE e.subject_id = :subject_id
    AND e.key_group IN (:key_group, '*') AND e.enrolled_at IS NULL)
ON CONFLICT (subject_id, key_group) DO NOTHING"""

KNOWN = """SELECT (SELECT COUNT(*) FROM personal_data_keys WHERE subject_id = :subject_id)
    + (SELECT COUNT(*) FROM personal_data_erasures WHERE subject_id = :subject_id)"""

FORGET_DELETE = """DELETE FROM personal_data_keys WHERE subject_id = :subject_id
    AND (:key_group = '*' OR key_group = :key_group)"""

FORGET_RECORD = """INSERT INTO personal_data_erasures (subject_id, key_group, erased_at)
VALUES (:subject_id, :key_group, :now)
ON CONFLICT (subject_id, key_group) DO UPDATE SET erased_at = excluded.erased_at,
    enrolled_at = NULL"""

ENROL = """UPDATE personal_data_erasures SET enrolled_at = :now
WHERE subject_id = :subject_id AND enrolled_at IS NULL"""

WRAPPED_KEYS = "SELECT subject_id, key_group, key_id, wrapped_key, kek_id FROM personal_data_keys"

REWRAP = """UPDATE personal_data_keys SET wrapped_key = :wrapped_key, kek_id = :kek_id
WHERE key_id = :key_id"""
