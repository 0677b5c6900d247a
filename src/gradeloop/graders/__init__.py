"""Graders: pure, hashable, batched; the same object is an eval metric and an RL reward."""

from . import (  # noqa: F401  (each registers its types)
    _constraints, _edits, _long_context, _model, _multi, _needles, _python, _similarity, _string_check)
from ._base import (
    ERROR_FLAGS,
    GradeResult,
    GradingContext,
    criterion_id,
    grade,
    grade_many,
    implemented_types,
    passes,
    register_grader,
)

__all__ = [
    "ERROR_FLAGS",
    "GradeResult",
    "GradingContext",
    "criterion_id",
    "grade",
    "grade_many",
    "implemented_types",
    "passes",
    "register_grader",
]
