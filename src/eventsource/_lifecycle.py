"""`async with` for objects that start and stop (or open and close): written once.

Stdlib only, so any layer may use it: a class names what entering and leaving mean by
overriding two hooks, and the protocol methods stay the same everywhere.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType


class AsyncContext:
    """Mixin: `async with obj` awaits `_enter_context()`, and `_exit_context()` on the way out,
    whether the block raised or not (the exception is never swallowed)."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        await self._enter_context()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._exit_context()

    @abstractmethod
    async def _enter_context(self) -> None:
        """Start or open the object."""

    @abstractmethod
    async def _exit_context(self) -> None:
        """Stop or close the object."""
