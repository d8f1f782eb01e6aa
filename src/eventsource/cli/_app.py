"""`--app module:factory`: importing the user's event classes and projections.

The module is imported (so its `@register_event` classes land in the default registry); with
`:factory`, that attribute is called (or taken as it is, if not callable) and may return
`None`, an `EventRegistry`, or a `CliApp` naming a registry and the projections the commands
may need by name (e.g. `dlq retry`). The current directory is searched first, as
`python -m` would, since console scripts do not put it on `sys.path`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventsource.cli._errors import CliUsageError
from eventsource.events.registry import EventRegistry

__all__ = ["CliApp", "load_app"]


@dataclass
class CliApp:
    """What `--app module:factory` hands the command line.

    `projections`: subscribers by name, or an iterable of them named like the subscription
    manager names them (`projection_name`, else the class name).
    """

    registry: EventRegistry | None = None
    projections: Mapping[str, Any] | Iterable[Any] = field(default_factory=dict)

    def projection_map(self) -> dict[str, Any]:
        """The projections by name."""
        if isinstance(self.projections, Mapping):
            return dict(self.projections)
        return {_name_of(each): each for each in self.projections}


def _name_of(subscriber: Any) -> str:
    name = getattr(subscriber, "projection_name", None)
    return name if isinstance(name, str) else type(subscriber).__name__


async def load_app(spec: str | None) -> CliApp:
    """Import `spec` (`module` or `module:attribute`) and build the `CliApp` it describes."""
    if not spec:
        return CliApp()
    module_name, _, attribute = spec.partition(":")
    if not module_name or (":" in spec and not attribute):
        raise CliUsageError(f"--app {spec!r} is not of the form module or module:factory")
    module = _import(module_name, spec)
    if not attribute:
        return CliApp()
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CliUsageError(f"--app {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    made = target() if callable(target) and not isinstance(target, EventRegistry) else target
    if inspect.isawaitable(made):
        made = await made
    return _as_app(made, spec)


def _import(module_name: str, spec: str, option: str = "--app") -> Any:
    """Import `module_name` (of the option's value `spec`), the current directory first."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(f"{missing}.")):
            raise CliUsageError(
                f"{option} {spec!r}: no module named {missing!r} (the current directory and "
                "PYTHONPATH are searched)"
            ) from exc
        raise  # the user's module failed to import something it needs


def _as_app(made: Any, spec: str) -> CliApp:
    if made is None:
        return CliApp()
    if isinstance(made, CliApp):
        return made
    if isinstance(made, EventRegistry):
        return CliApp(registry=made)
    raise CliUsageError(
        f"--app {spec!r} returned a {type(made).__name__}; expected a CliApp, an "
        "EventRegistry or None"
    )
