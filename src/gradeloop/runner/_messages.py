"""Turning a row into Chat Completions messages: templates or an item reference."""

from __future__ import annotations

from typing import Any

from ..errors import TemplateError
from ..spec import ItemReferenceMessages, TemplateMessages
from ..templating import render_message, resolve


def build_messages(spec: TemplateMessages | ItemReferenceMessages, item: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages for ``item``; raises TemplateError for a missing variable."""
    ctx = {"item": item}
    if isinstance(spec, ItemReferenceMessages):
        value = resolve(spec.item_reference.strip().strip("{} "), ctx)
        if not isinstance(value, list):
            raise TemplateError(f"'{spec.item_reference}' is not a list of messages")
        return [render_message(m, None) for m in value]
    return [render_message(m, ctx) for m in spec.template]
