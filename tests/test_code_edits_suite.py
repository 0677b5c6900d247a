"""The built-in code-edits suite (issue 16, point 3): shipped projects, tasks verified solvable in
the sandbox, a deterministic build with items per format and kind, and a run graded end to end."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_cli
from gradeloop.edits import FORMATS, format_instructions
from gradeloop.graders import grade
from gradeloop.spec import load_eval, parse_criteria
from gradeloop.suites import code_edits
from gradeloop.suites._edit_tasks import TASKS


def read_rows(folder):
    return [json.loads(line)["item"] for line in (folder / "rows.jsonl").read_text().splitlines()]


def test_every_project_ships_a_package_and_a_pytest_suite():
    for name in code_edits.PROJECTS:
        files = code_edits.project_files(name)
        modules = [p for p in files if p.startswith(f"{name}/") and p.endswith(".py")]
        tests = [p for p in files if p.startswith("tests/test_")]
        assert len(modules) >= 4 and len(tests) >= 2, name
        assert not any("__pycache__" in p for p in files)


def test_task_table_covers_every_kind_in_every_project():
    assert len({spec.task_id for spec in TASKS}) == len(TASKS) >= 40
    for name in code_edits.PROJECTS:
        assert {s.kind for s in TASKS if s.project == name} == set(code_edits.KINDS), name
    for task in code_edits.tasks():
        assert 2 <= len(task["context_files"]) <= 3 and all(p in task["files"] for p in task["context_files"])
        changed = {line[len("+++ b/"):] for line in task["reference_diff"].splitlines() if line.startswith("+++ b/")}
        assert 1 <= len(changed) <= 3 and changed - set(task["test_files"]) <= set(task["context_files"])
        assert task["test_files"] and all(p.startswith("tests/") for p in task["test_files"])


def test_every_reference_change_applies_exactly_and_adds_no_lint():
    """Graded as an answer, each task's reference diff applies, changes nothing extraneous and adds
    no ruff finding, so a model can score 1 on every metric."""
    criteria = parse_criteria(code_edits.eval_definition({"n": 1, "seed": 0, "formats": ["udiff"]})
                              ["testing_criteria"])
    checks = [c for c in criteria if c.type != "tests_pass"]  # the sandboxed runs are the next test's
    for task in code_edits.tasks():
        [item] = code_edits.items(task, ["udiff"])
        for grader in checks:
            result = asyncio.run(grade(grader, {"output_text": task["reference_diff"]}, item, None))
            assert result.passed, (task["task_id"], grader.type, result.details)


@pytest.mark.slow
def test_every_task_is_solvable_and_not_already_solved():
    """The reference change passes the task's tests in the sandbox; the unchanged tree fails them."""
    all_tasks = code_edits.tasks()
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(code_edits.verify, all_tasks))
    failed = {task["task_id"]: why for task, (ok, why) in zip(all_tasks, verdicts) if not ok}
    assert failed == {}


def test_verify_catches_tests_that_pass_unchanged_and_a_reference_that_does_not_apply():
    task = next(t for t in code_edits.tasks() if t["kind"] == "feature")
    start_tests = {path: text for path, text in task["files"].items() if path in task["test_files"]}
    ok, why = code_edits.verify({**task, "test_files": start_tests})
    assert not ok and "already pass" in why
    ok, why = code_edits.verify({**task, "reference_diff": task["reference_diff"].replace("\n-", "\n-#", 1)})
    assert not ok and "does not apply" in why


def test_build_is_deterministic_and_writes_each_task_in_every_format(tmp_path):
    args = ["suite", "code-edits", "build", "--n", "12", "--seed", "1", "--format", "v4a,search-replace,udiff,whole"]
    first = run_cli(*args, "--out", str(tmp_path / "a"), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"]["format"] == {fmt: 3 for fmt in FORMATS}
    assert run_cli(*args, "--out", str(tmp_path / "b")).returncode == 0
    for name in ("eval.yaml", "rows.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = read_rows(tmp_path / "a")
    assert len(rows) == 12 and len({r["task_id"] for r in rows}) == 3
    for row in rows:
        assert row["id"] == f"{row['task_id']}.{row['format']}" and row["kind"] in code_edits.KINDS
        system, user = row["messages"]
        assert system == {"role": "system", "content": format_instructions(row["format"])}
        assert user["content"].startswith(row["instruction"])
        for path in row["context_files"]:
            assert f"### {path}\n" in user["content"] and row["files"][path].rstrip() in user["content"]
        assert not any(text in user["content"] for path, text in row["test_files"].items()
                       if text != row["files"].get(path))  # hidden tests stay hidden
    spec = load_eval(tmp_path / "a" / "eval.yaml")
    assert [c.type for c in spec.testing_criteria] == ["applies", "tests_pass", "extraneous_edits", "lint_delta"]
    other = run_cli(*args[:6], "2", *args[7:], "--out", str(tmp_path / "c"))
    assert other.returncode == 0, other.stderr
    assert [r["task_id"] for r in read_rows(tmp_path / "c")] != [r["task_id"] for r in rows]


def test_a_file_that_holds_a_code_fence_is_shown_in_a_longer_fence():
    [task] = [t for t in code_edits.tasks() if t["task_id"] == "textkit-bugfix-1"]
    prompt = code_edits.render_prompt(task)
    assert "```" in task["files"]["textkit/headings.py"]
    assert "### textkit/headings.py\n````python\n" in prompt and "\n````\n" in prompt


def test_build_defaults_to_every_task_and_refuses_more_than_the_suite_has(tmp_path):
    result = run_cli("suite", "code-edits", "build", "--n", "500", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "--n" in result.stderr and "the suite has 41" in result.stderr
    every = run_cli("suite", "code-edits", "build", "--format", "udiff,whole", "--out", str(tmp_path / "all"))
    assert every.returncode == 0, every.stderr
    rows = read_rows(tmp_path / "all")
    assert len(rows) == 82 and {(r["task_id"], r["format"]) for r in rows} == {
        (spec.task_id, fmt) for spec in TASKS for fmt in ("udiff", "whole")}
    result = run_cli("suite", "code-edits", "build", "--n", "4", "--format", "v4a,diff3", "--out", str(tmp_path))
    assert result.returncode == 2 and "--format" in result.stderr and "diff3" in result.stderr


def test_a_run_grades_the_reference_edit_as_passing_and_a_refusal_as_failing(tmp_path):
    built = run_cli("suite", "code-edits", "build", "--n", "2", "--seed", "3", "--format", "udiff",
                    "--out", str(tmp_path / "e"))
    assert built.returncode == 0, built.stderr
    good, bad = read_rows(tmp_path / "e")
    rules = [{"contains": good["instruction"], "response": good["reference_diff"]},
             {"contains": bad["instruction"], "response": "I would rather not change this code."}]
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    ran = run_cli("eval", "run", str(tmp_path / "e" / "eval.yaml"), "-m", f"scripted/{tmp_path / 'rules.json'}",
                  "--json", "--no-progress")
    assert ran.returncode in (0, 1), ran.stderr
    run = json.loads(ran.stdout)["data"][0]
    items = json.loads(run_cli("eval", "items", run["id"], "--json").stdout)["data"]
    by_task = {i["datasource_item"]["task_id"]: i for i in items}
    assert [r["passed"] for r in by_task[good["task_id"]]["results"]] == [True, True, True, True]
    assert [r["passed"] for r in by_task[bad["task_id"]]["results"]][:2] == [False, False]
    shown = run_cli("eval", "show", run["id"], "--by", "format", "--by", "kind")
    assert shown.returncode == 0 and "By format" in shown.stdout and "By kind" in shown.stdout
