"""What gradeloop's three HTTP servers (``serve``, ``proxy``, ``view``) share: refusing an
address that cannot be listened on before anything slow starts, and running a uvicorn server in
a background thread for tests, notebooks and benchmarks."""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

from .errors import InputError

__all__ = ["ThreadedServer", "check_listen", "free_port"]


def check_listen(host: str, port: int, *, host_field: str = "host", port_field: str = "port") -> None:
    """Raise InputError (naming ``host_field`` or ``port_field``) when this process cannot
    listen on ``host:port``: uvicorn's own failure would come later, as a log line."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"cannot resolve '{host}': {exc} (an interface address such as 127.0.0.1 or 0.0.0.0)",
                         field=host_field) from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InputError(f"{port} is already in use on {host} (a free port)", field=port_field) from None
            raise InputError(f"cannot listen on '{host}': {exc.strerror} (an address of this machine, "
                             "such as 127.0.0.1 or 0.0.0.0)", field=host_field) from None


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThreadedServer:
    """A uvicorn server for ``app`` on 127.0.0.1 in a daemon thread; a context manager that
    returns once the server accepts connections."""

    def __init__(self, app: Any, *, port: int = 0, name: str = "gradeloop-server", start_timeout: float = 60,
                 **config: Any) -> None:
        import uvicorn

        self.port = port or free_port()
        self.start_timeout = start_timeout
        options = {"log_level": "warning", "lifespan": "on", **config}
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, **options))
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self._thread.start()
        deadline = time.time() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.time() > deadline:
                raise RuntimeError(f"{self._thread.name} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(60)
