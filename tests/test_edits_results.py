"""Code-edit results per format and per task kind (issue 16, point 5): `eval show --by format
--by kind` breaks every edit grader's pass rate and mean score down; the viewer's item page and
the offline report show the applied diff next to the reference diff."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from gradeloop.edits import diff_trees

SRC = "def area(w, h):\n    return w + h\n\n\ndef unused():\n    x = 1\n    return x\n"
FIXED = SRC.replace("w + h", "w * h")
NOISY = FIXED.replace("x = 1", "x = 2")  # 2 of its 4 changed lines are extraneous
FILES = {"geom.py": SRC, "tests/test_geom.py": "def test_placeholder():\n    pass\n"}
HIDDEN = {"tests/test_geom.py": "from geom import area\n\n\ndef test_area():\n    assert area(2, 3) == 6\n"}


def _item(task_id: str, fmt: str, kind: str) -> dict:
    return {"task_id": task_id, "kind": kind, "format": fmt, "files": FILES,
            "messages": [{"role": "user", "content": f"TASK {task_id}: make area multiply."}],
            "reference_diff": diff_trees({"geom.py": SRC}, {"geom.py": FIXED}),
            "test_command": ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_geom.py"],
            "test_files": HIDDEN}


ITEMS = [_item("t1", "udiff", "bugfix"), _item("t2", "udiff", "feature"), _item("t3", "whole", "bugfix"),
         _item("t4", "whole", "feature")]
ANSWERS = {"t1": diff_trees({"geom.py": SRC}, {"geom.py": FIXED}),
           "t2": diff_trees({"geom.py": SRC}, {"geom.py": NOISY}),
           "t3": "I would change area to multiply.",  # malformed: no file block
           "t4": f"geom.py\n```python\n{FIXED}```\n"}


@pytest.fixture
def edit_run(tmp_path):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"item": item}) + "\n" for item in ITEMS))
    rules = [{"contains": f"TASK {task_id}:", "response": answer} for task_id, answer in ANSWERS.items()]
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    definition = {
        "name": "edits", "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "applies", "name": "applies"},
                             {"type": "tests_pass", "name": "tests pass"},
                             {"type": "extraneous_edits", "name": "no extraneous"}],
        "data_source": {"type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"}},
    }
    (tmp_path / "eval.json").write_text(json.dumps(definition))
    ran = run_cli("eval", "run", str(tmp_path / "eval.json"), "-m", f"scripted/{tmp_path / 'rules.json'}",
                  "--json", "--no-progress")
    assert ran.returncode in (0, 1), ran.stderr
    return json.loads(ran.stdout)["data"][0]["id"]


def _criteria(rows: list[dict], value: str) -> dict[str, tuple]:
    [row] = [r for r in rows if r["value"] == value]
    return {c["name"]: (c["pass_rate"], pytest.approx(c["mean_score"])) for c in row["criteria"]}


def test_results_per_format_and_kind(edit_run):
    shown = run_cli("eval", "show", edit_run, "--by", "format", "--by", "kind", "--json")
    assert shown.returncode == 0, shown.stderr
    breakdown = json.loads(shown.stdout)["gradeloop"]["breakdown"]
    # udiff: t1 clean (share 0), t2 noisy (share 0.5); whole: t3 malformed, t4 clean
    assert _criteria(breakdown["format"], "udiff") == {"applies": (1.0, 1.0), "tests pass": (1.0, 1.0),
                                                       "no extraneous": (0.5, 0.75)}
    assert _criteria(breakdown["format"], "whole") == {"applies": (0.5, 0.5), "tests pass": (0.5, 0.5),
                                                       "no extraneous": (0.5, 0.5)}
    assert _criteria(breakdown["kind"], "feature")["no extraneous"] == (0.5, 0.75)  # t2 and t4
    table = run_cli("eval", "show", edit_run, "--by", "format", "--by", "kind")
    assert "By format" in table.stdout and "By kind" in table.stdout and "no extraneous" in table.stdout
    assert "extraneous 33.3% (n=3)" in table.stdout  # of the 3 edits that applied, 1 had extraneous lines


def test_item_page_and_report_show_applied_against_reference_diff(edit_run):
    from gradeloop.store import Store
    from gradeloop.view._data import item_data
    from gradeloop.view._render import item_html
    from gradeloop.view._report import build_report

    store = Store()
    try:
        pages = {item_data(store, edit_run, i)["item"]["task_id"]: item_data(store, edit_run, i) for i in range(4)}
        clean, noisy, bad = pages["t1"]["edit"], pages["t2"]["edit"], pages["t3"]["edit"]
        assert clean["applied"] and clean["diff"] == clean["reference_diff"]
        assert noisy["applied"] and "+    x = 2" in noisy["diff"] and "x = 2" not in noisy["reference_diff"]
        assert not bad["applied"] and "no file operation" in bad["reason"] and bad["diff"] == ""
        html = item_html(pages["t2"])
        assert "Applied diff" in html and "Reference diff" in html and "<span class=ins>+    x = 2</span>" in html
        report = build_report(store, [edit_run], by=["format"])
        assert "Each criterion by format" in report and "0.750" in report  # no extraneous, udiff
        assert "Code edits" in report and report.count("Applied diff") == 4
        assert report.index(" · t3 · ") < report.index(" · t1 · ")  # failed items first
    finally:
        store.close()
