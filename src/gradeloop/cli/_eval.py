"""``gradeloop eval …``: run, resume, list, show, items, compare, export, validate."""

from __future__ import annotations

import asyncio
import signal
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from ..report import (agent_summary, breakdown, compare_runs, consistency_summary, criterion_rates,
                      effective_length_summary, eval_metric, export_run, list_object, output_item_list, run_list,
                      run_object, run_summary, trajectory_steps)
from ..runner import Reporter, RetryPolicy, RunOptions, progress_reporter, resume_run_async, run_eval_async
from ..spec import load_eval
from .._checks import at_least, check_base_url, fraction
from ._common import allow_outside_option, err, flag_errors, open_store, out, print_json
from ._decide_display import cost_table
from ._display import (agent_lines, agent_table, breakdown_table, comparison_line, comparison_notes,
                       comparison_table, consistency_table, criteria_table, effective_length_line, items_table,
                       pass_at_k_line, rates_lines, runs_table, short_id, status_label, summary_table,
                       trajectory_lines)

app = typer.Typer(help="Run evals and inspect their results.", no_args_is_help=True)


class ItemStatus(str, Enum):
    passed = "pass"
    failed = "fail"
    error = "error"


class RunStatus(str, Enum):
    queued = "queued"
    in_progress = "in_progress"
    completed = "completed"
    canceled = "canceled"
    failed = "failed"


class _Tracking(Reporter):
    """Passes events on and remembers which runs started, to name them after a Ctrl-C."""

    def __init__(self, inner: Reporter | None) -> None:
        self.inner = inner or Reporter()
        self.run_ids: list[str] = []

    def start(self, run_id: str, label: str, total: int, done: int) -> None:
        self.run_ids.append(run_id)
        self.inner.start(run_id, label, total, done)

    def advance(self, run_id: str, status: str) -> None:
        self.inner.advance(run_id, status)

    def finish(self, run_id: str) -> None:
        self.inner.finish(run_id)

    def close(self) -> None:
        self.inner.close()


def _execute(make_coro, progress: bool):
    """Run the runner coroutine; on Ctrl-C or SIGTERM mark the runs canceled, say how to resume
    and exit 130 (143 for SIGTERM)."""
    reporter = _Tracking(progress_reporter() if progress else None)
    terminated = []

    async def main():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: (terminated.append(True), task.cancel()))
        return await make_coro(reporter)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        reporter.close()
        err.print("interrupted; finished samples are stored. Resume with:")
        for run_id in reporter.run_ids:
            err.print(f"  gradeloop eval resume {run_id}")
        raise typer.Exit(143 if terminated else 130) from None


def _run_json(store, run_id: str, by: list[str], ratio: float = 0.85, ambiguous_field: str = "ambiguous") -> dict:
    obj = run_object(store, run_id)
    consistency = consistency_summary(store, run_id, by)
    if consistency:
        obj["gradeloop"]["consistency"] = consistency
    agent = agent_summary(store, run_id, by=by, ambiguous_field=ambiguous_field)
    if agent:
        obj["gradeloop"]["agent"] = agent
    if by:
        obj["gradeloop"]["breakdown"] = {field: breakdown(store, run_id, field) for field in by}
    effective = effective_length_summary(store, run_id, ratio=ratio)
    if effective:
        obj["gradeloop"]["effective_length"] = effective
    rates = criterion_rates(store, run_id)
    if rates:
        obj["gradeloop"]["criterion_rates"] = rates
    return obj


def _long_context_lines(obj: dict) -> None:
    """The effective length and the criteria's rates, when the run has them."""
    if "effective_length" in obj["gradeloop"]:
        out.print(effective_length_line(obj["gradeloop"]["effective_length"]))
    for line in rates_lines(obj["gradeloop"].get("criterion_rates", [])):
        out.print(line)


def _agent_lines(obj: dict, by: list[str]) -> None:
    """pass^k per group, and the episode metrics (overall and per group), when the run has them."""
    consistency = obj["gradeloop"].get("consistency")
    for field in by if consistency else []:
        out.print(consistency_table(field, consistency))
    agent = obj["gradeloop"].get("agent")
    if agent:
        for line in agent_lines(agent):
            out.print(line, markup=False)
        for field in by:
            out.print(agent_table(field, agent["by"].get(field, [])))


def _report(store, run_ids: list[str], as_json: bool, min_pass_rate: float | None, by: list[str] = ()) -> None:
    summaries = [run_summary(store, r) for r in run_ids]
    if as_json:
        print_json(list_object([_run_json(store, r, by) for r in run_ids]))
    else:
        out.print(summary_table(summaries))
        out.print(criteria_table(summaries))
        for s in summaries:
            if s["pass_at_k"]:
                out.print(pass_at_k_line(s))
            for field in by:
                table = breakdown_table(field, breakdown(store, s["run_id"], field),
                                        eval_metric(store, s["run_id"]) == "mean_score")
                table.title = f"{s['model']} by {field}"
                out.print(table)
            obj = _run_json(store, s["run_id"], by)
            _long_context_lines(obj)
            _agent_lines(obj, by)
        for other in run_ids[1:]:  # several models on the same items: each against the first, paired
            out.print(comparison_line(compare_runs(store, run_ids[0], other)))
        for s in summaries:
            out.print(f"failures of {s['model']}: gradeloop eval items {short_id(s['run_id'])} --status fail")
    if min_pass_rate is not None:
        low = [s for s in summaries if (s["pass_rate"] or 0.0) < min_pass_rate]
        if low:
            for s in low:
                err.print(f"gate failed: {s['model']} passed {100 * (s['pass_rate'] or 0):.1f}% "
                          f"< {100 * min_pass_rate:.1f}%")
            raise typer.Exit(1)


@app.command("run")
def run(
    eval_file: Path = typer.Argument(..., help="Eval definition (YAML or JSON): OpenAI's create-eval body plus data_source."),
    model: list[str] = typer.Option([], "--model", "-m", help="provider/model; repeat for one run per model."),
    epochs: Optional[int] = typer.Option(None, help="Samples (agent episodes) per item, 1 or more (default: the "
                                         "file's 'epochs' or 1); with 2 or more, pass^k beside pass@k."),
    concurrency: Optional[int] = typer.Option(None, help="Requests in flight per model (default: the provider's); "
                                              "halved on 429/503 answers and grown back, up to this."),
    fixed_concurrency: bool = typer.Option(False, "--fixed-concurrency",
                                           help="Keep --concurrency requests in flight even when the endpoint answers 429."),
    base_url: Optional[str] = typer.Option(None, envvar="OPENAI_BASE_URL", help="OpenAI-compatible server for openai/ models."),
    limit: Optional[int] = typer.Option(None, help="Only the first N items (N >= 1)."),
    name: Optional[str] = typer.Option(None, help="Run name (default: the eval's name)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the model even when the response cache has an answer."),
    timeout: float = typer.Option(120.0, help="Deadline in seconds for each attempt at a model call, "
                                  "from connecting to the last byte (more than 0)."),
    max_attempts: int = typer.Option(6, help="Attempts per model call, 1 or more (retries on 429, 5xx, timeouts)."),
    truncate: Optional[str] = typer.Option(None, "--truncate", help="local/ and hf/ models: cut items longer than "
                                           "the context window from the middle, left or right of their longest "
                                           "non-system message (default: refuse them before the run)."),
    tool_fault_rate: Optional[float] = typer.Option(None, "--tool-fault-rate",
                                                    help="Agent evals (an agent: block): share of tool calls "
                                                         "answered with an error instead (500, timeout, rate limit, "
                                                         "malformed), seeded by agent.tool_faults.seed; 0 to 1 "
                                                         "(default: the file's agent.tool_faults.rate, else 0)."),
    min_pass_rate: Optional[float] = typer.Option(None, help="Exit 1 when a model's pass rate is lower (0 to 1)."),
    by: list[str] = typer.Option([], "--by", help="Also break pass rates down by this item field (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape: {object: list, data: \\[run, …]}."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
    allow_outside_paths: bool = allow_outside_option(),
) -> None:
    """Run an eval on one or more models; prints a summary per model."""
    fraction(min_pass_rate, "--min-pass-rate")
    fraction(tool_fault_rate, "--tool-fault-rate")
    with flag_errors("epochs", "concurrency", "base_url", "timeout", "limit", "max_attempts", "truncate"):
        options = RunOptions(epochs=epochs, concurrency=concurrency, adaptive_concurrency=not fixed_concurrency,
                             base_url=base_url, use_cache=not no_cache, truncate=truncate,
                             tool_fault_rate=tool_fault_rate,
                             timeout=timeout, limit=limit, name=name, retry=RetryPolicy(max_attempts=max_attempts))
    spec = load_eval(eval_file, allow_outside_paths=allow_outside_paths)
    store = open_store()
    with flag_errors("model", "base_url", "tool_fault_rate"):
        run_ids = _execute(lambda reporter: run_eval_async(spec, model, store=store, options=options,
                                                           reporter=reporter), progress)
    _report(store, run_ids, as_json, min_pass_rate, by)


@app.command("resume")
def resume(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    base_url: Optional[str] = typer.Option(None, help="Override the stored server URL (credentials in URLs are never stored)."),
    retry_errors: bool = typer.Option(False, "--retry-errors",
                                      help="Run the errored items again (their output items and failed samples are "
                                           "dropped first; the rest is kept)."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape with the run: {object: list, data: \\[run]}."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Finish a run that was interrupted (Ctrl-C, crash, kill -9) without repeating finished work."""
    with flag_errors("base_url"):
        check_base_url(base_url)
    store = open_store()
    rid = _execute(lambda reporter: resume_run_async(run_id, store=store, base_url=base_url, reporter=reporter,
                                                     retry_errors=retry_errors), progress)
    _report(store, [rid], as_json, None)


@app.command("list")
def list_runs(
    limit: int = typer.Option(20, help="How many runs, newest first (1 or more)."),
    status: Optional[RunStatus] = typer.Option(None, help="Only runs with this status."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape: {object: list, data: \\[run, …]}."),
) -> None:
    """List runs, newest first."""
    at_least(limit, 1, "--limit")
    listing = run_list(open_store(), limit=limit, status=status.value if status else None)
    if as_json:
        print_json(listing)
    elif not listing["data"]:
        out.print("no runs yet: gradeloop eval run EVAL.yaml --model local/smollm2")
    else:
        out.print(runs_table(listing["data"]))
        for run in listing["data"]:
            if run["gradeloop"]["interrupted"]:
                short = short_id(run["id"])
                out.print(f"{short} was interrupted; resume with: gradeloop eval resume {short}")


PRICES_HELP = "Price table (YAML, USD per million tokens); overrides the built-in prices and GRADELOOP_PRICES."


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    by: list[str] = typer.Option([], "--by", help="Break pass rates down by this item field (repeatable)."),
    prices: Optional[Path] = typer.Option(None, "--prices", help=PRICES_HELP),
    effective_ratio: float = typer.Option(0.85, "--effective-ratio", help="Effective length: the longest length_bin "
                                          "whose pass rate (and every shorter one's) stays at or above this share "
                                          "of the pass rate at the shortest length (0 to 1)."),
    ambiguous_field: str = typer.Option("ambiguous", "--ambiguous-field",
                                        help="Agent runs: the item field (a.b for nested) that marks items on "
                                             "which the agent should ask first, for clarification precision/recall."),
    as_json: bool = typer.Option(False, "--json", help="The run object in OpenAI's shape."),
) -> None:
    """Show one run: status, counts, per-criterion results, usage, cost per 1,000 items; --by FIELD for breakdowns;
    pass^k beside pass@k with several epochs; the episode metrics of an agent run."""
    from ..decide import load_prices, run_cost

    fraction(effective_ratio, "--effective-ratio")
    store = open_store()
    obj = _run_json(store, store.resolve_run_id(run_id), by, effective_ratio, ambiguous_field)
    obj["gradeloop"]["cost"] = run_cost(store, obj["id"], load_prices(prices)).to_dict()
    if as_json:
        print_json(obj)
        return
    out.print(f"[bold]{obj['id']}[/bold]  {obj['name']}  status: {status_label(obj)}")
    summary = run_summary(store, obj["id"])
    out.print(summary_table([summary]))
    out.print(criteria_table([summary]))
    out.print(cost_table([obj["gradeloop"]["cost"]]))
    if summary["pass_at_k"]:
        out.print(pass_at_k_line(summary))
    for field in by:
        table = breakdown_table(field, breakdown(store, obj["id"], field), eval_metric(store, obj["id"]) == "mean_score")
        out.print(table)
    _long_context_lines(obj)
    _agent_lines(obj, by)
    if obj["error"]:
        out.print(f"error: {obj['error'].get('message')}")
    command = obj["gradeloop"]["resume_command"]
    if command and command not in (obj["error"] or {}).get("message", ""):
        out.print(f"resume with: {command}")


@app.command("items")
def items(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    status: Optional[ItemStatus] = typer.Option(None, help="Only output items with this status."),
    limit: Optional[int] = typer.Option(None, help="At most this many items (1 or more)."),
    trajectory: bool = typer.Option(False, "--trajectory",
                                    help="Agent runs: print every turn, tool call (name, arguments) and tool result "
                                         "or error of each episode (injected faults marked)."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list of output items: {object: list, data: \\[item, …]}; "
                                 "an agent episode's trajectory is under gradeloop.trajectory."),
) -> None:
    """List a run's output items: item, sample, and each criterion's score."""
    at_least(limit, 1, "--limit")
    listing = output_item_list(open_store(), run_id, status=status.value if status else None, limit=limit)
    objs = listing["data"]
    if as_json:
        print_json(listing)
    elif not objs:
        out.print("no output items match")
    elif trajectory:
        _print_trajectories(objs)
    else:
        out.print(items_table(objs))


def _print_trajectories(objs: list[dict]) -> None:
    for it in objs:
        scores = ", ".join(f"{r['criterion']}={r['score']:g}" for r in it["results"] if r["score"] is not None)
        name = (it.get("datasource_item") or {}).get("id")  # the item's own id, when it has one
        label = f"{it['datasource_item_id']} ({name})" if isinstance(name, (str, int)) else it["datasource_item_id"]
        out.print(f"item {label}  epoch {it['epoch']}  {it['status']}  {scores}", markup=False)
        error = (it["sample"] or {}).get("error")
        if error:
            out.print(f"  sample error: {error.get('message', error)}", markup=False)
        steps = trajectory_steps(it["gradeloop"].get("trajectory"))
        if not steps and not error:
            out.print("  (not an agent episode: no trajectory)")
        for line in trajectory_lines(steps):
            out.print(line, markup=False)


@app.command("compare")
def compare(
    runs: list[str] = typer.Argument(..., help="Two or more runs (ids or unique prefixes): each after the first is "
                                     "compared with the first, the baseline."),
    by: list[str] = typer.Option([], "--by", help="Also compare within each value of this item field (repeatable)."),
    confidence: float = typer.Option(0.95, help="Level of the intervals (0.5 to 0.999)."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression",
                                            help="Exit 1 when B is worse than A beyond chance (p below 1 - confidence)."),
    margin: Optional[float] = typer.Option(None, "--non-inferiority-margin", min=0, max=1,
                                           help="Exit 1 unless the lower bound of the interval of B − A is above "
                                                "−M (B is shown to be at most M worse; 0.02 = 2 points)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML for CI: a test case per "
                                         "comparison and criterion / group; regressions fail."),
    prices: Optional[Path] = typer.Option(None, "--prices", help=PRICES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON (a list of them for 3+ runs)."),
) -> None:
    """Compare runs of the same eval item by item: pass rates with intervals, the paired
    difference with its interval and p-value (Holm-corrected across criteria and groups), what
    this many items can detect, and cost and latency beside them."""
    from ..decide import compare_many, junit_xml, load_prices

    with flag_errors("confidence"):
        cmps = compare_many(open_store(), runs, by=by, confidence=confidence, margin=margin,
                            prices=load_prices(prices))
    if as_json:
        print_json(cmps[0] if len(cmps) == 1 else list_object(cmps))
    else:
        for cmp in cmps:
            out.print(comparison_table(cmp))
            for note in comparison_notes(cmp):
                out.print(note)
        out.print(cost_table([cmps[0]["a"]["cost"]] + [c["b"]["cost"] for c in cmps]))
    if junit:
        try:
            junit.write_text(junit_xml(cmps), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write JUnit XML: {exc.strerror}", file=str(junit), field="junit") from None
    if _gate_failures(cmps, fail_on_regression, confidence):
        raise typer.Exit(1)


def _gate_failures(cmps: list[dict], fail_on_regression: bool, confidence: float) -> int:
    """Print one line per failed gate (regression, non-inferiority); returns how many failed."""
    failed = 0
    for cmp in cmps:
        o = cmp["overall"]
        name = "B" if len(cmps) == 1 else cmp["b"]["model"] or short_id(cmp["b"]["run_id"])
        if fail_on_regression and o["difference"] is not None and o["difference"] < 0 \
                and o["p_value"] < 1 - confidence:
            err.print(f"regression: {name} is {-100 * o['difference']:.1f} points worse than A (p = {o['p_value']:.4f})")
            failed += 1
        ni = cmp.get("non_inferiority")
        if ni and not ni["passed"]:
            low = "–" if ni["lower_bound"] is None else f"{100 * ni['lower_bound']:+.1f}"
            err.print(f"not shown non-inferior: the interval of {name} − A has its lower bound at {low} points, not above "
                      f"−{100 * ni['margin']:.1f}")
            failed += 1
    return failed


@app.command("export")
def export(
    run_id: str = typer.Argument(..., help="Run id (or a unique prefix)."),
    out_path: str = typer.Option("-", "--out", "-o", help="File to write; '-' for standard output."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f",
                                      help="jsonl (OpenAI's output items), csv or parquet (one flat row per output "
                                           "item, a score and passed column per criterion); default: the file's "
                                           "suffix, jsonl on standard output."),
) -> None:
    """Write a run's output items to a file for notebooks, spreadsheets and other tools."""
    store = open_store()
    run = store.resolve_run_id(run_id)
    with flag_errors("format", "out"):
        rows = export_run(store, run, out_path, fmt.lower() if fmt else None)
    if out_path != "-":
        err.print(f"wrote {rows} output items to {out_path}")


@app.command("validate")
def validate(
    eval_file: Path = typer.Argument(..., help="Eval definition to check."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    allow_outside_paths: bool = allow_outside_option(),
) -> None:
    """Check an eval definition and every row, without running anything."""
    spec = load_eval(eval_file, allow_outside_paths=allow_outside_paths)
    summary = {"name": spec.name, "rows": len(spec.rows), "criteria": [c.name for c in spec.testing_criteria],
               "data_source": spec.data_source.type if spec.data_source else None, "needs_model": spec.needs_model}
    if as_json:
        print_json(summary)
    else:
        n = len(spec.testing_criteria)
        rows = f"{len(spec.rows)} row{'s' if len(spec.rows) != 1 else ''}"
        out.print(f"ok: {spec.name}: {rows}, {n} {'criterion' if n == 1 else 'criteria'}")
