"""What a model is told about each edit format (our own wording)."""

from __future__ import annotations

from ._errors import EditError

_INSTRUCTIONS = {
    "v4a": """\
Answer with one patch in this format, and nothing else inside it:

*** Begin Patch
*** Update File: path/to/file.py
@@ def the_function_around_the_change():
 an unchanged line just above the change
-a line to remove
+a line to add
 an unchanged line just below the change
*** Add File: path/to/new_file.py
+every line of the new file, each starting with +
*** Delete File: path/to/old_file.py
*** End Patch

Rules: paths are relative to the project root. In an update, every line starts with a space
(unchanged), '-' (removed) or '+' (added). Show about three unchanged lines above and below each
change; when they are not enough to find the place, add an '@@' line naming the class or function
it is in (several '@@' lines narrow it down). Start each further change in the same file with a
new '@@' line. Removed and unchanged lines must match the file exactly.""",
    "search-replace": """\
Answer with one or more search/replace blocks. Each block is the file's path on a line of its own,
then:

```python
<<<<<<< SEARCH
the exact lines now in the file
=======
the lines that replace them
>>>>>>> REPLACE
```

Rules: paths are relative to the project root. The SEARCH part must match the file exactly,
whitespace and comments included, and should be just long enough to be unique; the first match
is replaced. Use one block per change. To create a file, give its path and an empty SEARCH part.""",
    "udiff": """\
Answer with a unified diff, as `diff -u` or `git diff` writes it:

--- a/path/to/file.py
+++ b/path/to/file.py
@@ -12,7 +12,8 @@
 an unchanged line
-a line to remove
+a line to add
 an unchanged line

Rules: paths are relative to the project root. Each hunk header gives the first line and the
number of lines of the hunk in the old and the new file, and they must agree with the hunk's
body. Unchanged lines start with a space. Use --- /dev/null to create a file and +++ /dev/null to
delete one.""",
    "whole": """\
Answer with the complete new content of every file you change. For each file, write its path on
a line of its own and then the whole file in a fenced code block:

path/to/file.py
```python
the entire file, every line, including the lines you did not change
```

Rules: paths are relative to the project root. Leave out files you do not change. If the file
itself contains a line of three backticks, fence it with four.""",
}


def format_instructions(fmt: str) -> str:
    """The system-prompt text that tells a model how to write an edit in format ``fmt``.
    Raises EditError for an unknown format."""
    if fmt not in _INSTRUCTIONS:
        raise EditError(f"unknown edit format {fmt!r} (known: {', '.join(_INSTRUCTIONS)})")
    return _INSTRUCTIONS[fmt]
