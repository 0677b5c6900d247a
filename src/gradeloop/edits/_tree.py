"""A task's files in a private temp directory, written and read without ever leaving it."""

from __future__ import annotations

import difflib
import os
import pathlib
import shutil
import stat
import tempfile
from typing import Any

from ._errors import EditError

MAX_FILE_BYTES = 4 * 1024 * 1024


def safe_relpath(path: str) -> str:
    """``path`` as a clean relative POSIX path inside a tree; raises EditError for an absolute
    path, ``..``, an empty name, a NUL or a backslash."""
    text = str(path).strip()
    if not text or "\0" in text or "\\" in text:
        raise EditError(f"refused path {path!r}: empty, NUL or backslash")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise EditError(f"refused path {path!r}: absolute paths are not allowed")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise EditError(f"refused path {path!r}: it leaves the tree")
    return "/".join(parts)


def is_text(data: bytes) -> bool:
    """Whether ``data`` is a text file's content: UTF-8 without NUL bytes."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Tree:
    """A task's files in a fresh temp directory (``path``); a context manager that removes it.

    ``path`` is the tree itself; its private parent also holds ``scratch``, the home and
    temp directory of commands run on the tree (so they leave nothing in the tree's files).
    """

    def __init__(self, files: dict[str, str] | None = None):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="gradeloop-tree-"))
        self.path = self.root / "tree"
        self.scratch = self.root / "scratch"
        self.path.mkdir()
        self.scratch.mkdir()
        try:
            self.write(files or {})
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Tree:
        """The tree of a code-edit item: its ``files`` ({path: text}), or the archive named by
        ``tree_archive_abs`` (a .tar.gz; only regular files are extracted). Raises EditError."""
        if item.get("tree_archive_abs"):
            tree = cls()
            try:
                tree.extract(item["tree_archive_abs"])
            except BaseException:
                tree.close()
                raise
            return tree
        files = item.get("files")
        if not isinstance(files, dict):
            raise EditError("the item has neither 'files' nor 'tree_archive_abs'")
        return cls(files)

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temp directory (files a sandboxed command left, too)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def extract(self, archive: str | os.PathLike) -> None:
        """Add the regular files of a .tar.gz archive (safe paths only; links and devices are
        skipped). Raises ValueError for an archive that cannot be read."""
        import tarfile

        try:
            tar = tarfile.open(archive, "r:*")
        except tarfile.TarError as exc:
            raise ValueError(f"cannot read the tree archive {archive}: {exc}") from None
        with tar:
            for member in tar:
                if not member.isfile() or member.size > MAX_FILE_BYTES:
                    continue
                try:
                    rel = safe_relpath(member.name)
                except EditError:
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    self.write_bytes(rel, handle.read())

    def files(self) -> dict[str, str]:
        """Every text file in the tree: relative path -> text (symlinks and binary files left out)."""
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                info = os.lstat(full)
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                    continue
                with open(full, "rb") as handle:
                    data = handle.read()
                if is_text(data):
                    out[os.path.relpath(full, self.path).replace(os.sep, "/")] = data.decode("utf-8")
        return out

    def read(self, rel: str) -> str | None:
        """The text of file ``rel``, or None when it does not exist. Raises EditError for a path
        outside the tree, through a symlink, not a regular file, or binary."""
        full = self.resolve(rel)
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise EditError(f"refused path {rel!r}: not a regular file")
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES or not is_text(data):
            raise EditError(f"refused path {rel!r}: a binary or oversized file")
        return data.decode("utf-8")

    def resolve(self, rel: str) -> pathlib.Path:
        """The absolute path of ``rel`` in the tree; raises EditError when ``rel`` is unsafe or
        any existing component of it is a symlink or a non-directory."""
        rel = safe_relpath(rel)
        current = self.path
        parts = rel.split("/")
        for i, part in enumerate(parts):
            current = current / part
            try:
                info = os.lstat(current)
            except FileNotFoundError:
                break
            if stat.S_ISLNK(info.st_mode):
                raise EditError(f"refused path {rel!r}: it goes through a symlink")
            if i < len(parts) - 1 and not stat.S_ISDIR(info.st_mode):
                raise EditError(f"refused path {rel!r}: {part!r} is not a directory")
        return self.path / rel

    def write(self, files: dict[str, str | None]) -> None:
        """Write text files (None removes one); paths are checked as in :meth:`resolve`."""
        for rel, text in files.items():
            if text is None:
                self.remove(rel)
            elif "\0" in text:
                raise EditError(f"refused content for {rel!r}: binary (NUL bytes)")
            else:
                self.write_bytes(rel, text.encode("utf-8"))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write one file, creating its directories; never follows a symlink."""
        full = self.resolve(rel)
        current = self.path
        for part in safe_relpath(rel).split("/")[:-1]:
            current = current / part
            if not current.exists():
                os.mkdir(current)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def remove(self, rel: str) -> None:
        """Remove file ``rel`` (a regular file; a missing one is fine)."""
        full = self.resolve(rel)
        if os.path.lexists(full):
            if not stat.S_ISREG(os.lstat(full).st_mode):
                raise EditError(f"refused path {rel!r}: not a regular file")
            os.remove(full)


def diff_trees(before: dict[str, str], after: dict[str, str]) -> str:
    """A unified diff (git style: ``diff --git a/p b/p``, ``--- a/p``, ``+++ b/p``, 3 lines of
    context) from ``before`` to ``after`` ({path: text}); empty when they are equal."""
    chunks = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        old_name = f"a/{path}" if old is not None else "/dev/null"
        new_name = f"b/{path}" if new is not None else "/dev/null"
        body = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in difflib.unified_diff(_lines(old), _lines(new), old_name, new_name))
        head = f"diff --git a/{path} b/{path}\n"
        if old is None:
            head += "new file mode 100644\n"
        elif new is None:
            head += "deleted file mode 100644\n"
        chunks.append(head + body)
    return "".join(chunks)


def _lines(text: str | None) -> list[str]:
    """Lines with their newline; only ``\\n`` ends a line (``\\r`` and form feeds stay in it)."""
    parts = (text or "").split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
