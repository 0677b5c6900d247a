"""``gradeloop grade …``: validate a grader, grade one sample, grade a file of samples."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from ..redact import scrub_json
from ..rewards import grade_pairs, load_grader_file
from ..spec import grader_hash, read_jsonl
from ..store import Store
from ..templating import sample_namespace
from .._checks import check_base_url
from ._common import flag_errors, out, output_errors, print_json

app = typer.Typer(help="Validate and run graders (OpenAI grader JSON or YAML).", no_args_is_help=True)


@app.command("validate")
def validate(
    grader_file: Path = typer.Argument(..., help="A grader object, or {\"grader\": {...}}, in YAML or JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print {grader, hash} as JSON."),
) -> None:
    """Check a grader definition; prints its type and stable hash."""
    grader = load_grader_file(grader_file)
    digest = grader_hash(grader)
    if as_json:
        print_json({"grader": grader.model_dump(exclude_none=True), "hash": digest})
    else:
        out.print(f"ok: {grader.type} grader '{grader.name}', hash {digest[:16]}")


def _parse_item(text: str | None) -> dict:
    if not text:
        return {}
    try:
        item = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--item is not valid JSON: {exc}", field="--item") from None
    if not isinstance(item, dict):
        raise InputError("--item must be a JSON object", field="--item")
    return item


@app.command("run")
def run(
    grader_file: Path = typer.Argument(..., help="The grader (YAML or JSON)."),
    sample: str = typer.Option(..., "--sample", help="The model output to grade (becomes sample.output_text)."),
    item: Optional[str] = typer.Option(None, "--item", help="The item as a JSON object."),
    base_url: Optional[str] = typer.Option(None, envvar="OPENAI_BASE_URL", help="OpenAI-compatible server for judge models."),
    as_json: bool = typer.Option(False, "--json", help="Print OpenAI's run-grader response."),
) -> None:
    """Grade one sample, as OpenAI's /fine_tuning/alpha/graders/run did."""
    with flag_errors("base_url"):
        check_base_url(base_url)
    grader = load_grader_file(grader_file)
    pairs = [(sample_namespace(sample), _parse_item(item))]
    [result] = asyncio.run(grade_pairs(grader, pairs, store=Store(), base_url=base_url))
    response = result.to_run_response(grader)
    if as_json:
        print_json(response)
        return
    out.print(f"reward {result.score:g}  passed {result.passed}")
    for key, value in result.sub_rewards.items():
        out.print(f"  {key}: {value:g}")
    flags = [k for k, v in response["metadata"]["errors"].items() if v is True]
    if flags:
        out.print("errors: " + ", ".join(flags))


def _rows(path: Path) -> list[tuple[dict, dict, int]]:
    rows = []
    for line, value in read_jsonl(path):
        if not isinstance(value, dict) or "sample" not in value:
            raise InputError('each row must be {"item": {...}, "sample": "text" or {"output_text": ...}}',
                             file=str(path), line=line, field="sample")
        sample = value["sample"]
        if isinstance(sample, str):
            namespace = sample_namespace(sample)
        elif isinstance(sample, dict) and isinstance(sample.get("output_text"), str):
            namespace = sample_namespace(sample["output_text"], tool_calls=sample.get("output_tools"),
                                         choices=sample.get("choices"))
            namespace.update({k: sample[k] for k in ("output_json", "trajectory") if k in sample})
        else:
            raise InputError("'sample' must be a string or an object with output_text", file=str(path),
                             line=line, field="sample")
        item = value.get("item", {})
        if not isinstance(item, dict):
            raise InputError("'item' must be an object", file=str(path), line=line, field="item")
        rows.append((namespace, item, line))
    if not rows:
        raise InputError("no rows", file=str(path))
    return rows


@app.command("file")
def grade_file(
    grader_file: Path = typer.Argument(..., help="The grader (YAML or JSON)."),
    samples: Path = typer.Argument(..., help="JSONL rows {\"item\": {...}, \"sample\": ...}."),
    output: Optional[Path] = typer.Option(None, "--out", help="Write one run-grader response per row (JSONL)."),
    base_url: Optional[str] = typer.Option(None, envvar="OPENAI_BASE_URL", help="OpenAI-compatible server for judge models."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Grade pre-generated samples in bulk; prints mean reward, pass rate and error counts."""
    with flag_errors("base_url"):
        check_base_url(base_url)
    grader = load_grader_file(grader_file)
    rows = _rows(samples)
    results = asyncio.run(grade_pairs(grader, [(s, i) for s, i, _ in rows], store=Store(), base_url=base_url))
    if output is not None:
        with output_errors("--out"), open(output, "w", encoding="utf-8") as handle:
            for (_, _, line), result in zip(rows, results):
                handle.write(json.dumps(scrub_json({"line": line, **result.to_run_response(grader)})) + "\n")
    summary = _summary(grader, results)
    if as_json:
        print_json(summary)
        return
    out.print(f"{summary['rows']} rows: mean reward {summary['mean_reward']:.4f}, "
              f"passed {summary['passed']}, failed {summary['failed']}, errored {summary['errored']}")
    for key, mean in summary["sub_rewards_mean"].items():
        out.print(f"  {key}: mean {mean:.4f}")
    for flag, count in summary["errors"].items():
        out.print(f"  {flag}: {count}")


def _summary(grader, results) -> dict:
    n = len(results)
    errors: dict[str, int] = {}
    for r in results:
        for flag, value in r.errors.items():
            if value is True:
                errors[flag] = errors.get(flag, 0) + 1
    keys = list(results[0].sub_rewards) if results and results[0].sub_rewards else []
    return {
        "grader": grader.name, "type": grader.type, "hash": grader_hash(grader), "rows": n,
        "mean_reward": sum(r.score for r in results) / n if n else 0.0,
        "passed": sum(r.passed is True for r in results), "failed": sum(r.passed is False for r in results),
        "errored": sum(r.passed is None for r in results),
        "sub_rewards_mean": {k: sum(r.sub_rewards.get(k, 0.0) for r in results) / n for k in keys},
        "errors": errors,
    }
