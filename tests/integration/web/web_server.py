"""The web app served for real: uvicorn on 127.0.0.1 and a free port, in a thread of its own
(its own event loop, where the app's lifespan opens the store), stopped afterwards."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(url: str, **options: Any) -> Iterator[str]:
    """`create_app(url, **options)` served; its base URL (`http://127.0.0.1:PORT`)."""
    import uvicorn

    from eventsource.web import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(url, **options), host="127.0.0.1", port=port, log_level="warning",
        timeout_graceful_shutdown=1, lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web app did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
