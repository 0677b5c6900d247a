"""SFT and DPO on a tiny random llama: metrics events, every trainable parameter moves,
checkpoints load and generate, the final model runs in an eval, pause and resume, masking."""

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from gradeloop import InputError, Store, eval_from_dict, run_eval, run_object  # noqa: E402
from gradeloop.models._engine import load_engine_model  # noqa: E402
from gradeloop.spec import load_training_file  # noqa: E402
from gradeloop.tune import RecordingContext, TrainingSpec  # noqa: E402
from gradeloop.tune import dpo, sft  # noqa: E402
from gradeloop.tune._common import (auto_batch_size, auto_n_epochs, lora_config, resolve_hyperparameters,  # noqa: E402
                                    split_batch)

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "the weather in a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}}}}}
SFT_ROWS = [
    {"messages": [{"role": "system", "content": "answer yes or no"},
                  {"role": "user", "content": f"is {w} a word"},
                  {"role": "assistant", "content": "the quick brown fox", "weight": 0},
                  {"role": "user", "content": "answer again"},
                  {"role": "assistant", "content": f"yes {w}"}]}
    for w in ("billing", "refund", "order", "paris", "ticket")
] + [
    {"messages": [{"role": "user", "content": "what is the weather in paris"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\": \"paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                  {"role": "assistant", "content": "it is sunny in paris"}],
     "tools": [WEATHER_TOOL], "parallel_tool_calls": False},
]
DPO_ROWS = [
    {"input": {"messages": [{"role": "user", "content": f"is {w} a word"}]},
     "preferred_output": [{"role": "assistant", "content": "yes"}],
     "non_preferred_output": [{"role": "assistant", "content": "no stop end"}]}
    for w in ("billing", "refund", "order", "paris", "ticket", "label")
] + [
    {"input": {"messages": [{"role": "user", "content": "what is the weather in paris"}], "tools": [WEATHER_TOOL]},
     "preferred_output": [{"role": "assistant", "content": None, "tool_calls": [
         {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"paris\"}"}}]}],
     "non_preferred_output": [{"role": "assistant", "content": "i do not know"}]},
]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One torch thread: tiny models train many times faster, above all on a busy machine."""
    before = torch.get_num_threads()
    monkeypatch.setenv("GRADELOOP_THREADS", "1")
    yield
    torch.set_num_threads(before)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_spec(tmp_path, base, method, rows, *, valid=None, hyperparameters=None, **options):
    return TrainingSpec(
        job_id="ftjob-test", method=method, model=f"hf/{base}", base_model_dir=base,
        training_file=write_jsonl(tmp_path / "train.jsonl", rows),
        validation_file=write_jsonl(tmp_path / "valid.jsonl", valid) if valid else None,
        output_dir=tmp_path / "out", hyperparameters=hyperparameters or {"batch_size": 2}, seed=3,
        options=options)


def initial_lora(spec):
    """The adapter weights a job starts from: same seed, same base, same LoRA config."""
    import peft
    import transformers

    transformers.set_seed(spec.seed)
    base = transformers.AutoModelForCausalLM.from_pretrained(str(spec.base_model_dir.resolve()),
                                                             dtype=torch.float32)
    model = peft.get_peft_model(base, lora_config(spec))
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def trained_lora(model_dir):
    from safetensors.torch import load_file

    return load_file(str(model_dir / "adapter_model.safetensors"))


def assert_every_parameter_moved(before, after, *, bound):
    """Every parameter changed, and by no more than the optimizer can move it (so ``before``
    really is where training started)."""
    assert before and set(before) == set(after)
    for name, old in before.items():
        delta = (after[name].float() - old.float()).abs().max().item()
        assert delta > 0, f"{name} did not change"
        assert delta <= bound, f"{name} moved {delta}, more than the optimizer could"


def adapter_names(params):
    """PEFT's saved names drop the adapter name: map the live model's names onto them."""
    return {n.replace(".default.", "."): p for n, p in params.items()}


def check_metrics(ctx, *, steps, validation):
    events = ctx.metric_events()
    step_events = [e for e in events if "train_loss" in e]
    assert [e["step"] for e in step_events] == list(range(1, steps + 1))
    for e in step_events:
        assert math.isfinite(e["train_loss"]) and "train_mean_token_accuracy" in e
        assert e["total_steps"] == steps
    if validation:
        assert any(math.isfinite(e.get("valid_loss", math.nan)) for e in step_events)
        assert math.isfinite(events[-1]["full_valid_loss"])
    return step_events


def generates(model_dir):
    tokenizer, model = load_engine_model(model_dir)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    return out.shape[1] > ids.shape[1]


def eval_runs_clean(model_dir):
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [{"type": "string_check", "name": "nonempty", "input": "{{ sample.output_text }}",
                              "operation": "ne", "reference": ""}],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": f"is {w} a word"}} for w in ("order", "paris", "fox")]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 4}},
    })
    [run_id] = run_eval(spec, [f"hf/{model_dir}"])
    counts = run_object(Store(), run_id)["result_counts"]
    return counts["total"] == 3 and counts["errored"] == 0


def test_sft_lora_job(tiny_model_dir, tmp_path):
    spec = make_spec(tmp_path, tiny_model_dir, "supervised", SFT_ROWS, valid=SFT_ROWS[:2],
                     hyperparameters={"batch_size": 2, "learning_rate_multiplier": 5}, max_steps=3)
    before = initial_lora(spec)
    ctx = RecordingContext(spec)
    result = sft.train(ctx)

    check_metrics(ctx, steps=3, validation=True)
    assert result.stopped is None and result.trained_tokens > 0
    assert result.model_dir == spec.output_dir / "final"
    config = json.loads((result.model_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert (result.model_dir / "tokenizer_config.json").exists()
    # 3 steps of Adam at 1e-3 (decaying): each element moves at most a few learning rates
    assert_every_parameter_moved(adapter_names(before), trained_lora(result.model_dir), bound=3 * 3e-3)

    [checkpoint] = ctx.checkpoints  # 6 rows / batch 2 = 3 steps: the epoch ends at max_steps
    assert checkpoint["step"] == 3 and checkpoint["name"] == "ft:ftjob-test:ckpt-step-3"
    assert math.isfinite(checkpoint["metrics"]["train_loss"]) and "valid_loss" in checkpoint["metrics"]
    assert generates(checkpoint["path"])
    assert eval_runs_clean(result.model_dir)


def test_sft_full_fine_tuning_moves_every_parameter(tiny_model_dir, tmp_path):
    import transformers

    spec = make_spec(tmp_path, tiny_model_dir, "supervised", SFT_ROWS,
                     hyperparameters={"batch_size": 3, "learning_rate_multiplier": 10}, max_steps=2, lora=False)
    ctx = RecordingContext(spec)
    result = sft.train(ctx)

    check_metrics(ctx, steps=2, validation=False)
    assert (result.model_dir / "config.json").exists() and not (result.model_dir / "adapter_config.json").exists()
    load = transformers.AutoModelForCausalLM.from_pretrained
    before = dict(load(str(tiny_model_dir)).named_parameters())
    after = dict(load(str(result.model_dir)).named_parameters())
    assert_every_parameter_moved(before, after, bound=2 * 3 * 2e-4)
    assert generates(result.model_dir)


def test_weight_zero_and_non_assistant_tokens_are_masked(tiny_model_dir):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir))
    row = SFT_ROWS[0]
    out = sft.tokenize_conversation(tokenizer, row)
    ids, labels = out["input_ids"], out["labels"]
    assert len(ids) == len(labels) and ids == tokenizer(tokenizer.apply_chat_template(
        [{k: v for k, v in m.items() if k != "weight"} for m in row["messages"]], tokenize=False),
        add_special_tokens=False)["input_ids"]  # one tokenization of the whole text, as at inference
    trained = [i for i, label in enumerate(labels) if label != -100]
    assert trained == list(range(trained[0], trained[-1] + 1))  # one contiguous span ...
    assert all(labels[i] == ids[i] for i in trained)
    assert tokenizer.decode([ids[i] for i in trained]) == "yes billing<|im_end|>\n"  # ... the weight-1 answer
    weight_zero = tokenizer.decode(ids[:trained[0]])
    assert "the quick brown fox" in weight_zero and weight_zero.endswith("<|im_start|>assistant\n")

    # a tool call is trained on (as JSON text: this template has no tool_calls), the tool's result is not
    tool_row = sft.tokenize_conversation(tokenizer, SFT_ROWS[-1])
    call = json.dumps([SFT_ROWS[-1]["messages"][1]["tool_calls"][0]["function"]])
    assert tokenizer.decode([i for i, label in zip(tool_row["input_ids"], tool_row["labels"]) if label != -100]) == (
        f"{call}<|im_end|>\nit is sunny in paris<|im_end|>\n")

    everything_masked = sft.tokenize_conversation(tokenizer, {"messages": [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "paris", "weight": 0}]})
    assert set(everything_masked["labels"]) == {-100}


def test_dpo_lora_job(tiny_model_dir, tmp_path):
    spec = make_spec(tmp_path, tiny_model_dir, "dpo", DPO_ROWS, valid=DPO_ROWS[:2],
                     hyperparameters={"batch_size": 2, "learning_rate_multiplier": 100, "beta": "auto"}, max_steps=3)
    before = initial_lora(spec)
    ctx = RecordingContext(spec)
    result = dpo.train(ctx)

    events = check_metrics(ctx, steps=3, validation=True)
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"} <= set(events[-1])
    assert "valid_rewards/margins" in events[-1]
    assert any(e["type"] == "message" and e["data"] and e["data"]["hyperparameters"]["beta"] == 0.1
               for e in ctx.events)
    assert_every_parameter_moved(adapter_names(before), trained_lora(result.model_dir), bound=3 * 3 * 5e-4)
    [checkpoint] = ctx.checkpoints
    assert checkpoint["step"] == 3 and generates(checkpoint["path"])
    assert eval_runs_clean(result.model_dir)


def test_pause_saves_a_checkpoint_and_resume_continues(tiny_model_dir, tmp_path):
    spec = make_spec(tmp_path, tiny_model_dir, "supervised", SFT_ROWS, max_steps=4)
    paused = RecordingContext(spec, stop_after_steps=2, stop_reason="pause")
    result = sft.train(paused)
    assert result.stopped == "pause"
    assert [e["step"] for e in paused.metric_events()] == [1, 2]
    [checkpoint] = paused.checkpoints
    assert checkpoint["step"] == 2 and result.model_dir == checkpoint["path"]
    assert (checkpoint["path"] / "trainer_state.json").exists()
    assert not (spec.output_dir / "final").exists()

    tokens = result.trained_tokens
    assert tokens == paused.metric_events()[-1]["num_tokens"] > 0

    spec.resume_from = checkpoint["path"]
    resumed = RecordingContext(spec)
    result = sft.train(resumed)
    assert result.stopped is None and (spec.output_dir / "final" / "adapter_config.json").exists()
    events = resumed.metric_events()
    assert [e["step"] for e in events] == [3, 4]
    assert tokens < events[0]["num_tokens"] < events[1]["num_tokens"] == result.trained_tokens  # counts on


def test_cancel_stops_without_a_checkpoint(tiny_model_dir, tmp_path):
    spec = make_spec(tmp_path, tiny_model_dir, "supervised", SFT_ROWS, max_steps=4)
    ctx = RecordingContext(spec, stop_after_steps=1, stop_reason="cancel")
    result = sft.train(ctx)
    assert result.stopped == "cancel" and ctx.checkpoints == []
    assert len(ctx.metric_events()) == 1


def test_same_seed_same_losses(tiny_model_dir, tmp_path):
    losses = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        ctx = RecordingContext(make_spec(tmp_path / run, tiny_model_dir, "supervised", SFT_ROWS, max_steps=2))
        sft.train(ctx)
        losses.append([e["train_loss"] for e in ctx.metric_events()])
    assert losses[0] == losses[1]


def test_auto_hyperparameters():
    assert auto_n_epochs(10) == 10 and auto_n_epochs(1) == 25 and auto_n_epochs(500) == 3
    assert auto_n_epochs(20_000) == 1
    assert auto_batch_size(10) == 1 and auto_batch_size(2000) == 4 and auto_batch_size(100_000) == 8
    hp = resolve_hyperparameters("dpo", {"n_epochs": "auto", "learning_rate_multiplier": 2}, 50, lora=True)
    assert (hp.n_epochs, hp.batch_size, hp.beta, hp.learning_rate) == (3, 1, 0.1, 1e-5)
    assert resolve_hyperparameters("supervised", {}, 50, lora=False).learning_rate == 2e-5
    assert split_batch(12, 8) == (6, 2) and split_batch(4, 8) == (4, 1)
    with pytest.raises(InputError, match="hyperparameters.beta"):
        resolve_hyperparameters("dpo", {"beta": 3}, 50, lora=True)


def test_a_dpo_file_is_refused_for_sft(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", DPO_ROWS)
    with pytest.raises(InputError) as err:
        load_training_file(path, "supervised")
    assert err.value.line == 1 and err.value.field == "input"
    assert f"{path}:1: input:" in str(err.value)
