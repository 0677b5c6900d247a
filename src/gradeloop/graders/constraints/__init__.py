"""Verifiable instructions (IFEval's 25 and gradeloop's own), one registry, one interface."""

from ._base import (
    Constraint,
    NoParams,
    check_constraint,
    constraint_ids,
    get_constraint,
    loose_variants,
    parse_params,
    register_constraint,
)
from . import _ifeval  # noqa: F401  (registers IFEval's 25 instructions)
from . import _categories  # noqa: F401

__all__ = [
    "Constraint",
    "NoParams",
    "check_constraint",
    "constraint_ids",
    "get_constraint",
    "loose_variants",
    "parse_params",
    "register_constraint",
]
