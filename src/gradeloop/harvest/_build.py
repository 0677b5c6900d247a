"""Building an eval set from one use-case cluster of harvested traffic.

:func:`build` writes ``eval.yaml`` (OpenAI's create-eval body + a completions ``data_source``
over ``test.jsonl``, ``input_messages`` from ``item.messages`` and the cluster's common
sampling params) and ``train.jsonl`` / ``valid.jsonl`` / ``test.jsonl`` rows
``{"item": {messages, reference_answer?, provenance}}``, split by topic (stratified, seeded),
with no held-out item that has a near duplicate in train. ``fmt="sft"`` / ``"rft"`` writes
train and valid as the fine-tuning files ``tune create`` takes (RFT with ``grader.yaml``).
The written files are stored as a dataset version whose id the eval's
``metadata.gradeloop_dataset`` names, so every run of the eval records it.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store import Store
from ._criteria import Criteria, extract_criteria, reference_criterion, system_text
from ._shingle import near_duplicates, user_text
from ._topics import Topic

__all__ = ["BuildReport", "FORMATS", "TopicOf", "build", "default_topic_of", "parse_split", "split_by_topic",
           "topic_label"]

FORMATS = ("eval", "sft", "rft")
SPLITS = ("train", "valid", "test")
TopicOf = Callable[[list[dict[str, Any]]], dict[str, str]]

# request params an eval's completions sampling_params can carry (Chat form), and their aliases
_SAMPLING = ("temperature", "top_p", "seed", "max_completion_tokens", "response_format", "tools", "stop",
             "reasoning_effort")
_ALIASES = {"max_tokens": "max_completion_tokens", "max_output_tokens": "max_completion_tokens"}


@dataclass
class BuildReport:
    """What a build wrote: the dataset version, items per split and per topic, held-out items
    moved to train for leakage, the criteria and where each came from, files and notes."""

    cluster: int
    out_dir: str
    dataset_id: str = ""
    content_hash: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, dict[str, int]] = field(default_factory=dict)
    leakage_moved: dict[str, int] = field(default_factory=dict)
    criteria: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return dict(self.__dict__)


def parse_split(text: str) -> tuple[float, float, float]:
    """``"70/15/15"`` → train, valid and test shares that sum to 1; raises InputError."""
    parts = text.split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0 or values[2] <= 0:
        raise InputError(f"--split must be train/valid/test shares such as 70/15/15, train and test above 0 "
                         f"(got {text!r})", field="split")
    total = sum(values)
    return values[0] / total, values[1] / total, values[2] / total


def split_by_topic(topics: dict[str, str], shares: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Item id → ``train``/``valid``/``test``: within each topic (id → topic) the ids are shuffled
    with ``seed`` and cut by ``shares``; a topic with any item gives test at least one when the
    test share is not 0 (so a rare kind of request is still tested). Deterministic."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in sorted(topics):
        groups[topics[key]].append(key)
    out: dict[str, str] = {}
    for topic in sorted(groups):
        keys = groups[topic]
        random.Random(f"{seed}\0{topic}").shuffle(keys)
        n = len(keys)
        n_test = int(n * shares[2] + 0.5) or (1 if shares[2] > 0 else 0)
        n_valid = min(int(n * shares[1] + 0.5), n - n_test)
        for i, key in enumerate(keys):
            out[key] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def topic_label(topic: Topic) -> str:
    """A topic's label as one string: its name (from a namer), else its first three
    distinctive terms, else its id."""
    return topic.name or " ".join(topic.label[:3]) or f"topic-{topic.id}"


def default_topic_of(store: Store, cluster_id: int) -> TopicOf:
    """The topic assignment used when none is injected: the groups :func:`topics` finds in the
    cluster (a record in none of them is ``other``)."""

    def assign(records: list[dict[str, Any]]) -> dict[str, str]:
        from ._topics import topics

        labels: dict[str, str] = {}
        for topic in topics(store, cluster_id):
            labels.update({rid: topic_label(topic) for rid in topic.record_ids})
        return {r["id"]: labels.get(r["id"], "other") for r in records}

    return assign


def _until_last_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    return None if last is None else messages[: last + 1]


def _reference(record: dict[str, Any]) -> str | None:
    """The answer as a reference when a user marked it good (feedback > 0) and it answers the
    last user turn (not a later tool result)."""
    content = (record.get("output") or {}).get("content")
    if (record.get("feedback") or 0) > 0 and isinstance(content, str) and content.strip() \
            and record["messages"][-1].get("role") == "user":
        return content
    return None


def _item(record: dict[str, Any], dups: list[str], cluster_id: int, topic: str,
          criteria: Criteria) -> dict[str, Any] | None:
    messages = _until_last_user(record["messages"])
    if messages is None:
        return None
    item: dict[str, Any] = {"messages": messages}
    if criteria.item_constraints:
        item["constraints"] = criteria.item_constraints.get(record["id"], [])
    reference = _reference(record)
    if reference is not None:
        item["reference_answer"] = reference
    item["provenance"] = {"record_id": record["id"], "record_ids": [record["id"], *dups], "source": record["source"],
                          "cluster": cluster_id, "topic": topic, "created_at": record["created_at"]}
    return item


def _chat_tools(tools: Any, notes: list[str]) -> list[dict[str, Any]] | None:
    """Responses-form function tools in Chat form; hosted tools (web search …) are dropped."""
    out = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            notes.append(f"tool {tool.get('type') if isinstance(tool, dict) else tool!r} is not a function tool; "
                         "gradeloop cannot run it, so the eval leaves it out")
            continue
        if "function" not in tool:
            tool = {"type": "function", "function": {k: v for k, v in tool.items()
                                                     if k in ("name", "description", "parameters", "strict")}}
        out.append(tool)
    return out or None


def _chat_params(params: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A record's params as eval ``sampling_params`` (Chat form, only what an eval carries)."""
    out = {_ALIASES.get(k, k): v for k, v in params.items() if _ALIASES.get(k, k) in _SAMPLING}
    if isinstance(params.get("reasoning"), dict) and params["reasoning"].get("effort"):
        out["reasoning_effort"] = params["reasoning"]["effort"]
    fmt = (params.get("text") or {}).get("format") if isinstance(params.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        out["response_format"] = ({"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
                                  if fmt["type"] == "json_schema" else {"type": "json_object"})
    if "tools" in out:
        out["tools"] = _chat_tools(out["tools"], notes)
    return {k: v for k, v in out.items() if v is not None}


def common_sampling_params(records: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The sampling params every record of the cluster sent with the same value, in the eval's
    Chat form; and notes on what could not be carried over."""
    notes: list[str] = []
    per = [_chat_params(r.get("params") or {}, notes) for r in records]

    def same(key: str, value: Any) -> bool:
        return all(json.dumps(p.get(key), sort_keys=True) == json.dumps(value, sort_keys=True) for p in per[1:])

    common = {k: v for k, v in per[0].items() if same(k, v)} if per else {}
    if any("tool_choice" in (r.get("params") or {}) for r in records):
        notes.append("tool_choice is not an eval sampling param; where it required a tool, a tool check grades it")
    return common, list(dict.fromkeys(notes))


def _leaks(items: dict[str, dict[str, Any]], where: dict[str, str]) -> dict[str, int]:
    """Move every held-out item with a near duplicate in train to train, until none is left;
    returns how many moved from valid and from test."""
    moved = {"valid": 0, "test": 0}
    while True:
        train = {k: user_text(items[k]["messages"]) for k, s in where.items() if s == "train"}
        held = {k: user_text(items[k]["messages"]) for k, s in where.items() if s != "train"}
        found = near_duplicates(held, train) if train and held else {}
        if not found:
            return moved
        for key in found:
            moved[where[key]] += 1
            where[key] = "train"


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")


def _sft_rows(records: dict[str, dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """SFT rows: the recorded conversation and its answer, for answers not marked bad and not errors."""
    rows = []
    for key in keys:
        record = records[key]
        output = record.get("output") or {}
        if record.get("error") or (record.get("status") or 200) >= 400 or (record.get("feedback") or 0) < 0:
            continue
        answer = {"role": "assistant", "content": output.get("content")}
        if output.get("tool_calls"):
            answer["tool_calls"] = output["tool_calls"]
        if not (isinstance(answer["content"], str) and answer["content"].strip()) and not answer.get("tool_calls"):
            continue
        row: dict[str, Any] = {"messages": [*record["messages"], answer]}
        tools = _chat_tools((record.get("params") or {}).get("tools"), [])
        if tools:
            row["tools"] = tools
        rows.append(row)
    return rows


def rft_grader(criteria: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The reward for RFT: the eval's criteria that every row can feed (a criterion reading
    ``item.reference_answer`` only when every row has one), as one grader (``multi``: their mean)."""
    usable = [c for c in criteria if "item.reference_answer" not in json.dumps(c) or
              all("reference_answer" in r for r in rows)]
    if len(usable) == 1:
        return usable[0]
    keys = [f"c{i + 1}" for i in range(len(usable))]
    return {"type": "multi", "name": "harvest criteria (mean)", "graders": dict(zip(keys, usable)),
            "calculate_output": f"({' + '.join(keys)}) / {len(keys)}"}


_OPTIONAL_FILES = ("eval.references.yaml", "test.references.jsonl", "grader.yaml")
_ITEM_SCHEMA = {"type": "object",
                "properties": {"messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
                               "reference_answer": {"type": "string"}, "provenance": {"type": "object"},
                               "constraints": {"type": "array", "items": {"type": "object", "required": ["id"]}}},
                "required": ["messages", "provenance"]}


def eval_definition(name: str, criteria: list[dict[str, Any]], sampling: dict[str, Any], rows_file: str,
                    metadata: dict[str, str]) -> dict[str, Any]:
    """An eval over ``rows_file`` in gradeloop's format (create-eval body + completions data source)."""
    return {"name": name, "metadata": metadata,
            "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
            "testing_criteria": criteria,
            "data_source": {"type": "completions", "source": {"type": "file", "path": rows_file},
                            "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                            "sampling_params": sampling}}


def _fallback_criterion() -> dict[str, Any]:
    return {"type": "string_check", "name": "gives an answer", "input": "{{ sample.output_text }}", "reference": "",
            "operation": "ne"}


def _files_hash(out: Path, names: list[str], definition: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(f"{name}\0{hashlib.sha256((out / name).read_bytes()).hexdigest()}\n".encode())
    digest.update(json.dumps(definition, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def _write_eval(path: Path, definition: dict[str, Any], header: str) -> None:
    import yaml

    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(header + text, encoding="utf-8", newline="\n")


def build(store: Store, cluster_id: int, out_dir: str | Path, *, split: tuple[float, float, float] = (0.7, 0.15, 0.15),
          seed: int = 0, fmt: str = "eval", judge: str | None = None, min_records: int = 1,
          topic_of: TopicOf | None = None) -> BuildReport:
    """Build the eval set of cluster ``cluster_id`` into ``out_dir`` (see the module docstring)
    and store it as a dataset version. ``topic_of`` maps records to topic labels (default:
    :func:`default_topic_of`). Raises InputError for an unknown cluster, too few records or a
    bad format. Returns the :class:`BuildReport`."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})", field="format")
    cluster = next((c for c in store.harvest_clusters() if c["id"] == cluster_id), None)
    if cluster is None:
        raise InputError(f"no cluster {cluster_id} (see `gradeloop harvest clusters`)", field="cluster")
    records = store.harvest_records(cluster_id=cluster_id)
    if len(records) < max(1, min_records):
        raise InputError(f"cluster {cluster_id} has {len(records)} record(s); --min-records asks for {min_records}",
                         field="min-records")
    dups: dict[str, list[str]] = defaultdict(list)
    for r in store.harvest_records(cluster_id=cluster_id, include_near_dups=True):
        if r["near_dup_of"]:
            dups[r["near_dup_of"]].append(r["id"])
    topics = (topic_of or default_topic_of(store, cluster_id))(records)
    criteria = extract_criteria(cluster["template"] or system_text(records[0]["messages"]), records, judge=judge)
    by_id = {r["id"]: r for r in records}
    items = {r["id"]: i for r in records
             if (i := _item(r, dups[r["id"]], cluster_id, topics.get(r["id"], "other"), criteria)) is not None}
    report = BuildReport(cluster=cluster_id, out_dir=str(out_dir), skipped=len(records) - len(items))
    if not items:
        raise InputError(f"cluster {cluster_id} has no record with a user turn to build from", field="cluster")
    where = split_by_topic({k: items[k]["provenance"]["topic"] for k in items}, split, seed)
    report.leakage_moved = _leaks(items, where)
    return _write(store, cluster, Path(out_dir), items, by_id, where, criteria, report,
                  {"split": split, "seed": seed, "fmt": fmt, "judge": judge})


def _write(store: Store, cluster: dict[str, Any], out: Path, items: dict[str, dict[str, Any]],
           records: dict[str, dict[str, Any]], where: dict[str, str], criteria: Criteria, report: BuildReport,
           options: dict[str, Any]) -> BuildReport:
    out.mkdir(parents=True, exist_ok=True)
    for name in _OPTIONAL_FILES:  # a rebuild into the same directory leaves nothing of an earlier one
        (out / name).unlink(missing_ok=True)
    parts = {s: [k for k in items if where[k] == s] for s in SPLITS}  # records' stored order
    if not parts["test"]:
        raise InputError(f"cluster {cluster['id']}: every held-out item has a near duplicate in train, so no test "
                         "item is left", field="split")
    report.counts = {s: len(parts[s]) for s in SPLITS}
    for key in items:
        topic = report.by_topic.setdefault(items[key]["provenance"]["topic"], dict.fromkeys(SPLITS, 0))
        topic[where[key]] += 1
    sampling, notes = common_sampling_params(list(records.values()))
    report.notes += notes + criteria.notes
    tests = [items[k] for k in parts["test"]]
    with_ref = [i for i in tests if "reference_answer" in i]
    testing = list(criteria.testing_criteria)
    if with_ref and len(with_ref) == len(tests):
        testing.append(reference_criterion())
    if not testing:
        testing.append(_fallback_criterion())
        report.notes.append("no checkable criterion found: the eval only checks that an answer is given")
    files = _write_rows(out, items, records, parts, options["fmt"], testing, with_ref, tests, report)
    definition = eval_definition(f"harvest cluster {cluster['id']}", testing, sampling, "test.jsonl", {})
    content_hash = _files_hash(out, files, definition)
    report.dataset_id = store.add_dataset(
        name=f"harvest-cluster-{cluster['id']}", content_hash=content_hash, path=str(out.resolve()),
        provenance={"cluster": cluster["id"], "template": (cluster["template"] or "")[:2000], "seed": options["seed"],
                    "split": list(options["split"]), "format": options["fmt"], "counts": report.counts,
                    "files": sorted(files), "records": sorted(items)})
    report.content_hash = content_hash
    metadata = {"gradeloop_dataset": report.dataset_id, "harvest_cluster": str(cluster["id"]),
                "split": "/".join(f"{x * 100:g}" for x in options["split"]), "seed": str(options["seed"])}
    header = (f"# Built by `gradeloop harvest build --cluster {cluster['id']}` (dataset {report.dataset_id}).\n"
              "# Run it: gradeloop eval run eval.yaml -m <provider/model>\n"
              "# valid.jsonl / train.jsonl hold items of the same shape: point data_source.source.path at them.\n")
    _write_eval(out / "eval.yaml", {**definition, "metadata": metadata}, header)
    report.files = sorted(files) + ["eval.yaml"]
    if with_ref and len(with_ref) < len(tests):
        _write_eval(out / "eval.references.yaml", eval_definition(
            f"harvest cluster {cluster['id']} (answers marked good)", [*testing, reference_criterion()], sampling,
            "test.references.jsonl", metadata), header.replace("eval.yaml", "eval.references.yaml"))
        report.files.append("eval.references.yaml")
    report.criteria = criteria.found + ([{"name": reference_criterion()["name"], "kind": "reference",
                                          "from": f"{len(with_ref)} test answer(s) marked good"}] if with_ref else [])
    _validate(out, report, options["fmt"])
    return report


def _write_rows(out: Path, items: dict[str, dict[str, Any]], records: dict[str, dict[str, Any]],
                parts: dict[str, list[str]], fmt: str, testing: list[dict[str, Any]], with_ref: list[dict[str, Any]],
                tests: list[dict[str, Any]], report: BuildReport) -> list[str]:
    """Write the split files (and the FT files, the RFT grader, the reference rows); returns their names."""
    _write_jsonl(out / "test.jsonl", [{"item": i} for i in tests])
    files = ["test.jsonl"]
    if with_ref and len(with_ref) < len(tests):
        _write_jsonl(out / "test.references.jsonl", [{"item": i} for i in with_ref])
        files.append("test.references.jsonl")
    for part in ("train", "valid"):
        keys = parts[part]
        if fmt == "sft":
            rows = _sft_rows(records, keys)
            if len(rows) < len(keys):
                report.notes.append(f"{part}: {len(keys) - len(rows)} record(s) without a usable answer "
                                    "(error, marked bad, or empty) left out of the SFT file")
        elif fmt == "rft":
            rows = [{"messages": items[k]["messages"], **{f: v for f, v in items[k].items() if f != "messages"}}
                    for k in keys]
        else:
            rows = [{"item": items[k]} for k in keys]
        _write_jsonl(out / f"{part}.jsonl", rows)
        files.append(f"{part}.jsonl")
    if fmt == "rft":
        import yaml

        rows = [{**items[k]} for k in parts["train"] + parts["valid"]]
        grader = rft_grader(testing, rows)
        (out / "grader.yaml").write_text(yaml.safe_dump(grader, sort_keys=False, allow_unicode=True, width=100),
                                         encoding="utf-8", newline="\n")
        files.append("grader.yaml")
    return files


def _validate(out: Path, report: BuildReport, fmt: str) -> None:
    """Load what was written with gradeloop's own loaders: the eval, and the fine-tuning files
    as ``tune create`` validates them (a failure here is a bug in the build, not bad input)."""
    from ..spec import load_eval, load_training_file, parse_criteria

    load_eval(out / "eval.yaml")
    if fmt == "eval":
        return
    method = "supervised" if fmt == "sft" else "reinforcement"
    grader = None
    if fmt == "rft":
        import yaml

        grader = yaml.safe_load((out / "grader.yaml").read_text(encoding="utf-8"))
        parse_criteria([grader], file=str(out / "grader.yaml"))
    for part in ("train", "valid"):
        if (out / f"{part}.jsonl").stat().st_size:
            load_training_file(out / f"{part}.jsonl", method, grader=grader)
        else:
            report.notes.append(f"{part}.jsonl is empty: `tune create` needs rows there")
