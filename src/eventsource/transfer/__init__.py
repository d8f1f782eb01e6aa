"""Moving events between stores: a copy through a transform (`copy_events`, resumable, with a
source-to-target position map and `translate_position` for checkpoints), and JSON-Lines
export and import (`export_jsonl`, `import_jsonl`). See docs/evolution-migration.md."""

from __future__ import annotations

from eventsource.transfer.copy import copy_events, translate_position
from eventsource.transfer.jsonl import export_jsonl, import_jsonl
from eventsource.transfer.progress import ProgressCallback, TransferProgress
from eventsource.transfer.transform import Step, Transform, TransformResult, per_event

__all__ = [
    "ProgressCallback",
    "Step",
    "TransferProgress",
    "Transform",
    "TransformResult",
    "copy_events",
    "export_jsonl",
    "import_jsonl",
    "per_event",
    "translate_position",
]
