"""Where fine-tuning pays: items and groups "on the cusp" from a run with several epochs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..stats import pass_at_k, pass_hat_k
from ..store import Store
from ..templating import field_at

CUSP_LOW, CUSP_HIGH, MIN_GAIN = 0.10, 0.50, 0.20


@dataclass
class CuspRule:
    """A group (or item) is an RFT target when ``low <= pass@1 <= high`` and
    ``pass@k - pass@1 >= min_gain``: the model solves it sometimes, and often enough within k
    tries that a reward has something to reinforce."""

    low: float = CUSP_LOW
    high: float = CUSP_HIGH
    min_gain: float = MIN_GAIN

    def flags(self, at_1: float, at_k: float) -> bool:
        """True when ``(pass@1, pass@k)`` is on the cusp."""
        return self.low <= at_1 <= self.high and at_k - at_1 >= self.min_gain - 1e-12


@dataclass
class CuspReport:
    """Per item and per group: mean unbiased pass@1, pass@k and pass^k; which are RFT targets."""

    run_id: str
    model: str | None
    k: int
    by: str | None
    rule: CuspRule
    groups: list[dict[str, Any]]
    items: list[dict[str, Any]]
    skipped_items: int  # fewer than k graded samples

    def to_dict(self) -> dict[str, Any]:
        """The plain-data (JSON) form, ``object: gradeloop.cusp``."""
        return {"object": "gradeloop.cusp", **asdict(self)}

    def targets(self) -> list[dict[str, Any]]:
        """The items to train on: those of flagged groups (with ``by``), else the flagged items."""
        if self.by is None:
            return [i for i in self.items if i["cusp"]]
        values = {json.dumps(g["value"], default=str) for g in self.groups if g["rft_target"]}
        return [i for i in self.items if json.dumps(i["group"], default=str) in values]


def _per_item(store: Store, run_id: str) -> dict[int, dict[str, Any]]:
    items: dict[int, dict[str, Any]] = {}
    for o in store.output_items(run_id):
        entry = items.setdefault(o["index"], {"index": o["index"], "item": o["item"], "outcomes": [], "messages": None})
        if o["status"] != "error":
            entry["outcomes"].append(int(o["status"] == "pass"))
        sample = o["sample"] or {}
        if entry["messages"] is None and sample.get("status") == "ok" and sample.get("input"):
            entry["messages"] = sample["input"]
    return items


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def cusp(store: Store, run_id: str, *, by: str | None = None, k: int | None = None,
         rule: CuspRule | None = None) -> CuspReport:
    """Unbiased pass@1, pass@k and pass^k (all k samples pass: ``C(c, k) / C(n, k)``) of every
    item with at least k graded samples, and their means per ``by`` group (one group "all"
    without it); flags RFT targets by ``rule``. ``k`` defaults to the run's epochs. Raises
    InputError for a run with one epoch or a k above it."""
    rid = store.resolve_run_id(run_id)
    run = store.get_run(rid)
    epochs = (run["config"] or {}).get("epochs") or 1
    if epochs < 2:
        raise InputError(f"run {rid} has one sample per item: cusp needs several (eval run --epochs 5)",
                         field="epochs")
    k = k or epochs
    if not 1 < k <= epochs:
        raise InputError(f"k must be between 2 and the run's {epochs} epochs, got {k}", field="k")
    rule = rule or CuspRule()
    items, skipped = [], 0
    for entry in _per_item(store, rid).values():
        n, c = len(entry["outcomes"]), sum(entry["outcomes"])
        if n < k:
            skipped += 1
            continue
        at_1, at_k = c / n, pass_at_k(n, c, k)
        items.append({"index": entry["index"], "item": entry["item"], "messages": entry["messages"],
                      "group": field_at(entry["item"], by) if by else None, "samples": n, "passed": c,
                      "pass_at_1": at_1, "pass_at_k": at_k, "pass_hat_k": pass_hat_k(n, c, k),
                      "cusp": rule.flags(at_1, at_k)})
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in items:
        groups.setdefault(json.dumps(row["group"], default=str), []).append(row)
    summary = []
    for key, rows in sorted(groups.items()):
        at_1, at_k = _mean(rows, "pass_at_1"), _mean(rows, "pass_at_k")
        summary.append({"field": by, "value": json.loads(key), "items": len(rows), "pass_at_1": at_1,
                        "pass_at_k": at_k, "pass_hat_k": _mean(rows, "pass_hat_k"),
                        "rft_target": rule.flags(at_1, at_k)})
    return CuspReport(rid, run["model"] or None, k, by, rule, summary, items, skipped)


def write_rft(store: Store, report: CuspReport, path: str | Path) -> dict[str, Any]:
    """Write the report's target items as an OpenAI RFT training file (JSONL, one row per item:
    ``messages`` as the run sent them, plus the item's fields) and the eval's criteria as the
    grader (``<stem>.grader.json`` next to it); both are checked as ``tune create --method
    reinforcement`` checks them. Returns ``{file, grader_file, rows}``."""
    from ..rewards import load_grader_file
    from ..spec import load_training_file, parse_criteria
    from ..tune.data import rft_grader, write_jsonl

    targets = report.targets()
    if not targets:
        raise InputError("no RFT target in this run: nothing to write", field="write_rft")
    if any(t["messages"] is None for t in targets):
        raise InputError("this run has no prompts (it graded given samples): RFT rows need a run that sampled a model",
                         field="write_rft")
    definition = store.get_eval(store.get_run(report.run_id)["eval_id"])["definition"]
    criteria = [c.model_dump(exclude_none=True) for c in parse_criteria(definition["testing_criteria"])]
    grader = rft_grader(criteria, definition.get("name"))
    path = Path(path)
    grader_path = path.with_name(path.stem + ".grader.json")
    rows = [{"messages": t["messages"], **{k: v for k, v in (t["item"] or {}).items() if k != "messages"}}
            for t in targets]
    try:
        write_jsonl(path, rows)
        grader_path.write_text(json.dumps(grader, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=str(exc.filename or path), field="write_rft") from None
    load_grader_file(grader_path)
    load_training_file(path, "reinforcement", grader=grader)
    return {"file": str(path), "grader_file": str(grader_path), "rows": len(rows)}
