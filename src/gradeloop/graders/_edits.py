"""Graders for code edits (gradeloop types): ``applies``, ``tests_pass``, ``extraneous_edits``,
``lint_delta``. Each parses the answer as an edit in ``format`` and applies it to the item's
files in a temp tree (see :mod:`gradeloop.edits`); an edit that is malformed or does not apply
scores 0 with its reason in ``details.reason`` (``details.applied`` false), never an error.

```yaml
- type: applies                      # 1 when the edit parses and applies cleanly
  name: applies
  input: "{{ sample.output_text }}"  # the default
  format: "{{ item.format }}"        # the default: v4a | search-replace | udiff | whole
  lenient: false                     # the default; true: the lenient parser and matching
- type: tests_pass                   # 1 when item.test_command passes on the edited tree
  name: tests pass                   #   (item.test_files written over it first), sandboxed
  timeout: 60                        # seconds; memory_mb: 1024
- type: extraneous_edits             # 1 - the share of changed lines outside the reference's hunks
  name: no extraneous edits          #   (item.reference_diff); whitespace/comment churn apart
  pass_threshold: 1.0                # the default: any extraneous line fails
- type: lint_delta                   # 1 / (1 + new ruff findings); passes with none new
  name: no new lint
```
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Literal

from ..spec import GraderModel, register_grader_model
from ..templating import render
from ._base import GradeResult, GradingContext, register_grader

_SANDBOXES = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))  # test runs at once


class _EditGrader(GraderModel):
    input: str = "{{ sample.output_text }}"
    format: str = "{{ item.format }}"
    lenient: bool = False


@register_grader_model
class AppliesGrader(_EditGrader):
    """The edit parses and applies cleanly to the item's files."""

    type: Literal["applies"]


@register_grader_model
class TestsPassGrader(_EditGrader):
    """The item's tests pass on the edited tree, run in the command sandbox."""

    __test__ = False
    type: Literal["tests_pass"]
    timeout: float = 60.0
    memory_mb: int = 1024


@register_grader_model
class ExtraneousEditsGrader(_EditGrader):
    """1 − the share of the edit's changed lines that the reference change did not need."""

    type: Literal["extraneous_edits"]
    reference_diff: str = "{{ item.reference_diff }}"


@register_grader_model
class LintDeltaGrader(_EditGrader):
    """New ruff findings the edit introduced: 1 / (1 + new); passes with none."""

    type: Literal["lint_delta"]


class _Applied:
    """The answer of one sample applied to the item's tree (or why it was not)."""

    def __init__(self, grader: _EditGrader, sample: dict, item: dict):
        from ..edits import EditError, Tree, apply_edit, parse_edit

        ctx = {"item": item, "sample": sample}
        answer, self.format = render(grader.input, ctx), render(grader.format, ctx)
        self.changes: dict[str, tuple[str | None, str | None]] = {}
        self.reason: str | None = None
        self.tree = Tree.from_item(item)  # a failure here is the item's, not the answer's
        try:
            self.changes = apply_edit(self.tree, parse_edit(answer, self.format, lenient=grader.lenient))
        except EditError as exc:
            self.reason = exc.reason

    def close(self) -> None:
        """Remove the temp tree."""
        self.tree.close()

    def details(self, **more: Any) -> dict[str, Any]:
        """What every edit grader reports, plus ``more``."""
        return {"format": self.format, "applied": self.reason is None, "reason": self.reason,
                "files": sorted(self.changes), **more}

    def failure(self) -> GradeResult:
        """The scored failure of an edit that did not apply."""
        return GradeResult(score=0.0, passed=False, details=self.details())


async def _with_edit(grader: _EditGrader, sample: dict, item: dict, measure: Any) -> GradeResult:
    """Apply the answer in a worker thread and, when it applied, return ``measure(applied)``."""
    def work() -> GradeResult:
        try:
            applied = _Applied(grader, sample, item)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # the item's tree, not the answer
            return GradeResult(score=0.0, errors={"other_error": True},
                               details={"error": f"the item's files could not be written: {exc}"[:500]})
        try:
            return applied.failure() if applied.reason is not None else measure(applied)
        finally:
            applied.close()

    return await asyncio.to_thread(work)


@register_grader("applies")
async def grade_applies(grader: AppliesGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """1 when the edit parses and applies cleanly, else 0 with the reason."""
    return await _with_edit(grader, sample, item, lambda a: GradeResult(score=1.0, details=a.details()))


@register_grader("tests_pass")
async def grade_tests_pass(grader: TestsPassGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """1 when ``item.test_command`` exits 0 on the edited tree within the limits, else 0."""
    command = item.get("test_command")
    if not isinstance(command, list) or not command or not all(isinstance(w, str) for w in command):
        return GradeResult(score=0.0, errors={"invalid_variable_error": True},
                           details={"error": "item.test_command must be a non-empty list of strings"})

    def measure(applied: _Applied) -> GradeResult:
        from ..edits import EditError, run_tests

        try:
            applied.tree.write(item.get("test_files") or {})
        except EditError as exc:
            return GradeResult(score=0.0, errors={"invalid_variable_error": True},
                               details=applied.details(error=f"item.test_files: {exc.reason}"))
        with _SANDBOXES:
            run = run_tests(applied.tree, command, timeout=grader.timeout, memory_mb=grader.memory_mb)
        details = applied.details(returncode=run.returncode, timed_out=run.timed_out, output=run.output[-2000:])
        if run.error:
            return GradeResult(score=0.0, errors={"other_error": True}, details={**details, "error": run.error})
        return GradeResult(score=float(run.passed), details=details)

    return await _with_edit(grader, sample, item, measure)


@register_grader("extraneous_edits")
async def grade_extraneous(grader: ExtraneousEditsGrader, sample: dict, item: dict,
                           context: GradingContext) -> GradeResult:
    """1 − the share of changed lines outside the reference's hunks or in files it did not touch."""
    from ..edits import extraneous_lines

    reference = render(grader.reference_diff, {"item": item, "sample": sample})

    def measure(applied: _Applied) -> GradeResult:
        found = extraneous_lines(applied.changes, reference)
        rates = {"extraneous": int(found.extraneous > 0)}  # eval show: the share of edits with any
        return GradeResult(score=1.0 - found.share, details=applied.details(**found.to_dict(), rates=rates))

    return await _with_edit(grader, sample, item, measure)


@register_grader("lint_delta")
async def grade_lint_delta(grader: LintDeltaGrader, sample: dict, item: dict, context: GradingContext) -> GradeResult:
    """1 / (1 + the ruff findings the edit added), passing when it added none."""
    def measure(applied: _Applied) -> GradeResult:
        from ..edits import lint_delta

        try:
            delta = lint_delta(applied.changes, str(applied.tree.path))
        except RuntimeError as exc:
            return GradeResult(score=0.0, errors={"other_error": True}, details=applied.details(error=str(exc)))
        details = applied.details(**delta, rates={"new_lint": int(delta["new"] > 0)})
        return GradeResult(score=1.0 / (1 + delta["new"]), passed=delta["new"] == 0, details=details)

    return await _with_edit(grader, sample, item, measure)
