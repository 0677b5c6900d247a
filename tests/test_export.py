"""eval export: a run's output items as JSONL (OpenAI's objects), CSV or Parquet."""

import csv
import json

import pytest

from conftest import run_cli
from gradeloop import InputError, Store, eval_from_dict, run_eval
from gradeloop.report import export_run


@pytest.fixture
def run_id():
    rows = [{"item": {"q": f"q{i}", "answer": str(i)}, "sample": {"output_text": str(i) if i % 2 else "no"}}
            for i in range(6)]
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}",
                              "operation": "eq", "reference": "{{ item.answer }}"}],
        "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": rows}},
    })
    [rid] = run_eval(spec)
    return rid


def test_jsonl_csv_and_parquet_hold_every_output_item(run_id, tmp_path):
    store = Store()
    assert export_run(store, run_id, str(tmp_path / "r.jsonl")) == 6
    items = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [i["object"] for i in items] == ["eval.run.output_item"] * 6
    assert [i["status"] for i in items] == ["fail", "pass"] * 3

    export_run(store, run_id, str(tmp_path / "r.csv"))
    with open(tmp_path / "r.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["exact.passed"] for r in rows] == ["False", "True"] * 3
    assert rows[1]["output_text"] == "1" and json.loads(rows[1]["item"]) == {"q": "q1", "answer": "1"}

    pq = pytest.importorskip("pyarrow.parquet")
    export_run(store, run_id, str(tmp_path / "r.parquet"))
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert [r["exact.score"] for r in table] == [0.0, 1.0] * 3 and table[0]["datasource_item_id"] == 0


def test_the_cli_writes_to_stdout_or_a_file_and_refuses_what_it_cannot_do(run_id, tmp_path):
    printed = run_cli("eval", "export", run_id[:16])
    assert printed.returncode == 0 and len(printed.stdout.splitlines()) == 6
    written = run_cli("eval", "export", run_id, "--out", str(tmp_path / "x.txt"), "--format", "csv")
    assert written.returncode == 0 and "wrote 6 output items" in written.stderr
    assert (tmp_path / "x.txt").read_text().startswith("run_id,model,")
    unknown = run_cli("eval", "export", run_id, "--out", str(tmp_path / "x.xlsx"))
    assert unknown.returncode == 2 and "unknown export format 'xlsx'" in unknown.stderr
    nowhere = run_cli("eval", "export", run_id, "--out", str(tmp_path / "missing" / "x.csv"))
    assert nowhere.returncode == 2 and "cannot write" in nowhere.stderr
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(InputError, match="standard output"):
        export_run(Store(), run_id, "-", "parquet")
