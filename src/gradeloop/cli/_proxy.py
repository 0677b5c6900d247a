"""``gradeloop proxy``: an OpenAI-compatible pass-through that records real traffic."""

from __future__ import annotations

from urllib.parse import urlparse

import typer

from .._server import check_listen
from ..errors import InputError
from ._common import err

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def proxy_command(
    upstream: str = typer.Option(..., help="Base URL of the real API, e.g. https://api.openai.com/v1."),
    port: int = typer.Option(8787, min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; anything but loopback exposes the proxy."),
    tag: list[str] = typer.Option([], "--tag", help="Tag every record (repeatable); callers add more with the "
                                                    "X-Gradeloop-Tag header (comma-separated)."),
    sample_rate: float = typer.Option(1.0, min=0.0, max=1.0, help="Share of requests to record (0 to 1)."),
    no_redact: bool = typer.Option(False, "--no-redact", help="Store texts exactly as sent (no redaction)."),
    redact_pattern: list[str] = typer.Option([], "--redact-pattern", help="Extra regular expression to redact "
                                                                          "(repeatable)."),
    redact_region: str = typer.Option(None, "--redact-region", help="Country of phone numbers written without "
                                                                    "+, e.g. DE (default US)."),
) -> None:
    """Relay OpenAI-compatible traffic to --upstream unchanged and record it for `gradeloop harvest`."""
    from ..harvest import make_redactor, run_proxy
    from ..redact import public_url
    from ..store import default_home

    parsed = urlparse(upstream)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"'{upstream}' is not an http(s) URL", field="--upstream")
    make_redactor(not no_redact, redact_pattern, redact_region)  # a bad pattern or region exits 2 here
    check_listen(host, port, host_field="--host", port_field="--port")
    if no_redact:
        err.print("[bold red]WARNING: --no-redact: request and response texts are stored exactly as sent, "
                  "personal data and secrets in them included.[/bold red]")
    if host not in _LOOPBACK:
        err.print(f"warning: listening on {host}: anyone who can reach it can send traffic through it and have "
                  "it recorded")
    err.print(f"recording proxy on http://{host}:{port}/v1 → {public_url(upstream)} (store: {default_home()}); "
              f"point OPENAI_BASE_URL at http://{host}:{port}/v1")
    run_proxy(upstream, host=host, port=port, tags=tag, sample_rate=sample_rate,
              redact=not no_redact, redact_patterns=redact_pattern, redact_region=redact_region)
