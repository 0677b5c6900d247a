"""Fine-tuning jobs with OpenAI's semantics: validate files, queue, train in a background
process that outlives the CLI, report events and checkpoints, cancel / pause / resume.

Statuses: ``validating_files → queued → running → succeeded | failed | cancelled``, and
``paused``. One job trains at a time per ``GRADELOOP_HOME`` (others wait in ``queued``). A
worker that dies leaves the job ``running`` with a dead pid; the next look at the job marks it
``failed`` and ``resume`` continues from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._checks import at_least, in_range, positive
from ..errors import InputError
from ..models import split_model_name
from ..report import list_object, openai_model_name
from ..spec import Document, TRAINING_METHODS, load_grader, load_training_file
from ..store import Store
from ._context import JobContext, TrainingSpec

__all__ = ["launch_command", "check_accelerate_config", "create_job", "cancel_job", "pause_job", "resume_job",
           "refresh_job", "job_object", "event_object", "checkpoint_object", "job_list", "resolve_base_model", "job_dir", "StoreContext", "model_dir_for",
           "check_job_values"]

ACTIVE = ("validating_files", "queued", "running")
HYPERPARAMETERS = {
    "supervised": ("n_epochs", "batch_size", "learning_rate_multiplier"),
    "dpo": ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
    "reinforcement": ("n_epochs", "batch_size", "learning_rate_multiplier", "compute_multiplier", "eval_interval",
                      "eval_samples", "reasoning_effort"),
}


def job_dir(job_id: str, store: Store) -> Path:
    """Where a job keeps its copied files, checkpoints, final model and worker log."""
    return store.path.parent / "jobs" / job_id


def resolve_base_model(model: str) -> Path:
    """The local checkpoint directory a job trains from: ``local/smollm2``, ``hf/<dir>``, or a
    succeeded full fine-tuning job ``ft:<job>``."""
    if model.startswith("ft:"):
        path = model_dir_for(model)
        if (path / "adapter_config.json").exists() and not (path / "config.json").exists():
            raise InputError(f"{model} is a LoRA adapter; fine-tune its base model, or train it with lora=false "
                             "to continue from it", field="model")
        return path
    provider, name = split_model_name(model)
    if provider == "local":
        from ..models._local import LocalProvider

        return LocalProvider(name).model_dir()
    if provider == "hf":
        path = Path(name).expanduser().resolve()
        if not (path / "config.json").exists():
            raise InputError(f"'{name}' is not a transformers checkpoint directory (no config.json)", field="model")
        return path
    raise InputError(f"cannot fine-tune '{model}': use local/smollm2, hf/<directory> or ft:<job>", field="model")


def model_dir_for(name: str, store: Store | None = None) -> Path:
    """The directory of ``ft:<job>`` (its final model) or ``ft:<job>:ckpt-step-<n>``."""
    store = store or Store()
    parts = name.split(":")
    job = store.get_job(parts[1] if len(parts) > 1 else "")
    wanted = next((p for p in parts[2:] if p.startswith("ckpt-step-")), None)
    if wanted:
        step = int(wanted.removeprefix("ckpt-step-"))
        for ckpt in store.job_checkpoints(job["id"], include_removed=True):
            if ckpt["step"] == step:
                if ckpt["removed"] or not Path(ckpt["path"]).exists():
                    raise InputError(f"checkpoint {name} was removed (only the best three are kept)", field="model")
                return Path(ckpt["path"])
        raise InputError(f"{job['id']} has no checkpoint at step {step} (see: gradeloop tune checkpoints)",
                         field="model")
    if job["status"] != "succeeded" or not job["fine_tuned_model"]:
        raise InputError(f"{job['id']} is {job['status']}: its model exists once it has succeeded "
                         "(a checkpoint works: ft:<job>:ckpt-step-<n>)", field="model")
    return Path(job["output_dir"]) / "final"


def _parse_hyperparameters(method: str, given: dict[str, Any]) -> dict[str, Any]:
    allowed = HYPERPARAMETERS[method]
    out = {}
    for key, value in given.items():
        if key not in allowed:
            raise InputError(f"'{key}' is not a {method} hyperparameter (allowed: {', '.join(allowed)})",
                             field="hyperparameters")
        if value != "auto":
            _check_value(key, value, "hyperparameters")
        out[key] = value
    return out


_COUNTS = ("n_epochs", "batch_size", "eval_interval", "eval_samples", "lora_r", "lora_alpha", "max_seq_length",
           "max_completion_tokens", "num_generations", "max_steps", "per_device_batch_size", "eval_steps",
           "dry_run_prompts")
_POSITIVE = ("learning_rate_multiplier", "beta", "compute_multiplier")


def _check_value(key: str, value: Any, field: str) -> None:
    """Refuse an out-of-range hyperparameter or option now, not in the worker minutes later."""
    try:
        if key in _COUNTS:
            at_least(value, 1, key)
        elif key in _POSITIVE and field == "hyperparameters":  # an RFT option beta=0 turns the KL term off
            positive(value, key)
        elif key == "lora_dropout":
            in_range(value, 0, 0.99, key)
    except InputError as exc:
        raise InputError(f"{key}: {exc.message}", field=field) from None


def check_job_values(method: str, hyperparameters: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Check a job's hyperparameters (OpenAI's names for ``method``, each a value in range or
    ``"auto"``) and gradeloop's numeric options; returns the hyperparameters. Raises InputError
    with field ``hyperparameters`` or ``option``."""
    hyper = _parse_hyperparameters(method, hyperparameters)
    for key, value in options.items():
        _check_value(key, value, "option")
    return hyper


def _leakage(training: list[dict], validation: list[dict], method: str, path: str) -> None:
    """Refuse training rows whose prompt is also in the validation file."""
    def prompt(row: dict) -> str:
        messages = row["input"]["messages"] if method == "dpo" else row["messages"]
        if method == "supervised":  # the prompt is everything before the last assistant turn
            last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant")
            messages = messages[:last]
        return json.dumps(messages, sort_keys=True)

    held_out = {prompt(r) for r in validation}
    for line, row in enumerate(training, start=1):
        if prompt(row) in held_out:
            raise InputError("this row's prompt is also in the validation file: training on it would leak the "
                             "evaluation split", file=path, line=line, field="messages")


def create_job(store: Store, *, model: str, method: str, training_file: str | Path,
               validation_file: str | Path | None = None, grader: dict | None = None,
               hyperparameters: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
               seed: int | None = None, suffix: str | None = None, metadata: dict | None = None,
               start: bool = True) -> dict[str, Any]:
    """Create a job: check the model and hyperparameters, copy and validate the files
    (``validating_files``), then queue it and start its worker. A bad file fails the job and
    raises InputError naming file, line and field; nothing trains."""
    if method not in TRAINING_METHODS:
        raise InputError(f"unknown method '{method}' (use {', '.join(TRAINING_METHODS)})", field="method")
    base_dir = resolve_base_model(model)
    hyper = check_job_values(method, hyperparameters or {}, options or {})
    options = dict(options or {})
    if options.get("accelerate_config"):
        options["accelerate_config"] = check_accelerate_config(options["accelerate_config"])
    if method == "reinforcement":
        if grader is None:
            raise InputError("reinforcement fine-tuning needs a grader (--grader grader.yaml)", field="grader")
        if validation_file is None:
            raise InputError("reinforcement fine-tuning needs a validation file (--validation-file)",
                             field="validation_file")
        load_grader(grader, Document(data=grader, file="<grader>"))
    _check_response_format(method, options.get("response_format"))
    job = store.create_job(model=model, method=method, training_file=str(training_file),
                           validation_file=str(validation_file) if validation_file else None, hyperparameters=hyper,
                           grader=grader, options={**options, "base_model_dir": str(base_dir)},
                           seed=seed if seed is not None else int.from_bytes(os.urandom(3), "little"), suffix=suffix,
                           metadata=metadata, output_dir_for=lambda job_id: job_dir(job_id, store))
    folder = Path(job["output_dir"])
    (folder / "files").mkdir(parents=True, exist_ok=True)
    try:
        copies = {}
        for key, source in (("training_file", training_file), ("validation_file", validation_file)):
            if source is None:
                continue
            if not Path(source).is_file():
                raise InputError("file not found", file=str(source), field=key)
            copies[key] = folder / "files" / Path(source).name
            shutil.copyfile(source, copies[key])
        training = load_training_file(training_file, method, grader=grader)
        validation = load_training_file(validation_file, method, grader=grader) if validation_file else []
        _leakage(training, validation, method, str(training_file))
    except InputError as exc:
        store.update_job(job["id"], status="failed", finished_at=int(time.time()),
                         error={"code": "invalid_file", "message": str(exc), "param": exc.field})
        store.add_job_event(job["id"], f"File validation failed: {exc}", level="error")
        raise
    store.add_job_event(job["id"], f"Validated {len(training)} training and {len(validation)} validation rows")
    store.update_job(job["id"], status="queued", training_file=str(copies["training_file"]),
                     validation_file=str(copies["validation_file"]) if "validation_file" in copies else None)
    store.add_job_event(job["id"], "Job queued")
    if start:
        _spawn(store, job["id"])
    return store.get_job(job["id"])


def launch_command(job_id: str, options: dict[str, Any]) -> list[str]:
    """The worker's command line: ``python -m gradeloop.tune.worker JOB``, or the same under
    ``accelerate launch --config_file <accelerate_config>`` (DeepSpeed ZeRO, FSDP, several
    processes) when the job has one. A multi-CPU config for one machine without an mpirun
    hostfile runs under torchrun with its ``num_processes`` instead: accelerate leaves such
    launches to mpirun and would start a single process."""
    worker = ["-m", "gradeloop.tune.worker", job_id]
    config = options.get("accelerate_config")
    if not config:
        return [sys.executable, *worker]
    processes = _local_cpu_processes(config)
    if processes > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                *worker]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), *worker]


def _local_cpu_processes(config: Any) -> int:
    """``num_processes`` of a MULTI_CPU accelerate config on one machine with no mpirun hostfile; else 0."""
    import yaml

    data = yaml.safe_load(Path(str(config)).read_text()) or {}
    if (data.get("distributed_type") != "MULTI_CPU" or int(data.get("num_machines") or 1) > 1
            or (data.get("mpirun_config") or {}).get("mpirun_hostfile")):
        return 0
    return int(data.get("num_processes") or 1)


def check_accelerate_config(path: Any) -> str:
    """An accelerate config file that exists and parses; returns its absolute path."""
    import yaml

    config = Path(str(path)).expanduser().resolve()
    if not config.is_file():
        raise InputError("accelerate config not found", file=str(path), field="accelerate_config")
    try:
        data = yaml.safe_load(config.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", file=str(path), field="accelerate_config") from None
    if not isinstance(data, dict) or "distributed_type" not in data:
        raise InputError("not an accelerate config (no distributed_type); write one with `accelerate config`",
                         file=str(path), field="accelerate_config")
    return str(config)


def _spawn(store: Store, job_id: str) -> None:
    """Start the job's worker: a detached process (group) that outlives this one."""
    folder = job_dir(job_id, store)
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "worker.log", "ab", opener=lambda path, flags: os.open(path, flags, 0o600))
    env = {**os.environ, "GRADELOOP_HOME": str(store.path.parent)}
    command = launch_command(job_id, store.get_job(job_id)["options"] or {})
    proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    store.update_job(job_id, pid=proc.pid)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by us) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return True


def refresh_job(store: Store, job_id: str) -> dict[str, Any]:
    """The job, after noticing a worker that died without saying so (marked ``failed``)."""
    job = store.get_job(job_id)
    if job["status"] in ("queued", "running") and job["pid"] and not _alive(job["pid"]):
        store.update_job(job["id"], status="failed", finished_at=int(time.time()), pid=None,
                         error={"code": "worker_died", "message": "the training process exited unexpectedly; "
                                f"see {job['output_dir']}/worker.log, and resume with gradeloop tune resume "
                                f"{job['id']}", "param": None})
        store.add_job_event(job["id"], "The training process died; resume continues from the last checkpoint",
                            level="error")
        job = store.get_job(job["id"])
    return job


def cancel_job(store: Store, job_id: str) -> dict[str, Any]:
    """Cancel a job; a running worker stops at its next step."""
    job = refresh_job(store, job_id)
    if job["status"] in ("succeeded", "failed", "cancelled"):
        raise InputError(f"{job['id']} is already {job['status']}", field="job")
    if job["status"] == "running" and _alive(job["pid"]):
        store.update_job(job["id"], requested="cancel")
        store.add_job_event(job["id"], "Cancellation requested")
    else:
        if job["pid"] and _alive(job["pid"]):
            os.killpg(job["pid"], signal.SIGTERM)  # a queued worker waiting for its turn
        store.update_job(job["id"], status="cancelled", finished_at=int(time.time()), pid=None)
        store.add_job_event(job["id"], "Job cancelled")
    return store.get_job(job["id"])


def pause_job(store: Store, job_id: str) -> dict[str, Any]:
    """Pause a running job: it saves a checkpoint and stops; ``resume`` continues from it."""
    job = refresh_job(store, job_id)
    if job["status"] != "running":
        raise InputError(f"{job['id']} is {job['status']}; only a running job can be paused", field="job")
    store.update_job(job["id"], requested="pause")
    store.add_job_event(job["id"], "Pause requested")
    return store.get_job(job["id"])


def resume_job(store: Store, job_id: str, *, start: bool = True) -> dict[str, Any]:
    """Resume a paused job, or one that failed (a crash): from its last checkpoint if it has one."""
    job = refresh_job(store, job_id)
    if job["status"] not in ("paused", "failed"):
        raise InputError(f"{job['id']} is {job['status']}; only a paused or failed job can be resumed", field="job")
    if job["error"] and job["error"].get("code") == "invalid_file":
        raise InputError(f"{job['id']} failed file validation; fix the file and create a new job", field="job")
    store.update_job(job["id"], status="queued", requested=None, error=None, finished_at=None)
    last = _resume_point(store, job["id"])
    store.add_job_event(job["id"], f"Job resumed from {last}" if last else "Job restarted (no checkpoint yet)")
    if start:
        _spawn(store, job["id"])
    return store.get_job(job["id"])


def _resume_point(store: Store, job_id: str) -> str | None:
    for ckpt in store.job_checkpoints(job_id):
        if Path(ckpt["path"]).exists() and (Path(ckpt["path"]) / "trainer_state.json").exists():
            return ckpt["path"]
    return None


def training_spec(store: Store, job: dict[str, Any]) -> TrainingSpec:
    """The TrainingSpec a worker hands its trainer."""
    options = dict(job["options"] or {})
    base = Path(options.pop("base_model_dir"))
    resume = _resume_point(store, job["id"])
    return TrainingSpec(job_id=job["id"], method=job["method"], model=job["model"], base_model_dir=base,
                        training_file=Path(job["training_file"]),
                        validation_file=Path(job["validation_file"]) if job["validation_file"] else None,
                        output_dir=Path(job["output_dir"]), hyperparameters=job["hyperparameters"] or {},
                        grader=job["grader"], seed=job["seed"], options=options,
                        resume_from=Path(resume) if resume else None)


class StoreContext(JobContext):
    """The job context of a worker: events, checkpoints and validation runs go to the store."""

    def __init__(self, store: Store, spec: TrainingSpec) -> None:
        self.store, self.spec = store, spec

    def log(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        self.store.add_job_event(self.spec.job_id, message, level=level, data=data)
        if "removed (not in the top 3)" in message and data and data.get("path"):
            self.store.mark_checkpoint_removed(self.spec.job_id, data["path"])

    def metrics(self, step: int, total_steps: int, data: dict[str, Any], message: str) -> None:
        self.store.add_job_event(self.spec.job_id, message, type="metrics",
                                 data={"step": step, "total_steps": total_steps, **data})

    def checkpoint(self, step: int, path: Path, metrics: dict[str, Any]) -> str:
        name = f"ft:{self.spec.job_id}:ckpt-step-{step}"
        self.store.add_checkpoint(self.spec.job_id, step, name, str(path), metrics)
        return name

    def stop_requested(self) -> str | None:
        return self.store.get_job(self.spec.job_id)["requested"]

    def record_validation_run(self, step: int, samples: list[dict[str, Any]]) -> str | None:
        import asyncio

        from ..runner import RunOptions, run_eval_async
        from ..spec import eval_from_dict

        spec = eval_from_dict({
            "name": f"{self.spec.job_id} validation",
            "metadata": {"fine_tuning_job": self.spec.job_id},
            "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
            "testing_criteria": [self.spec.grader],
            "data_source": {"type": "jsonl", "source": {"type": "file_content", "content": [
                {"item": s["item"], "sample": {"output_text": s["output_text"]}} for s in samples]}},
        })
        name = f"ft:{self.spec.job_id}:ckpt-step-{step} validation"
        [run_id] = asyncio.run(run_eval_async(spec, store=self.store, options=RunOptions(name=name)))
        self.store.add_job_event(self.spec.job_id, f"Validation at step {step} recorded as eval run {run_id}",
                                 data={"eval_run_id": run_id, "step": step})
        return run_id


# -- OpenAI shapes ----------------------------------------------------------------------


def _check_response_format(method: str, response_format: Any) -> None:
    """An RFT job's ``response_format`` must be OpenAI's ``json_schema`` (or ``json_object``)
    form whose schema compiles to a grammar; other methods take none."""
    if response_format is None:
        return
    if method != "reinforcement":
        raise InputError("response_format applies to reinforcement fine-tuning only", field="response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in ("json_schema", "json_object"):
        raise InputError("response_format must be {type: json_schema, json_schema: {name, schema, strict}} "
                         f"or {{type: json_object}}, got type {kind!r}", field="response_format")
    from ..models._structured import check_response_format

    check_response_format({"response_format": response_format})


def job_object(store: Store, job: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``fine_tuning.job`` (plus a ``gradeloop`` block: progress and latest metrics)."""
    hyper = job["hyperparameters"] or {}
    method: dict[str, Any] = {"type": job["method"], job["method"]: {"hyperparameters": hyper}}
    if job["method"] == "reinforcement":
        method["reinforcement"]["grader"] = job["grader"]
        if (job["options"] or {}).get("response_format"):
            method["reinforcement"]["response_format"] = job["options"]["response_format"]
    latest = store.job_events(job["id"], limit=1, newest_first=True)
    metrics = next((e["data"] for e in store.job_events(job["id"], newest_first=True, limit=200)
                    if e["type"] == "metrics"), None)
    options = {k: v for k, v in (job["options"] or {}).items() if k != "base_model_dir"}
    return {
        "object": "fine_tuning.job", "id": job["id"], "created_at": job["created_at"], "error": job["error"],
        "fine_tuned_model": job["fine_tuned_model"], "finished_at": job["finished_at"],
        "hyperparameters": hyper if job["method"] == "supervised" else None,
        "model": openai_model_name(job["model"])[0],
        "organization_id": "local", "result_files": [], "seed": job["seed"], "status": job["status"],
        "trained_tokens": job["trained_tokens"], "training_file": job["training_file"],
        "validation_file": job["validation_file"], "estimated_finish": None, "integrations": [],
        "metadata": job["metadata"] or {}, "method": method, "suffix": job["suffix"],
        "gradeloop": {"model": job["model"], "provider": openai_model_name(job["model"])[1], "options": options, "output_dir": job["output_dir"], "requested": job["requested"],
                      "latest_metrics": metrics, "last_event": latest[0]["message"] if latest else None},
    }


def event_object(event: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``fine_tuning.job.event``."""
    return {"object": "fine_tuning.job.event", "id": event["id"], "created_at": event["created_at"],
            "level": event["level"], "message": event["message"], "data": event["data"], "type": event["type"]}


def checkpoint_object(ckpt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``fine_tuning.job.checkpoint``."""
    return {"object": "fine_tuning.job.checkpoint", "id": ckpt["id"], "created_at": ckpt["created_at"],
            "fine_tuned_model_checkpoint": ckpt["name"], "fine_tuning_job_id": ckpt["job_id"],
            "step_number": ckpt["step"], "metrics": {"step": ckpt["step"], **(ckpt["metrics"] or {})},
            "gradeloop": {"path": ckpt["path"]}}


def job_list(store: Store, limit: int = 20) -> dict[str, Any]:
    """OpenAI's list shape of jobs, newest first."""
    jobs = [refresh_job(store, j["id"]) for j in store.list_jobs(limit + 1)]
    return list_object([job_object(store, j) for j in jobs[:limit]], has_more=len(jobs) > limit)

