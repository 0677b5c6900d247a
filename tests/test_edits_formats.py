"""Edit formats (issue 16, point 1): V4A, search/replace, unified diff and whole files, parsed
strictly or leniently and applied to a temp tree; malformed and adversarial edits are refused with
a reason and never write outside the tree."""

from __future__ import annotations

import os

import pytest

from gradeloop.edits import FORMATS, EditError, Tree, apply_edit, diff_trees, format_instructions, parse_edit

CALC = """\
def add(a, b):
    return a - b


def mul(a, b):
    return a * b


def div(a, b):
    return a / b
"""
FIXED = CALC.replace("return a - b", "return a + b")
FILES = {"calc/ops.py": CALC, "calc/__init__.py": "", "README.md": "calc\n"}

# the same change (a - b -> a + b) in each format
ANSWERS = {
    "v4a": """Here is the patch.
*** Begin Patch
*** Update File: calc/ops.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** End Patch
""",
    "search-replace": """calc/ops.py
```python
<<<<<<< SEARCH
def add(a, b):
    return a - b
=======
def add(a, b):
    return a + b
>>>>>>> REPLACE
```
""",
    "udiff": """```diff
--- a/calc/ops.py
+++ b/calc/ops.py
@@ -1,3 +1,3 @@
 def add(a, b):
-    return a - b
+    return a + b
 
```
""",
    "whole": f"""calc/ops.py
```python
{FIXED}```
""",
}


def apply(answer: str, fmt: str, files: dict | None = None, lenient: bool = False) -> tuple[dict, dict]:
    with Tree(files or FILES) as tree:
        changes = apply_edit(tree, parse_edit(answer, fmt, lenient=lenient))
        return changes, tree.files()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_applies_the_same_change(fmt):
    changes, after = apply(ANSWERS[fmt], fmt)
    assert changes == {"calc/ops.py": (CALC, FIXED)}
    assert after == {**FILES, "calc/ops.py": FIXED}


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_instructions_describe_each_format(fmt):
    text = format_instructions(fmt)
    marker = {"v4a": "*** Begin Patch", "search-replace": "<<<<<<< SEARCH", "udiff": "+++ b/", "whole": "```"}
    assert marker[fmt] in text
    with pytest.raises(EditError):
        format_instructions("ed")


def test_v4a_add_delete_move_and_several_hunks():
    patch = """*** Begin Patch
*** Add File: calc/new.py
+X = 1
+
+Y = 2
*** Delete File: README.md
*** Update File: calc/ops.py
*** Move to: calc/arith.py
@@ def add(a, b):
-    return a - b
+    return a + b
@@ def div(a, b):
-    return a / b
+    return a // b
*** End Patch"""
    changes, after = apply(patch, "v4a")
    assert after["calc/new.py"] == "X = 1\n\nY = 2\n"
    assert "README.md" not in after and "calc/ops.py" not in after
    assert after["calc/arith.py"] == FIXED.replace("a / b", "a // b")
    assert changes["README.md"] == ("calc\n", None) and changes["calc/new.py"][0] is None


def test_v4a_anchor_picks_the_right_one_of_two_identical_blocks():
    text = "class A:\n    def f(self):\n        return 1\n\n\nclass B:\n    def f(self):\n        return 1\n"
    patch = "*** Begin Patch\n*** Update File: m.py\n@@ class B:\n@@     def f(self):\n-        return 1\n+        return 2\n*** End Patch"
    _, after = apply(patch, "v4a", {"m.py": text})
    assert after["m.py"] == text[:text.rindex("1")] + "2\n"


def test_v4a_end_of_file_insertion():
    patch = "*** Begin Patch\n*** Update File: calc/ops.py\n@@\n+\n+\n+def sub(a, b):\n+    return a - b\n*** End of File\n*** End Patch"
    _, after = apply(patch, "v4a")
    assert after["calc/ops.py"] == CALC + "\n\ndef sub(a, b):\n    return a - b\n"


@pytest.mark.parametrize("patch, reason", [
    ("*** Update File: calc/ops.py\n-    return a - b\n+    return a + b\n*** End Patch", "Begin Patch"),
    ("*** Begin Patch\n*** Update File: calc/ops.py\n-    return a - b\n+    return a + b\n", "End Patch"),
    ("*** Begin Patch\n*** Update File: calc/ops.py\n-    return a - b\nreturn a + b\n*** End Patch", "line 4"),
    ("*** Begin Patch\n*** Frobnicate File: calc/ops.py\n*** End Patch", "header"),
    ("*** Begin Patch\n*** Update File: calc/ops.py\n*** End Patch", "no change"),
])
def test_v4a_malformed_is_refused_in_strict_mode(patch, reason):
    with pytest.raises(EditError, match=reason):
        parse_edit(patch, "v4a")


def test_v4a_lenient_accepts_missing_markers_and_whitespace_drift():
    patch = "*** Update File: calc/ops.py\n@@ def add(a, b):\n-  return a - b\n+    return a + b\n"
    with pytest.raises(EditError):
        parse_edit(patch, "v4a")
    ops = parse_edit(patch, "v4a", lenient=True)
    with Tree(FILES) as tree:  # strict matching refuses the re-indented removed line ...
        with pytest.raises(EditError, match="not in the file"):
            apply_edit(tree, parse_edit("*** Begin Patch\n" + patch + "*** End Patch", "v4a"))
        apply_edit(tree, ops)  # ... lenient matching ignores whitespace
        assert tree.files()["calc/ops.py"] == FIXED


def test_lenient_context_keeps_the_files_own_lines():
    patch = "*** Begin Patch\n*** Update File: calc/ops.py\n def  add(a,  b):\n-    return a - b\n+    return a + b\n*** End Patch"
    with pytest.raises(EditError):
        apply("" + patch, "v4a")
    _, after = apply(patch, "v4a", lenient=True)
    assert after["calc/ops.py"] == FIXED  # the context line stays as the file has it


def test_search_replace_several_blocks_new_file_and_missing_path():
    answer = """calc/ops.py
```python
<<<<<<< SEARCH
    return a - b
=======
    return a + b
>>>>>>> REPLACE
<<<<<<< SEARCH
    return a / b
=======
    return a // b
>>>>>>> REPLACE
```

calc/extra.py
```python
<<<<<<< SEARCH
=======
Z = 3
>>>>>>> REPLACE
```
"""
    _, after = apply(answer, "search-replace")
    assert after["calc/ops.py"] == FIXED.replace("a / b", "a // b")
    assert after["calc/extra.py"] == "Z = 3\n"
    no_path = "Please apply:\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
    with pytest.raises(EditError, match="no file path"):
        parse_edit(no_path, "search-replace")


@pytest.mark.parametrize("answer, reason", [
    ("calc/ops.py\n<<<<<<< SEARCH\n    return a - b\n>>>>>>> REPLACE\n", "without '======='"),
    ("calc/ops.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n", "without '>>>>>>> REPLACE'"),
    ("calc/ops.py\n=======\n", "outside"),
    ("just prose, no block", "no file operation"),
])
def test_search_replace_malformed(answer, reason):
    with pytest.raises(EditError, match=reason):
        parse_edit(answer, "search-replace")


def test_search_replace_lenient_decorated_path_and_short_markers():
    answer = "**calc/ops.py**\n\n```python\n<<<<< SEARCH\n    return a - b\n=====\n    return a + b\n>>>>> REPLACE\n```\n"
    with pytest.raises(EditError):
        parse_edit(answer, "search-replace")
    _, after = apply(answer, "search-replace", lenient=True)
    assert after["calc/ops.py"] == FIXED


def test_search_that_is_not_in_the_file_fails_and_changes_nothing():
    answer = ("calc/ops.py\n<<<<<<< SEARCH\n    return a / b\n=======\n    return a // b\n>>>>>>> REPLACE\n"
              "calc/ops.py\n<<<<<<< SEARCH\n    return a % b\n=======\n    return 0\n>>>>>>> REPLACE\n")
    with Tree(FILES) as tree:
        with pytest.raises(EditError, match="operation 2"):
            apply_edit(tree, parse_edit(answer, "search-replace"))
        assert tree.files() == FILES  # the first block, which did apply, was not written


def test_udiff_counts_are_strict_and_lenient_ignores_them():
    bad = "--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -1,5 +1,5 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    with pytest.raises(EditError, match="header says 5 and 5"):
        parse_edit(bad, "udiff")
    _, after = apply(bad, "udiff", lenient=True)
    assert after["calc/ops.py"] == FIXED
    bare = "--- calc/ops.py\n+++ calc/ops.py\n@@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    with pytest.raises(EditError, match="line numbers"):
        parse_edit(bare, "udiff")
    assert apply(bare, "udiff", lenient=True)[1]["calc/ops.py"] == FIXED


def test_udiff_round_trips_diff_trees_with_new_deleted_and_no_newline_files():
    after = {"calc/ops.py": FIXED.replace("a * b", "b * a"), "calc/__init__.py": "", "NEW.txt": "no newline"}
    diff = diff_trees(FILES, after)
    assert "deleted file mode" in diff and "--- /dev/null" in diff and "\\ No newline at end of file" in diff
    _, got = apply(diff, "udiff")
    assert got == after


def test_udiff_uses_the_stated_line_when_the_context_repeats():
    text = "x = 1\ny = 2\nx = 1\ny = 2\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -3,2 +3,2 @@\n x = 1\n-y = 2\n+y = 3\n"
    assert apply(diff, "udiff", {"m.py": text})[1]["m.py"] == "x = 1\ny = 2\nx = 1\ny = 3\n"


def test_whole_files_with_a_longer_fence_and_strict_paths():
    content = 'DOC = """\n```\nexample\n```\n"""\n'
    answer = f"calc/doc.py\n````python\n{content}````\n"
    assert apply(answer, "whole")[1]["calc/doc.py"] == content
    prose = f"Here is the new file:\n```python\n{FIXED}```\n"
    with pytest.raises(EditError, match="no file path"):
        parse_edit(prose, "whole")
    with pytest.raises(EditError, match="never closed"):
        parse_edit("calc/ops.py\n```python\nx = 1\n", "whole")
    lenient = f"File: `calc/ops.py`\n\n```python\n{FIXED}```\n"
    assert apply(lenient, "whole", lenient=True)[1]["calc/ops.py"] == FIXED


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("answer", ["", "   \n", None])
def test_empty_answers_are_edit_errors(fmt, answer):
    with pytest.raises(EditError, match="empty"):
        parse_edit(answer, fmt)


def test_unknown_format():
    with pytest.raises(EditError, match="unknown edit format"):
        parse_edit("x", "ed")


# --- adversarial: nothing is ever written outside the tree ---

def _escape_answers(path: str) -> dict[str, str]:
    return {
        "v4a": f"*** Begin Patch\n*** Add File: {path}\n+pwned\n*** End Patch",
        "search-replace": f"{path}\n<<<<<<< SEARCH\n=======\npwned\n>>>>>>> REPLACE\n",
        "udiff": f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+pwned\n",
        "whole": f"{path}\n```\npwned\n```\n",
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-dir", "symlink-file"])
def test_paths_outside_the_tree_are_refused(tmp_path, fmt, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("original\n")
    with Tree(FILES) as tree:
        os.symlink(outside, tree.path / "link")
        os.symlink(outside / "victim.txt", tree.path / "victim.txt")
        depth = len(tree.path.parts) - 1
        path = {"dotdot": "calc/" + "../" * (depth + 1) + str(outside / "victim.txt").lstrip("/"),
                "absolute": str(outside / "victim.txt"),
                "symlink-dir": "link/victim.txt", "symlink-file": "victim.txt"}[kind]
        answer = _escape_answers(path)[fmt]
        if kind == "absolute" and fmt == "udiff":
            answer = answer.replace("+++ b/", "+++ ")
        with pytest.raises(EditError, match="refused path"):
            apply_edit(tree, parse_edit(answer, fmt, lenient=True))
        assert (outside / "victim.txt").read_text() == "original\n"
        assert sorted(os.listdir(outside)) == ["victim.txt"]
        assert tree.files() == FILES  # nothing else was written either


@pytest.mark.parametrize("fmt", ["v4a", "udiff"])
def test_deleting_through_a_symlink_is_refused(tmp_path, fmt):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    with Tree(FILES) as tree:
        os.symlink(victim, tree.path / "v.txt")
        answer = {"v4a": "*** Begin Patch\n*** Delete File: v.txt\n*** End Patch",
                  "udiff": "--- a/v.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-keep\n"}[fmt]
        with pytest.raises(EditError, match="refused path"):
            apply_edit(tree, parse_edit(answer, fmt))
        assert victim.read_text() == "keep\n" and os.path.islink(tree.path / "v.txt")


def test_binary_files_are_refused_and_left_alone():
    with Tree(FILES) as tree:
        (tree.path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
        whole = "logo.png\n```\nnot a png\n```\n"
        with pytest.raises(EditError, match="binary"):
            apply_edit(tree, parse_edit(whole, "whole"))
        assert (tree.path / "logo.png").read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"
        nul = "*** Begin Patch\n*** Add File: calc/bin.py\n+a\x00b\n*** End Patch"
        with pytest.raises(EditError, match="binary"):
            apply_edit(tree, parse_edit(nul, "v4a"))
        assert not (tree.path / "calc/bin.py").exists()
        assert "logo.png" not in tree.files()


def test_a_move_or_add_over_an_existing_file_is_refused():
    with Tree(FILES) as tree:
        with pytest.raises(EditError, match="already exists"):
            apply_edit(tree, parse_edit("*** Begin Patch\n*** Add File: README.md\n+x\n*** End Patch", "v4a"))
        move = "*** Begin Patch\n*** Update File: calc/ops.py\n*** Move to: README.md\n@@\n-def add(a, b):\n+def plus(a, b):\n*** End Patch"
        with pytest.raises(EditError, match="exists"):
            apply_edit(tree, parse_edit(move, "v4a"))
        assert tree.files() == FILES


def test_tree_from_an_archive_keeps_only_safe_regular_files(tmp_path):
    import io
    import tarfile

    archive = tmp_path / "t.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("pkg/a.py", b"A = 1\n"), ("../evil.py", b"x"), ("/abs.py", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with Tree.from_item({"tree_archive_abs": str(archive)}) as tree:
        assert tree.files() == {"pkg/a.py": "A = 1\n"}
        assert not (tree.path / "pkg/link").exists()
        root = tree.root
    assert not root.exists()
    assert not (tmp_path / "evil.py").exists()


PIECES = ["*** Begin Patch", "*** End Patch", "*** Update File: calc/ops.py", "*** Add File: x.py",
          "*** Delete File: README.md", "*** Move to: y.py", "*** End of File", "@@", "@@ def add(a, b):",
          "@@ -1,2 +1,2 @@", "@@ -0,0 +1 @@", "--- a/calc/ops.py", "+++ b/calc/ops.py", "--- /dev/null",
          "+++ /dev/null", "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE", "```", "```python", "````", "calc/ops.py",
          "def add(a, b):", " def add(a, b):", "-    return a - b", "+    return a + b", "    return a - b", "",
          "\\ No newline at end of file", "../x", "/etc/passwd", "+", "-", " ", "**calc/ops.py**"]


SKELETONS = {"v4a": "*** Begin Patch\n*** Update File: calc/ops.py", "udiff": "--- a/calc/ops.py\n+++ b/calc/ops.py",
             "search-replace": "calc/ops.py\n<<<<<<< SEARCH", "whole": "calc/ops.py\n```"}


def test_random_answers_never_crash_and_never_leave_the_tree():
    """Answers built at random from every format's markers: each parses and applies, or raises
    EditError; nothing else, and nothing is written outside the tree."""
    import random

    rng = random.Random(16)
    passwd = os.stat("/etc/passwd").st_mtime_ns
    applied = 0
    for _ in range(2000):
        fmt, lenient = rng.choice(FORMATS), rng.random() < 0.5
        start = [SKELETONS[fmt]] if rng.random() < 0.5 else []
        answer = "\n".join(start + [rng.choice(PIECES) for _ in range(rng.randint(1, 14))])
        try:
            ops = parse_edit(answer, fmt, lenient=lenient)
        except EditError:
            continue
        with Tree(FILES) as tree:
            try:
                apply_edit(tree, ops)
                applied += 1
            except EditError:
                assert tree.files() == FILES
            assert sorted(os.listdir(tree.root)) == ["scratch", "tree"] and not os.listdir(tree.scratch)
    assert os.stat("/etc/passwd").st_mtime_ns == passwd
    assert applied > 100  # the generator does reach valid edits


def test_the_public_names_of_gradeloop_edits_are_pinned():
    import gradeloop.edits

    assert set(gradeloop.edits.__all__) == {
        "EditError", "Extraneous", "FORMATS", "FileOp", "Hunk", "TestRun", "Tree", "apply_edit", "apply_hunks",
        "diff_trees", "edit_diff", "extraneous_lines", "format_instructions", "lint_delta", "parse_edit",
        "reference_hunks", "ruff_findings", "run_tests"}
    assert FORMATS == ("v4a", "search-replace", "udiff", "whole")
    for name in gradeloop.edits.__all__:
        assert getattr(gradeloop.edits, name).__doc__ or name == "FORMATS", name


def test_lenient_skips_example_blocks_and_udiff_line_numbers_in_v4a():
    answer = f"Run the tests with:\n```bash\npytest -q\n```\nThe file:\ncalc/ops.py\n```python\n{FIXED}```\n"
    with pytest.raises(EditError, match="no file path"):
        parse_edit(answer, "whole")
    assert [op.path for op in parse_edit(answer, "whole", lenient=True)] == ["calc/ops.py"]
    v4a = "*** Begin Patch\n*** Update File: calc/ops.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n" \
          "+    return a + b\n*** End Patch"
    with pytest.raises(EditError, match="anchor"):
        apply(v4a, "v4a")
    assert apply(v4a, "v4a", lenient=True)[1]["calc/ops.py"] == FIXED


def test_v4a_added_file_keeps_explicit_blank_lines_only():
    patch = "*** Begin Patch\n*** Add File: a.py\n+A = 1\n+\n\n*** Add File: b.py\n+B = 2\n\n+C = 3\n*** End Patch"
    _, after = apply(patch, "v4a")
    assert (after["a.py"], after["b.py"]) == ("A = 1\n\n", "B = 2\n\nC = 3\n")
