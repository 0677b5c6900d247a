"""Code edits: parse a model's edit in one of four formats, apply it to a task's files in a temp
tree, diff trees, and run the task's tests in the command sandbox.

```python
with Tree.from_item(item) as tree:
    changes = apply_edit(tree, parse_edit(answer, "v4a"))   # EditError(reason) if malformed
    run = run_tests(tree, item["test_command"])               # TestRun(passed, ...)
```
See docs/code-edits.md for the formats, the lenient mode and the graders built on this.
"""

from ._apply import apply_edit, apply_hunks, edit_diff
from ._errors import EditError
from ._formats import FORMATS, FileOp, Hunk, parse_edit
from ._instructions import format_instructions
from ._metrics import Extraneous, extraneous_lines, lint_delta, reference_hunks, ruff_findings
from ._run import TestRun, run_tests
from ._tree import Tree, diff_trees

__all__ = [
    "FORMATS",
    "EditError",
    "Extraneous",
    "FileOp",
    "Hunk",
    "TestRun",
    "Tree",
    "apply_edit",
    "apply_hunks",
    "diff_trees",
    "edit_diff",
    "extraneous_lines",
    "format_instructions",
    "lint_delta",
    "parse_edit",
    "reference_hunks",
    "ruff_findings",
    "run_tests",
]
