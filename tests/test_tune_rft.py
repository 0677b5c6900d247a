"""RFT on a tiny random llama: GRPO with gradeloop graders as the reward, OpenAI's RFT metrics
events, validation runs, the best three checkpoints, guard rails, pause and resume."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from gradeloop import InputError, Store, eval_from_dict, run_eval, run_object  # noqa: E402
from gradeloop.tune import RecordingContext, TrainingSpec  # noqa: E402
from gradeloop.tune import rft  # noqa: E402

WORDS = ["yes", "no", "paris", "one", "two", "three", "fox", "dog", "end", "stop", "hello"]
LENGTH = {"type": "python", "name": "length",
          "source": "def grade(sample, item):\n    return (len(sample['output_text']) % 5) / 4\n"}
MATCH = {"type": "string_check", "name": "has answer", "input": "{{ sample.output_text }}",
         "reference": "{{ item.answer }}", "operation": "ilike"}
MULTI = {"type": "multi", "name": "answer and length", "calculate_output": "0.5 * match + 0.5 * length",
         "graders": {"match": MATCH, "length": LENGTH}}
NEVER = {"type": "string_check", "name": "never", "input": "{{ sample.output_text }}",
         "reference": "no random model writes this", "operation": "eq"}


def write_rows(path: Path, words: list[str]) -> Path:
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"say {w}"}], "answer": w,
                                        "meta": {"word": w, "tags": [w]}}) + "\n" for w in words))
    return path


def make_spec(model_dir: Path, folder: Path, grader: dict, *, hyperparameters: dict | None = None,
              **options) -> TrainingSpec:
    folder.mkdir(parents=True, exist_ok=True)
    return TrainingSpec(
        job_id="ftjob-test", method="reinforcement", model=f"hf/{model_dir}", base_model_dir=model_dir,
        training_file=write_rows(folder / "train.jsonl", WORDS[:8]),
        validation_file=write_rows(folder / "valid.jsonl", WORDS[8:]), output_dir=folder / "job",
        grader=grader, seed=0,
        hyperparameters={"batch_size": 2, "learning_rate_multiplier": 10, **(hyperparameters or {})},
        options={"num_generations": 4, "max_completion_tokens": 8, **options})


def messages(ctx: RecordingContext, level: str | None = None) -> list[str]:
    return [e["message"] for e in ctx.events if e["type"] == "message" and (level is None or e["level"] == level)]


def trainable(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def multi_run(tiny_model_dir, tmp_path_factory):
    """One RFT job with a multi grader: 5 steps, validation (2 samples per prompt) at each one.
    Records the trainable parameters before and after training."""
    from trl import GRPOTrainer

    spec = make_spec(tiny_model_dir, tmp_path_factory.mktemp("rft-multi"), MULTI,
                     hyperparameters={"eval_interval": 1, "eval_samples": 2}, max_steps=5)
    ctx = RecordingContext(spec)
    params: dict[str, dict] = {}
    original = GRPOTrainer.train

    def spy(self, *args, **kwargs):
        params["before"] = trainable(self.model)
        out = original(self, *args, **kwargs)
        params["after"] = trainable(self.model)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GRPOTrainer, "train", spy)
        result = rft.train(ctx)
    return spec, ctx, result, params


def test_metrics_events_have_openais_rft_shape(multi_run):
    spec, ctx, result, _ = multi_run
    events = ctx.metric_events()
    assert [e["step"] for e in events] == [1, 2, 3, 4, 5] and {e["total_steps"] for e in events} == {5}
    for data in events:
        scores = data["scores"]
        assert 0 <= scores["train_reward_mean"] <= 1 and data["train_mean_reward"] == scores["train_reward_mean"]
        assert 0 <= scores["valid_reward_mean"] <= 1 and data["full_valid_mean_reward"] == scores["valid_reward_mean"]
        # a multi grader reports one entry per sub-grader, with train and validation means
        assert [(g["name"], g["type"]) for g in scores["graders"]] == [("has answer", "string_check"),
                                                                       ("length", "python")]
        assert all(0 <= g["train_reward_mean"] <= 1 and 0 <= g["valid_reward_mean"] <= 1 for g in scores["graders"])
        length = scores["graders"][1]
        assert scores["train_reward_mean"] == pytest.approx(0.5 * scores["graders"][0]["train_reward_mean"]
                                                           + 0.5 * length["train_reward_mean"])
        errors = {e["name"]: e for e in data["errors"]["graders"]}
        assert errors["length"]["train_python_grader_runtime_error_mean"] == 0
        assert errors["has answer"]["valid_invalid_variable_error_mean"] == 0
        assert "train_python_grader_runtime_error_mean" not in errors["has answer"]
        samples = data["usage"]["samples"]
        assert 0 < samples["train_completion_tokens_mean"] <= 8 and 0 <= samples["train_truncated_mean"] <= 1
        assert samples["valid_completion_tokens_count"] >= 3 * 2  # 3 prompts x 2 samples
        assert set(data["timing"]["step"]) == {"sampling", "grading", "training", "eval", "full_iteration"}
        assert data["timing"]["step"]["sampling"] > 0 and data["timing"]["step"]["eval"] > 0
        assert data["timing"]["graders"][0]["name"] == "answer and length"
        assert data["gradeloop"]["grad_norm"] is not None
    message = [e["message"] for e in ctx.events if e["type"] == "metrics"][-1]
    assert message.startswith("Step 5/5, train mean reward=") and "full validation mean reward=" in message
    assert not any("no learning signal" in m for m in messages(ctx))  # the length grader varies


def test_every_trainable_parameter_changed(multi_run):
    _, _, _, params = multi_run
    before, after = params["before"], params["after"]
    assert before and all("lora_" in name for name in before)  # LoRA by default
    unchanged = [name for name in before if before[name].equal(after[name])]
    assert unchanged == []


def test_validation_runs_and_only_the_best_three_checkpoints_remain(multi_run):
    spec, ctx, result, _ = multi_run
    assert [run["step"] for run in ctx.validation_runs] == [1, 2, 3, 4, 5]
    samples = ctx.validation_runs[0]["samples"]
    assert len(samples) == 3 * 2
    assert samples[0]["item"] == {"messages": [{"role": "user", "content": "say end"}], "answer": "end",
                                  "meta": {"word": "end", "tags": ["end"]}}  # the row, as written
    assert samples[0]["messages"] == samples[0]["item"]["messages"] and isinstance(samples[0]["output_text"], str)
    registered = ctx.checkpoints
    assert [c["step"] for c in registered] == [1, 2, 3, 4, 5]
    assert all(isinstance(c["metrics"]["valid_reward_mean"], float) for c in registered)
    on_disk = sorted(p.name for p in Path(spec.output_dir).glob("checkpoint-*"))
    assert len(on_disk) == 3
    best = sorted(registered, key=lambda c: (c["metrics"]["valid_reward_mean"], c["step"]), reverse=True)[:3]
    assert on_disk == sorted(f"checkpoint-{c['step']}" for c in best)
    removed = [m for m in messages(ctx) if "removed (not in the top 3)" in m]
    assert len(removed) == 2
    removed_paths = [e["data"]["path"] for e in ctx.events if "removed (not in the top 3)" in e["message"]]
    assert all(not Path(p).exists() for p in removed_paths)


def test_final_adapter_points_at_the_base_and_runs_in_an_eval(multi_run, tiny_model_dir):
    _, _, result, _ = multi_run
    final = Path(result.model_dir)
    assert final.name == "final" and result.stopped is None and result.trained_tokens > 0
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(Path(tiny_model_dir).resolve())
    assert (final / "tokenizer_config.json").exists()
    spec = eval_from_dict({
        "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
        "testing_criteria": [MATCH],
        "data_source": {"type": "completions", "source": {"type": "file_content", "content": [
            {"item": {"q": "say yes", "answer": "yes"}}, {"item": {"q": "say no", "answer": "no"}}]},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.q }}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": 4}},
    })
    [run_id] = run_eval(spec, [f"hf/{final}"])
    run = run_object(Store(), run_id)
    assert run["result_counts"]["total"] == 2 and run["result_counts"]["errored"] == 0


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_dry_run_reports_the_reward_distribution_and_trains_nothing(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, MULTI)
    before = _fingerprint(tiny_model_dir)
    report = rft.dry_run(spec, n=3)
    assert _fingerprint(tiny_model_dir) == before and not Path(spec.output_dir).exists()
    assert report["prompts"] == 3 and report["samples_per_prompt"] == 4 and report["samples"] == 12
    assert sum(b["count"] for b in report["histogram"]) == 12 and len(report["histogram"]) == 10
    assert 0 <= report["reward"]["min"] <= report["reward"]["mean"] <= report["reward"]["max"] <= 1
    assert report["reward"]["std"] >= 0 and 0 <= report["groups_identical"] <= 1
    assert report["truncated"] == 1.0  # a random model never says its end-of-turn token within 8 tokens
    assert any("max_completion_tokens=8" in w for w in report["warnings"])
    assert [g["name"] for g in report["graders"]] == ["has answer", "length"]
    assert report["errors"] == {} and report["message"].startswith("12 samples: mean reward")

    constant = rft.dry_run(make_spec(tiny_model_dir, tmp_path / "constant", NEVER), n=2)
    assert constant["groups_identical"] == 1.0 and constant["reward"]["std"] == 0
    assert any("no learning signal" in w for w in constant["warnings"])


def test_sampling_left_pads_so_a_batch_matches_each_prompt_alone(tiny_model_dir):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir), padding_side="right")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    prompts = [[{"role": "user", "content": "hello"}], [{"role": "user", "content": "the quick brown fox jumps over"}]]
    near_greedy = dict(max_new_tokens=6, temperature=1e-3, seed=0)
    together = rft.sample_completions(model, tokenizer, prompts, 2, **near_greedy)
    alone = [rft.sample_completions(model, tokenizer, [p], 2, **near_greedy)[0] for p in prompts]
    assert [[c.text for c in g] for g in together] == [[c.text for c in g] for g in alone]
    assert all(c.tokens <= 6 and c.truncated == (c.tokens == 6) for g in together for c in g)
    assert tokenizer.padding_side == "right" and not model.training  # left as they were


def test_a_constant_grader_warns_that_a_step_has_no_learning_signal(tiny_model_dir, tmp_path):
    ctx = RecordingContext(make_spec(tiny_model_dir, tmp_path, NEVER, hyperparameters={"eval_interval": 2},
                                     max_steps=3))
    result = rft.train(ctx)
    warned = [m for m in messages(ctx, "warn") if "no learning signal" in m]
    assert [m.split(":")[0] for m in warned] == ["Step 1", "Step 2", "Step 3"]
    # a random model never ends within 8 tokens: said at step 1, then once per validation interval
    cut = [m for m in messages(ctx, "warn") if "were cut at max_completion_tokens=8" in m]
    assert [m.split(":")[0] for m in cut] == ["Step 1", "Step 3"]
    assert all(e["usage"]["samples"]["train_truncated_mean"] > 0.5 for e in ctx.metric_events())
    assert all(e["scores"]["train_reward_mean"] == 0 for e in ctx.metric_events())
    assert result.stopped is None


def test_a_training_prompt_in_the_validation_file_is_refused(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, MATCH)
    leaked = json.loads(Path(spec.validation_file).read_text().splitlines()[1])
    lines = Path(spec.training_file).read_text().splitlines()
    lines.insert(2, json.dumps({**leaked, "answer": "different fields, same prompt"}))
    Path(spec.training_file).write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        rft.train(RecordingContext(spec))
    error = caught.value
    assert error.file == str(spec.training_file) and error.line == 3 and error.field == "messages"
    assert "validation" in error.message
    assert not Path(spec.output_dir).exists()  # refused before any model was loaded


def test_pause_saves_a_checkpoint_and_resume_continues_the_global_step(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, LENGTH, hyperparameters={"eval_interval": 3}, max_steps=4)
    paused = RecordingContext(spec, stop_after_steps=2, stop_reason="pause")
    first = rft.train(paused)
    assert first.stopped == "pause" and Path(first.model_dir).name == "checkpoint-2"
    assert (Path(first.model_dir) / "trainer_state.json").exists()
    assert [c["step"] for c in paused.checkpoints] == [2]
    assert "valid_reward_mean" not in paused.checkpoints[0]["metrics"]  # not a validation step
    assert [e["step"] for e in paused.metric_events()] == [1, 2] and not paused.validation_runs

    resumed = RecordingContext(dataclasses.replace(spec, resume_from=Path(first.model_dir)))
    second = rft.train(resumed)
    assert second.stopped is None and Path(second.model_dir).name == "final"
    assert [e["step"] for e in resumed.metric_events()] == [3, 4]
    assert [run["step"] for run in resumed.validation_runs] == [3, 4]
    assert any(m.startswith("checkpoint step 2 removed") for m in messages(resumed))  # superseded pause snapshot
    assert sorted(p.name for p in Path(spec.output_dir).glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]


def test_cancel_stops_without_a_checkpoint(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, MATCH, max_steps=3)
    ctx = RecordingContext(spec, stop_after_steps=1, stop_reason="cancel")
    result = rft.train(ctx)
    assert result.stopped == "cancel" and ctx.checkpoints == [] and len(ctx.metric_events()) == 1
    assert not (Path(spec.output_dir) / "final").exists()


def test_hyperparameter_rules(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, MATCH)
    auto = dataclasses.replace(spec, hyperparameters={}, options={})
    cfg = rft.resolve_config(auto, 40)
    assert cfg.num_generations == 8 and cfg.batch_size == 1 and cfg.eval_samples == 1
    assert cfg.n_epochs == 3 and cfg.total_steps == 120 and cfg.eval_interval == 24  # a fifth of the steps
    assert cfg.learning_rate == pytest.approx(1e-5) and cfg.lora and cfg.max_completion_tokens == 128
    def resolve(**hyperparameters):
        return rft.resolve_config(dataclasses.replace(auto, hyperparameters=hyperparameters), 40)

    half = resolve(compute_multiplier=0.5, batch_size=64)
    assert half.num_generations == 4 and half.batch_size == 40 and half.total_steps == 3
    assert resolve(compute_multiplier=0.01).num_generations == 2 and resolve(compute_multiplier=2).num_generations == 16
    assert rft.resolve_config(spec, 8).num_generations == 4  # options.num_generations wins
    full = rft.resolve_config(dataclasses.replace(auto, options={"lora": False, "max_steps": 3}), 40)
    assert full.learning_rate == pytest.approx(1e-6) and full.total_steps == 3
    with pytest.raises(InputError, match="hyperparameters.compute_multiplier"):
        rft.resolve_config(dataclasses.replace(auto, hyperparameters={"compute_multiplier": 11}), 40)
    with pytest.raises(InputError, match="options.num_generations"):
        rft.resolve_config(dataclasses.replace(auto, options={"num_generations": 1}), 40)
    assert cfg.beta == 0 and rft.resolve_config(dataclasses.replace(auto, options={"beta": 0.04}), 40).beta == 0.04
    with pytest.raises(InputError, match="options.beta"):
        rft.resolve_config(dataclasses.replace(auto, options={"beta": -1}), 40)


def test_a_kl_penalty_is_applied_and_reported(tiny_model_dir, tmp_path):
    ctx = RecordingContext(make_spec(tiny_model_dir, tmp_path, LENGTH, max_steps=2, beta=0.1))
    rft.train(ctx)
    kl = [e["gradeloop"]["kl"] for e in ctx.metric_events()]
    assert len(kl) == 2 and all(k is not None and k >= 0 for k in kl)


# -- response_format: structured output from the policy ---------------------------------------

ANSWER_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["compliant", "sure"],
                 "properties": {"compliant": {"type": "string", "enum": ["yes", "no"]}, "sure": {"type": "boolean"}}}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": ANSWER_SCHEMA}}
# the RFT guide's pattern: graders read sample.output_json
ON_OUTPUT_JSON = {"type": "multi", "name": "json answer", "calculate_output": "0.5 * compliant + 0.5 * sure", "graders": {
    "compliant": {"type": "string_check", "name": "compliant", "input": "{{ sample.output_json.compliant }}", "reference": "yes",
                  "operation": "eq"},
    "sure": {"type": "python", "name": "sure", "source": "def grade(sample, item):\n    return 1.0 if sample['output_json']['sure'] "
                                         "in (True, False) else 0.0\n"}}}


def test_response_format_constrains_every_rollout_and_validation_sample(tiny_model_dir, tmp_path):
    import jsonschema

    spec = make_spec(tiny_model_dir, tmp_path, ON_OUTPUT_JSON, hyperparameters={"eval_interval": 1},
                     max_steps=2, max_completion_tokens=64, response_format=RESPONSE_FORMAT)
    ctx = RecordingContext(spec)
    rollouts: list[str] = []
    original = rft.training_reward

    def spy(reward, rows, clock):
        fn = original(reward, rows, clock)

        def recorded(prompts, completions, row, log_metric=None, **kwargs):
            rollouts.extend(c[-1]["content"] if isinstance(c, list) else c for c in completions)
            return fn(prompts=prompts, completions=completions, row=row, log_metric=log_metric, **kwargs)

        recorded.__name__ = fn.__name__
        return recorded

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rft, "training_reward", spy)
        rft.train(ctx)
    assert len(rollouts) == 2 * 2 * 4  # steps x prompts x generations
    validated = [s["output_text"] for run in ctx.validation_runs for s in run["samples"]]
    assert len(validated) == 2 * 3
    for text in rollouts + validated:
        jsonschema.validate(json.loads(text), ANSWER_SCHEMA)
    for data in ctx.metric_events():  # no grader error: output_json was there every time
        for entry in data["errors"]["graders"]:
            assert all(v == 0 for k, v in entry.items() if k.endswith("_mean")), entry
        assert data["scores"]["graders"][1]["train_reward_mean"] == 1.0


def test_dry_run_samples_with_the_response_format(tiny_model_dir, tmp_path):
    spec = make_spec(tiny_model_dir, tmp_path, ON_OUTPUT_JSON, max_completion_tokens=64,
                     response_format=RESPONSE_FORMAT)
    report = rft.dry_run(spec, n=2)
    assert report["truncated"] == 0.0 and report["errors"] == {}
    assert [g["reward_mean"] for g in report["graders"]][1] == 1.0


def test_a_bad_response_format_is_refused_when_the_job_is_created(tiny_model_dir, tmp_path):
    from gradeloop.tune._jobs import create_job

    spec = make_spec(tiny_model_dir, tmp_path, MATCH)
    common = dict(model=f"hf/{tiny_model_dir}", training_file=spec.training_file, start=False)
    with pytest.raises(InputError, match="reinforcement fine-tuning only") as info:
        create_job(Store(), method="supervised", options={"response_format": RESPONSE_FORMAT}, **common)
    assert info.value.field == "response_format"
    with pytest.raises(InputError, match="json_schema") as info:
        create_job(Store(), method="reinforcement", validation_file=spec.validation_file, grader=MATCH,
                   options={"response_format": {"type": "text"}}, **common)
    assert info.value.field == "response_format"
