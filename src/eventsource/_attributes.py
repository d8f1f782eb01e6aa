"""`ReadOnly`: a public read-only attribute that returns a private one, declared in one line.

    class Portal:
        name: ReadOnly[str] = ReadOnly("_name")
        \"\"\"The portal's name (its thread's name).\"\"\"

stands for the three-line `@property def name(self) -> str: return self._name`; mypy sees
`portal.name` as `str`, and setting it fails as for a property without a setter. A view of the
private attribute names the function it goes through: `ReadOnly("_subscriptions", len)` is the
count, `ReadOnly("_events", list)` a copy the caller may change.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, overload

T = TypeVar("T")


class ReadOnly(property, Generic[T]):
    """A `property` whose getter returns the instance's attribute `attr` (read at C speed by
    `operator.attrgetter`), or `through(attr's value)` when given; it has no setter and no
    deleter."""

    @overload
    def __init__(self, attr: str) -> None: ...

    @overload
    def __init__(self, attr: str, through: Callable[[Any], T]) -> None: ...

    def __init__(self, attr: str, through: Callable[[Any], T] | None = None) -> None:
        read = attrgetter(attr)
        if through is None:
            super().__init__(read, doc=f"Read-only: the value of `{attr}`.")
        else:
            super().__init__(lambda instance: through(read(instance)),
                             doc=f"Read-only: `{through.__name__}` of `{attr}`.")

    if TYPE_CHECKING:  # what mypy sees; at run time `property.__get__` does the work

        @overload
        def __get__(self, instance: None, owner: type[Any], /) -> ReadOnly[T]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> T: ...

        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Any: ...

        def __set__(self, instance: object, value: Never, /) -> None: ...
