"""What the SFT, DPO and RFT trainers share: the base model, LoRA, hyperparameters, devices,
chat rendering, and the callback that turns TRL's training loop into job events.

Hyperparameters use OpenAI's names; ``"auto"`` (or a missing value) resolves as follows
(:func:`resolve_hyperparameters`):

- ``n_epochs``: OpenAI's published heuristic (the chat fine-tuning data-preparation cookbook):
  3 epochs, raised for small files so that about 100 examples are seen (at most 25 epochs),
  lowered for large ones so that about 25,000 are seen (at least 1).
- ``batch_size``: about 0.2 % of the training examples (OpenAI's documented default), at
  least 1 and at most 8 for local training. It is the *effective* batch: per-device batches of
  at most ``options["per_device_batch_size"]`` (default 8) times gradient accumulation.
- ``learning_rate_multiplier``: 1.0, times a base learning rate per method and mode
  (:data:`BASE_LEARNING_RATES`): SFT 2e-4 with LoRA, 2e-5 full; DPO 5e-6 LoRA, 5e-7 full;
  RFT 1e-5 LoRA, 1e-6 full.
- ``beta`` (DPO): 0.1, TRL's and the DPO paper's default.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._context import JobContext, TrainingSpec, TrainResult

try:  # the tune extra; trainers are imported only when a job trains
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - depends on the install
    raise InputError(f"fine-tuning needs transformers, trl and peft ({exc.name} is missing): "
                     "pip install 'gradeloop[local,tune]'", field="method") from None

__all__ = ["BASE_LEARNING_RATES", "Hyperparameters", "resolve_hyperparameters", "device_settings", "prepare_process",
           "load_base", "load_job", "use_lora", "lora_config", "training_arguments", "max_seq_length", "valid_subset",
           "chat_messages", "row_tools", "JobCallback", "run_training"]

BASE_LEARNING_RATES = {  # (method, lora) -> learning rate that learning_rate_multiplier scales
    ("supervised", True): 2e-4, ("supervised", False): 2e-5,
    ("dpo", True): 5e-6, ("dpo", False): 5e-7,
    ("reinforcement", True): 1e-5, ("reinforcement", False): 1e-6,
}
MAX_AUTO_BATCH = 8
DEFAULT_MAX_SEQ_LENGTH = 1024
VALID_SUBSET = 64  # rows of the validation file behind each periodic valid_loss; the final one uses all

# Used only when the base model's tokenizer has no chat template; saved with the trained model,
# so inference renders conversations the same way.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


# -- hyperparameters --------------------------------------------------------------------


@dataclass
class Hyperparameters:
    """Resolved hyperparameters (no "auto" left)."""

    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    learning_rate: float
    beta: float | None = None

    def as_openai(self) -> dict[str, Any]:
        """The values under OpenAI's names, as a job reports them."""
        out = {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
               "learning_rate_multiplier": self.learning_rate_multiplier}
        if self.beta is not None:
            out["beta"] = self.beta
        return out


def _given(hyperparameters: dict[str, Any], name: str) -> Any:
    value = hyperparameters.get(name)
    return None if value in (None, "auto") else value


def auto_n_epochs(n_examples: int) -> int:
    """OpenAI's cookbook heuristic: 3 epochs, adjusted so 100..25,000 examples are seen."""
    n = max(1, n_examples)
    if n * 3 < 100:
        return min(25, 100 // n)
    if n * 3 > 25_000:
        return max(1, 25_000 // n)
    return 3


def auto_batch_size(n_examples: int) -> int:
    """About 0.2 % of the examples (OpenAI's default), between 1 and :data:`MAX_AUTO_BATCH`."""
    return max(1, min(MAX_AUTO_BATCH, round(n_examples * 0.002)))


def resolve_hyperparameters(method: str, hyperparameters: dict[str, Any], n_examples: int, *,
                            lora: bool) -> Hyperparameters:
    """Resolve OpenAI hyperparameters (``"auto"`` or missing -> the rules in the module docstring)."""
    n_epochs = _given(hyperparameters, "n_epochs") or auto_n_epochs(n_examples)
    batch_size = _given(hyperparameters, "batch_size") or auto_batch_size(n_examples)
    multiplier = _given(hyperparameters, "learning_rate_multiplier") or 1.0
    for name, value in (("n_epochs", n_epochs), ("batch_size", batch_size), ("learning_rate_multiplier", multiplier)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InputError(f"must be a positive number or 'auto', got {value!r}", field=f"hyperparameters.{name}")
    beta = None
    if method == "dpo":
        beta = _given(hyperparameters, "beta") or 0.1
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta <= 2:
            raise InputError(f"must be in (0, 2] or 'auto', got {beta!r}", field="hyperparameters.beta")
    return Hyperparameters(n_epochs=int(n_epochs), batch_size=int(batch_size),
                           learning_rate_multiplier=float(multiplier),
                           learning_rate=BASE_LEARNING_RATES[(method, lora)] * float(multiplier),
                           beta=float(beta) if beta is not None else None)


def split_batch(batch_size: int, per_device_max: int) -> tuple[int, int]:
    """``(per_device, accumulation)`` whose product is exactly ``batch_size``: the largest
    per-device batch up to ``per_device_max`` that divides it."""
    per_device = max(d for d in range(1, min(batch_size, per_device_max) + 1) if batch_size % d == 0)
    return per_device, batch_size // per_device


# -- device, model, LoRA ------------------------------------------------------------------


def device_settings() -> dict[str, Any]:
    """TrainingArguments for this machine: CPU (``use_cpu=True, bf16=False``: TRL's configs
    default to bf16, which transformers refuses on CPU), bf16 on a GPU that supports it, fp16
    mixed precision on an older GPU."""
    import torch

    if not torch.cuda.is_available():
        return {"use_cpu": True, "bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"use_cpu": False, "bf16": bf16, "fp16": not bf16}


def prepare_process() -> None:
    """Process-wide settings for a training run: no progress bars from datasets' preparation
    steps (the job's events say what happens); ``GRADELOOP_THREADS`` sets torch's thread count
    (1 is fastest for tiny models, and on a machine another process keeps busy)."""
    import datasets
    import torch

    datasets.disable_progress_bars()
    threads = int(os.environ.get("GRADELOOP_THREADS") or 0)
    if threads:
        torch.set_num_threads(threads)


def load_job(ctx: JobContext, method: str, noun: str) -> tuple[list[dict], list[dict], Hyperparameters, Any, Any]:
    """The SFT / DPO prologue: ``(rows, valid_rows, hyperparameters, tokenizer, model)``.

    Reads and checks the training (and validation) file, resolves the hyperparameters, logs
    "Training on N <noun> (M validation)", seeds, then loads the base model."""
    import transformers

    from ..spec import load_training_file

    spec = ctx.spec
    rows = load_training_file(spec.training_file, method)
    valid_rows = load_training_file(spec.validation_file, method) if spec.validation_file else []
    hp = resolve_hyperparameters(method, spec.hyperparameters, len(rows), lora=use_lora(spec))
    ctx.log(f"Training on {len(rows)} {noun} ({len(valid_rows)} validation)",
            data={"hyperparameters": hp.as_openai(), "learning_rate": hp.learning_rate, "lora": use_lora(spec)})
    transformers.set_seed(spec.seed)  # before the model: LoRA's initial weights are random
    tokenizer, model = load_base(spec)
    return rows, valid_rows, hp, tokenizer, model


def load_base(spec: TrainingSpec) -> tuple[Any, Any]:
    """``(tokenizer, model)`` from ``spec.base_model_dir`` (float32; bf16 for LoRA on a bf16 GPU).

    The model's ``name_or_path`` is the absolute directory, which PEFT writes into
    ``adapter_config.json`` as ``base_model_name_or_path``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub while training
    import torch
    import transformers

    base = Path(spec.base_model_dir).resolve()
    if not (base / "config.json").exists():
        raise InputError(f"{base} is not a transformers checkpoint directory", field="model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    if not tokenizer.chat_template:
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    half = device_settings().get("bf16") and use_lora(spec)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.bfloat16 if half else torch.float32)
    return tokenizer, model


def use_lora(spec: TrainingSpec) -> bool:
    """LoRA unless ``options["lora"]`` is False (full fine-tuning)."""
    return spec.options.get("lora", True) is not False


def lora_config(spec: TrainingSpec) -> Any:
    """A PEFT LoraConfig on every linear layer (r=16, alpha=2r, dropout 0.05 unless
    ``options`` say otherwise), or None for full fine-tuning."""
    if not use_lora(spec):
        return None
    import peft

    r = int(spec.options.get("lora_r", 16))
    return peft.LoraConfig(r=r, lora_alpha=int(spec.options.get("lora_alpha", 2 * r)),
                           lora_dropout=float(spec.options.get("lora_dropout", 0.05)),
                           target_modules="all-linear", task_type="CAUSAL_LM")


def training_arguments(spec: TrainingSpec, hp: Hyperparameters, n_examples: int, *, has_validation: bool) -> dict:
    """The TrainingArguments every trainer shares (pass them to SFTConfig/DPOConfig/...).

    Logs every step (one metrics event per step), saves a checkpoint at each epoch end (and
    where ``max_steps`` stops), evaluates about ten times per job when a validation file exists.
    """
    options = spec.options
    per_device, accumulation = split_batch(hp.batch_size, int(options.get("per_device_batch_size", 8)))
    steps_per_epoch = max(1, math.ceil(n_examples / hp.batch_size))
    max_steps = int(options.get("max_steps") or -1)
    total = max_steps if max_steps > 0 else steps_per_epoch * hp.n_epochs
    device = device_settings()
    args = dict(
        output_dir=str(spec.output_dir), seed=spec.seed, data_seed=spec.seed,
        num_train_epochs=hp.n_epochs, max_steps=max_steps, learning_rate=hp.learning_rate,
        per_device_train_batch_size=per_device, per_device_eval_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        logging_steps=1, save_strategy="epoch", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0,
        # transformers 5 renamed gradient_checkpointing (TRL defaults it to True); off on CPU, where
        # memory is plentiful and recomputation only costs time
        activation_checkpointing=bool(options.get("gradient_checkpointing", not device["use_cpu"])),
        **device,
    )
    if has_validation:
        args.update(eval_strategy="steps", eval_steps=int(options.get("eval_steps") or max(1, math.ceil(total / 10))))
    return args


def max_seq_length(spec: TrainingSpec) -> int:
    """Longest training sequence in tokens: ``options["max_seq_length"]`` or 1024; longer rows
    are cut at the end."""
    return int(spec.options.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)


def valid_subset(dataset: Any, seed: int) -> Any:
    """Up to :data:`VALID_SUBSET` validation rows (seeded) for the periodic ``valid_loss``."""
    if len(dataset) <= VALID_SUBSET:
        return dataset
    return dataset.shuffle(seed=seed).select(range(VALID_SUBSET))


# -- chat rendering -----------------------------------------------------------------------


def chat_messages(messages: list[dict[str, Any]], chat_template: str | None) -> list[dict[str, Any]]:
    """OpenAI messages as the chat template expects them: text content, ``developer`` ->
    ``system``, no ``weight``. Tool calls stay structured when the template renders
    ``tool_calls``; otherwise they are appended to the content as JSON (so they are trained on)."""
    template = chat_template or ""
    out = []
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role", "user")
        message: dict[str, Any] = {"role": role, "content": _text(m.get("content"))}
        calls = m.get("tool_calls") or ([{"type": "function", "function": m["function_call"]}]
                                        if m.get("function_call") else None)
        if calls and "tool_calls" in template:
            message["tool_calls"] = calls
        elif calls:
            rendered = json.dumps([c.get("function", c) for c in calls], ensure_ascii=False)
            message["content"] = f"{message['content']}\n{rendered}" if message["content"] else rendered
        for key in ("tool_call_id", "name"):
            if m.get(key) is not None:
                message[key] = m[key]
        out.append(message)
    return out


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return content or ""


def row_tools(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A row's tools in chat-template form (deprecated ``functions`` become tools)."""
    if row.get("tools"):
        return row["tools"]
    if row.get("functions"):
        return [{"type": "function", "function": f} for f in row["functions"]]
    return None


# -- the job callback ---------------------------------------------------------------------

_DROPPED = ("epoch", "total_flos")


def openai_metrics(logs: dict[str, Any]) -> dict[str, Any]:
    """TRL's log keys under OpenAI's names: ``loss`` -> ``train_loss``, ``mean_token_accuracy``
    -> ``train_mean_token_accuracy``, ``eval_x`` -> ``valid_x``; other keys (DPO's
    ``rewards/margins``, ...) keep TRL's names. Timing keys are dropped."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if key in _DROPPED or key.endswith(("_runtime", "_per_second")) or not isinstance(value, (int, float)):
            continue
        if key.startswith("eval_"):
            out["valid_" + key.removeprefix("eval_")] = value
        elif key in ("loss", "mean_token_accuracy"):
            out["train_" + key] = value
        else:
            out[key] = value
    return out


def _message(step: int, total: int, data: dict[str, Any]) -> str:
    parts = [f"{label}={data[key]:.4f}" for key, label in (("train_loss", "training loss"),
                                                           ("valid_loss", "validation loss"),
                                                           ("full_valid_loss", "full validation loss"))
             if isinstance(data.get(key), (int, float))]
    return f"Step {step}/{total}: " + ", ".join(parts)


def shared_stop_reason(ctx: Any, state: Any) -> str | None:
    """The main process asks the job; with several processes (accelerate, torchrun) its answer
    is broadcast, so every process stops at the same step."""
    reason = [ctx.stop_requested() if state.is_world_process_zero else None]
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast_object_list(reason, src=0)
    except (ImportError, RuntimeError):
        pass
    return reason[0]


class JobCallback(TrainerCallback):
    """Reports a TRL run to a :class:`JobContext`.

    - one ``metrics`` event per step: the step's training logs, merged with the evaluation logs
      of the same step when it evaluates;
    - after each event, polls ``ctx.stop_requested()``: ``"pause"`` saves a checkpoint at this
      step and stops, ``"cancel"`` stops without saving;
    - registers every saved checkpoint with ``ctx.checkpoint(step, path, metrics)`` (a PEFT
      adapter's ``base_model_name_or_path`` is made the absolute base directory first).
    """

    def __init__(self, ctx: JobContext, base_model_dir: Path) -> None:
        self.ctx, self.base_model_dir = ctx, Path(base_model_dir).resolve()
        self.pending: dict[str, Any] = {}
        self.latest: dict[str, Any] = {}  # the last value of every metric, for checkpoints
        self.summary: dict[str, Any] = {}  # trainer.train()'s closing summary (train_runtime, ...)
        self.stopped: str | None = None
        self.saved: dict[int, Path] = {}
        self.num_tokens = 0
        self.tokens_before = 0  # tokens trained before a resumed checkpoint (TRL restarts its count)

    def on_train_begin(self, args, state, control, **kwargs):
        self.ctx.process_started(args.process_index, args.world_size)  # accelerate's view of this process
        counts = [log["num_tokens"] for log in state.log_history if "num_tokens" in log and "loss" in log]
        self.tokens_before = self.num_tokens = int(counts[-1]) if counts else 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_runtime" in logs:
            self.summary = logs
            return
        if "num_tokens" in logs and "loss" in logs:
            logs["num_tokens"] = self.num_tokens = self.tokens_before + int(logs["num_tokens"])
        self.pending.update(openai_metrics(logs))
        is_eval = any(k.startswith("eval_") for k in logs)
        if not is_eval and control.should_evaluate:
            return  # this step's evaluation comes next: one event for both
        self._flush(state, control)

    def _flush(self, state, control) -> None:
        data, self.pending = self.pending, {}
        self.latest.update(data)
        self.ctx.metrics(state.global_step, state.max_steps, data, _message(state.global_step, state.max_steps, data))
        reason = shared_stop_reason(self.ctx, state)
        if reason in ("pause", "cancel"):
            self.stopped = reason
            control.should_training_stop = True
            control.should_save = reason == "pause"  # transformers saves right after the logs
            self.ctx.log(f"Training {'paused' if reason == 'pause' else 'cancelled'} at step {state.global_step}")

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.stopped == "cancel" or state.global_step in self.saved:
            control.should_save = False  # no checkpoint on cancel, none twice for one step

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.global_step in self.saved or not path.exists():
            return
        point_adapter_at_base(path, self.base_model_dir)
        self.saved[state.global_step] = path
        self.ctx.checkpoint(state.global_step, path, {"step": state.global_step, **_loss_metrics(self.latest)})


def _loss_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy",
            "full_valid_loss", "full_valid_mean_token_accuracy")
    return {k: metrics[k] for k in keys if k in metrics}


def point_adapter_at_base(directory: Path, base_model_dir: Path) -> None:
    """Make a PEFT adapter's ``base_model_name_or_path`` the absolute base directory (so
    ``hf/<directory>`` loads anywhere); a full checkpoint is left alone."""
    config = Path(directory) / "adapter_config.json"
    if config.exists():
        data = json.loads(config.read_text())
        data["base_model_name_or_path"] = str(Path(base_model_dir).resolve())
        config.write_text(json.dumps(data, indent=2, sort_keys=True))


# -- the run ------------------------------------------------------------------------------


def run_training(ctx: JobContext, trainer: Any, callback: JobCallback, *, full_valid: Any = None) -> TrainResult:
    """Train (resuming from ``spec.resume_from``), then: a final ``full_valid_loss`` over the whole
    validation set (``full_valid``, when given) and the final model in ``output_dir/final``.

    A paused run returns its pause checkpoint as ``model_dir``; a cancelled one its last
    checkpoint (or ``output_dir``), with ``stopped`` set.
    """
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # disable_tqdm swaps the progress bar for print(logs)
    spec = ctx.spec
    resume = str(spec.resume_from) if spec.resume_from else None
    if resume:
        ctx.log(f"Resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    state = trainer.state
    metrics = {"step": state.global_step, **callback.latest}
    if callback.stopped:
        last = callback.saved[max(callback.saved)] if callback.saved else Path(spec.output_dir)
        return TrainResult(model_dir=last, trained_tokens=callback.num_tokens, metrics=metrics, stopped=callback.stopped)
    if full_valid is not None:
        trainer.remove_callback(callback)  # the closing evaluation is not a step's metrics event
        full = {k.replace("valid_", "full_valid_", 1): v
                for k, v in openai_metrics(trainer.evaluate(eval_dataset=full_valid)).items() if k.startswith("valid_")}
        metrics.update(full)
        ctx.metrics(state.global_step, state.max_steps, full, _message(state.global_step, state.max_steps, full))
    final = Path(spec.output_dir) / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(str(final))
    point_adapter_at_base(final, spec.base_model_dir)
    ctx.log(f"Saved the final model to {final}", data={"model_dir": str(final)})
    return TrainResult(model_dir=final, trained_tokens=callback.num_tokens, metrics=metrics)
