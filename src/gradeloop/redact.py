"""Secrets out of text: API keys, passwords and tokens never reach the store, exports, logs or
the terminal.

What counts as a secret:

- values: those of the environment variables that hold credentials (names ending in ``_KEY``
  (``OPENAI_API_KEY``, ``AZURE_OPENAI_KEY``, ``AWS_SECRET_ACCESS_KEY``), ``APIKEY``, ``_TOKEN``,
  ``_SECRET``, or containing ``PASSWORD`` / ``PASSWD``); the user, password and query values of URLs in
  ``*_URL`` / ``*_PROXY`` variables; and whatever :func:`register_secret` and :func:`register_url`
  were given (a provider's key from its ``api_key_env``, a ``--base-url``). A URL's password also
  counts in its HTTP Basic form, ``base64(user:password)``. Values shorter than
  :data:`MIN_SECRET_LENGTH` characters are left alone: replacing a three-letter password wherever
  it occurs would wreck ordinary text. A query value named ``api-version`` or ``version`` is not a
  secret.
- patterns, whatever their value: ``Bearer <token with a digit>``, ``sk-…`` keys (``sk-proj-…``
  too), ``Authorization: …`` / ``api-key=…`` / ``access_token=…`` header and query values, and the
  value of an ``authorization`` / ``api-key`` field in JSON text.

Each is replaced by ``***`` (``sk-***``, ``Bearer ***``, ``api-key=***``). Replacements never cross a
JSON string's quotes, so :func:`scrub` may run over a JSON document as text and leave it valid.
This module imports nothing else from gradeloop.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["MIN_SECRET_LENGTH", "MASK", "register_secret", "register_url", "secret_values", "scrub", "scrub_json",
           "public_url", "url_was_redacted", "ScrubbedStream", "scrub_std_streams"]

MIN_SECRET_LENGTH = 8
MASK = "***"

_SECRET_ENV = re.compile(r"(_KEY|APIKEY|_TOKEN|_SECRET)$|^(API_KEY|APIKEY|TOKEN|SECRET)$|PASSW(OR)?D", re.IGNORECASE)
_URL_ENV = re.compile(r"(_URL|_PROXY)$", re.IGNORECASE)
_PUBLIC_QUERY = frozenset({"api-version", "api_version", "version"})
_TOKEN = r"[A-Za-z0-9._~+/=-]"
_FIELDS = r"(?:proxy-)?authorization|x-api-key|api[-_]?key"
# one alternative per kind; a named group is the part kept before the mask
_PATTERNS = "|".join((
    rf"(?P<bearer>\b[Bb]earer\s+)(?={_TOKEN}*\d){_TOKEN}{{8,}}",
    r"(?P<sk>\bsk-)[A-Za-z0-9_-]{16,}",
    rf"(?P<header>\b(?i:{_FIELDS}|access[-_]token)\s*[:=]\s*(?:(?i:bearer|basic|token)\s+)?)(?={_TOKEN}*\d)"
    rf"{_TOKEN}{{8,}}",
    rf'(?P<field>"(?i:{_FIELDS})"\s*:\s*")(?:[^"\\]|\\.)+(?=")',
))

_TRIGGERS = ("bearer", "sk-", "authorization", "api-key", "api_key", "apikey", "access-token", "access_token")

_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Treat ``value`` as a secret from now on in this process (ignored when shorter than
    :data:`MIN_SECRET_LENGTH`)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _registered.add(value)


def register_url(url: str | None) -> None:
    """Treat the credentials in ``url`` as secrets: its user and password (also percent-decoded),
    their HTTP Basic form, and its query values."""
    for value in _url_secrets(url):
        register_secret(value)


def _url_secrets(url: str | None) -> list[str]:
    if not url or ("@" not in url and "?" not in url):
        return []
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    user, _, password = userinfo.partition(":")
    out = [user, unquote(user), password, unquote(password)] if userinfo else []
    if password:
        for u, p in ((user, password), (unquote(user), unquote(password))):
            out.append(base64.b64encode(f"{u}:{p}".encode()).decode())
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if unquote(name).lower() not in _PUBLIC_QUERY:
            out += [value, unquote(value.replace("+", " "))]
    return out


def secret_values() -> set[str]:
    """The secret values known now: from the environment and registered (at least
    :data:`MIN_SECRET_LENGTH` characters each)."""
    values = set(_registered) | _env_secrets()
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


_env_seen: tuple[Any, frozenset[str]] | None = None


def _env_secrets() -> frozenset[str]:
    global _env_seen
    raw = getattr(os.environ, "_data", None)  # CPython's undecoded copy: comparing it is cheap
    if _env_seen is not None and raw is not None and _env_seen[0] == raw:
        return _env_seen[1]
    values: set[str] = set()
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name):
            values.add(value)
        elif _URL_ENV.search(name):
            values.update(_url_secrets(value))
    found = frozenset(values)
    _env_seen = (dict(raw) if raw is not None else None, found)
    return found


def _forms(value: str) -> set[str]:
    """``value`` as it may appear in text: raw, inside JSON (either escaping), percent-encoded."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe="")}


class _Matcher:
    """The compiled pattern for one set of secret values, with a cheap test that skips the
    regex for text that holds no secret and no trigger word."""

    def __init__(self, values: frozenset[str]) -> None:
        self.values = values
        self.forms = sorted({f for v in values for f in _forms(v)}, key=len, reverse=True)
        literal = "|".join(re.escape(f) for f in self.forms)
        self.regex = re.compile(f"(?:{literal})|{_PATTERNS}" if literal else _PATTERNS)

    def sub(self, text: str) -> str:
        if len(text) < MIN_SECRET_LENGTH:  # shorter than any secret and any pattern's match
            return text
        low = text.lower()
        if any(t in low for t in _TRIGGERS) or any(f in text for f in self.forms):
            return self.regex.sub(_replace, text)
        return text


_compiled: _Matcher | None = None


def _matcher() -> _Matcher:
    global _compiled
    values = frozenset(secret_values())
    if _compiled is None or _compiled.values != values:
        _compiled = _Matcher(values)
    return _compiled


def _replace(match: re.Match[str]) -> str:
    kept = match.group("bearer") or match.group("sk") or match.group("header") or match.group("field") or ""
    return kept + MASK


def scrub(text: str) -> str:
    """``text`` with every secret value and secret-looking token replaced (see the module doc)."""
    return _matcher().sub(text)


def scrub_json(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings, numbers) with :func:`scrub`
    applied to every string, dict keys included; other values are returned as they are."""
    return _scrub_value(value, _matcher())


def _scrub_value(value: Any, matcher: _Matcher) -> Any:
    if isinstance(value, str):
        return matcher.sub(value)
    if isinstance(value, dict):
        return {_scrub_value(k, matcher): _scrub_value(v, matcher) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, matcher) for v in value]
    return value


def public_url(url: str | None) -> str | None:
    """``url`` safe to store and print: no ``user:password@``, every query value but an API
    version masked (``?api-key=***``)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, value = pair.partition("=")
        pairs.append(pair if not sep or unquote(name).lower() in _PUBLIC_QUERY else f"{name}={MASK}")
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(pairs)))


def url_was_redacted(url: str | None) -> bool:
    """Whether :func:`public_url` removes or masks anything in ``url``."""
    return bool(url) and public_url(url) != url


class ScrubbedStream:
    """A text stream that passes what is written through :func:`scrub`; everything else
    (``isatty``, ``fileno``, ``encoding`` …) is the wrapped stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` scrubbed; returns ``len(text)`` as a text stream does."""
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each line scrubbed."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def scrub_std_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`ScrubbedStream` (once): everything the
    process prints, tracebacks included, is scrubbed."""
    if not isinstance(sys.stdout, ScrubbedStream):
        sys.stdout = ScrubbedStream(sys.stdout)
    if not isinstance(sys.stderr, ScrubbedStream):
        sys.stderr = ScrubbedStream(sys.stderr)
