"""``gradeloop tune …``: fine-tuning jobs (create, list, show, events, checkpoints, cancel, pause,
resume) and the data builders that turn eval runs into training files."""

from __future__ import annotations

import datetime as dt
import json
import time
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import InputError
from ..spec import read_document
from ..store import Store
from ..report import list_object
from .._checks import at_least
from ._common import allow_outside_option, err, flag_errors, out, output_errors, print_json

app = typer.Typer(help="Fine-tune open models (SFT, DPO, RFT) with OpenAI's files and job semantics.",
                  no_args_is_help=True)
data_app = typer.Typer(help="Build training files from eval runs.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class Method(str, Enum):
    supervised = "supervised"
    dpo = "dpo"
    reinforcement = "reinforcement"


def _pairs(values: list[str], what: str) -> dict[str, Any]:
    """``["n_epochs=1", "lora=false"]`` → ``{"n_epochs": 1, "lora": False}`` (JSON values, else strings)."""
    out_: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise InputError(f"'{value}' is not key=value", field=what)
        try:
            out_[key] = json.loads(raw)
        except ValueError:
            out_[key] = raw
    return out_


def _grader(path: Optional[Path]) -> tuple[dict | None, dict]:
    """The grader in ``path`` and, when the file is OpenAI's ``method.reinforcement`` object,
    the rest of it (``response_format``, ``hyperparameters``)."""
    if path is None:
        return None, {}
    data = read_document(path).data
    method: dict = {}
    if isinstance(data, dict) and "grader" in data and "type" not in data:
        method = {k: v for k, v in data.items() if k in ("response_format", "hyperparameters") and v is not None}
        data = data["grader"]
    from ..rewards import load_grader_file

    load_grader_file(path)  # validates, naming file/line/field
    return data, method


@app.command("create")
def create(
    model: str = typer.Option(..., help="Base model: local/smollm2, hf/<dir> or ft:<job> (full fine-tunes)."),
    training_file: Path = typer.Option(..., help="OpenAI-format JSONL for the method."),
    method: Method = typer.Option(Method.supervised, help="supervised, dpo or reinforcement."),
    validation_file: Optional[Path] = typer.Option(None, help="Held-out JSONL (required for reinforcement)."),
    grader: Optional[Path] = typer.Option(None, help="Grader YAML/JSON: the reward for reinforcement (or OpenAI's "
                                          "method.reinforcement object: grader, response_format, hyperparameters)."),
    hyperparameters: list[str] = typer.Option([], "--hyperparameters", help="OpenAI hyperparameters as key=value (n_epochs=1 eval_interval=10); 'auto' allowed."),
    option: list[str] = typer.Option([], "--option", help="gradeloop options as key=value: lora=false, max_steps=20, num_generations=4, max_completion_tokens=64, use_vllm=true."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    suffix: Optional[str] = typer.Option(None, help="A name for the model, kept with the job."),
    dry_run: bool = typer.Option(False, "--dry-run", help="RFT: sample and grade a few completions, print the reward distribution, train nothing."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job's events until it ends."),
    as_json: bool = typer.Option(False, "--json", help="Print the new job (OpenAI's fine_tuning.job)."),
) -> None:
    """Validate the files and start a fine-tuning job in the background."""
    from ..tune._jobs import check_job_values, create_job, job_object

    grader_data, method_file = _grader(grader)
    hyper = {**method_file.get("hyperparameters", {}), **_pairs(_split(hyperparameters), "--hyperparameters")}
    options = _pairs(_split(option), "--option")
    if "response_format" in method_file:
        options["response_format"] = method_file["response_format"]
    with flag_errors("hyperparameters", "option"):
        check_job_values(method.value, hyper, options)
    if dry_run:
        _dry_run(model, method.value, training_file, validation_file, grader_data, hyper, options, seed, as_json)
        return
    store = Store()
    with flag_errors("model", "grader", "validation_file"):
        job = create_job(store, model=model, method=method.value, training_file=training_file,
                         validation_file=validation_file, grader=grader_data, hyperparameters=hyper,
                         options=options, seed=seed, suffix=suffix)
    if as_json:
        print_json(job_object(store, job))
    else:
        out.print(f"created {job['id']} ({job['method']}, {job['model']}): {job['status']}")
        out.print(f"follow it: gradeloop tune events {job['id']} --follow")
    if wait:
        _follow(store, job["id"], quiet=as_json)


def _split(values: list[str]) -> list[str]:
    """``--hyperparameters n_epochs=1 eval_interval=10`` may arrive as one space-separated value."""
    return [part for value in values for part in value.split()]


def _dry_run(model: str, method: str, training_file: Path, validation_file: Path | None, grader: dict | None,
             hyper: dict, options: dict, seed: int | None, as_json: bool) -> None:
    from ..spec import load_training_file
    from ..tune._context import TrainingSpec
    from ..tune._jobs import resolve_base_model

    rows = load_training_file(training_file, method, grader=grader)
    if method != "reinforcement":
        report = {"rows": len(rows), "method": method, "note": "files are valid; a dry run samples only for RFT"}
    else:
        from ..tune import rft

        spec = TrainingSpec(job_id="dry-run", method="reinforcement", model=model,
                            base_model_dir=resolve_base_model(model), training_file=training_file,
                            validation_file=validation_file, output_dir=Path("."), hyperparameters=hyper,
                            grader=grader, seed=seed or 0, options=options)
        report = rft.dry_run(spec, n=int(options.get("dry_run_prompts", 8)))
    if as_json:
        print_json(report)
    else:
        for key, value in report.items():
            out.print(f"{key}: {value}")


def _follow(store: Store, job_id: str, quiet: bool = False) -> None:
    from ..tune._jobs import refresh_job

    seq = 0
    while True:
        for event in store.job_events(job_id, after_seq=seq):
            seq = event["seq"]
            if not quiet:
                _print_event(event)
        job = refresh_job(store, job_id)
        if job["status"] in ("succeeded", "failed", "cancelled", "paused"):
            if not quiet:
                out.print(f"{job['id']}: {job['status']}" + (f" → {job['fine_tuned_model']}" if job["fine_tuned_model"] else ""))
            if job["status"] == "failed":
                raise typer.Exit(1)
            return
        time.sleep(1.0)


def _print_event(event: dict) -> None:
    when = dt.datetime.fromtimestamp(event["created_at"]).strftime("%H:%M:%S")
    level = {"warn": "[yellow]warn[/yellow] ", "error": "[red]error[/red] "}.get(event["level"], "")
    out.print(f"{when} {level}{event['message']}", markup=True, highlight=False)


@app.command("list")
def list_jobs(limit: int = typer.Option(20, help="How many jobs (1 or more)."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Fine-tuning jobs, newest first."""
    at_least(limit, 1, "--limit")
    from ..tune._jobs import job_list

    listing = job_list(Store(), limit)
    if as_json:
        print_json(listing)
        return
    if not listing["data"]:
        out.print("no fine-tuning jobs yet: gradeloop tune create --help")
        return
    table = Table()
    for col in ("job", "method", "model", "status", "fine_tuned_model", "created"):
        table.add_column(col)
    for job in listing["data"]:
        table.add_row(job["id"], job["method"]["type"], job["gradeloop"]["model"], job["status"], job["fine_tuned_model"] or "",
                      dt.datetime.fromtimestamp(job["created_at"]).strftime("%m-%d %H:%M"))
    out.print(table)


@app.command("show")
def show(job_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """One job: status, progress, latest metrics (rewards for RFT), model."""
    from ..tune._jobs import job_object, refresh_job

    store = Store()
    obj = job_object(store, refresh_job(store, job_id))
    if as_json:
        print_json(obj)
        return
    out.print(f"[bold]{obj['id']}[/bold]  {obj['method']['type']}  {obj['gradeloop']['model']}  status: {obj['status']}")
    if obj["fine_tuned_model"]:
        out.print(f"model: {obj['fine_tuned_model']}")
    if obj["error"]:
        out.print(f"error: {obj['error']['message']}")
    metrics = obj["gradeloop"]["latest_metrics"]
    if metrics:
        out.print(f"step {metrics.get('step')}/{metrics.get('total_steps')}")
        scores = metrics.get("scores") or {}
        for key in ("train_loss", "valid_loss", "train_mean_token_accuracy"):
            if metrics.get(key) is not None:
                out.print(f"{key}: {metrics[key]:.4f}")
        for key in ("train_reward_mean", "valid_reward_mean"):
            if scores.get(key) is not None:
                out.print(f"{key}: {scores[key]:.4f}")
    out.print(f"last event: {obj['gradeloop']['last_event']}")


@app.command("events")
def events(
    job_id: str = typer.Argument(...),
    limit: int = typer.Option(100, help="How many events (1 or more)."),
    follow: bool = typer.Option(False, "--follow", help="Keep printing new events until the job ends."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list of fine_tuning.job.event, newest first."),
) -> None:
    """A job's events (messages and metrics)."""
    at_least(limit, 1, "--limit")
    from ..tune._jobs import event_object

    store = Store()
    job = store.get_job(job_id)
    if follow:
        _follow(store, job["id"])
        return
    newest = store.job_events(job["id"], limit=limit + 1, newest_first=True)
    if as_json:
        print_json(list_object([event_object(e) for e in newest[:limit]], has_more=len(newest) > limit))
        return
    for event in reversed(newest[:limit]):
        _print_event(event)


@app.command("checkpoints")
def checkpoints(job_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """A job's kept checkpoints, each usable as a model (``ft:<job>:ckpt-step-<n>``)."""
    from ..tune._jobs import checkpoint_object

    store = Store()
    job = store.get_job(job_id)
    ckpts = [checkpoint_object(c) for c in store.job_checkpoints(job["id"])]
    if as_json:
        print_json(list_object(ckpts))
        return
    if not ckpts:
        out.print("no checkpoints yet")
        return
    table = Table()
    for col in ("step", "model", "metrics"):
        table.add_column(col)
    for c in ckpts:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in c["metrics"].items() if isinstance(v, (int, float)) and k != "step")
        table.add_row(str(c["step_number"]), c["fine_tuned_model_checkpoint"], metrics)
    out.print(table)


def _control(action: str, job_id: str, as_json: bool) -> None:
    from ..tune import _jobs

    store = Store()
    job = getattr(_jobs, f"{action}_job")(store, job_id)
    if as_json:
        print_json(_jobs.job_object(store, job))
    else:
        out.print(f"{job['id']}: {job['status']}" + (f" ({job['requested']} requested)" if job["requested"] else ""))


@app.command("cancel")
def cancel(job_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Cancel a job (a running one stops at its next step)."""
    _control("cancel", job_id, as_json)


@app.command("pause")
def pause(job_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Pause a running job: it saves a checkpoint and stops."""
    _control("pause", job_id, as_json)


@app.command("resume")
def resume(job_id: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """Resume a paused or crashed job from its last checkpoint."""
    _control("resume", job_id, as_json)


@data_app.command("sft")
def data_sft(
    from_run: list[str] = typer.Option(..., "--from-run", help="Eval run id (repeatable)."),
    out_file: Path = typer.Option(..., "--out", help="Where to write the SFT JSONL."),
    passing_only: bool = typer.Option(False, "--passing-only", help="Only samples that passed every criterion."),
) -> None:
    """SFT rows from graded samples: distill a model's passing outputs."""
    from ..tune import data

    rows = data.sft_rows(Store(), from_run, passing_only=passing_only)
    with output_errors("--out"):
        count = data.write_jsonl(out_file, rows)
    _wrote(count, out_file)


@data_app.command("dpo")
def data_dpo(
    from_run: list[str] = typer.Option(..., "--from-run", help="Eval run id (repeatable: several epochs or models)."),
    out_file: Path = typer.Option(..., "--out", help="Where to write the DPO JSONL."),
) -> None:
    """DPO rows: a passing and a failing sample of the same item (better score preferred)."""
    from ..tune import data

    rows = data.dpo_rows(Store(), from_run)
    with output_errors("--out"):
        count = data.write_jsonl(out_file, rows)
    _wrote(count, out_file)


@data_app.command("rft")
def data_rft(
    eval_file: Path = typer.Option(..., "--from-eval", help="An eval file with a completions data source."),
    out_file: Path = typer.Option(..., "--out", help="Where to write the RFT JSONL."),
    grader_out: Optional[Path] = typer.Option(None, "--grader-out", help="Where to write the grader (default: next to --out)."),
    allow_outside_paths: bool = allow_outside_option(),
) -> None:
    """RFT rows (messages + item fields) and the grader, from an eval's items and criteria."""
    from ..tune import data

    rows, grader = data.rft_from_eval(eval_file, allow_outside_paths=allow_outside_paths)
    with output_errors("--out"):
        count = data.write_jsonl(out_file, rows)
    grader_path = grader_out or out_file.with_name(out_file.stem + ".grader.json")
    with output_errors("--grader-out" if grader_out else "--out"):
        grader_path.write_text(json.dumps(grader, indent=2) + "\n")
    _wrote(count, out_file)
    out.print(f"grader: {grader_path}")


def _wrote(count: int, path: Path) -> None:
    if count == 0:
        err.print(f"no rows matched; {path} is empty")
    out.print(f"wrote {count} rows to {path}")
