"""`events types` says what each stored type and version reads as under the app's classes
and upcasters, and flags what cannot be read (SQLite file and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from cli_support import ok, ok_json, store_url_fixture  # noqa: F401 - fixture
from evolved_app import insert_row

APP = "evolved_app:app"


def _seed(url: str) -> None:
    ok(url, "db", "init", "--yes")
    insert_row(url, "ParcelMeasured", 1, {"weight_kg": 1.25}, 1)
    insert_row(url, "ParcelMeasured", 1, {"weight_kg": 2.0}, 2)
    insert_row(url, "ParcelWeighed", 2, {"grams": 5}, 3)
    insert_row(url, "ParcelWeighed", 3, {"grams": 10, "unit": "kg"}, 4)
    insert_row(url, "ParcelWeighed", 5, {"grams": 10, "unit": "kg", "box": "S"}, 5)
    insert_row(url, "ParcelLabelled", 1, {"label": "fragile"}, 6)
    insert_row(url, "Mystery", 1, {}, 7)
    insert_row(url, "ParcelPacked", 1, {"grams": 3, "label": "x"}, 8)


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(row["event_type"], row["event_version"]): row for row in rows}


def test_types_resolve_old_names_and_upcaster_chains(store_url: str) -> None:
    _seed(store_url)
    rows = _by_key(ok_json(store_url, "--app", APP, "events", "types")["types"])
    old = rows["ParcelMeasured", 1]
    assert old["count"] == 2
    assert (old["class"], old["current_type"], old["current_version"]) == (
        "evolved_app.ParcelWeighed", "ParcelWeighed", 3
    )
    assert (old["status"], old["flagged"]) == ("upcast", False)
    assert len(old["upcasters"]) == 2
    assert "ParcelMeasured v1→v2" in old["upcasters"][0]
    assert "ParcelWeighed v2→v3" in old["upcasters"][1]
    middle = rows["ParcelWeighed", 2]
    assert (middle["status"], len(middle["upcasters"])) == ("upcast", 1)
    assert rows["ParcelWeighed", 3]["status"] == "current"
    assert rows["ParcelWeighed", 3]["upcasters"] == []
    split = rows["ParcelPacked", 1]
    assert (split["status"], split["class"], split["flagged"]) == ("split", None, False)
    assert split["split_into"] == ["ParcelWeighed", "ParcelLabelled"]


def test_types_flag_versions_no_code_can_read(store_url: str) -> None:
    _seed(store_url)
    rows = _by_key(ok_json(store_url, "--app", APP, "events", "types")["types"])
    newer = rows["ParcelWeighed", 5]
    assert (newer["status"], newer["flagged"]) == ("newer", True)
    no_path = rows["ParcelLabelled", 1]
    assert (no_path["status"], no_path["flagged"], no_path["current_version"]) == (
        "no_path", True, 2
    )
    unknown = rows["Mystery", 1]
    assert (unknown["status"], unknown["known"], unknown["class"]) == ("unknown", False, None)
    flagged = sorted(key for key, row in rows.items() if row["flagged"])
    assert flagged == [("Mystery", 1), ("ParcelLabelled", 1), ("ParcelWeighed", 5)]


def test_types_table_says_what_each_reads_as(store_url: str) -> None:
    _seed(store_url)
    out = ok(store_url, "--app", APP, "events", "types").stdout
    lines = [line.strip() for line in out.splitlines()]
    old = next(line for line in lines if line.startswith("ParcelMeasured"))
    assert "ParcelWeighed v3" in old
    assert "upcasters" in old
    assert "NO UPCASTER PATH" in next(line for line in lines if line.startswith("ParcelLabelled"))
    assert "NEWER" in next(line for line in lines if "ParcelWeighed" in line and " 5 " in line)
    assert "UNKNOWN" in next(line for line in lines if line.startswith("Mystery"))
    packed = next(line for line in lines if line.startswith("ParcelPacked"))
    assert "ParcelWeighed + ParcelLabelled" in packed


def test_without_the_app_every_type_is_unknown_but_counted(store_url: str) -> None:
    _seed(store_url)
    rows = ok_json(store_url, "events", "types")["types"]
    assert {row["status"] for row in rows} == {"unknown"}
    assert sum(row["count"] for row in rows) == 8
