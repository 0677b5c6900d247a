"""The read-only web viewer (``gradeloop view``) and the offline HTML report (``gradeloop eval
report``) over the store. Pages are server-rendered HTML with JSON twins; plots are Plotly
figures drawn by the plotly.js that the ``plotly`` wheel ships (served locally or inlined)."""

from __future__ import annotations

from pathlib import Path

from .._server import ThreadedServer, check_listen
from ._app import create_app
from ._report import build_report, write_report

__all__ = ["create_app", "serve_viewer", "build_report", "write_report", "BackgroundViewer"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _store_path(store_path: str | Path | None) -> Path:
    from ..store import default_home

    return Path(store_path) if store_path else default_home() / "gradeloop.db"


def serve_viewer(store_path: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 8484,
                 token: str | None = None, log_level: str = "warning") -> None:
    """Serve the viewer until interrupted. A host other than loopback needs ``token`` (InputError,
    exit 2, otherwise); the store must exist (NotFoundError otherwise)."""
    import uvicorn

    from .._checks import check_port
    from ..errors import InputError
    from ..store import Store

    check_port(port)
    if host not in LOOPBACK and not token:
        raise InputError(f"--host {host} exposes the viewer beyond this machine: give --token", field="token")
    path = _store_path(store_path)
    Store.open_readonly(path).conn.close()  # a missing or too new store fails here, before listening
    check_listen(host, port)
    print(f"gradeloop view: http://{host}:{port}/ (read-only over {path}; Ctrl-C stops it)")
    hosts = ["127.0.0.1", "localhost", "[::1]"] if host in LOOPBACK else None
    uvicorn.run(create_app(path, token=token, allowed_hosts=hosts), host=host, port=port, log_level=log_level)


class BackgroundViewer(ThreadedServer):
    """The viewer on 127.0.0.1 in a background thread (tests, benchmarks, screenshots)."""

    def __init__(self, store_path: str | Path, *, token: str | None = None, port: int = 0) -> None:
        app = create_app(store_path, token=token, allowed_hosts=["127.0.0.1", "localhost"])
        super().__init__(app, port=port, name="gradeloop-view", lifespan="off")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"
