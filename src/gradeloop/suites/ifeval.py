"""IFEval (Zhou et al. 2023): score published responses, or build an eval any model can run.

Inputs are IFEval's ``input_data.jsonl`` records ``{"key", "prompt", "instruction_id_list",
"kwargs"}``; responses are ``{"prompt", "response"}`` records matched to inputs by the exact
prompt string, as Google's ``evaluation_main`` does. Null and empty kwargs are dropped, as
lm-eval does for the Hugging Face copy of the data (a 0 is kept: it is a real threshold).

- :func:`score` checks every instruction strictly and loosely (IFEval's eight response
  variants) and returns per-prompt verdicts, the four metrics, and per-instruction and
  per-category accuracy;
- :func:`build` writes ``eval.yaml`` + ``rows.jsonl``: the prompts as a completions eval
  (greedy, up to 1280 new tokens, as lm-eval runs IFEval) graded by two ``constraints``
  criteria, strict and loose, whose pass rates are the prompt-level accuracies;
- :func:`scores_from_output_items` recomputes all four metrics from a run of that eval.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..graders.constraints import get_constraint, loose_variants, parse_params
from ..graders.constraints._text import sentence_backend
from ..spec import read_jsonl

__all__ = [
    "IFEvalInput",
    "IFEvalScores",
    "METRICS",
    "read_inputs",
    "read_responses",
    "follow_instructions",
    "score",
    "build",
    "scores_from_output_items",
]

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")
MAX_COMPLETION_TOKENS = 1280  # lm-eval's max_gen_toks for ifeval
STRICT_CRITERION = "IFEval prompt-level strict"
LOOSE_CRITERION = "IFEval prompt-level loose"


@dataclass
class IFEvalInput:
    """One IFEval prompt: its key, text, instruction ids and their (cleaned) kwargs."""

    key: int | str
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]
    params: list[Any] = field(default_factory=list, repr=False)
    line: int | None = None

    def item(self) -> dict[str, Any]:
        """The record as an eval item (IFEval's own input format)."""
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": self.instruction_id_list,
                "kwargs": self.kwargs}


def _clean_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # the Hugging Face copy fills every unused kwarg with null; lm-eval drops falsy values, but
    # a 0 is a real threshold, so only null and empty values go
    return {k: v for k, v in kwargs.items() if v is not None and v != "" and v != [] and v != {}}


def _input(value: Any, file: str, line: int) -> IFEvalInput:
    def fail(message: str, where: str) -> InputError:
        return InputError(message, file=file, line=line, field=where)

    if not isinstance(value, dict):
        raise fail("each line must be an object with key, prompt, instruction_id_list, kwargs", "key")
    for name in ("key", "prompt", "instruction_id_list", "kwargs"):
        if name not in value:
            raise fail("required field is missing", name)
    if not isinstance(value["key"], (int, str)) or isinstance(value["key"], bool):
        raise fail("must be an integer or a string", "key")
    if not isinstance(value["prompt"], str):
        raise fail("must be a string", "prompt")
    ids, kwargs = value["instruction_id_list"], value["kwargs"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise fail("must be a list of instruction ids", "instruction_id_list")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise fail(f"must be a list with one object per instruction ({len(ids)})", "kwargs")
    cleaned, params = [], []
    for n, (cid, kw) in enumerate(zip(ids, kwargs)):
        if kw is not None and not isinstance(kw, dict):
            raise fail("must be an object", f"kwargs[{n}]")
        try:
            get_constraint(cid)
        except KeyError as exc:
            raise fail(str(exc.args[0]), f"instruction_id_list[{n}]") from None
        cleaned.append(_clean_kwargs(kw or {}))
        try:
            params.append(parse_params(cid, cleaned[-1]))
        except ValueError as exc:
            raise fail(str(exc), f"kwargs[{n}]") from None
    return IFEvalInput(key=value["key"], prompt=value["prompt"], instruction_id_list=ids, kwargs=cleaned,
                       params=params, line=line)


def read_inputs(path: str | Path) -> list[IFEvalInput]:
    """IFEval prompts from ``input_data.jsonl``; raises InputError naming file, line and field."""
    inputs = [_input(value, str(path), line) for line, value in read_jsonl(path)]
    if not inputs:
        raise InputError("no prompts", file=str(path))
    seen: dict[Any, int | None] = {}
    for inp in inputs:
        if inp.key in seen:
            raise InputError(f"duplicate key {inp.key!r} (first on line {seen[inp.key]})", file=str(path),
                             line=inp.line, field="key")
        seen[inp.key] = inp.line
    return inputs


def read_responses(path: str | Path) -> dict[str, str]:
    """``{prompt: response}`` from ``{"prompt", "response"}`` lines (a later line wins, as in the
    reference); raises InputError naming file, line and field."""
    out: dict[str, str] = {}
    for line, value in read_jsonl(path):
        if not isinstance(value, dict):
            raise InputError('each line must be {"prompt": ..., "response": ...}', file=str(path), line=line)
        for name in ("prompt", "response"):
            if not isinstance(value.get(name), str):
                message = "required field is missing" if name not in value else "must be a string"
                raise InputError(message, file=str(path), line=line, field=name)
        out[value["prompt"]] = value["response"]
    return out


def follow_instructions(response: str, inp: IFEvalInput) -> tuple[list[bool], list[bool]]:
    """Strict and loose verdicts of every instruction of ``inp`` on ``response``.

    Strict: the stripped response is non-empty and passes. Loose: any non-empty one of the
    eight variants passes. The variants are deduplicated and the strict result reused, which
    gives the reference's verdicts with fewer checks.
    """
    others: list[str] = []
    for variant in loose_variants(response)[1:]:
        if variant.strip() and variant != response and variant not in others:
            others.append(variant)
    strict, loose = [], []
    nonempty = bool(response.strip())
    for cid, params in zip(inp.instruction_id_list, inp.params):
        check = get_constraint(cid).check
        ok = nonempty and check(response, params, None)[0]
        strict.append(ok)
        loose.append(ok or any(check(v, params, None)[0] for v in others))
    return strict, loose


@dataclass
class IFEvalScores:
    """Per-prompt verdicts and the metrics computed from them."""

    records: list[dict[str, Any]]
    instruction_ids: list[list[str]]
    sentence_splitter: str = "punkt"
    skipped: int = 0

    @property
    def metrics(self) -> dict[str, float]:
        """The four IFEval metrics (lm-eval's names)."""
        out = {}
        for mode in ("strict", "loose"):
            verdicts = [r[mode] for r in self.records]
            flat = [v for vs in verdicts for v in vs]
            out[f"prompt_level_{mode}_acc"] = _mean([all(vs) for vs in verdicts])
            out[f"inst_level_{mode}_acc"] = _mean(flat)
        return {name: out[name] for name in METRICS}

    def per_instruction(self, level: str = "id") -> dict[str, dict[str, float]]:
        """Accuracy per instruction id (``level="id"``) or per category (``"category"``, the part
        before ``:``): ``{name: {"count", "strict", "loose"}}``, sorted by name."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for record, ids in zip(self.records, self.instruction_ids):
            for cid, s, lo in zip(ids, record["strict"], record["loose"]):
                name = cid.split(":")[0] if level == "category" else cid
                totals[name][0] += 1
                totals[name][1] += s
                totals[name][2] += lo
        return {name: {"count": n, "strict": s / n, "loose": lo / n} for name, (n, s, lo) in sorted(totals.items())}

    def to_dict(self) -> dict[str, Any]:
        """Metrics, per-category and per-id accuracy, and how sentences were counted (JSON-ready)."""
        return {"prompts": len(self.records), "skipped": self.skipped, "metrics": self.metrics,
                "per_category": self.per_instruction("category"), "per_instruction": self.per_instruction("id"),
                "sentence_splitter": self.sentence_splitter}


def _mean(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def score(inputs: list[IFEvalInput], responses: dict[str, str], *, skip_missing: bool = False) -> IFEvalScores:
    """Check every prompt's response; one record ``{"key", "strict": [...], "loose": [...]}`` per
    prompt, in ``instruction_id_list`` order.

    A prompt without a response raises InputError unless ``skip_missing`` (then it is left out
    and counted in ``skipped``).
    """
    missing = [inp for inp in inputs if inp.prompt not in responses]
    if missing and not skip_missing:
        raise InputError(f"{len(missing)} of {len(inputs)} prompts have no response (the first is key "
                         f"{missing[0].key!r}); responses are matched by exact prompt text "
                         "(skip_missing=True leaves them out)")
    records, ids = [], []
    for inp in inputs:
        if inp.prompt not in responses:
            continue
        strict, loose = follow_instructions(responses[inp.prompt], inp)
        records.append({"key": inp.key, "strict": strict, "loose": loose})
        ids.append(inp.instruction_id_list)
    return IFEvalScores(records=records, instruction_ids=ids, sentence_splitter=sentence_backend(),
                        skipped=len(missing))


# ----------------------------------------------------------------------------- build

def eval_definition(name: str = "IFEval", rows_file: str = "rows.jsonl") -> dict[str, Any]:
    """The eval definition :func:`build` writes: completions on the prompt, two constraints graders."""
    def criterion(name: str, mode: str) -> dict[str, Any]:
        return {"type": "constraints", "name": name, "input": "{{ sample.output_text }}",
                "constraints": "{{ item }}", "mode": mode, "score": "all"}

    return {
        "name": name,
        "metadata": {"description": "IFEval (Zhou et al. 2023): 25 verifiable instructions. The strict and "
                                    "loose pass rates are prompt-level strict and loose accuracy.",
                     "suite": "ifeval"},
        "data_source_config": {"type": "custom", "include_sample_schema": True, "item_schema": {
            "type": "object", "required": ["key", "prompt", "instruction_id_list", "kwargs"],
            "properties": {"key": {"type": ["integer", "string"]}, "prompt": {"type": "string"},
                           "instruction_id_list": {"type": "array", "items": {"type": "string"}},
                           "kwargs": {"type": "array", "items": {"type": "object"}}}}},
        "testing_criteria": [criterion(STRICT_CRITERION, "strict"), criterion(LOOSE_CRITERION, "loose")],
        "data_source": {
            "type": "completions", "source": {"type": "file", "path": rows_file},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.prompt }}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": MAX_COMPLETION_TOKENS},
        },
    }


def build(input_file: str | Path, out_dir: str | Path, *, limit: int | None = None) -> Path:
    """Write ``out_dir/eval.yaml`` and ``out_dir/rows.jsonl`` from IFEval's input file (the first
    ``limit`` prompts when given); returns the path of ``eval.yaml``."""
    inputs = read_inputs(input_file)[:limit] if limit else read_inputs(input_file)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rows.jsonl", "w", encoding="utf-8") as handle:
        for inp in inputs:
            handle.write(json.dumps({"item": inp.item()}, ensure_ascii=False) + "\n")
    header = (f"# IFEval, built by gradeloop from {Path(input_file).name} ({len(inputs)} prompts).\n"
              "# Run it: gradeloop eval run eval.yaml --model <provider/model>\n")
    text = yaml.safe_dump(eval_definition(), sort_keys=False, allow_unicode=True, width=100)
    (out / "eval.yaml").write_text(header + text, encoding="utf-8")
    return out / "eval.yaml"


def scores_from_output_items(items: list[dict[str, Any]]) -> IFEvalScores:
    """The four metrics of a run of the built eval, from its output items (OpenAI's shape, as
    :func:`gradeloop.output_item_objects` returns them): per-instruction verdicts come from
    the two criteria's ``details.constraints``. Items whose grading errored count as failed."""
    records, ids = [], []
    for item in items:
        source = item["datasource_item"]
        by_name = {r.get("criterion") or r.get("name"): r for r in item["results"]}
        record: dict[str, Any] = {"key": source.get("key")}
        for mode, name in (("strict", STRICT_CRITERION), ("loose", LOOSE_CRITERION)):
            details = (by_name.get(name) or {}).get("details") or {}
            verdicts = [bool(c["passed"]) for c in details.get("constraints", [])]
            record[mode] = verdicts or [False] * len(source["instruction_id_list"])
        records.append(record)
        ids.append(source["instruction_id_list"])
    return IFEvalScores(records=records, instruction_ids=ids, sentence_splitter=sentence_backend())
