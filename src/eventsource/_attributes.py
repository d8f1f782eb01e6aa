"""`ReadOnly`: a public read-only attribute that returns a private one, declared in one line.

    class Portal:
        name: ReadOnly[str] = ReadOnly("_name")
        \"\"\"The portal's name (its thread's name).\"\"\"

stands for the three-line `@property def name(self) -> str: return self._name`; mypy sees
`portal.name` as `str`, and setting it fails as for a property without a setter.
"""

from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, overload

T = TypeVar("T")


class ReadOnly(property, Generic[T]):
    """A `property` whose getter returns the instance's attribute `attr` (read at C speed by
    `operator.attrgetter`); it has no setter and no deleter."""

    def __init__(self, attr: str) -> None:
        super().__init__(attrgetter(attr), doc=f"Read-only: the value of `{attr}`.")

    if TYPE_CHECKING:  # what mypy sees; at run time `property.__get__` does the work

        @overload
        def __get__(self, instance: None, owner: type[Any], /) -> ReadOnly[T]: ...

        @overload
        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> T: ...

        def __get__(self, instance: object, owner: type[Any] | None = None, /) -> Any: ...

        def __set__(self, instance: object, value: Never, /) -> None: ...
