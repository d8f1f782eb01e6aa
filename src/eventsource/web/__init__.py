"""The web UI and JSON API for looking into a store (the `web` extra): see docs/web.md.

`create_app(store)` is an ASGI app (Starlette, Jinja2 templates, a small script of its own:
nothing loaded from elsewhere, so it works offline) to mount behind your own authentication;
`eventsource web` serves it. Importing this package loads neither Starlette nor Jinja2; using
`create_app` without the extra raises `MissingExtraError` naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes

if TYPE_CHECKING:
    from eventsource.web.app import create_app as create_app

__all__ = ["create_app"]

if not TYPE_CHECKING:
    __getattr__ = lazy_attributes(__name__, {"create_app": "eventsource.web.app"})
