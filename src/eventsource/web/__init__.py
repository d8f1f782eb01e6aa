"""The web UI and JSON API for looking into a store (the `web` extra): see docs/web.md.

`create_app(store)` is an ASGI app (Starlette, Jinja2 templates, a small script of its own:
nothing loaded from elsewhere, so it works offline) to mount behind your own authentication;
`eventsource web` serves it.
"""

from __future__ import annotations

from eventsource.web.app import create_app

__all__ = ["create_app"]
