"""Document layouts and instruction placement for long-context prompts (GPT-4.1 prompting guide).

A long-context prompt is instructions plus documents. The guide compared ways to write the
documents and found XML and the ``ID | TITLE | CONTENT`` line format work well and JSON worse,
and that instructions placed both before and after the context work best. This module renders
one prompt from those choices, as a pure function any suite can use:

- ``xml``:  ``<doc id="3" title="Tapirs">…</doc>`` per document;
- ``pipe``: ``ID: 3 | TITLE: Tapirs | CONTENT: …`` per document, one line each (newlines in the
  content become spaces, so every line is one document);
- ``json``: a JSON array of ``{"id", "title", "content"}`` objects, one per line.

Placement puts the instructions at the ``start`` (before the documents), at the ``end`` (after
them) or at ``both``. :func:`compose` returns the user message; :func:`parse_documents` reads
the documents back out of it (tests use it to check that every document is present).

A suite adopts this by building its documents as :class:`Doc` and its instructions as one
string, calling ``compose(instructions, docs, layout, placement)``, and writing ``layout`` and
``placement`` into each item so that ``eval show --by layout --by placement`` breaks results down.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, unescape

from ..errors import InputError

__all__ = ["Doc", "LAYOUTS", "PLACEMENTS", "render_documents", "parse_documents", "compose", "parse_choices"]

LAYOUTS = ("xml", "pipe", "json")
PLACEMENTS = ("start", "end", "both")
_BEGIN, _END = "<documents>", "</documents>"


@dataclass(frozen=True)
class Doc:
    """One document of the context: an id, a title and its text."""

    id: str
    title: str
    content: str


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _text(value: str) -> str:
    """Element text escaped: ``&`` and ``<`` only (``>`` is legal in XML text, and left as it is so
    that ``a -> b`` edges read as written)."""
    return value.replace("&", "&amp;").replace("<", "&lt;")


def render_documents(docs: list[Doc], layout: str) -> str:
    """The documents written in ``layout`` (``xml``, ``pipe`` or ``json``), one per line."""
    if layout == "xml":
        return "\n".join(f'<doc id="{_attr(d.id)}" title="{_attr(d.title)}">{_text(d.content)}</doc>' for d in docs)
    if layout == "pipe":
        return "\n".join(f"ID: {d.id} | TITLE: {d.title} | CONTENT: {' '.join(d.content.split())}" for d in docs)
    if layout == "json":
        rows = [json.dumps({"id": d.id, "title": d.title, "content": d.content}, ensure_ascii=False) for d in docs]
        return "[" + ",\n".join(rows) + "]"
    raise InputError(f"unknown layout '{layout}' (known: {', '.join(LAYOUTS)})", field="layout")


_XML_DOC = re.compile(r'<doc id="([^"]*)" title="([^"]*)">(.*?)</doc>', re.S)
_PIPE_DOC = re.compile(r"^ID: (.*?) \| TITLE: (.*?) \| CONTENT: (.*)$", re.M)


def parse_documents(text: str, layout: str) -> list[Doc]:
    """The documents found in ``text`` (a rendered block or a whole prompt) written in ``layout``."""
    if layout == "xml":
        return [Doc(unescape(i, {"&quot;": '"'}), unescape(t, {"&quot;": '"'}), unescape(c))
                for i, t, c in _XML_DOC.findall(text)]
    if layout == "pipe":
        return [Doc(i, t, c) for i, t, c in _PIPE_DOC.findall(text)]
    if layout == "json":
        start = text.index(_BEGIN) + len(_BEGIN) if _BEGIN in text else 0
        end = text.index(_END, start) if _END in text else len(text)
        return [Doc(str(d["id"]), d["title"], d["content"]) for d in json.loads(text[start:end])]
    raise InputError(f"unknown layout '{layout}' (known: {', '.join(LAYOUTS)})", field="layout")


def compose(instructions: str, docs: list[Doc], layout: str, placement: str) -> str:
    """The user message: the documents in ``layout`` between ``<documents>`` markers, with the
    instructions before them (``start``), after them (``end``) or both."""
    if placement not in PLACEMENTS:
        raise InputError(f"unknown placement '{placement}' (known: {', '.join(PLACEMENTS)})", field="placement")
    context = f"{_BEGIN}\n{render_documents(docs, layout)}\n{_END}"
    parts = [instructions] * (placement != "end") + [context] + [instructions] * (placement != "start")
    return "\n\n".join(parts)


def parse_choices(values: list[str] | None, known: tuple[str, ...], default: str, flag: str) -> list[str]:
    """Comma- or repeat-separated choices (``xml,pipe``), checked against ``known``, in order, no
    repeats; ``[default]`` when none. Raises InputError naming ``flag``."""
    names = [v.strip().lower() for value in (values or [default]) for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise InputError(f"unknown {flag} '{bad[0] if bad else ''}' (known: {', '.join(known)})", field=flag)
    return list(dict.fromkeys(names))
