"""`create_app(store)`: the web UI and its JSON API, an ASGI app (Starlette).

Each page and its `/api/` twin share one data function (`_data.py`): the page renders the
dict with a Jinja2 template (autoescaped: stored data is shown as text, never as markup), the
API returns it as JSON. Changes (dead-letter retry and resolve, checkpoint reset) exist only
with `allow_writes=True`, and then need a confirmation page and the CSRF token that goes with
the browser's cookie (`X-CSRF-Token` header for the API).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from uuid import UUID

from eventsource.cli._app import CliApp
from eventsource.cli._errors import CliError, CliUsageError, ConflictError, NotFoundError
from eventsource.cli._events import event_record
from eventsource.cli._output import to_json
from eventsource.exceptions import EventSourceError, MissingExtraError
from eventsource.stores.interface import EventStore
from eventsource.web import _actions, _data
from eventsource.web._state import WebState, open_state

try:
    from jinja2 import Environment, FileSystemLoader, pass_context
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - the core run has no web extra
    raise MissingExtraError("The web UI", "starlette and jinja2", "web") from exc

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_COOKIE = "eventsource_csrf"
_PAGE = 50
_TAIL_PAGE = 500
_TAIL_WAIT = 0.5  # seconds between looks for new commits another process made (SQLite)

Data = Callable[[Request, WebState], Awaitable[dict[str, Any]]]


def _limit(request: Request, default: int = _PAGE) -> int:
    text = request.query_params.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise CliUsageError(f"limit {text!r}: a whole number from 1 to 1000")
    return int(text)


def _param(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


async def _dashboard(request: Request, state: WebState) -> dict[str, Any]:
    return await _data.dashboard(state.db, state.tables)


async def _streams(request: Request, state: WebState) -> dict[str, Any]:
    prefix, aggregate_type = _param(request, "prefix"), _param(request, "type")
    found = await _data.streams_page(
        state.db, prefix=prefix, aggregate_type=aggregate_type,
        cursor=_param(request, "cursor"), limit=_limit(request),
    )
    return {**found, "prefix": prefix or "", "type": aggregate_type or ""}


async def _stream(request: Request, state: WebState) -> dict[str, Any]:
    return await _data.stream_detail(
        state.db, state.tables, request.path_params["stream_id"],
        _param(request, "cursor"), _limit(request, 100),
    )


async def _log(request: Request, state: WebState) -> dict[str, Any]:
    cursor = _param(request, "cursor")
    found = await _data.log_page(state.db, cursor, _limit(request))
    # The live tail goes on after the newest event shown: nothing committed in between is lost.
    head = found["events"][0]["global_position"] if found["events"] else 0
    return {**found, "live": cursor is None, "head": head}


async def _event(request: Request, state: WebState) -> dict[str, Any]:
    position = request.path_params["position"]
    return await _data.event_detail(state.db, position, state.app.registry)


async def _subscriptions(request: Request, state: WebState) -> dict[str, Any]:
    return await _data.subscriptions(state.db, state.tables)


async def _dlq(request: Request, state: WebState) -> dict[str, Any]:
    status = request.query_params.get("status", "failed")
    found = await _data.dlq_page(
        state.db, state.tables, status, _param(request, "projection"), _limit(request)
    )
    return {**found, "status": status}


async def _dlq_entry(request: Request, state: WebState) -> dict[str, Any]:
    return await _data.dlq_entry(state.db, state.tables, request.path_params["dlq_id"])


# (page path, API path, template, data): every page has its API twin.
_PAGES: list[tuple[str, str, str, Data]] = [
    ("/", "/api/dashboard", "dashboard.html", _dashboard),
    ("/streams", "/api/streams", "streams.html", _streams),
    ("/streams/{stream_id}", "/api/streams/{stream_id}", "stream.html", _stream),
    ("/log", "/api/log", "log.html", _log),
    ("/events/{position:int}", "/api/events/{position:int}", "event.html", _event),
    ("/subscriptions", "/api/subscriptions", "subscriptions.html", _subscriptions),
    ("/dlq", "/api/dlq", "dlq.html", _dlq),
    ("/dlq/{dlq_id:int}", "/api/dlq/{dlq_id:int}", "dlq_entry.html", _dlq_entry),
]

_STATUS = {CliUsageError: 400, NotFoundError: 404, ConflictError: 409}


def _status_of(exc: EventSourceError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    # CliError: the store could not be read; any other (a corrupt row): the server's failure
    return 503 if isinstance(exc, CliError) else 500


def _pretty(value: Any) -> str:
    return to_json(value)


def _compact(value: Any) -> str:
    return to_json(value, indent=None)


@pass_context
def _url(context: Mapping[str, Any], path: str, **query: Any) -> str:
    """`path` under the app's mount point, with the non-empty `query` parameters."""
    request: Request = context["request"]
    root = request.scope.get("root_path", "").rstrip("/")
    shown = {key: value for key, value in query.items() if value not in (None, "")}
    tail = f"?{urlencode(shown)}" if shown else ""
    return f"{root}{quote(path, safe='/:@')}{tail}"


class _Site:
    """The routes' handlers, around one `WebState` (set by the lifespan)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.state: WebState | None = None
        env = Environment(
            loader=FileSystemLoader(_HERE / "templates"), autoescape=True, enable_async=False
        )
        env.filters["pretty"] = _pretty
        env.filters["tojson_text"] = _compact
        env.globals["url"] = _url
        self.env = env

    def current(self) -> WebState:
        assert self.state is not None, "the app's lifespan has not run"
        return self.state

    def _render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        state = self.current()
        nonce = request.cookies.get(_COOKIE) or secrets.token_urlsafe(24)
        body = self.env.get_template(template).render(
            **context, title=self.title, request=request, allow_writes=state.allow_writes,
            csrf_token=state.csrf_token(nonce), tenant=state.tenant,
        )
        response = HTMLResponse(body, status_code=status)
        if _COOKIE not in request.cookies:
            response.set_cookie(_COOKIE, nonce, httponly=True, samesite="strict")
        return response

    async def _read(self, request: Request, data: Data) -> dict[str, Any]:
        state = self.current()
        with state.scope():
            return await data(request, state)

    def page(self, template: str, data: Data) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                context = await self._read(request, data)
            except EventSourceError as exc:
                return self._error(request, exc)
            return self._render(request, template, context)

        return endpoint

    def api(self, data: Data) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return _json(await self._read(request, data))
            except EventSourceError as exc:
                return _json({"error": _message(exc)}, _status_of(exc))

        return endpoint

    def _error(
        self, request: Request, exc: EventSourceError, status: int | None = None
    ) -> Response:
        code = status or _status_of(exc)
        return self._render(request, "error.html", {"message": _message(exc)}, code)

    # -- changes -------------------------------------------------------------------------

    def _forbidden(self) -> CliError | None:
        if self.current().allow_writes:
            return None
        return CliError("this server is read-only: start it with --allow-writes to change data")

    def confirm(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        """GET: the confirmation page of a change to a `kind` (403 when read-only)."""

        async def endpoint(request: Request) -> Response:
            state = self.current()
            try:
                action, key = _actions.target(kind, request.path_params)
                refused = self._forbidden()
                if refused is not None:
                    return self._error(request, refused, 403)
                with state.scope():
                    plan, expect = await _actions.plan(state, action, key)
            except EventSourceError as exc:
                return self._error(request, exc)
            context = {"plan": plan, "expect": expect, "action": action, "key": key,
                       "kind": kind}
            return self._render(request, "confirm.html", context)

        return endpoint

    def change(self, kind: str, *, api: bool) -> Callable[[Request], Awaitable[Response]]:
        """POST (form, or API with the `X-CSRF-Token` header): the change, if writes are
        allowed and the token fits the cookie."""

        async def endpoint(request: Request) -> Response:
            state = self.current()
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            token = request.headers.get("x-csrf-token") if api else form.get("csrf_token")
            refused = self._forbidden()
            if refused is None and not state.csrf_ok(request.cookies.get(_COOKIE), token):
                refused = CliError("missing or wrong CSRF token: reload the page and try again")
            try:
                action, key = _actions.target(kind, request.path_params)
                if refused is not None:
                    raise refused
                with state.scope():
                    expect = form.get("expect") or (await _actions.plan(state, action, key))[1]
                    outcome = await _actions.apply(state, action, key, expect)
            except EventSourceError as exc:
                status = 403 if exc is refused else _status_of(exc)
                if api:
                    return _json({"error": _message(exc)}, status)
                return self._error(request, exc, status)
            if api:
                return _json(outcome)
            context = {"outcome": outcome, "action": action, "key": key, "kind": kind}
            return self._render(request, "done.html", context)

        return endpoint

    async def csrf(self, request: Request) -> Response:
        """The token for API clients: sets the cookie, returns the matching token."""
        state = self.current()
        nonce = request.cookies.get(_COOKIE) or secrets.token_urlsafe(24)
        response = _json({"csrf_token": state.csrf_token(nonce), "writes": state.allow_writes})
        response.set_cookie(_COOKIE, nonce, httponly=True, samesite="strict")
        return response

    async def tail(self, request: Request) -> Response:
        """Server-sent events: each event committed after `after` (default: the head), as
        it is committed; with `until`, the stream ends after that position."""
        state = self.current()
        try:
            after = _int_param(request, "after")
            until = _int_param(request, "until")
            with state.scope():
                if after is None:
                    after = await state.db.store.get_global_position()
                cursor = await state.db.store.cursor_for_position(after)
        except EventSourceError as exc:
            return _json({"error": _message(exc)}, _status_of(exc))
        return StreamingResponse(
            self._tail(state, cursor, until), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def _tail(self, state: WebState, cursor: str, until: int | None) -> AsyncIterator[str]:
        store = state.db.store
        yield ": live\n\n"
        while True:
            with state.scope():
                page = await store.read_committed(cursor, _TAIL_PAGE)
            cursor = page.cursor
            for stored in page.events:
                record = event_record(stored)
                text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                yield f"id: {stored.global_position}\nevent: event\ndata: {text}\n\n"
                if until is not None and stored.global_position >= until:
                    return
            if len(page.events) < _TAIL_PAGE:
                await store.wait_for_new_events(_TAIL_WAIT)


def _int_param(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise CliUsageError(f"{name} {text!r}: a global position (a whole number)")
    return int(text)


def _message(exc: EventSourceError) -> str:
    return " ".join(str(exc).split())


def _json(value: Any, status: int = 200) -> Response:
    return Response(to_json(value), status_code=status, media_type="application/json")


def create_app(
    store: EventStore | str,
    *,
    app: CliApp | None = None,
    allow_writes: bool = False,
    tenant: UUID | str | None = None,
    title: str = "eventsource",
) -> Starlette:
    """The web UI and `/api/` over `store`: an ASGI app to serve or mount behind your auth.

    `store` is a store URL (`sqlite:///path.db`, `postgresql://...`; opened when the app
    starts, on its event loop, and closed when it stops) or an open SQLite or PostgreSQL
    event store you own. `app` brings your event classes and the projections a dead-letter
    retry hands events to (as `--app` does for the command line). Read-only unless
    `allow_writes`; with `tenant`, only that tenant's data is shown.
    """
    site = _Site(title)
    chosen = app or CliApp()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with open_state(store, chosen, allow_writes, tenant) as state:
            site.state = state
            try:
                yield
            finally:
                site.state = None

    routes: list[Route | Mount] = [
        Route("/api/log/tail", site.tail),
        Route("/api/csrf", site.csrf),
    ]
    for path, api_path, template, data in _PAGES:
        routes.append(Route(path, site.page(template, data)))
        routes.append(Route(api_path, site.api(data)))
    routes.insert(0, Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"))
    for kind in _actions.KINDS:
        change = f"/{kind}/{{key:str}}/{{action:str}}"
        routes += [
            Route(change, site.confirm(kind), methods=["GET"]),
            Route(change, site.change(kind, api=False), methods=["POST"]),
            Route(f"/api{change}", site.change(kind, api=True), methods=["POST"]),
        ]
    return Starlette(routes=routes, lifespan=lifespan)
