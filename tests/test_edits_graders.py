"""The edit graders (issue 16, point 2): applies, tests_pass, extraneous_edits and lint_delta,
on crafted edits whose extraneous share is computed by hand."""

from __future__ import annotations

import asyncio

import pytest

from gradeloop.edits import FORMATS, diff_trees, extraneous_lines, reference_hunks
from gradeloop.graders import grade
from gradeloop.spec import load_grader
from gradeloop.spec._load import Document

GEOM = """\
def area(w, h):
    return w + h


def perimeter(w, h):
    return 2 * (w + h)


def unused():
    x = 1
    return x
"""
GEOM_FIXED = GEOM.replace("return w + h", "return w * h")
TEST = "from geom import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n"
ITEM = {
    "task_id": "geom-bugfix-1", "kind": "bugfix", "format": "udiff",
    "files": {"geom.py": GEOM, "consts.py": "B = 1\n", "tests/test_geom.py": "def test_nothing():\n    pass\n"},
    "reference_diff": diff_trees({"geom.py": GEOM}, {"geom.py": GEOM_FIXED}),
    "test_command": ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_geom.py"],
    "test_files": {"tests/test_geom.py": TEST},  # hidden: written over the tree after the edit
}
# the fix, plus: x = 1 -> x = 2 (extraneous, 2 changed lines), a comment added to `return x`
# (comment churn, 2 lines), and B = 1 -> B = 2 in a file the reference did not touch (2 lines)
NOISY = {"geom.py": GEOM_FIXED.replace("x = 1", "x = 2").replace("    return x\n", "    return x  # the value\n"),
         "consts.py": "B = 2\n"}
NOISY_DIFF = diff_trees({"geom.py": GEOM, "consts.py": "B = 1\n"}, NOISY)


def run_grader(spec: dict, answer: str, item: dict | None = None):
    grader = load_grader(spec, Document("<test>", ""))
    return asyncio.run(grade(grader, {"output_text": answer}, item or ITEM, None))


def in_format(fmt: str, files: dict[str, str]) -> str:
    """``files`` (the new texts) as an edit in ``fmt``."""
    before = {path: ITEM["files"][path] for path in files}
    if fmt == "udiff":
        return diff_trees(before, files)
    if fmt == "whole":
        return "".join(f"{path}\n```python\n{text}```\n\n" for path, text in files.items())
    if fmt == "search-replace":
        return "".join(f"{path}\n```python\n<<<<<<< SEARCH\n{before[path]}=======\n{text}>>>>>>> REPLACE\n```\n"
                       for path, text in files.items())
    body = "".join(f"*** Update File: {path}\n" + "".join(
        "@@\n" if line.startswith("@@") else line for line in diff_trees({path: before[path]}, {path: text})
        .splitlines(keepends=True)[3:]) for path, text in files.items())
    return f"*** Begin Patch\n{body}*** End Patch\n"


def test_extraneous_share_by_hand():
    found = extraneous_lines({p: (ITEM["files"][p], t) for p, t in NOISY.items()}, ITEM["reference_diff"])
    # changed lines: 2 (the fix) + 2 (x) + 2 (comment) + 2 (consts.py) = 8; extraneous: 2 + 2; churn: 2
    assert (found.changed, found.outside_hunks, found.other_files, found.churn) == (8, 2, 2, 2)
    assert found.share == pytest.approx(0.5) and found.by_file == {"geom.py": 2, "consts.py": 2}


@pytest.mark.parametrize("fmt", FORMATS)
def test_extraneous_edits_grader_in_every_format(fmt):
    noisy = run_grader({"type": "extraneous_edits", "format": fmt}, in_format(fmt, NOISY))
    assert noisy.details["applied"], noisy.details["reason"]
    assert (noisy.score, noisy.passed) == (pytest.approx(0.5), False)
    assert noisy.details["extraneous"] == 4 and noisy.details["churn"] == 2 and noisy.details["changed"] == 8
    assert noisy.details["rates"] == {"extraneous": 1}
    clean = run_grader({"type": "extraneous_edits", "format": fmt}, in_format(fmt, {"geom.py": GEOM_FIXED}))
    assert (clean.score, clean.passed, clean.details["changed"]) == (1.0, True, 2)


def test_a_new_file_the_reference_also_creates_is_not_extraneous():
    reference = diff_trees({}, {"pkg/new.py": "A = 1\n"})
    assert reference_hunks(reference) == {"pkg/new.py": [(0, 1 << 62)]}
    found = extraneous_lines({"pkg/new.py": (None, "A = 1\nB = 2\n")}, reference)
    assert (found.changed, found.extraneous) == (2, 0)


def test_applies_and_malformed_edits_are_scored_failures_with_a_reason():
    good = run_grader({"type": "applies"}, NOISY_DIFF)
    assert (good.score, good.passed, good.details["files"]) == (1.0, True, ["consts.py", "geom.py"])
    for spec, answer in (({"type": "applies"}, "no diff here"),
                         ({"type": "applies", "format": "v4a"}, "*** Begin Patch\n*** Update File: geom.py\n"),
                         ({"type": "extraneous_edits"}, "--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n"),
                         ({"type": "lint_delta"}, "--- a/geom.py\n+++ b/geom.py\n@@ -1 +1 @@\n-nope\n+x\n")):
        bad = run_grader(spec, answer)
        assert (bad.score, bad.passed, bad.details["applied"]) == (0.0, False, False)
        assert bad.details["reason"] and not bad.errors


def test_lenient_option_is_passed_through():
    sloppy = "*** Update File: geom.py\n@@ def area(w, h):\n-  return w + h\n+    return w * h\n"
    assert run_grader({"type": "applies", "format": "v4a"}, sloppy).score == 0.0
    assert run_grader({"type": "applies", "format": "v4a", "lenient": True}, sloppy).score == 1.0


def test_tests_pass_runs_the_hidden_tests_on_the_edited_tree():
    fixed = run_grader({"type": "tests_pass"}, diff_trees({"geom.py": GEOM}, {"geom.py": GEOM_FIXED}))
    assert (fixed.score, fixed.passed) == (1.0, True), fixed.details
    assert fixed.details["returncode"] == 0 and "1 passed" in fixed.details["output"]
    noop = run_grader({"type": "tests_pass"}, diff_trees({"consts.py": "B = 1\n"}, {"consts.py": "B = 3\n"}))
    assert (noop.score, noop.passed, noop.details["returncode"]) == (0.0, False, 1)  # the hidden test fails
    missing = run_grader({"type": "tests_pass"}, NOISY_DIFF, {**ITEM, "test_command": "pytest"})
    assert missing.errors.get("invalid_variable_error")


def test_lint_delta_counts_new_ruff_findings():
    pytest.importorskip("ruff")
    dirty = GEOM_FIXED.replace("def area", "import os\nimport sys\n\n\ndef area")
    worse = run_grader({"type": "lint_delta"}, diff_trees({"geom.py": GEOM}, {"geom.py": dirty}))
    assert worse.details["new"] == 2 and worse.score == pytest.approx(1 / 3) and worse.passed is False
    assert {f["code"] for f in worse.details["new_findings"]} == {"F401"}
    item = {**ITEM, "files": {**ITEM["files"], "geom.py": dirty}}
    better = run_grader({"type": "lint_delta"}, diff_trees({"geom.py": dirty}, {"geom.py": GEOM_FIXED}), item)
    assert (better.score, better.passed, better.details["new"], better.details["fixed"]) == (1.0, True, 0, 2)


def test_an_item_whose_tree_cannot_be_built_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar file")
    result = run_grader({"type": "applies"}, NOISY_DIFF, {**ITEM, "files": None,
                                                          "tree_archive_abs": str(tmp_path / "broken.tar.gz")})
    assert result.score == 0.0 and result.errors.get("other_error") and "could not be written" in result.details["error"]
