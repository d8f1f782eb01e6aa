"""A griffe extension for the reference pages: an attribute declared
`name: ReadOnly[T] = ReadOnly("_name")` (see `eventsource._attributes`) is shown as what it is
to a user, a read-only property of type `T`, not as a class attribute holding a descriptor."""

from __future__ import annotations

from typing import Any

import griffe


class ReadOnlyAsProperty(griffe.Extension):
    """Relabel `ReadOnly[T]` attributes as properties of type `T`, without their value."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        """Called by griffe for each attribute it loads."""
        annotation = attr.annotation
        if isinstance(annotation, griffe.ExprSubscript) and str(annotation.left) == "ReadOnly":
            attr.annotation = annotation.slice
            attr.value = None
            attr.labels.clear()
            attr.labels.add("property")
