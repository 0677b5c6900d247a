"""Grader objects as OpenAI defines them, and the registry of grader types.

Each grader type is a pydantic model with a ``type`` literal. Built-in types and plugins
register the same way, with :func:`register_grader_model`. Grading itself lives in
:mod:`gradeloop.graders`; this module only says what a valid grader object is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ._load import Document, validate_model

__all__ = [
    "GraderModel",
    "StringCheckGrader",
    "register_grader_model",
    "grader_model_for",
    "grader_types",
    "load_grader",
    "grader_hash",
]


class GraderModel(BaseModel):
    """Base of every grader object: ``type``, ``name`` and OpenAI's optional ``id``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str
    id: str | None = None

    def pass_threshold_value(self) -> float | None:
        """The score at or above which the criterion passes (None: the type decides)."""
        return getattr(self, "pass_threshold", None)


class StringCheckGrader(GraderModel):
    """``string_check``: compare ``input`` with ``reference`` after templating.

    ``eq``/``ne`` are exact (case-sensitive) equality and inequality; ``like`` is
    case-sensitive containment and ``ilike`` case-insensitive containment. Score 1 or 0.
    """

    type: Literal["string_check"]
    input: str
    reference: str
    operation: Literal["eq", "ne", "like", "ilike"]


_MODELS: dict[str, type[GraderModel]] = {}

# OpenAI grader types this version does not implement yet: named so the error says so
# instead of calling them unknown.
_PENDING = {"text_similarity", "score_model", "label_model", "python", "multi"}


def register_grader_model(model: type[GraderModel]) -> type[GraderModel]:
    """Register a grader object model under its ``type`` literal; returns it (a decorator)."""
    annotation = model.model_fields["type"].annotation
    names = getattr(annotation, "__args__", ())
    if not names:
        raise TypeError(f"{model.__name__}.type must be a Literal")
    for name in names:
        _MODELS[name] = model
        _PENDING.discard(name)
    return model


register_grader_model(StringCheckGrader)


def grader_types() -> list[str]:
    """The grader types that can be loaded, sorted."""
    return sorted(_MODELS)


def grader_model_for(kind: str) -> type[GraderModel] | None:
    """The registered model for grader type ``kind``, or None."""
    return _MODELS.get(kind)


def load_grader(data: Any, doc: Document, loc: tuple = ()) -> GraderModel:
    """Validate one grader object found at ``loc`` in ``doc``.

    Returns the typed grader; raises InputError (file, line, field) on an unknown type or
    a bad field.
    """
    if not isinstance(data, dict):
        raise doc.error("a grader must be an object with a 'type'", loc)
    kind = data.get("type")
    if kind is None:
        raise doc.error("required field is missing", loc + ("type",))
    model = _MODELS.get(kind)
    if model is None:
        if kind in _PENDING:
            raise doc.error(
                f"grader type '{kind}' is an OpenAI grader type this version of gradeloop "
                f"does not implement yet (available: {', '.join(grader_types())})",
                loc + ("type",),
            )
        raise doc.error(
            f"unknown grader type '{kind}' (available: {', '.join(grader_types())})", loc + ("type",)
        )
    return validate_model(model, data, doc, loc)


def grader_hash(grader: GraderModel | dict) -> str:
    """A stable sha256 of the grader's canonical JSON (sorted keys, no ``id``).

    The same grader object gives the same hash wherever it is used: eval metric, data
    filter or RL reward.
    """
    data = grader.model_dump(exclude_none=True) if isinstance(grader, BaseModel) else dict(grader)
    data.pop("id", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
