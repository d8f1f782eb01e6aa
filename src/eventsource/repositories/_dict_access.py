"""Deprecated dict-style reading of repository results.

Early eventsource-py releases returned dead letters and outbox rows as plain dicts; 0.2.0 made
them dataclasses and kept reading them by key working, with a `DeprecationWarning`. Code
written for it (`entry["event_type"]`, `"status" in entry`, `entry.get(...)`, `entry.keys()`)
keeps working here the same way. The keys are the dataclass fields; anything else is a
`KeyError`, as it was for the dicts.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any

__all__ = ["DeprecatedDictAccess"]


class DeprecatedDictAccess:
    """Read-only mapping methods over a dataclass's fields; every use warns."""

    __slots__ = ()

    def _dict_style(self, how: str, attribute: str | None = None) -> dict[str, Any]:
        """Warn about one dict-style use (naming the attribute to read instead, if there is
        one); the fields as a dict."""
        name = type(self).__name__
        instead = f"entry.{attribute}" if attribute is not None else "its attributes"
        warnings.warn(
            f"dict-style access to {name} ({how}) is deprecated; read {instead} instead",
            DeprecationWarning,
            stacklevel=3,
        )
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        return self._dict_style(f"[{key!r}]", key)[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict_style(f"{key!r} in")

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict_style("iteration"))

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict_style(f".get({key!r})", key).get(key, default)

    def keys(self) -> KeysView[str]:
        return self._dict_style(".keys()").keys()

    def values(self) -> ValuesView[Any]:
        return self._dict_style(".values()").values()

    def items(self) -> ItemsView[str, Any]:
        return self._dict_style(".items()").items()
