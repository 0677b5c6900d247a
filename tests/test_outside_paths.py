"""Files an eval names must stay in the eval file's folder unless --allow-outside-paths: an eval file
is often someone else's, and ``source.path: ../../etc/passwd`` must not read what it likes."""

import json
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

from gradeloop import InputError, eval_from_dict, load_eval
from gradeloop.tune.data import rft_from_eval

EVAL = textwrap.dedent("""\
    name: outside
    data_source_config:
      type: custom
      item_schema: {type: object, properties: {answer: {type: string}}, required: [answer]}
      include_sample_schema: true
    testing_criteria:
      - {type: string_check, name: exact, input: "{{ sample.output_text }}", operation: eq,
         reference: "{{ item.answer }}"}
    data_source:
      type: completions
      source:
        type: file
        path: PATH
      input_messages:
        type: template
        template: [{role: user, content: "Say {{ item.answer }}"}]
    """)
ROWS = "".join(json.dumps({"item": {"answer": a}, "sample": {"output_text": a}}) + "\n" for a in ("x", "y"))
PATH_LINE = 13


def layout(tmp_path: Path, path_in_eval: str) -> Path:
    """``tmp_path/evals/eval.yaml`` naming ``path_in_eval``; rows exist in ``tmp_path/secret/`` and
    ``tmp_path/evals/data/``."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "rows.jsonl").write_text(ROWS)
    folder = tmp_path / "evals"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "rows.jsonl").write_text(ROWS)
    eval_file = folder / "eval.yaml"
    eval_file.write_text(EVAL.replace("PATH", path_in_eval))
    return eval_file


def outside_ways(tmp_path: Path) -> dict[str, str]:
    link = tmp_path / "evals" / "linked.jsonl"
    link.symlink_to(tmp_path / "secret" / "rows.jsonl")
    (tmp_path / "evals" / "linkdir").symlink_to(tmp_path / "secret", target_is_directory=True)
    return {"dotdot": "../secret/rows.jsonl", "absolute": str(tmp_path / "secret" / "rows.jsonl"),
            "symlink": "linked.jsonl", "symlinked folder": "linkdir/rows.jsonl",
            "dotdot through a subfolder": "data/../../secret/rows.jsonl"}


@pytest.mark.parametrize("way", ["dotdot", "absolute", "symlink", "symlinked folder", "dotdot through a subfolder"])
def test_a_path_outside_the_eval_folder_is_refused_unless_allowed(tmp_path, way):
    eval_file = layout(tmp_path, "PLACEHOLDER")
    written = outside_ways(tmp_path)[way]
    eval_file.write_text(EVAL.replace("PATH", written))
    with pytest.raises(InputError) as info:
        load_eval(eval_file)
    error = info.value
    assert error.exit_code == 2 and error.file == str(eval_file) and error.line == PATH_LINE
    assert error.field == "data_source.source.path" and "--allow-outside-paths" in error.message
    assert written in error.message
    spec = load_eval(eval_file, allow_outside_paths=True)
    assert [r.item["answer"] for r in spec.rows] == ["x", "y"]


def test_paths_inside_the_folder_load(tmp_path):
    eval_file = layout(tmp_path, "data/rows.jsonl")
    assert len(load_eval(eval_file).rows) == 2
    (tmp_path / "evals" / "inside.jsonl").symlink_to(tmp_path / "evals" / "data" / "rows.jsonl")
    eval_file.write_text(EVAL.replace("PATH", "inside.jsonl"))
    assert len(load_eval(eval_file).rows) == 2  # a symlink that stays inside is fine
    eval_file.write_text(EVAL.replace("PATH", str(tmp_path / "evals" / "data" / "rows.jsonl")))
    assert len(load_eval(eval_file).rows) == 2  # so is an absolute path inside


def test_eval_from_dict_checks_against_its_base_dir(tmp_path):
    eval_file = layout(tmp_path, "../secret/rows.jsonl")
    import yaml

    data = yaml.safe_load(eval_file.read_text())
    with pytest.raises(InputError, match="allow-outside-paths"):
        eval_from_dict(data, base_dir=tmp_path / "evals")
    assert len(eval_from_dict(data, base_dir=tmp_path / "evals", allow_outside_paths=True).rows) == 2


def test_rft_rows_from_an_eval_check_paths_too(tmp_path):
    eval_file = layout(tmp_path, "../secret/rows.jsonl")
    with pytest.raises(InputError, match="allow-outside-paths"):
        rft_from_eval(eval_file)
    rows, _ = rft_from_eval(eval_file, allow_outside_paths=True)
    assert rows[0]["messages"] == [{"role": "user", "content": "Say x"}]


@pytest.mark.parametrize("command", [("eval", "validate"), ("eval", "run"), ("tune", "data", "rft")])
def test_cli_refuses_with_exit_2_and_loads_with_the_flag(tmp_path, command):
    eval_file = layout(tmp_path, "PLACEHOLDER")
    eval_file.write_text(EVAL.replace("PATH", outside_ways(tmp_path)["symlink"]))
    if command[0] == "tune":
        args = [*command, "--from-eval", str(eval_file), "--out", str(tmp_path / "rft.jsonl")]
    else:
        args = [*command, str(eval_file)] + (["--no-progress"] if command[1] == "run" else [])
    refused = run_cli(*args, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {eval_file}:{PATH_LINE}: data_source.source.path: 'linked.jsonl' resolves to")
    assert "--allow-outside-paths" in line
    allowed = run_cli(*args, "--allow-outside-paths", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    if command[1] == "run":
        assert "100.0%" in allowed.stdout  # the given samples were graded


def test_a_missing_file_inside_still_says_not_found(tmp_path):
    eval_file = layout(tmp_path, "data/nope.jsonl")
    with pytest.raises(InputError, match="rows file not found"):
        load_eval(eval_file)


JUDGED = textwrap.dedent("""\
    name: judged
    data_source_config: {type: custom, item_schema: {type: object}}
    testing_criteria:
      - type: multi
        name: combo
        calculate_output: judge
        graders:
          judge:
            type: score_model
            name: judge
            model: JUDGE
            input: [{role: user, content: "Rate {{ sample.output_text }}"}]
    data_source:
      type: completions
      model: SAMPLER
      source: {type: file_content, content: [{item: {}}]}
      input_messages: {type: template, template: [{role: user, content: hi}]}
    """)


@pytest.mark.parametrize("judge,sampler,refused", [
    ("scripted/JUDGE_OUT", "scripted/echo", "testing_criteria[0].graders.judge.model"),
    ("scripted/JUDGE_IN", "hf/SECRET", "data_source.model"),
    ("scripted/JUDGE_LINK", "scripted/echo", "testing_criteria[0].graders.judge.model"),
])
def test_models_read_from_paths_outside_the_folder_are_refused(tmp_path, judge, sampler, refused):
    folder = tmp_path / "evals"
    folder.mkdir()
    rules = '- {response: \'{"result": 1.0, "steps": []}\'}\n'
    (tmp_path / "judge.yaml").write_text(rules)
    (folder / "judge.yaml").write_text(rules)
    (folder / "link.yaml").symlink_to(tmp_path / "judge.yaml")
    names = {"JUDGE_OUT": str(tmp_path / "judge.yaml"), "JUDGE_IN": str(folder / "judge.yaml"),
             "JUDGE_LINK": str(folder / "link.yaml"), "SECRET": str(tmp_path)}
    text = JUDGED.replace("JUDGE", judge).replace("SAMPLER", sampler)
    for key, value in names.items():
        text = text.replace(key, value)
    eval_file = folder / "eval.yaml"
    eval_file.write_text(text)
    with pytest.raises(InputError) as info:
        load_eval(eval_file)
    assert info.value.field == refused and info.value.file == str(eval_file) and info.value.line
    assert "--allow-outside-paths" in info.value.message
    assert load_eval(eval_file, allow_outside_paths=True).testing_criteria[0].name == "combo"


def test_models_inside_the_folder_and_named_models_load(tmp_path):
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "judge.yaml").write_text('- {response: \'{"result": 1.0, "steps": []}\'}\n')
    text = JUDGED.replace("JUDGE", f"scripted/{folder / 'judge.yaml'}").replace("SAMPLER", "scripted/echo")
    (folder / "eval.yaml").write_text(text)
    assert load_eval(folder / "eval.yaml").data_source.model == "scripted/echo"
    (folder / "eval.yaml").write_text(text.replace("scripted/echo", "local/smollm2"))
    assert load_eval(folder / "eval.yaml").data_source.model == "local/smollm2"
