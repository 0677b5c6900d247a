"""Reinforcement fine-tuning (RFT) on an OpenAI RFT file: TRL's GRPO with the job's grader as
the reward.

Each row's ``messages`` is the prompt; the whole row is the grader's ``item`` (as in an eval
run over the same file), and each sampled completion its ``sample``. Rewards come from
:func:`gradeloop.rewards.as_reward`, the code path evals grade with, so the reward trained on
is the metric re-evaluated. One step: sample ``num_generations`` completions for each of
``batch_size`` prompts, grade them, and take one GRPO update on the group-normalised rewards.

Hyperparameters (OpenAI's names; ``"auto"`` or missing as noted):

- ``n_epochs``, ``batch_size`` (prompts per step), ``learning_rate_multiplier``: the shared
  rules of :mod:`gradeloop.tune._common` (base learning rate 1e-5 with LoRA, 1e-6 full).
  Steps = ``n_epochs * (rows // batch_size)``, capped by ``options["max_steps"]``.
- ``compute_multiplier`` (auto 1.0, in (0, 10]): samples per prompt,
  ``num_generations = clamp(round(8 * compute_multiplier), 2, 64)`` (0.5 -> 4, 2 -> 16). It
  scales exploration (and the sampling cost of every step); the number of steps is unchanged.
  ``options["num_generations"]`` overrides it.
- ``eval_interval`` (auto: a fifth of the steps, rounded up): validate every that many steps,
  and after the last step.
- ``eval_samples`` (auto 1): completions sampled per validation prompt.
- ``reasoning_effort``: not applicable to open models; ignored (said in an event).

Options: ``num_generations``, ``max_completion_tokens`` (sampling length; 512 on a GPU, 128 on
CPU), ``temperature`` (1.0), ``beta`` (0: the weight of a KL penalty toward the base model,
which keeps a policy from trading everything else for the reward), ``lora`` (True), ``lora_r``/``lora_alpha``/``lora_dropout``,
``max_steps``, ``per_device_batch_size`` (completions per forward/backward pass, default 8; a
step's ``batch_size * num_generations`` completions are split into gradient-accumulation
micro-batches of at most this size), ``use_vllm`` (GRPO's vLLM generation when vllm imports and
a GPU is present; else the transformers path, with a warning), ``vllm_mode`` ("colocate"),
``accelerate_config`` (applied by the launcher, see docs/fine-tuning-rft.md).

Structured output: the method's ``response_format`` (OpenAI's RFT put a ``json_schema`` in
``method.reinforcement``; gradeloop keeps it in ``options["response_format"]``) constrains
every token the policy samples, in rollouts and validation alike, with the grammar local models
decode with in eval runs (:mod:`gradeloop.models._structured`), and each prompt carries the
same JSON instruction; so a grader on ``sample.output_json`` sees JSON of the schema unless a
completion is cut at the length limit. vLLM sampling is not used then.

Validation: every ``eval_interval`` steps and at the end, ``eval_samples`` completions per
validation prompt from the current policy, sampled at the training temperature (the policy
GRPO optimises; greedy decoding would measure another one and make ``eval_samples > 1``
pointless) with the same seed at every pass, so checkpoints are compared on the same random
draws. The samples are graded by the job's grader, recorded as an eval run
(``ctx.record_validation_run``), and a checkpoint is saved and registered with its
``valid_reward_mean``. Only the three best checkpoints stay on disk; a checkpoint saved for a
pause stays until a later one exists, since resuming needs it.

Events: one ``metrics`` event per step in OpenAI's RFT shape (see :func:`step_event`), and a
``warn`` event for a step without learning signal (every group's rewards identical, or most
completions cut at the length limit). :func:`dry_run` samples and grades the base model
before any training, to catch those cases early.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..graders import ERROR_FLAGS
from ..models._structured import json_schema_of, with_json_instruction
from ..rewards import as_reward
from ..spec import load_training_file
from ..spec._load import read_jsonl
from ._common import (JobCallback, chat_messages, device_settings, load_base, lora_config, point_adapter_at_base,
                      prepare_process, resolve_hyperparameters, run_training, split_batch, use_lora)
from ._context import JobContext, TrainingSpec, TrainResult

__all__ = ["RFTConfig", "resolve_config", "train", "dry_run", "check_leakage", "training_reward", "summarize",
           "step_event", "RFTCallback", "prune_checkpoints", "Completion", "sample_completions", "reward_distribution",
           "histogram", "KEEP_CHECKPOINTS", "response_schema", "prompt_messages", "constrain_generate"]

KEEP_CHECKPOINTS = 3  # OpenAI keeps the three checkpoints with the highest valid_reward_mean
CHECKPOINT_META = "gradeloop_rft.json"  # in each checkpoint: its step and scores, for ranking
NO_SIGNAL_TRUNCATED = 0.5  # warn when more than this fraction of a step's completions hit the limit
ERROR_FLAGS_BY_TYPE = {
    "python": ("python_grader_server_error", "python_grader_runtime_error"),
    "score_model": ("model_grader_server_error", "model_grader_refusal_error", "model_grader_parse_error"),
    "label_model": ("model_grader_server_error", "model_grader_refusal_error", "model_grader_parse_error"),
}
PARSE_FLAGS = ("sample_parse_error", "formula_parse_error", "model_grader_parse_error")


# -- the config ---------------------------------------------------------------------------


@dataclass
class RFTConfig:
    """Every knob of one RFT run, resolved (no "auto" left)."""

    n_epochs: int
    batch_size: int  # prompts per step
    learning_rate_multiplier: float
    learning_rate: float
    compute_multiplier: float
    num_generations: int  # samples per prompt: the GRPO group
    total_steps: int
    eval_interval: int
    eval_samples: int
    max_completion_tokens: int
    temperature: float
    lora: bool
    use_vllm: bool
    seed: int
    beta: float = 0.0  # KL penalty toward the base model (TRL's GRPO beta; 0 = none, TRL's default)

    def as_openai(self) -> dict[str, Any]:
        """The hyperparameters under OpenAI's names, as the job reports them."""
        return {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                "learning_rate_multiplier": self.learning_rate_multiplier,
                "compute_multiplier": self.compute_multiplier, "eval_interval": self.eval_interval,
                "eval_samples": self.eval_samples}


def _given(values: dict[str, Any], name: str, kind: type, low: float, high: float = math.inf, *,
           where: str = "hyperparameters") -> Any:
    """``values[name]`` checked to be a ``kind`` in [low, high]; None when missing or "auto"."""
    value = values.get(name)
    if value in (None, "auto"):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
            or (kind is int and value != int(value)):
        raise InputError(f"must be {'an integer' if kind is int else 'a number'} in [{low}, {high}] or 'auto', "
                         f"got {value!r}", field=f"{where}.{name}")
    return kind(value)


def resolve_config(spec: TrainingSpec, n_rows: int) -> RFTConfig:
    """The run's :class:`RFTConfig` from the job's hyperparameters and options (the rules are in
    the module docstring). Raises InputError for a value out of range."""
    h, o = spec.hyperparameters, spec.options
    lora = use_lora(spec)
    on_gpu = not device_settings()["use_cpu"]
    hp = resolve_hyperparameters("reinforcement", h, n_rows, lora=lora)
    batch = min(hp.batch_size, n_rows)
    multiplier = _given(h, "compute_multiplier", float, 1e-5, 10) or 1.0
    generations = _given(o, "num_generations", int, 2, 1024, where="options") or max(2, min(64, round(8 * multiplier)))
    steps = hp.n_epochs * (n_rows // batch)
    steps = min(steps, _given(o, "max_steps", int, 1, where="options") or steps)
    return RFTConfig(
        n_epochs=hp.n_epochs, batch_size=batch, learning_rate_multiplier=hp.learning_rate_multiplier,
        learning_rate=hp.learning_rate, compute_multiplier=multiplier, num_generations=generations,
        total_steps=steps,
        eval_interval=_given(h, "eval_interval", int, 1) or max(1, math.ceil(steps / 5)),
        eval_samples=_given(h, "eval_samples", int, 1) or 1,
        max_completion_tokens=_given(o, "max_completion_tokens", int, 1, where="options") or (512 if on_gpu else 128),
        temperature=_given(o, "temperature", float, 1e-3, 100, where="options") or 1.0,
        lora=lora, use_vllm=bool(o.get("use_vllm")) and on_gpu and _vllm_importable() and not response_schema(spec),
        seed=spec.seed,
        beta=_given(o, "beta", float, 0, 100, where="options") or 0.0)


def response_schema(spec: TrainingSpec) -> dict[str, Any] | None:
    """The JSON schema the job's ``response_format`` asks the policy for, or None (text)."""
    return json_schema_of({"response_format": spec.options.get("response_format")})


def prompt_messages(messages: list[dict], tokenizer: Any, schema: dict[str, Any] | None) -> list[dict]:
    """A row's ``messages`` as the policy's prompt: chat-template form, with the JSON
    instruction when a schema constrains the answer (as local models get it in eval runs)."""
    return chat_messages(with_json_instruction(messages, schema) if schema else messages, tokenizer.chat_template)


def _vllm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# -- the run ------------------------------------------------------------------------------


def train(ctx: JobContext) -> TrainResult:
    """Reinforcement-fine-tune ``ctx.spec.base_model_dir`` with the job's grader as reward;
    returns the final model (a LoRA adapter by default) or, when stopped, the pause checkpoint."""
    import transformers

    prepare_process()
    spec = ctx.spec
    if not spec.grader:
        raise InputError("reinforcement fine-tuning needs a grader", field="grader")
    if spec.validation_file is None:
        raise InputError("reinforcement fine-tuning needs a validation file", field="validation_file")
    rows = load_training_file(spec.training_file, "reinforcement", grader=spec.grader)
    valid_rows = load_training_file(spec.validation_file, "reinforcement", grader=spec.grader)
    check_leakage(spec.training_file, spec.validation_file)
    cfg = resolve_config(spec, len(rows))
    _announce(ctx, cfg, rows, valid_rows)

    transformers.set_seed(spec.seed)  # before the model: LoRA's initial weights are random
    tokenizer, model = load_base(spec)
    reward = as_reward(spec.grader)  # the eval grading path
    callback = RFTCallback(ctx, cfg, reward, valid_rows, tokenizer)
    trainer = _grpo_trainer(spec, cfg, model, tokenizer, rows, reward, callback)
    callback.trainer = trainer
    if callback.schema is not None:
        constrain_generate(trainer.model, tokenizer, callback.schema)
    return run_training(ctx, trainer, callback)


def _announce(ctx: JobContext, cfg: RFTConfig, rows: list[dict], valid_rows: list[dict]) -> None:
    spec = ctx.spec
    ctx.log(f"RFT on {len(rows)} prompts ({len(valid_rows)} validation): {cfg.total_steps} steps of "
            f"{cfg.batch_size} prompts x {cfg.num_generations} samples, validation every {cfg.eval_interval} steps "
            f"({cfg.eval_samples} sample(s) per prompt)",
            data={"hyperparameters": cfg.as_openai(), "config": asdict(cfg)})
    if spec.options.get("use_vllm") and response_schema(spec):
        ctx.log("use_vllm ignored: response_format is enforced on transformers sampling", level="warn")
    elif spec.options.get("use_vllm") and not cfg.use_vllm:
        ctx.log("use_vllm ignored: vLLM generation needs a GPU and the vllm package; sampling with transformers",
                level="warn")
    if spec.hyperparameters.get("reasoning_effort") not in (None, "auto", "default"):
        ctx.log("reasoning_effort is ignored: it applies to OpenAI's reasoning models only")
    if any(row.get("tools") for row in rows):
        ctx.log("the rows' tools are not rendered into the prompts (TRL's GRPO takes tools per trainer, not per "
                "row); the grader still sees them as item.tools", level="warn")
    if spec.options.get("accelerate_config"):
        ctx.log(f"accelerate_config={spec.options['accelerate_config']} applies when the worker is started with "
                "`accelerate launch --config_file …` (see docs/fine-tuning-rft.md); this process trains as launched")


def _grpo_trainer(spec: TrainingSpec, cfg: RFTConfig, model: Any, tokenizer: Any, rows: list[dict],
                  reward: Any, callback: RFTCallback) -> Any:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    completions = cfg.batch_size * cfg.num_generations  # per step, over all processes
    world = int(os.environ.get("WORLD_SIZE") or 1)
    per_process = completions // world if completions % world == 0 else completions
    per_device, accumulation = split_batch(per_process, int(spec.options.get("per_device_batch_size") or 8))
    device = device_settings()
    checkpointing = bool(spec.options.get("gradient_checkpointing", not device["use_cpu"]))  # memory vs speed
    args = GRPOConfig(
        output_dir=str(Path(spec.output_dir).resolve()), seed=cfg.seed, data_seed=cfg.seed,
        max_steps=cfg.total_steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=accumulation,
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_tokens,
        temperature=cfg.temperature, beta=cfg.beta, use_vllm=cfg.use_vllm, vllm_mode=spec.options.get("vllm_mode", "colocate"),
        logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, gradient_checkpointing=checkpointing, **device,
    )
    # the row index, not the row: items stay exactly as written (Arrow would unify their types)
    schema = response_schema(spec)
    dataset = datasets.Dataset.from_dict({"prompt": [prompt_messages(r["messages"], tokenizer, schema)
                                                     for r in rows], "row": list(range(len(rows)))})
    reward_fn = training_reward(reward, rows, callback.clock)
    return GRPOTrainer(model=model, reward_funcs=[reward_fn], args=args, train_dataset=dataset,
                       processing_class=tokenizer, peft_config=lora_config(spec), callbacks=[callback])


# -- rewards ------------------------------------------------------------------------------


def _columns(items: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as the reward's dataset columns (``as_reward`` makes each row the ``item`` again; a
    field that only some rows have is null in the others, as in a dataset column)."""
    keys = dict.fromkeys(k for item in items for k in item)
    return {k: [item.get(k) for item in items] for k in keys}


def training_reward(reward: Any, rows: list[dict[str, Any]], clock: dict[str, float]) -> Any:
    """TRL's reward function: grade each completion with its row as ``item``; log the step's
    per-grader means and error rates with ``log_metric`` (TRL averages them over processes and
    hands them to the callback's ``on_log``)."""
    def rft_reward(prompts: list, completions: list, row: list[int], log_metric: Any = None, **_: Any) -> list[float]:
        clock["grading_start"] = time.perf_counter()
        scores = reward(prompts=prompts, completions=completions, log_metric=log_metric,
                        **_columns([rows[i] for i in row]))
        clock["grading"] = time.perf_counter() - clock["grading_start"]
        if log_metric is not None:
            for key, value in summarize(reward.grader, reward.last_results).items():
                log_metric(f"rft/{key}", value)
        return scores

    rft_reward.__name__ = reward.__name__
    return rft_reward


def _parts(grader: Any) -> list[tuple[str | None, Any]]:
    """What the metrics report per grader: a multi grader's sub-graders (by key), else itself."""
    if grader.type == "multi":
        return list(grader.sub_graders().items())
    return [(None, grader)]


def _flags(kind: str) -> tuple[str, ...]:
    return ("other_error", "sample_parse_error", "invalid_variable_error", *ERROR_FLAGS_BY_TYPE.get(kind, ()))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(grader: Any, results: list[Any]) -> dict[str, float]:
    """Means over graded samples: ``reward``, ``parse_error``, ``latency`` and, per grader
    (a multi grader's sub-graders by key), ``graders/<label>/reward`` and
    ``graders/<label>/<error flag>``."""
    out = {"reward": _mean([r.score for r in results]),
           "parse_error": _mean([float(any(r.errors.get(f) for f in PARSE_FLAGS)) for r in results]),
           "latency": _mean([r.execution_time for r in results])}
    for key, sub in _parts(grader):
        label = key or sub.name
        scores = [r.score if key is None else r.sub_rewards.get(key, 0.0) for r in results]
        errors = [r.errors if key is None else r.details.get("sub_results", {}).get(key, {}).get("errors", {})
                  for r in results]
        out[f"graders/{label}/reward"] = _mean(scores)
        for flag in _flags(sub.type):
            out[f"graders/{label}/{flag}"] = _mean([float(bool(e.get(flag))) for e in errors])
    return out


# -- the metrics event --------------------------------------------------------------------


def step_event(grader: Any, train: dict[str, float], valid: dict[str, float] | None, logs: dict[str, Any],
               timing: dict[str, float]) -> dict[str, Any]:
    """One step's metrics ``data`` in OpenAI's RFT shape (``ctx.metrics`` adds ``step`` and
    ``total_steps``): ``scores``, ``errors``, ``usage``, ``timing``, the legacy flat keys, and
    TRL's own signals under ``gradeloop``. ``train``/``valid`` are :func:`summarize` dicts (with
    ``completion_tokens_mean``/``truncated`` for validation); ``valid`` only at validation steps."""
    scores: dict[str, Any] = {"train_reward_mean": train.get("reward"), "graders": []}
    errors: list[dict[str, Any]] = []
    for key, sub in _parts(grader):
        label = key or sub.name
        score = {"name": sub.name, "type": sub.type}
        error = {"name": sub.name, "type": sub.type}
        for split, stats in (("train", train), ("valid", valid)):
            if stats is None:
                continue
            score[f"{split}_reward_mean"] = stats.get(f"graders/{label}/reward")
            error.update({f"{split}_{flag}_mean": stats.get(f"graders/{label}/{flag}") for flag in _flags(sub.type)})
        scores["graders"].append(score)
        errors.append(error)
    samples = {"train_completion_tokens_mean": logs.get("completions/mean_length"),
               "train_truncated_mean": logs.get("completions/clipped_ratio")}
    latency = {"name": grader.name, "type": grader.type, "train_execution_latency_mean": train.get("latency")}
    data: dict[str, Any] = {"scores": scores, "errors": {"graders": errors}, "usage": {"samples": samples},
                            "timing": {"step": timing, "graders": [latency]},
                            "train_mean_reward": train.get("reward"),
                            "completion_tokens_mean": logs.get("completions/mean_length")}
    if valid is not None:
        scores["valid_reward_mean"] = valid["reward"]
        samples.update(valid_completion_tokens_mean=valid["completion_tokens_mean"],
                       valid_completion_tokens_count=valid["completion_tokens_count"],
                       valid_truncated_mean=valid["truncated"])
        latency["valid_execution_latency_mean"] = valid["latency"]
        data.update(full_valid_mean_reward=valid["reward"], full_valid_mean_parse_error=valid["parse_error"])
    data["gradeloop"] = {"reward_std": logs.get("reward_std"), "groups_identical": logs.get("frac_reward_zero_std"),
                         "truncated": logs.get("completions/clipped_ratio"), "loss": logs.get("loss"),
                         "grad_norm": logs.get("grad_norm"), "learning_rate": logs.get("learning_rate"),
                         "entropy": logs.get("entropy"), "kl": logs.get("kl")}
    return data


def _message(step: int, total: int, data: dict[str, Any]) -> str:
    text = f"Step {step}/{total}, train mean reward={data['train_mean_reward'] or 0:.2f}"
    if "full_valid_mean_reward" in data:
        text += (f", full validation mean reward={data['full_valid_mean_reward']:.2f}, "
                 f"full validation mean parse error={data['full_valid_mean_parse_error']:.2f}")
    return text


# -- the callback: validation, events, checkpoints, stop requests ------------------------


class RFTCallback(JobCallback):
    """Turns GRPO's loop into an RFT job. Per step: validation at validation steps (and a
    checkpoint), one ``metrics`` event, no-signal warnings, then the stop poll (``pause`` saves
    and stops, ``cancel`` stops). Checkpoints are registered with their scores, and all but the
    best :data:`KEEP_CHECKPOINTS` are deleted."""

    def __init__(self, ctx: JobContext, cfg: RFTConfig, reward: Any, valid_rows: list[dict], tokenizer: Any) -> None:
        super().__init__(ctx, ctx.spec.base_model_dir)
        self.cfg, self.reward, self.valid_rows, self.tokenizer = cfg, reward, valid_rows, tokenizer
        self.schema = response_schema(ctx.spec)
        self.trainer: Any = None  # set once the trainer exists (validation samples from its model)
        self.clock: dict[str, float] = {}
        self.valid: dict[str, float] | None = None
        self._truncation_warned: int | None = None  # the step of the last truncation warning

    def on_step_begin(self, args, state, control, **kwargs):
        self.clock.clear()  # in place: training_reward() holds it and adds grading_start, grading
        self.clock["start"] = time.perf_counter()
        self.valid = None

    def on_step_end(self, args, state, control, **kwargs):
        self.clock["end"] = time.perf_counter()
        if state.global_step % self.cfg.eval_interval == 0 or state.global_step >= state.max_steps:
            self.valid = self._validate(state.global_step)
            control.should_save = True
        self.clock["eval"] = time.perf_counter() - self.clock["end"]

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "reward" not in logs:  # the closing summary (train_runtime, …), not a step
            return
        step, total = state.global_step, state.max_steps
        self.num_tokens = int(logs.get("num_tokens", self.num_tokens))
        train = {k.removeprefix("rft/"): v for k, v in logs.items() if k.startswith("rft/")}
        data = step_event(self.reward.grader, train, self.valid, logs, self._timing())
        latest = {"train_reward_mean": train.get("reward"), "valid_reward_mean": (self.valid or {}).get("reward")}
        self.latest.update({k: v for k, v in latest.items() if v is not None})  # for checkpoints and the result
        if state.is_world_process_zero:
            self.ctx.metrics(step, total, data, _message(step, total, data))
            self._warn_no_signal(step, logs)
        self._poll_stop(state, control)

    def _timing(self) -> dict[str, float]:
        c, now = self.clock, time.perf_counter()
        start, graded_at = c.get("start", now), c.get("grading_start", c.get("start", now))
        return {"sampling": graded_at - start, "grading": c.get("grading", 0.0),
                "training": c.get("end", now) - graded_at - c.get("grading", 0.0), "eval": c.get("eval", 0.0),
                "full_iteration": now - start}

    def _warn_no_signal(self, step: int, logs: dict[str, Any]) -> None:
        if logs.get("frac_reward_zero_std", 0.0) >= 1.0:
            self.ctx.log(f"Step {step}: no learning signal: within every group of {self.cfg.num_generations} samples "
                         f"the rewards were identical (mean {logs.get('reward', 0):.2f}), so GRPO's advantages are "
                         "all zero. Check the grader on real samples (rft.dry_run), or raise temperature or "
                         "num_generations", level="warn", data={"step": step, "groups_identical": 1.0})
        truncated = logs.get("completions/clipped_ratio", 0.0)
        # A short limit can be deliberate (an instruction to be met early), so this one is said
        # once per validation interval, not at every step; each step's rate is in its metrics.
        if truncated > NO_SIGNAL_TRUNCATED and (self._truncation_warned is None
                                                or step - self._truncation_warned >= self.cfg.eval_interval):
            self._truncation_warned = step
            self.ctx.log(f"Step {step}: {truncated:.0%} of completions were cut at max_completion_tokens="
                         f"{self.cfg.max_completion_tokens}; their rewards grade unfinished answers. Raise "
                         "options.max_completion_tokens (said again at most every eval_interval steps; every "
                         "step's rate is in its metrics)", level="warn", data={"step": step, "truncated": truncated})

    def _poll_stop(self, state, control) -> None:
        reason = [self.ctx.stop_requested() if state.is_world_process_zero else None]
        if self.trainer is not None and self.trainer.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(reason)  # every process stops at the same step
        if reason[0] in ("pause", "cancel"):
            self.stopped = reason[0]
            control.should_training_stop = True
            control.should_save = reason[0] == "pause"  # transformers saves right after the logs
            if state.is_world_process_zero:
                self.ctx.log(f"Training {'paused' if reason[0] == 'pause' else 'cancelled'} at step "
                             f"{state.global_step}")

    def _validate(self, step: int) -> dict[str, float] | None:
        """Sample, grade and record the validation set with the current policy (all processes
        sample a share; the main one grades and records)."""
        from accelerate.utils import gather_object
        from trl.models import unwrap_model_for_generation

        trainer = self.trainer
        rank, world = trainer.accelerator.process_index, trainer.accelerator.num_processes
        mine = list(range(rank, len(self.valid_rows), world))
        prompts = [prompt_messages(self.valid_rows[i]["messages"], self.tokenizer, self.schema) for i in mine]
        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs) as m:
            groups = sample_completions(m, self.tokenizer, prompts, self.cfg.eval_samples,
                                        max_new_tokens=self.cfg.max_completion_tokens,
                                        temperature=self.cfg.temperature, seed=self.cfg.seed, schema=self.schema)
        done = gather_object(list(zip(mine, groups))) if world > 1 else list(zip(mine, groups))
        if not trainer.accelerator.is_main_process:
            return None
        pairs = [(self.valid_rows[i], c) for i, group in sorted(done, key=lambda d: d[0]) for c in group]
        self.reward(completions=[c.text for _, c in pairs], **_columns([row for row, _ in pairs]))
        stats = summarize(self.reward.grader, self.reward.last_results)
        tokens = [c.tokens for _, c in pairs]
        stats.update(completion_tokens_mean=_mean(tokens), completion_tokens_count=sum(tokens),
                     truncated=_mean([float(c.truncated) for _, c in pairs]))
        self.ctx.record_validation_run(step, [{"item": row, "messages": row["messages"], "output_text": c.text}
                                              for row, c in pairs])
        return stats

    def on_save(self, args, state, control, **kwargs):
        step, path = state.global_step, Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not state.is_world_process_zero or step in self.saved or not path.exists():
            return
        point_adapter_at_base(path, self.base_model_dir)
        meta = {"step": step, "train_reward_mean": self.latest.get("train_reward_mean"),
                "valid_reward_mean": self.valid["reward"] if self.valid else None}
        (path / CHECKPOINT_META).write_text(json.dumps(meta))
        self.saved[step] = path
        self.ctx.checkpoint(step, path, {k: v for k, v in meta.items() if v is not None and k != "step"})
        for removed in prune_checkpoints(Path(args.output_dir), self.ctx, protect=path if self.stopped else None):
            self.saved.pop(removed, None)


def prune_checkpoints(output_dir: Path, ctx: JobContext, *, protect: Path | None = None) -> list[int]:
    """Delete every RFT checkpoint but the :data:`KEEP_CHECKPOINTS` with the highest
    ``valid_reward_mean`` (ties: the later step), the newest one if it has no score (a pause
    snapshot) and ``protect``; log each deletion. Returns the deleted steps."""
    found = []
    for path in output_dir.glob("checkpoint-*"):
        if (path / CHECKPOINT_META).exists():
            found.append((json.loads((path / CHECKPOINT_META).read_text()), path))
    scored = sorted((f for f in found if f[0].get("valid_reward_mean") is not None),
                    key=lambda f: (f[0]["valid_reward_mean"], f[0]["step"]), reverse=True)
    newest = max((m["step"] for m, _ in found), default=None)
    keep = {p for _, p in scored[:KEEP_CHECKPOINTS]} | {protect} | \
        {p for m, p in found if m.get("valid_reward_mean") is None and m["step"] == newest}
    removed = []
    for meta, path in sorted(found, key=lambda f: f[0]["step"]):
        if path in keep:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(meta["step"])
        ctx.log(f"checkpoint step {meta['step']} removed (not in the top {KEEP_CHECKPOINTS})",
                data={"step": meta["step"], "path": str(path), "valid_reward_mean": meta.get("valid_reward_mean")})
    return removed


# -- sampling -----------------------------------------------------------------------------


@dataclass
class Completion:
    """One sampled completion: its text, token count (with the end-of-turn token) and whether
    it was cut at the length limit."""

    text: str
    tokens: int
    truncated: bool


def constrain_generate(model: Any, tokenizer: Any, schema: dict[str, Any]) -> None:
    """Make every ``model.generate`` call that brings no logits processor of its own (GRPO's
    rollouts) follow ``schema``'s grammar. GRPO calls ``generate`` on this model object (its
    accelerate-unwrapped module), and has no hook for a logits processor."""
    original = model.generate
    grammar = _grammar_processor(model, tokenizer, schema)

    def generate(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("logits_processor") is None:
            kwargs["logits_processor"] = grammar()
        return original(*args, **kwargs)

    model.generate = generate


def _grammar_processor(model: Any, tokenizer: Any, schema: dict[str, Any]) -> Any:
    """A maker of fresh ``LogitsProcessorList``s (one per ``generate`` call) for ``schema``."""
    from transformers import LogitsProcessorList

    from ..models._structured import Constraints, GrammarLogitsProcessor

    constraints = Constraints(tokenizer, model.get_output_embeddings().weight.shape[0], _eos_ids(model, tokenizer))
    return lambda: LogitsProcessorList([GrammarLogitsProcessor(constraints, schema)])


def sample_completions(model: Any, tokenizer: Any, prompts: list[list[dict]], n: int, *, max_new_tokens: int,
                       temperature: float, seed: int, batch_size: int = 16,
                       schema: dict[str, Any] | None = None) -> list[list[Completion]]:
    """``n`` completions per conversation, sampled like GRPO samples them (chat template with the
    generation prompt, ``temperature``, no top-k/top-p), under ``seed`` without disturbing the
    caller's random state; each token constrained to ``schema``'s grammar when one is given.
    Returns one list of completions per prompt."""
    import torch

    grammar = _grammar_processor(model, tokenizer, schema) if schema is not None else (lambda: None)
    eos = _eos_ids(model, tokenizer)
    was_training, padding_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # a decoder-only model continues after the prompt's last token
    out: list[list[Completion]] = []
    devices = [model.device] if model.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start:start + batch_size]
                enc = tokenizer.apply_chat_template(chunk, add_generation_prompt=True, tokenize=True, return_dict=True,
                                                    padding=True, return_tensors="pt").to(model.device)
                ids = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                                     max_new_tokens=max_new_tokens, num_return_sequences=n,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=eos, logits_processor=grammar())
                new = ids[:, enc["input_ids"].shape[1]:].tolist()
                for j in range(len(chunk)):
                    out.append([_completion(tokenizer, row, eos) for row in new[j * n:(j + 1) * n]])
    finally:
        model.train(was_training)
        tokenizer.padding_side = padding_side
    return out


def _completion(tokenizer: Any, ids: list[int], eos: list[int]) -> Completion:
    end = next((k for k, t in enumerate(ids) if t in eos), None)
    kept = ids if end is None else ids[:end + 1]
    return Completion(tokenizer.decode(kept, skip_special_tokens=True), len(kept), end is None)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return [i for i in dict.fromkeys([*ids, tokenizer.eos_token_id]) if i is not None]


# -- guard rails --------------------------------------------------------------------------


def check_leakage(training_file: str | Path, validation_file: str | Path | None) -> None:
    """Refuse a training row whose prompt (its ``messages``) is also in the validation file:
    InputError naming the training file's line."""
    if validation_file is None:
        return
    held_out = {json.dumps(row.get("messages"), sort_keys=True) for _, row in read_jsonl(validation_file)
                if isinstance(row, dict)}
    for line, row in read_jsonl(training_file):
        if isinstance(row, dict) and json.dumps(row.get("messages"), sort_keys=True) in held_out:
            raise InputError(f"this row's messages are also a prompt of the validation file {validation_file}: "
                             "training on it would leak the evaluation split", file=str(training_file), line=line,
                             field="messages")


def dry_run(spec: TrainingSpec, n: int = 8) -> dict[str, Any]:
    """Grade the base model before training: ``num_generations`` samples (the training
    temperature and length limit) for ``n`` training prompts picked with ``spec.seed``, graded
    by the job's grader. Returns the reward distribution (mean, std, histogram), the fraction
    of groups whose rewards are all identical (no GRPO signal), of completions cut at the length
    limit, grader error rates, per-grader means, ``warnings`` and a one-line ``message``.
    Nothing is trained or written."""
    prepare_process()
    rows = load_training_file(spec.training_file, "reinforcement", grader=spec.grader)
    cfg = resolve_config(spec, len(rows))
    picked = random.Random(spec.seed).sample(rows, min(n, len(rows)))
    tokenizer, model = load_base(spec)
    if not device_settings()["use_cpu"]:
        model.to("cuda")
    schema = response_schema(spec)
    prompts = [prompt_messages(r["messages"], tokenizer, schema) for r in picked]
    groups = sample_completions(model, tokenizer, prompts, cfg.num_generations, max_new_tokens=cfg.max_completion_tokens,
                                temperature=cfg.temperature, seed=spec.seed, schema=schema)
    reward = as_reward(spec.grader)
    pairs = [(row, c) for row, group in zip(picked, groups) for c in group]
    scores = reward(completions=[c.text for _, c in pairs], **_columns([row for row, _ in pairs]))
    return reward_distribution(reward.grader, reward.last_results, scores, groups, cfg)


def reward_distribution(grader: Any, results: list[Any], scores: list[float], groups: list[list[Completion]],
                        cfg: RFTConfig) -> dict[str, Any]:
    """The :func:`dry_run` report for graded ``groups`` (``scores`` in group order)."""
    size = cfg.num_generations
    by_group = [scores[i:i + size] for i in range(0, len(scores), size)]
    identical = _mean([float(max(g) - min(g) < 1e-9) for g in by_group])
    completions = [c for group in groups for c in group]
    truncated = _mean([float(c.truncated) for c in completions])
    errors = {flag: rate for flag in ERROR_FLAGS
              if (rate := _mean([float(bool(r.errors.get(flag))) for r in results]))}
    stats = summarize(grader, results)
    report = {
        "prompts": len(groups), "samples_per_prompt": size, "samples": len(scores),
        "max_completion_tokens": cfg.max_completion_tokens, "temperature": cfg.temperature,
        "reward": {"mean": _mean(scores), "std": statistics.pstdev(scores) if scores else 0.0,
                   "min": min(scores, default=0.0), "max": max(scores, default=0.0)},
        "histogram": histogram(scores),
        "groups_identical": identical, "truncated": truncated,
        "completion_tokens_mean": _mean([c.tokens for c in completions]),
        "errors": errors,
        "graders": [{"name": sub.name, "type": sub.type, "reward_mean": stats[f"graders/{key or sub.name}/reward"]}
                    for key, sub in _parts(grader)],
    }
    warnings = []
    if identical >= 1.0:
        warnings.append("every group's rewards are identical: GRPO would get no learning signal")
    elif identical > 0.5:
        warnings.append(f"{identical:.0%} of groups have identical rewards: little learning signal")
    if truncated > NO_SIGNAL_TRUNCATED:
        warnings.append(f"{truncated:.0%} of completions hit max_completion_tokens={cfg.max_completion_tokens}")
    warnings += [f"{flag} on {rate:.0%} of samples" for flag, rate in errors.items()]
    report["warnings"] = warnings
    report["message"] = (f"{len(scores)} samples: mean reward {report['reward']['mean']:.3f} "
                         f"(std {report['reward']['std']:.3f}), identical groups {identical:.0%}, "
                         f"truncated {truncated:.0%}" + ("; " + "; ".join(warnings) if warnings else ""))
    return report


def histogram(scores: list[float], buckets: int = 10) -> list[dict[str, float]]:
    """Counts of ``scores`` in ``buckets`` equal ranges over [0, 1] (widened to the scores' range)."""
    if not scores:
        return []
    low, high = min(0.0, min(scores)), max(1.0, max(scores))
    width = (high - low) / buckets
    counts = [0] * buckets
    for s in scores:
        counts[min(buckets - 1, int((s - low) / width))] += 1
    return [{"from": round(low + i * width, 6), "to": round(low + (i + 1) * width, 6), "count": c}
            for i, c in enumerate(counts)]
