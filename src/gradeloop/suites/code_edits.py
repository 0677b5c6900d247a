"""Code-edit tasks over small Python projects that ship with gradeloop, in several edit formats.

The projects (an inventory service, a Markdown utility, a settings-file parser, a date-interval
library) live under ``_projects/``, each a few modules with a pytest suite. The task table in
``_edit_tasks`` turns them into bug fixes, small features, renames and API changes across 2–3
files. Each task yields an item in the contract's shape (see docs/code-edits-suite.md): the
instruction, the whole start tree in ``files``, the ``context_files`` the prompt shows, the
``reference_diff`` (start → reference tree), and ``test_files``: the reference tree's tests,
written over the edited tree before ``test_command`` runs them (the model never sees new ones).

``build`` draws tasks with the seed and writes each once per edit format, so formats are compared
on the same tasks; ``verify`` runs a task's tests in the sandbox on both trees (the reference
passes, the start tree fails).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._edit_tasks import TASKS, TaskSpec
from ._long import write_eval

__all__ = ["KINDS", "PROJECTS", "TEST_COMMAND", "project_files", "make_task", "tasks", "render_prompt", "items",
           "generate", "build", "eval_definition", "verify", "write_files"]

SUITE_VERSION = 1
KINDS = ("bugfix", "feature", "rename", "api_change")
PROJECTS = ("inventory", "textkit", "confparse", "intervals")
TEST_COMMAND = ["python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests"]
_ROOT = Path(__file__).parent / "_projects"
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}


def project_files(name: str) -> dict[str, str]:
    """The pristine tree of the shipped project ``name``: relative path → text, sorted by path."""
    root = _ROOT / name
    if name not in PROJECTS or not root.is_dir():
        raise InputError(f"unknown project {name!r} (one of: {', '.join(PROJECTS)})", field="project")
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not _SKIP_PARTS & set(rel.parts) and path.suffix != ".pyc":
            files[rel.as_posix()] = path.read_text(encoding="utf-8")
    return files


def _edited(files: dict[str, str], spec: TaskSpec) -> dict[str, str]:
    out = dict(files)
    for path, old, new in spec.edits:
        text = out.get(path, "")
        if old and text.count(old) != 1:
            raise AssertionError(f"{spec.task_id}: {old!r} is in {path} {text.count(old)} times, not once")
        out[path] = text.replace(old, new) if old else new
    if spec.rename:
        pattern = re.compile(rf"\b{re.escape(spec.rename[0])}\b")
        out = {path: pattern.sub(spec.rename[1], text) for path, text in out.items()}
    return out


def _is_test(path: str) -> bool:
    return path.startswith("tests/")


def make_task(spec: TaskSpec) -> dict[str, Any]:
    """The format-free item of one task: start ``files``, ``reference_diff``, hidden ``test_files``
    (the reference tree's tests), ``test_command``, ``context_files`` and the instruction."""
    from ..edits import diff_trees

    pristine = project_files(spec.project)
    changed = _edited(pristine, spec)
    start, reference = (changed, pristine) if spec.kind == "bugfix" else (pristine, changed)
    if start == reference:
        raise AssertionError(f"{spec.task_id}: the task changes nothing")
    return {"task_id": spec.task_id, "kind": spec.kind, "project": spec.project,
            "instruction": spec.instruction, "files": start, "context_files": list(spec.context),
            "reference_diff": diff_trees(start, reference),
            "test_command": list(TEST_COMMAND),
            "test_files": {path: text for path, text in reference.items() if _is_test(path)}}


def tasks() -> list[dict[str, Any]]:
    """Every task of the suite, in table order (the pool ``generate`` draws from)."""
    return [make_task(spec) for spec in TASKS]


def render_prompt(task: dict[str, Any], texts: dict[str, str] | None = None) -> str:
    """The user message: the instruction, then each context file in full under its path (its text
    from ``texts``, else from the task's ``files``)."""
    parts = [task["instruction"].strip(), "",
             "The project's files you may need (paths are relative to the project root; its tests run "
             "with pytest):"]
    for path in task["context_files"]:
        text = (texts if texts is not None else task.get("files", {})).get(path, "")
        fence = _fence(text)
        parts += ["", f"### {path}", fence + ("python" if path.endswith(".py") else ""), text.rstrip("\n"), fence]
    return "\n".join(parts) + "\n"


def _fence(text: str) -> str:
    # longer than any backtick run in the file, so a file that holds ``` (a Markdown tool) stays one block
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def items(task: dict[str, Any], formats: list[str], texts: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One eval item per edit format for ``task``: the task's fields plus ``id``, ``format`` and
    ``messages`` (the format's instructions as the system message, the prompt as the user's;
    ``texts`` gives the context files' texts when the task has no inline ``files``)."""
    from ..edits import format_instructions

    prompt = render_prompt(task, texts)
    return [{"id": f"{task['task_id']}.{fmt}", **task, "format": fmt,
             "messages": [{"role": "system", "content": format_instructions(fmt)},
                          {"role": "user", "content": prompt}]} for fmt in formats]


def _formats(formats: list[str] | None) -> list[str]:
    from ..edits import FORMATS

    chosen = list(dict.fromkeys(formats or ["v4a"]))
    for fmt in chosen:
        if fmt not in FORMATS:
            raise InputError(f"unknown edit format {fmt!r} (one of: {', '.join(FORMATS)})", field="format")
    return chosen


def generate(n: int | None, seed: int = 0, formats: list[str] | None = None) -> list[dict[str, Any]]:
    """``n`` items (None: every task in every format): tasks drawn with ``seed`` (no task twice), each
    written once per format in turn, so the first ``n`` items hold ``ceil(n / len(formats))`` tasks.
    Same arguments, same items."""
    chosen = _formats(formats)
    n = len(TASKS) * len(chosen) if n is None else n
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    needed = -(-n // len(chosen))
    if needed > len(TASKS):
        raise InputError(f"{n} items in {len(chosen)} format(s) need {needed} tasks; the suite has {len(TASKS)} "
                         f"(at most {len(TASKS) * len(chosen)} items)", field="n")
    order = list(TASKS)
    random.Random(seed).shuffle(order)
    rows: list[dict[str, Any]] = []
    for spec in order[:needed]:
        rows += items(make_task(spec), chosen)
    return rows[:n]


_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "task_id": {"type": "string"}, "format": {"type": "string"},
        "kind": {"type": "string"}, "project": {"type": "string"}, "instruction": {"type": "string"},
        "files": {"type": "object"}, "tree_archive": {"type": "string"}, "tree_archive_abs": {"type": "string"},
        "context_files": {"type": "array", "items": {"type": "string"}},
        "reference_diff": {"type": "string"}, "test_files": {"type": "object"},
        "test_command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "messages": {"type": "array", "minItems": 1},
    },
    "required": ["id", "task_id", "format", "kind", "instruction", "reference_diff", "test_command", "messages"],
}

CRITERIA = ("applies", "tests_pass", "extraneous_edits", "lint_delta")
_CRITERION_NAMES = {"applies": "the edit applies", "tests_pass": "the tests pass",
                    "extraneous_edits": "no extraneous edits", "lint_delta": "no new lint findings"}


def eval_definition(meta: dict[str, Any], *, name: str | None = None, suite: str = "code-edits",
                    description: str | None = None) -> dict[str, Any]:
    """The eval definition written next to ``rows.jsonl``: the four edit graders over the item's
    format, the item's messages as the prompt."""
    criteria = [{"type": kind, "name": _CRITERION_NAMES[kind], "input": "{{ sample.output_text }}",
                 "format": "{{ item.format }}"} for kind in CRITERIA]
    return {
        "name": name or f"Code edits (n={meta['n']}, seed={meta['seed']}, formats={','.join(meta['formats'])})",
        "metadata": {"suite": suite, "version": SUITE_VERSION, **meta,
                     "description": description or "Edit small Python projects as asked, in a given edit "
                                                   "format; the hidden tests decide."},
        "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
        "testing_criteria": criteria,
        "data_source": {"type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": {"temperature": 0, "max_completion_tokens": 4096}},
    }


def build(n: int | None, seed: int, out_dir: str | Path, formats: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``out_dir/rows.jsonl`` (``n`` as for ``generate``). Returns
    ``{"eval", "rows", "items", "counts": {"format", "kind", "project"}}``."""
    rows = generate(n, seed, formats)
    meta = {"n": len(rows), "seed": seed, "formats": _formats(formats)}
    written = write_eval(out_dir, eval_definition(meta), rows,
                         "# Built by `gradeloop suite code-edits build`; rows are in rows.jsonl.\n")
    counts = {k: dict(Counter(row[k] for row in rows)) for k in ("format", "kind", "project")}
    return {**written, "counts": counts}


def verify(task: dict[str, Any], *, timeout: float = 120) -> tuple[bool, str]:
    """Run ``task``'s tests in the sandbox on the reference tree (start tree + reference change +
    test files) and on the unchanged start tree (+ test files): ``(True, "")`` when the first passes
    and the second fails, else ``(False, why)``."""
    from ..edits import EditError, Tree, run_tests

    try:
        reference = _apply_reference(task)
    except EditError as exc:
        return False, f"the reference change does not apply: {exc}"
    with Tree.from_item({"files": {**reference, **task.get("test_files", {})}}) as tree:
        after = run_tests(tree, task["test_command"], timeout=timeout)
    if not after.passed:
        return False, f"the reference change fails its tests: {after.output[-400:]}"
    with Tree.from_item(task) as tree:
        write_files(tree, task.get("test_files", {}))
        before = run_tests(tree, task["test_command"], timeout=timeout)
    if before.passed:
        return False, "the tests already pass on the unchanged tree"
    return True, ""


def write_files(tree: Any, files: dict[str, str]) -> None:
    """Write ``files`` (relative path → text) over ``tree``, as ``tests_pass`` writes an item's
    ``test_files`` after the edit."""
    for path, text in files.items():
        target = tree.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="")


def _apply_reference(task: dict[str, Any]) -> dict[str, str]:
    """The reference tree: the start ``files`` with ``reference_diff`` applied (by the udiff parser,
    so a reference that does not apply is caught here too)."""
    from ..edits import Tree, apply_edit, parse_edit

    with Tree.from_item(task) as tree:
        apply_edit(tree, parse_edit(task["reference_diff"], "udiff"))
        return tree.files()
