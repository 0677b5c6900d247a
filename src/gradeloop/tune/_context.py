"""What a trainer gets from the job system, and what it reports back.

A trainer (``sft.train``, ``dpo.train``, ``rft.train``) is a function ``train(ctx) -> TrainResult``.
It reads everything it needs from ``ctx.spec`` and reports through ``ctx``: messages and
metrics events (OpenAI's ``fine_tuning.job.event`` shapes), checkpoints, and — for RFT — the
validation eval runs. It polls ``ctx.stop_requested()`` between steps and stops cleanly
(after saving a checkpoint for ``"pause"``). The job system (``tune/_jobs.py``) provides the
real context, backed by the store; :class:`RecordingContext` keeps everything in memory for tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["TrainingSpec", "TrainResult", "JobContext", "RecordingContext", "StopTraining"]

Method = Literal["supervised", "dpo", "reinforcement"]


@dataclass
class TrainingSpec:
    """One fine-tuning job, resolved.

    ``hyperparameters`` use OpenAI's names and may still say ``"auto"`` (the trainer decides):
    ``n_epochs``, ``batch_size``, ``learning_rate_multiplier``; ``beta`` (DPO);
    ``compute_multiplier``, ``eval_interval``, ``eval_samples``, ``reasoning_effort`` (RFT).
    ``options`` holds gradeloop's additions: ``lora`` (default True; False = full fine-tuning),
    ``lora_r``, ``lora_alpha``, ``max_seq_length``, ``max_completion_tokens`` and
    ``num_generations`` (RFT sampling), ``max_steps`` (a cap, for tests and dry runs),
    ``accelerate_config``, ``use_vllm``.
    """

    job_id: str
    method: Method
    model: str
    base_model_dir: Path
    training_file: Path
    validation_file: Path | None
    output_dir: Path
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    grader: dict[str, Any] | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    resume_from: Path | None = None


@dataclass
class TrainResult:
    """What a finished trainer hands back: the final model directory (a full checkpoint or a
    PEFT adapter whose ``base_model_name_or_path`` is ``spec.base_model_dir``), trained tokens
    and the last metrics."""

    model_dir: Path
    trained_tokens: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # "cancel" or "pause" when the trainer stopped early


class StopTraining(Exception):
    """Raised inside a trainer's loop when the job was cancelled or paused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JobContext:
    """The trainer's view of its job (see the module docstring)."""

    spec: TrainingSpec

    def log(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        """A ``message`` event."""
        raise NotImplementedError

    def metrics(self, step: int, total_steps: int, data: dict[str, Any], message: str) -> None:
        """A ``metrics`` event. ``data`` follows OpenAI's shapes: SFT/DPO ``{step, train_loss,
        valid_loss, train_mean_token_accuracy, …}``; RFT ``{step, total_steps, scores:
        {train_reward_mean, valid_reward_mean, graders: [...]}, errors: {...}, usage: {...},
        timing: {step: {sampling, training, eval, full_iteration}}}``."""
        raise NotImplementedError

    def checkpoint(self, step: int, path: Path, metrics: dict[str, Any]) -> str:
        """Register a checkpoint directory (loadable as ``hf/<path>``); returns its model name
        (``ft:<job>:ckpt-step-<step>``)."""
        raise NotImplementedError

    def stop_requested(self) -> str | None:
        """``"cancel"``, ``"pause"`` or None; trainers poll it between steps."""
        raise NotImplementedError

    def record_validation_run(self, step: int, samples: list[dict[str, Any]]) -> str | None:
        """RFT: store one validation pass as an eval run of the validation file with the job's
        grader. ``samples`` are ``{"item": row fields, "messages": prompt, "output_text": …}``.
        Returns the run id (None where no store is attached)."""
        raise NotImplementedError

    def process_started(self, rank: int, world_size: int) -> None:
        """A ``message`` event from each training process as its trainer starts, with
        ``data`` ``{"rank", "world_size"}`` (so a multi-process launch shows which ranks ran)."""
        self.log(f"Training process {rank} of {world_size} started", data={"rank": rank, "world_size": world_size})


class RecordingContext(JobContext):
    """An in-memory context: events, metrics and checkpoints land in lists (tests, dry runs)."""

    def __init__(self, spec: TrainingSpec, *, stop_after_steps: int | None = None, stop_reason: str = "cancel") -> None:
        self.spec = spec
        self.events: list[dict[str, Any]] = []
        self.checkpoints: list[dict[str, Any]] = []
        self.validation_runs: list[dict[str, Any]] = []
        self._stop_after, self._stop_reason = stop_after_steps, stop_reason

    def log(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        self.events.append({"type": "message", "level": level, "message": message, "data": data,
                            "created_at": int(time.time())})

    def metrics(self, step: int, total_steps: int, data: dict[str, Any], message: str) -> None:
        self.events.append({"type": "metrics", "level": "info", "message": message,
                            "data": {"step": step, "total_steps": total_steps, **data}, "created_at": int(time.time())})

    def checkpoint(self, step: int, path: Path, metrics: dict[str, Any]) -> str:
        name = f"ft:{self.spec.job_id}:ckpt-step-{step}"
        self.checkpoints.append({"step": step, "path": Path(path), "metrics": metrics, "name": name})
        return name

    def stop_requested(self) -> str | None:
        steps = sum(1 for e in self.events if e["type"] == "metrics")
        if self._stop_after is not None and steps >= self._stop_after:
            return self._stop_reason
        return None

    def record_validation_run(self, step: int, samples: list[dict[str, Any]]) -> str | None:
        self.validation_runs.append({"step": step, "samples": samples})
        return None

    def metric_events(self) -> list[dict[str, Any]]:
        """The ``data`` of every metrics event, in order."""
        return [e["data"] for e in self.events if e["type"] == "metrics"]
