"""What the edit graders measure: extraneous changed lines against a reference diff, and new
ruff findings."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_COMMENT = re.compile(r"#[^'\"]*$")


def reference_hunks(diff: str) -> dict[str, list[tuple[int, int]]]:
    """{path: [(first, last)]}: the old-file line ranges (0-based, inclusive, context included)
    each hunk of a unified diff covers; a new file's path maps to an empty list."""
    out: dict[str, list[tuple[int, int]]] = {}
    path = None
    for line in diff.replace("\r\n", "\n").split("\n"):
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].strip()
            path = None if old == "/dev/null" else old[2:] if old.startswith("a/") else old
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].strip()
            new = new[2:] if new.startswith("b/") else new
            if path is None:  # a file the reference creates: all of it is the change
                path = new
                out[path] = [(0, 1 << 62)]
            out.setdefault(path, [])
        elif path is not None and (head := _HUNK.match(line)) and out[path][:1] != [(0, 1 << 62)]:
            start, count = int(head.group(1)), int(head.group(2) or 1)
            first = max(0, start - 1) if count else start
            out[path].append((first, first + max(count, 1) - 1))
    return out


@dataclass
class Extraneous:
    """An edit's changed lines (each ``+`` and ``-`` line of its diff) by where they fall."""

    changed: int = 0
    outside_hunks: int = 0  # in a file the reference changed, outside its hunks
    other_files: int = 0  # in files the reference did not touch
    churn: int = 0  # outside the reference's hunks, but only whitespace or comments (counted apart)
    by_file: dict[str, int] = field(default_factory=dict)  # extraneous lines per file

    @property
    def extraneous(self) -> int:
        """Changed lines the task did not need (whitespace/comment churn not included)."""
        return self.outside_hunks + self.other_files

    @property
    def share(self) -> float:
        """Extraneous lines over all changed lines (0 for an edit that changed nothing)."""
        return self.extraneous / self.changed if self.changed else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The counts, the share and the churn share, for a grade's details."""
        return {**asdict(self), "extraneous": self.extraneous, "share": self.share,
                "churn_share": self.churn / self.changed if self.changed else 0.0}


def extraneous_lines(changes: dict[str, tuple[str | None, str | None]], reference_diff: str) -> Extraneous:
    """Classify every line ``changes`` ({path: (before, after)}) adds or removes against the
    hunks of ``reference_diff`` (see docs/code-edits.md)."""
    hunks = reference_hunks(reference_diff)
    result = Extraneous()
    for path, (before, after) in sorted(changes.items()):
        old, new = _split(before), _split(after)
        for tag, a0, a1, b0, b1 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
            if tag != "equal":
                _classify(result, path, hunks.get(path), old[a0:a1], new[b0:b1], a0)
    return result


def _classify(result: Extraneous, path: str, ranges: list[tuple[int, int]] | None, removed: list[str],
              added: list[str], at: int) -> None:
    python = path.endswith((".py", ".pyi"))
    churn = _churn(removed, added, python)
    # a removed line is inside a hunk that covers it; a line added in its place, inside when the
    # line it replaces is; a line inserted between two, inside a hunk it borders or is in
    if removed:
        positions = [(at + k, 0) for k in range(len(removed))]
        positions += [(at + min(k, len(removed) - 1), 0) for k in range(len(added))]
    else:
        positions = [(at, 1)] * len(added)
    for index, (position, slack) in enumerate(positions):
        result.changed += 1
        if ranges is not None and any(first <= position <= last + slack for first, last in ranges):
            continue
        if index in churn:
            result.churn += 1
        elif ranges is None:
            result.other_files += 1
            result.by_file[path] = result.by_file.get(path, 0) + 1
        else:
            result.outside_hunks += 1
            result.by_file[path] = result.by_file.get(path, 0) + 1


def _churn(removed: list[str], added: list[str], python: bool) -> set[int]:
    """Indexes (removed lines first, then added) of lines that only change whitespace or
    comments: blank or comment-only lines, and lines whose normalized form is on both sides."""
    norm = [_normal(line, python) for line in removed + added]
    left, right = Counter(norm[:len(removed)]), Counter(norm[len(removed):])
    return {i for i, text in enumerate(norm)
            if not text or (left[text] and right[text])}


def _normal(line: str, python: bool) -> str:
    if python:
        line = _COMMENT.sub("", line)
    return "".join(line.split())


def _split(text: str | None) -> list[str]:
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


# --- ruff ---

def ruff_findings(files: dict[str, str], cwd: str) -> Counter:
    """Ruff's findings in the Python ``files`` ({path: text}), counted by (path, rule code).

    Runs ``ruff check`` as a subprocess once per file on its text (stdin), with ``cwd`` (the
    tree) for ruff to find the project's own configuration. Raises RuntimeError when ruff is
    not installed (``pip install 'gradeloop[edits]'``) or fails."""
    binary = _ruff()
    found: Counter = Counter()
    for path, text in sorted(files.items()):
        if not path.endswith((".py", ".pyi")):
            continue
        proc = subprocess.run([binary, "check", "--no-cache", "--output-format", "json", "--exit-zero",
                               "--stdin-filename", path, "-"], input=text, capture_output=True, text=True,
                              cwd=cwd, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"ruff failed on {path}: {proc.stderr.strip()[:300]}")
        for finding in json.loads(proc.stdout or "[]"):
            found[(path, finding.get("code") or "syntax-error")] += 1
    return found


def lint_delta(changes: dict[str, tuple[str | None, str | None]], cwd: str) -> dict[str, Any]:
    """New and fixed ruff findings between the ``before`` and ``after`` of ``changes``:
    ``{"new": n, "fixed": n, "new_findings": [{"path", "code", "count"}]}`` (counted per
    file and rule, so moved lines do not count as new)."""
    before = ruff_findings({p: b for p, (b, _) in changes.items() if b is not None}, cwd)
    after = ruff_findings({p: a for p, (_, a) in changes.items() if a is not None}, cwd)
    new = after - before
    return {"new": sum(new.values()), "fixed": sum((before - after).values()),
            "new_findings": [{"path": p, "code": c, "count": n} for (p, c), n in sorted(new.items())][:50]}


def _ruff() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        raise RuntimeError("lint_delta needs ruff: pip install 'gradeloop[edits]'") from None
    return find_ruff_bin()
