"""The command line's test helpers the web's operator views share: an app whose events
evolved (`evolved_app`), raw rows as older code stored them, and retention states."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

from cli_support import ORDER_1, ok
from evolved_app import app, insert_row
from stream_states import change_state

__all__ = ["ORDER_1", "app", "change_state", "insert_row", "ok"]
