"""OpenAI fine-tuning files: each class of bad row is refused with file, line and field."""

import json

import pytest

from gradeloop.errors import InputError
from gradeloop.spec import load_training_file

SFT = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 0}, {"role": "user", "content": "q2"},
                    {"role": "assistant", "content": "a2"}]}
TOOLS = {"messages": [{"role": "user", "content": "weather?"}, {"role": "assistant", "tool_calls": [
    {"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}], "content": None}],
    "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
    "parallel_tool_calls": False}
DPO = {"input": {"messages": [{"role": "user", "content": "q"}]},
       "preferred_output": [{"role": "assistant", "content": "good"}],
       "non_preferred_output": [{"role": "assistant", "content": "bad"}]}
RFT = {"messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "q"}], "answer": "42"}
GRADER = {"type": "string_check", "name": "s", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
          "operation": "eq"}


def write(tmp_path, rows):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def refused(tmp_path, rows, method, **kw):
    with pytest.raises(InputError) as info:
        load_training_file(write(tmp_path, rows), method, **kw)
    return info.value


def test_valid_files(tmp_path):
    assert len(load_training_file(write(tmp_path, [SFT, TOOLS]), "supervised")) == 2
    assert len(load_training_file(write(tmp_path, [DPO]), "dpo")) == 1
    assert len(load_training_file(write(tmp_path, [RFT]), "reinforcement", grader=GRADER)) == 1


@pytest.mark.parametrize("row,method,line,field,text", [
    ("{bad json", "supervised", 2, None, "invalid JSON"),
    ({"messages": []}, "supervised", 2, "messages", "non-empty"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "supervised", 2, "messages[0].role", "role must be"),
    ({"messages": [{"role": "user", "content": "q"}]}, "supervised", 2, "messages", "no assistant message"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]},
     "supervised", 2, "messages[1].weight", "0 or 1"),
    ({"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]},
     "supervised", 2, "messages[0].weight", "only allowed on assistant"),
    ({"messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "a"}]}, "supervised", 2,
     "messages[0].content", "content is required"),
    ({**SFT, "prompt": "x"}, "supervised", 2, "prompt", "unknown key"),
    (DPO, "supervised", 2, "input", "unknown key"),
    ({**DPO, "preferred_output": []}, "dpo", 2, "preferred_output", "exactly one"),
    ({**DPO, "non_preferred_output": [{"role": "user", "content": "x"}]}, "dpo", 2, "non_preferred_output[0].role",
     "assistant"),
    ({**DPO, "non_preferred_output": DPO["preferred_output"]}, "dpo", 2, "preferred_output", "identical"),
    ({"input": {"messages": "q"}, **{k: DPO[k] for k in ("preferred_output", "non_preferred_output")}}, "dpo", 2,
     "input.messages", "non-empty list"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "answer": "1"},
     "reinforcement", 2, "messages[1].role", "last message"),
    ({"messages": [{"role": "user", "content": "q"}]}, "reinforcement", 2, "answer", "the grader reads it"),
])
def test_bad_rows(tmp_path, row, method, line, field, text):
    first = {"supervised": SFT, "dpo": DPO, "reinforcement": RFT}[method]
    err = refused(tmp_path, [first, row], method, grader=GRADER if method == "reinforcement" else None)
    assert err.line == line and err.field == field and text in err.message
    assert err.file.endswith("f.jsonl")


def test_empty_file_and_unknown_method(tmp_path):
    assert "no rows" in refused(tmp_path, [""], "supervised").message
    assert "unknown method" in refused(tmp_path, [SFT], "ppo").message
