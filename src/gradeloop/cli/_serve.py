"""``gradeloop serve``: an OpenAI-compatible API over gradeloop models."""

from __future__ import annotations

import os
from typing import Optional

import typer

from ..errors import InputError
from ._common import flag_errors


def serve_command(
    model: list[str] = typer.Option(..., "--model", "-m", help="provider/model to serve (repeatable); the request's model id."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server to the network."),
    port: int = typer.Option(8000, help="Port (1 to 65535)."),
    api_key_env: Optional[str] = typer.Option(None, help="Name of an environment variable holding the API key clients must send."),
    base_url: Optional[str] = typer.Option(None, envvar="OPENAI_BASE_URL", help="Upstream server for openai/ models."),
    max_request_mb: float = typer.Option(16.0, help="Largest request body in MB (2**20 bytes); larger ones get a 413."),
) -> None:
    """Serve models over OpenAI's chat-completions API (streaming included)."""
    from ..serve import serve

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"environment variable {api_key_env} is empty or not set", field="--api-key-env")
    with flag_errors("host", "port", "max_request_mb", "base_url"):
        serve(model, host=host, port=port, api_key=api_key, base_url=base_url, max_request_mb=max_request_mb)
