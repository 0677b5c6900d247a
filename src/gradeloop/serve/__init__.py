"""An OpenAI-compatible server for local, fine-tuned and any other gradeloop models."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from ._app import RequestError, create_app, parse_chat_request

__all__ = ["RequestError", "create_app", "parse_chat_request", "serve", "BackgroundServer"]


def serve(models: list[str], *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          base_url: str | None = None, log_level: str = "info", max_request_mb: float = 16.0) -> None:
    """Serve ``models`` until interrupted (uvicorn in the foreground); request bodies over
    ``max_request_mb`` (MB of 2**20 bytes) are answered 413. Bad model names, option values and
    unreachable upstreams raise InputError before anything listens."""
    import asyncio

    import uvicorn

    from .._checks import check_base_url, check_port, positive
    from ..models import get_provider

    check_port(port)
    positive(max_request_mb, "max_request_mb", "megabytes")
    check_base_url(base_url)
    _check_listen(host, port)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: serving on {host} without an API key: anyone who can reach it can use it", file=sys.stderr)

    async def check_all() -> None:
        for name in models:
            await get_provider(name, base_url=base_url).check()

    asyncio.run(check_all())
    app = create_app(models, api_key=api_key, base_url=base_url, max_request_bytes=int(max_request_mb * 2**20))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _check_listen(host: str, port: int) -> None:
    """Refuse (InputError naming host or port) an address this process cannot listen on, before
    minutes of model loading; uvicorn's own failure would come after them, as a log line."""
    import errno
    import socket

    from ..errors import InputError

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"cannot resolve '{host}': {exc} (an interface address such as 127.0.0.1 or 0.0.0.0)",
                         field="host") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"{port} is already in use on {host} (a free port)", field="port") from None
            raise InputError(f"cannot listen on '{host}': {exc.strerror} (an address of this machine, "
                             "such as 127.0.0.1 or 0.0.0.0)", field="host") from None


class BackgroundServer:
    """The server in a background thread (tests, notebooks). ``url`` is the base URL for clients."""

    def __init__(self, models: list[str], *, port: int = 0, api_key: str | None = None, **options: Any) -> None:
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        config = uvicorn.Config(create_app(models, api_key=api_key, **options), host="127.0.0.1", port=port,
                                log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="gradeloop-serve", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.time() + 120
        while not self._server.started:
            if not self._thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(30)
