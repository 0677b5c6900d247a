"""An OpenAI-compatible server for local, fine-tuned and any other gradeloop models."""

from __future__ import annotations

import sys
from typing import Any

from .._server import ThreadedServer, check_listen
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
    check_listen(host, port)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: serving on {host} without an API key: anyone who can reach it can use it", file=sys.stderr)

    async def check_all() -> None:
        for name in models:
            await get_provider(name, base_url=base_url).check()

    asyncio.run(check_all())
    app = create_app(models, api_key=api_key, base_url=base_url, max_request_bytes=int(max_request_mb * 2**20))
    uvicorn.run(app, host=host, port=port, log_level=log_level)


class BackgroundServer(ThreadedServer):
    """The server in a background thread (tests, notebooks). ``url`` is the base URL for clients."""

    def __init__(self, models: list[str], *, port: int = 0, api_key: str | None = None, **options: Any) -> None:
        super().__init__(create_app(models, api_key=api_key, **options), port=port, name="gradeloop-serve",
                         start_timeout=120)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"
