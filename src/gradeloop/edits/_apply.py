"""Applying parsed file operations to a :class:`Tree`: all or nothing, never outside it."""

from __future__ import annotations

from collections.abc import Callable

from ._errors import EditError
from ._formats import FileOp, Hunk
from ._tree import Tree, safe_relpath

Changes = dict[str, tuple[str | None, str | None]]
# strict matching compares lines exactly; lenient tries these in order
_STRICT: tuple[Callable[[str], str], ...] = (lambda s: s,)
_LENIENT: tuple[Callable[[str], str], ...] = (lambda s: s, str.rstrip, lambda s: " ".join(s.split()))


def apply_edit(tree: Tree, ops: list[FileOp]) -> Changes:
    """Apply ``ops`` to ``tree`` in place; returns ``{path: (before, after)}`` for every file
    changed (None: did not exist / deleted).

    Raises EditError(reason) and leaves the tree unchanged when any operation does not apply
    cleanly or names a path that is absolute, contains ``..``, goes through a symlink or is a
    binary file."""
    state: dict[str, str | None] = {}
    changes: Changes = {}

    def current(path: str) -> str | None:
        if path not in state:
            state[path] = tree.read(path)
            changes.setdefault(path, (state[path], state[path]))
        return state[path]

    for number, op in enumerate(ops, 1):
        try:
            _apply_one(op, current, state, tree)
        except EditError as exc:
            raise EditError(f"operation {number} ({op.kind} {op.path}): {exc.reason}") from None
    final = {path: (changes[path][0], state[path]) for path in changes if changes[path][0] != state[path]}
    tree.write({path: after for path, (_, after) in final.items()})
    return final


def _apply_one(op: FileOp, current: Callable[[str], str | None], state: dict[str, str | None], tree: Tree) -> None:
    path = safe_relpath(op.path)
    tree.resolve(path)
    before = current(path)
    if op.kind == "add":
        if before is not None:
            raise EditError("the file already exists")
        state[path] = _text(op.content or "")
    elif op.kind == "write":
        state[path] = _text(op.content or "")
    elif op.kind == "delete":
        if before is None:
            raise EditError("the file does not exist")
        state[path] = None
    elif before is None and op.create_if_missing:
        state[path] = _text(apply_hunks("", op.hunks, op.lenient))
    elif before is None:
        raise EditError("the file does not exist")
    else:
        after = apply_hunks(before, op.hunks, op.lenient)
        _move(op, path, after, current, state, tree)


def _move(op: FileOp, path: str, after: str, current: Callable[[str], str | None],
          state: dict[str, str | None], tree: Tree) -> None:
    if op.move_to is None:
        state[path] = after
        return
    target = safe_relpath(op.move_to)
    tree.resolve(target)
    if target != path and current(target) is not None:
        raise EditError(f"cannot move to {target!r}: it exists")
    state[path] = None
    state[target] = after


def _text(text: str) -> str:
    if "\0" in text:
        raise EditError("binary content (NUL bytes) is refused")
    return text


def apply_hunks(text: str, hunks: list[Hunk], lenient: bool = False) -> str:
    """``text`` with ``hunks`` applied in order, each found at or after the end of the one
    before (a unified diff's hunk: nearest its stated line). Raises EditError when a hunk's
    lines are not in the file (strict: exactly; lenient: also ignoring whitespace)."""
    lines = text.split("\n")
    newline_at_end = text.endswith("\n") or not text
    if text.endswith("\n"):
        lines.pop()
    elif not text:
        lines = []
    cursor = shift = 0  # shift: how far earlier hunks moved a unified diff's stated lines
    for number, hunk in enumerate(hunks, 1):
        try:
            size = len(lines)
            lines, cursor = _apply_hunk(lines, cursor, hunk, lenient, shift)
            shift += len(lines) - size
        except EditError as exc:
            raise EditError(f"hunk {number}: {exc.reason}") from None
        if hunk.no_newline_at_end and cursor == len(lines):
            newline_at_end = False
    out = "\n".join(lines)
    return out + "\n" if out and newline_at_end else out


def _apply_hunk(lines: list[str], cursor: int, hunk: Hunk, lenient: bool, shift: int) -> tuple[list[str], int]:
    hint = None if hunk.hint is None else hunk.hint + shift
    keys = _LENIENT if lenient else _STRICT
    for anchor in hunk.anchors:
        found = _locate(lines, [anchor], cursor, keys + ((str.strip,) if lenient else ()), None, False)
        if found is None:
            raise EditError(f"the anchor line {anchor.strip()[:60]!r} is not in the file")
        cursor = found + 1
    old = hunk.old
    if not old:
        at = _insertion_point(lines, cursor, hunk, lenient, hint)
        new = [text for _, text in hunk.lines]
        return lines[:at] + new + lines[at:], at + len(new)
    at = _locate(lines, old, cursor, keys, hint, hunk.at_eof)
    if at is None:
        first = next((text for text in old if text.strip()), old[0])
        raise EditError(f"its context/removed lines are not in the file (from {first.strip()[:60]!r})")
    replacement, k = [], at
    for tag, text in hunk.lines:
        if tag == " ":
            replacement.append(lines[k])  # the file's own line: lenient matching makes no churn
        if tag != "+":
            k += 1
        if tag == "+":
            replacement.append(text)
    return lines[:at] + replacement + lines[at + len(old):], at + len(replacement)


def _insertion_point(lines: list[str], cursor: int, hunk: Hunk, lenient: bool, hint: int | None) -> int:
    if hunk.at_eof or not lines:
        return len(lines)
    if hint is not None:
        return min(max(hint, cursor), len(lines))
    if hunk.anchors:
        return cursor
    if lenient:
        return len(lines)
    raise EditError("an insertion without context lines, anchor or '*** End of File'")


def _locate(lines: list[str], old: list[str], cursor: int, keys: tuple[Callable[[str], str], ...],
            hint: int | None, at_eof: bool) -> int | None:
    """Where ``old`` starts in ``lines`` (at or after ``cursor``): the first match, or the one
    nearest ``hint``; for each key (exact first) in turn."""
    size = len(old)
    starts = [len(lines) - size] if at_eof else range(cursor, len(lines) - size + 1)
    if hint is not None and not at_eof:
        starts = sorted(range(cursor, len(lines) - size + 1), key=lambda s: (abs(s - hint), s))
    for key in keys:
        want = [key(text) for text in old]
        for start in starts:
            if start >= 0 and all(key(lines[start + j]) == want[j] for j in range(size)):
                return start
    return None


class _MemoryTree:
    """The part of :class:`Tree` that :func:`apply_edit` uses, over a dict (no disk)."""

    def __init__(self, files: dict[str, str]):
        self.files = dict(files)

    def resolve(self, rel: str) -> str:
        return safe_relpath(rel)

    def read(self, rel: str) -> str | None:
        return self.files.get(safe_relpath(rel))

    def write(self, files: dict[str, str | None]) -> None:
        for rel, text in files.items():
            if text is None:
                self.files.pop(rel, None)
            else:
                self.files[rel] = text


def edit_diff(item: dict, answer: str, fmt: str | None = None) -> dict:
    """The diff a sample's ``answer`` makes to ``item``'s files, for display: strict parsing
    first, then lenient. Returns ``{"format", "applied", "lenient", "reason", "diff"}`` (``diff``:
    unified, of the changed files only; empty when the edit did not apply)."""
    from ._formats import parse_edit
    from ._tree import diff_trees

    fmt = fmt or item.get("format") or ""
    reason = None
    for lenient in (False, True):
        try:
            ops = parse_edit(answer, fmt, lenient=lenient)
            if isinstance(item.get("files"), dict):
                changes = apply_edit(_MemoryTree(item["files"]), ops)  # type: ignore[arg-type]
            else:
                with Tree.from_item(item) as tree:
                    changes = apply_edit(tree, ops)
        except EditError as exc:
            reason = reason or exc.reason
            continue
        diff = diff_trees({p: b for p, (b, _) in changes.items() if b is not None},
                          {p: a for p, (_, a) in changes.items() if a is not None})
        return {"format": fmt, "applied": True, "lenient": lenient, "reason": reason, "diff": diff}
    return {"format": fmt, "applied": False, "lenient": None, "reason": reason, "diff": ""}
