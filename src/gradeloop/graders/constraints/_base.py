"""The constraint interface: a verifiable instruction with typed parameters.

A constraint type has an ``id`` (``punctuation:no_comma``), a ``Params`` pydantic model, and:

- ``check(response, params, item) -> (passed, explanation)``: deterministic verdict;
- ``describe(params, phrasing) -> str``: the instruction in words, ``phrasings`` ways;
- ``detect(text) -> list[Params]``: the instances of this constraint stated in a developer's
  prompt (the harvest issue uses it to turn real system prompts into evals).

Built-in constraints and plugins register the same way, with :func:`register_constraint`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "Constraint",
    "NoParams",
    "register_constraint",
    "get_constraint",
    "constraint_ids",
    "check_constraint",
    "loose_variants",
    "parse_params",
]


class NoParams(BaseModel):
    """Parameters of a constraint that takes none."""

    model_config = ConfigDict(extra="forbid")


class Constraint:
    """Base class. Subclasses set ``id`` and ``Params`` and implement ``check`` and ``describe``."""

    id: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    phrasings: ClassVar[int] = 1

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        """Whether ``response`` follows the instruction, and a short explanation why."""
        raise NotImplementedError

    def describe(self, params: Any, phrasing: int = 0) -> str:
        """The instruction in words (``phrasing`` picks one of ``phrasings`` wordings)."""
        raise NotImplementedError

    def detect(self, text: str) -> list[Any]:
        """Parameters of every instance of this constraint stated in ``text`` (a system prompt)."""
        return []


_REGISTRY: dict[str, Constraint] = {}


def register_constraint(cls: type[Constraint]) -> type[Constraint]:
    """Register a Constraint subclass under its ``id`` (a decorator); returns the class."""
    if not cls.id:
        raise TypeError(f"{cls.__name__} must set 'id'")
    _REGISTRY[cls.id] = cls()
    return cls


def get_constraint(constraint_id: str) -> Constraint:
    """The registered constraint; raises KeyError naming the known ids."""
    try:
        return _REGISTRY[constraint_id]
    except KeyError:
        raise KeyError(f"unknown constraint '{constraint_id}' (known: {', '.join(constraint_ids())})") from None


def constraint_ids() -> list[str]:
    """Every registered constraint id, sorted."""
    return sorted(_REGISTRY)


def parse_params(constraint_id: str, kwargs: dict[str, Any] | None) -> Any:
    """Validate ``kwargs`` for ``constraint_id``; raises ValueError with a readable message."""
    constraint = get_constraint(constraint_id)
    try:
        return constraint.Params.model_validate(kwargs or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{constraint_id}: {field + ': ' if field else ''}{first['msg']}") from None


def loose_variants(response: str) -> list[str]:
    """IFEval's eight loose variants: the response, without its first and/or last line, with
    and without ``*``. A loose check passes when any non-empty variant passes."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


def check_constraint(constraint_id: str, response: str, kwargs: dict[str, Any] | None = None, *,
                     loose: bool = False, item: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Check one constraint, strict (IFEval: a non-empty stripped response that passes) or
    loose (any non-empty variant passes). Returns ``(passed, explanation)``."""
    constraint = get_constraint(constraint_id)
    params = parse_params(constraint_id, kwargs)
    candidates = loose_variants(response) if loose else [response]
    explanation = "empty response"
    for candidate in candidates:
        if not candidate.strip():
            continue
        ok, explanation = constraint.check(candidate, params, item)
        if ok:
            return True, explanation
    return False, explanation
