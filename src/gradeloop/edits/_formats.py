"""Parsers for the four edit formats: a model's answer -> a list of :class:`FileOp`.

Strict mode accepts what each format's own description allows; lenient mode (``lenient=True``)
also accepts the slips models make most (listed in docs/code-edits.md and per parser below).
Text outside an edit's own markers (prose, code fences around a patch) is ignored in both.
Every problem raises :class:`EditError` with a reason that names the line.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Literal

from ._errors import EditError

FORMATS = ("v4a", "search-replace", "udiff", "whole")


@dataclass
class Hunk:
    """One change inside a file: ``lines`` are (tag, text) with tag ``" "`` (context, kept as the
    file has it), ``"-"`` (removed) or ``"+"`` (added). ``anchors`` (V4A ``@@ line``) are found in
    order before the hunk; ``at_eof``: the hunk ends at the end of the file; ``hint``: the
    0-based line where a unified diff says it starts."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    at_eof: bool = False
    hint: int | None = None
    no_newline_at_end: bool = False

    @property
    def old(self) -> list[str]:
        """The lines the hunk expects in the file."""
        return [text for tag, text in self.lines if tag != "+"]


@dataclass
class FileOp:
    """One file operation: ``add`` (``content``), ``update`` (``hunks``, optionally ``move_to``),
    ``delete``, or ``write`` (the whole new ``content``, creating or replacing the file)."""

    kind: Literal["add", "update", "delete", "write"]
    path: str
    content: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    move_to: str | None = None
    lenient: bool = False
    create_if_missing: bool = False  # a search/replace block with an empty SEARCH


def parse_edit(answer: str, fmt: str, *, lenient: bool = False) -> list[FileOp]:
    """Parse a model's ``answer`` in edit format ``fmt`` (one of FORMATS).

    Returns the file operations in order; raises EditError(reason) for a malformed edit."""
    if fmt not in _PARSERS:
        raise EditError(f"unknown edit format {fmt!r} (known: {', '.join(FORMATS)})")
    if not isinstance(answer, str) or not answer.strip():
        raise EditError("the answer is empty")
    lines = answer.replace("\r\n", "\n").split("\n")
    ops = _PARSERS[fmt](lines, lenient)
    if not ops:
        raise EditError(f"{fmt}: no file operation found")
    for op in ops:
        op.lenient = lenient
    return ops


# --- V4A (OpenAI's apply_patch) ---

_V4A_HEAD = re.compile(r"^\*\*\* (Update|Add|Delete) File: ?(.*)$")


def _parse_v4a(lines: list[str], lenient: bool) -> list[FileOp]:
    """``*** Begin Patch`` / ``*** Update|Add|Delete File: path`` sections / ``*** End Patch``.
    Lenient: the Begin/End markers may be missing, headers may be indented, and an update line
    without a ``+``/``-``/space prefix is taken as context."""
    start = _find(lines, "*** Begin Patch", 0)
    if start is None:
        if not lenient:
            raise EditError("v4a: no '*** Begin Patch' line")
        start = next((i - 1 for i, line in enumerate(lines) if _V4A_HEAD.match(line.strip())), None)
        if start is None:
            raise EditError("v4a: no '*** Begin Patch' line and no file section")
    end = _find(lines, "*** End Patch", start + 1)
    if end is None:
        if not lenient:
            raise EditError("v4a: no '*** End Patch' line after '*** Begin Patch'")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("```")), len(lines))
    ops: list[FileOp] = []
    i = start + 1
    while i < end:
        raw = lines[i]
        line = raw.strip() if lenient else raw
        head = _V4A_HEAD.match(line)
        if head is None:
            if not raw.strip():
                i += 1
                continue
            raise EditError(f"v4a: line {i + 1}: expected a '*** Update/Add/Delete File:' header, got {raw[:80]!r}")
        action, path = head.group(1), head.group(2).strip()
        if not path:
            raise EditError(f"v4a: line {i + 1}: a file header without a path")
        if action == "Delete":
            ops.append(FileOp("delete", path))
            i += 1
        elif action == "Add":
            i = _v4a_add(lines, i + 1, end, path, lenient, ops)
        else:
            i = _v4a_update(lines, i + 1, end, path, lenient, ops)
    return ops


def _find(lines: list[str], marker: str, start: int) -> int | None:
    return next((i for i in range(start, len(lines)) if lines[i].strip() == marker), None)


def _is_header(line: str, lenient: bool) -> bool:
    text = line.strip() if lenient else line
    return bool(_V4A_HEAD.match(text))


def _v4a_add(lines: list[str], i: int, end: int, path: str, lenient: bool, ops: list[FileOp]) -> int:
    content, bare = [], []  # bare: a line without its '+' (an empty one, or any in lenient mode)
    while i < end and not _is_header(lines[i], lenient):
        line = lines[i]
        if line.startswith("+"):
            content.append(line[1:])
        elif lenient or not line:
            content.append(line)
        else:
            raise EditError(f"v4a: line {i + 1}: every line of an added file starts with '+', got {line[:80]!r}")
        bare.append(not line.startswith("+"))
        i += 1
    while content and bare[-1] and not content[-1]:  # the gap before the next header
        content.pop()
        bare.pop()
    ops.append(FileOp("add", path, content="".join(text + "\n" for text in content)))
    return i


def _v4a_update(lines: list[str], i: int, end: int, path: str, lenient: bool, ops: list[FileOp]) -> int:
    op = FileOp("update", path)
    if i < end and lines[i].strip().startswith("*** Move to:"):
        op.move_to = lines[i].strip()[len("*** Move to:"):].strip()
        i += 1
    hunk = Hunk()
    while i < end and not _is_header(lines[i], lenient):
        line = lines[i]
        if line.startswith("@@"):
            if hunk.lines:
                op.hunks.append(hunk)
                hunk = Hunk()
            anchor = line[2:][1:] if line[2:3] == " " else line[2:]
            if lenient and _HUNK_HEAD.match(line):
                anchor = ""  # a unified diff's line numbers, not an anchor
            if anchor.strip():
                hunk.anchors.append(anchor)
        elif line.strip() == "*** End of File":
            hunk.at_eof = True
        elif line[:1] in ("+", "-", " "):
            hunk.lines.append((line[0], line[1:]))
        elif not line:
            hunk.lines.append((" ", ""))  # a blank context line written without its space
        elif lenient:
            hunk.lines.append((" ", line))
        else:
            raise EditError(f"v4a: line {i + 1}: a change line starts with '+', '-' or a space, got {line[:80]!r}")
        i += 1
    _trim_blank_tail(hunk)
    if hunk.lines or hunk.anchors:
        op.hunks.append(hunk)
    if not op.hunks and op.move_to is None:
        raise EditError(f"v4a: '*** Update File: {path}' has no change")
    ops.append(op)
    return i


def _trim_blank_tail(hunk: Hunk) -> None:
    """Blank context lines at a hunk's end are usually the gap before the next header."""
    while hunk.lines and hunk.lines[-1] == (" ", ""):
        hunk.lines.pop()


# --- search/replace blocks (as Aider writes them) ---

_SEARCH = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={5,9}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w.+#/-]*)\s*$")


def _parse_search_replace(lines: list[str], lenient: bool) -> list[FileOp]:
    """Blocks of ``path`` / (optional fence) / ``<<<<<<< SEARCH`` / old / ``=======`` / new /
    ``>>>>>>> REPLACE``. A block right after another in the same fence may leave out its path.
    Lenient: 5-9 marker characters and a decorated path line (``**a.py**``, `` `a.py` ``,
    ``# a.py``) are accepted, and a block without a path reuses the previous block's."""
    search = _SEARCH if lenient else re.compile(r"^<<<<<<< SEARCH$")
    divider = _DIVIDER if lenient else re.compile(r"^=======$")
    replace = _REPLACE if lenient else re.compile(r"^>>>>>>> REPLACE$")
    ops: list[FileOp] = []
    last_path: str | None = None
    i = 0
    while i < len(lines):
        if not search.match(lines[i].rstrip()):
            if divider.match(lines[i].rstrip()) or replace.match(lines[i].rstrip()):
                raise EditError(f"search-replace: line {i + 1}: {lines[i][:20]!r} outside a SEARCH block")
            i += 1
            continue
        path = _block_path(lines, i, lenient, last_path)
        mid = next((j for j in range(i + 1, len(lines)) if divider.match(lines[j].rstrip())), None)
        if mid is None:
            raise EditError(f"search-replace: line {i + 1}: SEARCH without '======='")
        stop = next((j for j in range(mid + 1, len(lines)) if replace.match(lines[j].rstrip())), None)
        if stop is None:
            raise EditError(f"search-replace: line {mid + 1}: '=======' without '>>>>>>> REPLACE'")
        if any(search.match(line.rstrip()) for line in lines[i + 1:stop]):
            raise EditError(f"search-replace: line {i + 1}: a SEARCH block that is not closed before the next")
        ops.append(_search_op(path, lines[i + 1:mid], lines[mid + 1:stop]))
        last_path, i = path, stop + 1
    return ops


def _block_path(lines: list[str], i: int, lenient: bool, last_path: str | None) -> str:
    j = i - 1
    if j >= 0 and _FENCE.match(lines[j].strip()):
        j -= 1  # the fence that opens the block
    while lenient and j >= 0 and not lines[j].strip():
        j -= 1
    candidate = lines[j].strip() if j >= 0 else ""
    if _REPLACE.match(candidate) and last_path is not None:
        return last_path
    if lenient:
        candidate = _undecorate(candidate)
    if candidate and _looks_like_path(candidate):
        return candidate
    if lenient and last_path is not None:
        return last_path
    raise EditError(f"search-replace: line {i + 1}: no file path on the line before the block")


def _undecorate(text: str) -> str:
    text = text.strip().strip("*`\"'").strip()
    text = re.sub(r"^(#+|file:|path:|filename:)\s*", "", text, flags=re.IGNORECASE)
    return text.strip().strip("*`\"'").rstrip(":").strip()


def _looks_like_path(text: str) -> bool:
    return bool(text) and " " not in text and not text.startswith(("```", "~~~", "<<<", "===", ">>>"))


def _search_op(path: str, old: list[str], new: list[str]) -> FileOp:
    if not "".join(old).strip():
        return FileOp("update", path, hunks=[Hunk(lines=[("+", text) for text in new])], create_if_missing=True)
    hunk = Hunk()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            hunk.lines += [(" ", text) for text in old[a0:a1]]
        else:
            hunk.lines += [("-", text) for text in old[a0:a1]] + [("+", text) for text in new[b0:b1]]
    return FileOp("update", path, hunks=[hunk])


# --- unified diff ---

_HUNK_HEAD = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _parse_udiff(lines: list[str], lenient: bool) -> list[FileOp]:
    """``--- a/path`` / ``+++ b/path`` then ``@@ -l,n +l,n @@`` hunks (``/dev/null`` adds or
    deletes a file; git's extended header lines are skipped). Strict: every hunk header has its
    line numbers and counts that match its body. Lenient: a bare ``@@`` and wrong counts are
    accepted (a hunk then ends at the first line that is not a diff line)."""
    ops: list[FileOp] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            i = _udiff_file(lines, i, lenient, ops)
        elif lines[i].startswith("@@") and not lenient:
            raise EditError(f"udiff: line {i + 1}: a hunk before any '--- '/'+++ ' header")
        else:
            i += 1
    return ops


def _udiff_path(text: str) -> str | None:
    path = text[4:].split("\t")[0].strip()
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def _udiff_file(lines: list[str], i: int, lenient: bool, ops: list[FileOp]) -> int:
    old_path, new_path = _udiff_path(lines[i]), _udiff_path(lines[i + 1])
    if old_path is None and new_path is None:
        raise EditError(f"udiff: line {i + 1}: both sides are /dev/null")
    hunks: list[Hunk] = []
    i += 2
    while i < len(lines) and lines[i].startswith("@@"):
        i = _udiff_hunk(lines, i, lenient, hunks)
    if not hunks:
        raise EditError(f"udiff: line {i}: a file header without hunks")
    if old_path is None:
        if any(tag != "+" for hunk in hunks for tag, _ in hunk.lines):
            raise EditError(f"udiff: a new file ({new_path}) may only have '+' lines")
        text = "".join(t + "\n" for hunk in hunks for _, t in hunk.lines)
        ops.append(FileOp("add", new_path, content=text[:-1] if hunks[-1].no_newline_at_end else text))
    elif new_path is None:
        ops.append(FileOp("delete", old_path))
    else:
        ops.append(FileOp("update", old_path, hunks=hunks, move_to=new_path if new_path != old_path else None))
    return i


def _udiff_hunk(lines: list[str], i: int, lenient: bool, hunks: list[Hunk]) -> int:
    head = _HUNK_HEAD.match(lines[i])
    if head is None and not lenient:
        raise EditError(f"udiff: line {i + 1}: a hunk header needs line numbers: '@@ -l,n +l,n @@'")
    want = [int(head.group(2) or 1), int(head.group(4) or 1)] if head else None
    hunk = Hunk()
    if head is not None:  # 0-based; with no old lines, the header names the line it inserts after
        hunk.hint = int(head.group(1)) if want[0] == 0 else max(0, int(head.group(1)) - 1)
    counted = [0, 0]
    i += 1
    while i < len(lines):
        line = lines[i]
        if line.startswith("\\"):
            hunk.no_newline_at_end = bool(hunk.lines) and hunk.lines[-1][0] != "-"
            i += 1
            continue
        if not lenient and counted == want:
            break
        if line == "" and (not lenient or (i + 1 < len(lines) and lines[i + 1][:1] in (" ", "-", "+"))):
            line = " "  # a blank context line that lost its space
        if line[:1] not in (" ", "-", "+") or (lenient and line.startswith("--- ") and
                                               i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            break
        hunk.lines.append((line[0], line[1:]))
        counted[0] += line[0] != "+"
        counted[1] += line[0] != "-"
        i += 1
    if not lenient and counted != want:
        raise EditError(f"udiff: line {i}: the hunk has {counted[0]} old and {counted[1]} new lines, its header "
                        f"says {want[0]} and {want[1]}")
    if lenient:
        _trim_blank_tail(hunk)
    hunks.append(hunk)
    return i


# --- whole files ---


def _parse_whole(lines: list[str], lenient: bool) -> list[FileOp]:
    """Each file as its path on a line of its own, then its whole new content in a fenced code
    block (a fence of three or more backticks or tildes; the closing fence is at least as long,
    so a file that contains a fence uses a longer one). Lenient: a decorated path line and a
    path given as the fence's info string (```` ```path/to/a.py ````) are accepted, and a code
    block without a path is skipped (an example, not a file)."""
    ops: list[FileOp] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i].strip())
        if fence is None:
            i += 1
            continue
        marker = fence.group(1)
        closing = re.compile(re.escape(marker[0]) + "{" + str(len(marker)) + ",}")
        close = next((j for j in range(i + 1, len(lines)) if closing.fullmatch(lines[j].strip())), None)
        if close is None:
            raise EditError(f"whole: line {i + 1}: a code block that is never closed")
        try:
            path = _whole_path(lines, i, fence.group(2), lenient)
        except EditError:
            if not lenient:
                raise
            path = None  # lenient: a code block without a path is an example, not a file
        if path is not None:
            ops.append(FileOp("write", path, content="".join(line + "\n" for line in lines[i + 1:close])))
        i = close + 1
    return ops


def _whole_path(lines: list[str], i: int, info: str, lenient: bool) -> str:
    j = i - 1
    while lenient and j >= 0 and not lines[j].strip():
        j -= 1
    candidate = lines[j].strip() if j >= 0 else ""
    if lenient:
        candidate = _undecorate(candidate)
        if not _looks_like_path(candidate) and ("/" in info or re.search(r"\w\.\w+$", info)):
            candidate = info
    if _looks_like_path(candidate):
        return candidate
    raise EditError(f"whole: line {i + 1}: no file path on the line before the code block")


_PARSERS = {"v4a": _parse_v4a, "search-replace": _parse_search_replace, "udiff": _parse_udiff,
            "whole": _parse_whole}
