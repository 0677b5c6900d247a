"""``gradeloop harvest clusters`` and ``harvest topics``: use cases, and what users ask in each."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from ..harvest import NEAR_DUP_THRESHOLD, cluster_records, topics
from ..report import list_object
from ._common import open_store, out, print_json
from ._harvest import _day, app

EXCERPT = 70


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def cluster_object(cluster: dict[str, Any]) -> dict[str, Any]:
    """A cluster as JSON: its numbers plus ``error_rate`` and ``negative_feedback_rate``
    (the share of records with feedback whose feedback is negative; None without feedback)."""
    return {"object": "harvest.cluster", **cluster, "error_rate": _share(cluster["errors"], cluster["records"]),
            "negative_feedback_rate": _share(cluster["negative_feedback"], cluster["with_feedback"])}


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1] + "…"


@app.command("clusters")
def clusters_command(
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape: {object: list, data}."),
    near_dup_threshold: float = typer.Option(NEAR_DUP_THRESHOLD, "--near-dup-threshold", min=0.0, max=1.0,
                                             help="Jaccard of user content at which a new record folds."),
) -> None:
    """One row per use case (system-prompt template), clustering new records first: records,
    occurrences, template, models, dates, error rate, negative feedback."""
    rows = [cluster_object(c) for c in cluster_records(open_store(), near_dup_threshold=near_dup_threshold)]
    if as_json:
        print_json(list_object(rows))
        return
    if not rows:
        out.print("nothing harvested yet (record with `gradeloop proxy`, or `gradeloop harvest import FILE`)")
        return
    table = Table("id", "records", "occurrences", "template", "models", "from", "to", "errors", "negative")
    for c in rows:
        table.add_row(str(c["id"]), str(c["records"]), str(c["occurrences"]), _excerpt(c["template"]),
                      ", ".join(c["models"]), _day(c["first"]), _day(c["last"]), _percent(c["error_rate"]),
                      _percent(c["negative_feedback_rate"]))
    out.print(table)


@app.command("topics")
def topics_command(
    cluster: int = typer.Option(..., "--cluster", help="The cluster id (see `harvest clusters`)."),
    failing: bool = typer.Option(False, "--failing",
                                 help="Only records that errored, got negative feedback or failed an eval."),
    namer: str | None = typer.Option(None, "--namer", help="A model that names each topic (e.g. openai/gpt-4.1-mini)."),
    as_json: bool = typer.Option(False, "--json", help="OpenAI's list shape, with each topic's record ids."),
) -> None:
    """What users ask within a cluster: groups of similar requests with their distinctive
    terms, size, examples, errors and negative feedback."""
    store = open_store()
    cluster_records(store)
    found = topics(store, cluster, failing=failing, namer=namer)
    if as_json:
        print_json(list_object([t.to_dict() for t in found]))
        return
    if not found:
        out.print(f"no {'failing ' if failing else ''}records in cluster {cluster}")
        return
    table = Table("topic", "records", "occurrences", "errors", "negative", "examples")
    for t in found:
        title = "other" if t.id < 0 else f"{t.id} {t.name or ''}\n[dim]{', '.join(t.label)}[/dim]"
        table.add_row(title, str(t.size), str(t.occurrences), str(t.errors), str(t.negative_feedback),
                      "\n".join(_excerpt(e) for e in t.examples))
    out.print(table)
