"""The code-edit suite (issue 16) on scripted answers with known measures, and on ``local/smollm2``.

Two parts, each run once; each writes its eval and store under ``--home`` and prints its tables.

``--part scripted`` (no model)
    Builds the suite (every task × the four formats, or ``--n``), then answers each item through
    ``gradeloop.testing.FakeOpenAI`` (model ``openai/fake``) with an edit in the item's format built
    from a known target tree, so what each grader must find is known by construction:

    =================  ====================================================================
    reference          the reference change                            share 0
    extra-same-file    + k lines (``_extra_j = j``) appended to a file the reference changes,
                       at least 2 lines after its last hunk (context included)  k / (R + k)
    extra-other-file   + k such lines appended to a module the reference does not touch
    churn              + a blank and a comment line appended, and a trailing comment on a
                       ``def`` line of an untouched module: churn only  share 0, churn 4 / (R + 4)
    extra-lint         + ``import colorsys`` (unused: ruff F401) appended to an untouched
                       module                                   share 1 / (R + 1), 1 new finding
    malformed          the reference edit cut two lines into its first hunk / block / file (as a
                       token limit cuts it), or with the first line its first hunk expects in the file
                       altered (``whole``: without the path line): applies 0
    =================  ====================================================================

    R is the reference change's changed lines (its ``-`` and ``+`` lines). Constructions cycle
    over the items (task i, format j → ``(i + j) % 6``); k is 1 + i % 3; a malformed answer is cut
    when ``i // 6`` is even, else altered. Answers are written as a
    careful model would: udiff from ``diff_trees``; v4a and search-replace with 3 lines of context
    per hunk (more when the first match would be elsewhere); whole files in a long enough fence.
    The tables put each measure next to the constructed value, and list every item where they
    differ.

``--part smollm2``
    Builds ``--n`` items (default 16: 4 tasks × 4 formats, seed 1) and runs them on
    ``local/smollm2``, greedy, ``max_completion_tokens`` capped at ``--max-tokens`` (default 768;
    the suite's 4096 would let a looping answer run for minutes); prints the same per-format /
    per-kind tables with answer lengths, answers cut at the token limit, and why edits failed.

``--report-only HOME`` runs nothing: it prints the tables of every code-edit run in
``HOME/gradeloop.db``.

    .venv/bin/python bench/code_edits.py --part scripted --home /tmp/ce-scripted
    .venv/bin/python bench/code_edits.py --part smollm2 --home /tmp/ce-smollm2 --n 16
    .venv/bin/python bench/code_edits.py --report-only /tmp/ce-scripted
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONSTRUCTIONS = ("reference", "extra-same-file", "extra-other-file", "churn", "extra-lint", "malformed")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


# -- the target trees --------------------------------------------------------------------


def reference_tree(task: dict[str, Any]) -> dict[str, str]:
    """The task's tree after its reference change."""
    from gradeloop.edits import Tree, apply_edit, parse_edit

    with Tree.from_item(task) as tree:
        apply_edit(tree, parse_edit(task["reference_diff"], "udiff"))
        return tree.files()


def diff_counts(diff: str) -> tuple[int, dict[str, int]]:
    """The changed lines of a unified diff (its ``-``/``+`` lines), and per old-file path the
    0-based index of the last line its hunks cover (context included)."""
    changed, last, path = 0, {}, None
    for line in diff.splitlines():
        if line.startswith("--- "):
            path = line[6:] if line.startswith("--- a/") else None
        elif line.startswith("+++ "):
            continue
        elif head := _HUNK.match(line):
            if path is not None:
                last[path] = int(head.group(1)) - 1 + int(head.group(2) or 1) - 1
        elif line[:1] in "+-":
            changed += 1
    return changed, last


def _appendable(text: str | None) -> bool:
    return bool(text) and text.endswith("\n")


def _untouched(task: dict[str, Any], ref: dict[str, str]) -> list[str]:
    return [p for p, t in task["files"].items() if p.endswith(".py") and not p.startswith("tests/")
            and ref.get(p) == t and _appendable(t)]


def _roomy(task: dict[str, Any], ref: dict[str, str], last: dict[str, int]) -> list[str]:
    # files the reference changes whose end lies at least 2 lines past the last hunk
    return [p for p in sorted(last) if not p.startswith("tests/") and _appendable(ref.get(p))
            and len(task["files"][p].splitlines()) - 1 - last[p] >= 2]


def construct(task: dict[str, Any], kind: str, k: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(construction actually used, {path: new text} of the changed files, the expected measures)."""
    ref = reference_tree(task)
    target = {p: t for p, t in ref.items() if task["files"].get(p) != t}
    r, last = diff_counts(task["reference_diff"])
    other, roomy = _untouched(task, ref), _roomy(task, ref, last)
    expect = {"applies": 1, "tests_pass": 1, "extraneous": 0, "churn": 0, "changed": r, "lint_new": 0}
    if kind == "extra-same-file" and not roomy:
        kind = "extra-other-file"
    if kind in ("extra-other-file", "churn", "extra-lint") and not other:
        kind = "extra-same-file" if roomy else "reference"
    if kind in ("extra-same-file", "extra-other-file"):
        path = roomy[0] if kind == "extra-same-file" else other[0]
        target[path] = ref[path] + "".join(f"_extra_{j} = {j}\n" for j in range(1, k + 1))
        expect.update(extraneous=k, changed=r + k)
    elif kind == "extra-lint":
        target[other[0]] = ref[other[0]] + "import colorsys\n"
        expect.update(extraneous=1, changed=r + 1, lint_new=1)
    elif kind == "churn":
        churn = _churn(task, ref, target, other, roomy)
        expect.update(churn=churn, changed=r + churn)
    elif kind == "malformed":
        expect.update(applies=0, tests_pass=0, extraneous=None, churn=None, changed=None, lint_new=None)
    return kind, target, expect


def _churn(task: dict[str, Any], ref: dict[str, str], target: dict[str, str], other: list[str],
           roomy: list[str]) -> int:
    """Add whitespace and comment churn to ``target``; returns how many lines it changes."""
    where = roomy[0] if roomy else other[0]
    target[where] = target.get(where, ref[where]) + "\n# reviewed: nothing else to change here\n"
    count = 2
    for path in other:
        lines = target.get(path, ref[path]).splitlines(keepends=True)
        at = next((i for i, line in enumerate(lines)
                   if line.lstrip().startswith("def ") and line.rstrip().endswith(":")), None)
        if at is not None:
            lines[at] = lines[at].rstrip("\n") + "  # unchanged\n"
            target[path] = "".join(lines)
            return count + 2  # the line removed and the line added, equal but for the comment
    return count


# -- answers in each format ---------------------------------------------------------------


def _fence(text: str) -> str:
    return "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)


def _groups(old: list[str], new: list[str], context: int) -> list[tuple[int, int, int, int]]:
    return [(g[0][1], g[-1][2], g[0][3], g[-1][4])
            for g in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_grouped_opcodes(context)]


def _find(lines: list[str], part: list[str], start: int) -> int:
    return next((i for i in range(start, len(lines) - len(part) + 1) if lines[i:i + len(part)] == part), -1)


def _first_match_ok(old: list[str], new: list[str], groups, restart: bool) -> bool:
    """True when each hunk's old lines are first found where they are (search-replace searches
    the current text from its start, v4a the old text after the previous hunk)."""
    current, shift, pos = list(old), 0, 0
    for a0, a1, b0, b1 in groups:
        part = old[a0:a1]
        if restart:
            if _find(current, part, 0) != a0 + shift:
                return False
            current[a0 + shift:a1 + shift] = new[b0:b1]
            shift += (b1 - b0) - (a1 - a0)
        else:
            if _find(old, part, pos) != a0:
                return False
            pos = a1
    return True


def _hunks(before: str, after: str, restart: bool) -> tuple[list[str], list[str], list]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    for context in (3, 6, 12, 40):
        groups = _groups(old, new, context)
        if all(a0 < a1 for a0, a1, _, _ in groups) and _first_match_ok(old, new, groups, restart):
            return old, new, groups
    return old, new, [(0, len(old), 0, len(new))]


def to_v4a(start: dict[str, str], target: dict[str, str]) -> str:
    """The change as an apply_patch (V4A) patch."""
    out = ["*** Begin Patch\n"]
    for path, text in sorted(target.items()):
        if path not in start:
            out += [f"*** Add File: {path}\n"] + [f"+{line}" for line in text.splitlines(keepends=True)]
            continue
        out.append(f"*** Update File: {path}\n")
        old, new, groups = _hunks(start[path], text, restart=False)
        for a0, a1, b0, b1 in groups:
            out.append("@@\n")
            for tag, i0, i1, j0, j1 in difflib.SequenceMatcher(a=old[a0:a1], b=new[b0:b1],
                                                               autojunk=False).get_opcodes():
                if tag == "equal":
                    out += [f" {line}" for line in old[a0 + i0:a0 + i1]]
                else:
                    out += [f"-{line}" for line in old[a0 + i0:a0 + i1]] + [f"+{line}" for line in new[b0 + j0:b0 + j1]]
    return "".join(out) + "*** End Patch\n"


def to_search_replace(start: dict[str, str], target: dict[str, str]) -> str:
    """The change as search/replace blocks, one per hunk, under each file's path."""
    out = []
    for path, text in sorted(target.items()):
        if path not in start:
            fence = _fence(text)
            out.append(f"{path}\n{fence}python\n<<<<<<< SEARCH\n=======\n{text}>>>>>>> REPLACE\n{fence}\n\n")
            continue
        old, new, groups = _hunks(start[path], text, restart=True)
        for a0, a1, b0, b1 in groups:
            search, replace = "".join(old[a0:a1]), "".join(new[b0:b1])
            fence = _fence(search + replace)
            out.append(f"{path}\n{fence}python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n{fence}\n\n")
    return "".join(out)


def to_whole(start: dict[str, str], target: dict[str, str]) -> str:
    """The change as whole files, each under its path."""
    return "".join(f"{path}\n{_fence(text)}python\n{text}{_fence(text)}\n\n" for path, text in sorted(target.items()))


def render(fmt: str, start: dict[str, str], target: dict[str, str]) -> str:
    """The change from ``start`` to ``target`` ({path: new text}) as an answer in ``fmt``."""
    from gradeloop.edits import diff_trees

    if fmt == "udiff":
        return diff_trees({p: start[p] for p in target if p in start}, target)
    return {"v4a": to_v4a, "search-replace": to_search_replace, "whole": to_whole}[fmt](start, target)


def malform(fmt: str, answer: str, truncate: bool) -> str:
    """Break a valid answer: cut it two lines into its first hunk / block / file, or alter the
    first line its first hunk expects in the file (a context or removed line; search-replace: the
    first SEARCH line; ``whole``: drop the path line)."""
    lines = answer.splitlines(keepends=True)
    if truncate:
        opener = {"v4a": "@@", "udiff": "@@", "search-replace": "<<<<<<< SEARCH", "whole": "```"}[fmt]
        at = next(i for i, line in enumerate(lines) if line.startswith(opener))
        return "".join(lines[:at + 3])
    if fmt == "whole":
        return "".join(lines[1:])
    if fmt == "search-replace":
        at = next(i for i, line in enumerate(lines) if line.startswith("<<<<<<< SEARCH")) + 1
    else:
        hunk = next(i for i, line in enumerate(lines) if line.startswith("@@"))
        at = next(i for i in range(hunk + 1, len(lines)) if lines[i][:1] in "- ")
    lines[at] = lines[at].rstrip("\n") + " # not in the file\n"
    return "".join(lines)


# -- building and running ----------------------------------------------------------------


def build(out: Path, n: int | None, seed: int, max_tokens: int | None) -> Path:
    """Write the suite (every format) to ``out``; cap ``max_completion_tokens`` when given."""
    import yaml

    from gradeloop.edits import FORMATS
    from gradeloop.suites import code_edits

    written = code_edits.build(n, seed, out, formats=list(FORMATS))
    if max_tokens is not None:
        path = Path(written["eval"])
        definition = yaml.safe_load(path.read_text(encoding="utf-8"))
        definition["data_source"]["sampling_params"]["max_completion_tokens"] = max_tokens
        path.write_text(yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    return Path(written["eval"])


def script(eval_path: Path) -> dict[str, str]:
    """Give every row of the eval a constructed answer; the rows gain ``construction`` and
    ``expected``. Returns {system + user message: answer} for the fake server."""
    rows_path = eval_path.parent / "rows.jsonl"
    rows = [json.loads(line)["item"] for line in rows_path.read_text(encoding="utf-8").splitlines()]
    tasks = list(dict.fromkeys(row["task_id"] for row in rows))
    formats = list(dict.fromkeys(row["format"] for row in rows))
    answers = {}
    for row in rows:
        i, j = tasks.index(row["task_id"]), formats.index(row["format"])
        kind, target, expected = construct(row, CONSTRUCTIONS[(i + j) % len(CONSTRUCTIONS)], 1 + i % 3)
        answer = render(row["format"], row["files"], target)
        if kind == "malformed":
            answer = malform(row["format"], answer, truncate=i // len(CONSTRUCTIONS) % 2 == 0)
        row.update(construction=kind, expected=expected)
        answers[_key(row["messages"])] = answer
    rows_path.write_text("".join(json.dumps({"item": row}, ensure_ascii=False) + "\n" for row in rows),
                         encoding="utf-8")
    return answers


def _key(messages: list[dict[str, Any]]) -> str:
    return "\x00".join(str(m.get("content")) for m in messages)


def run(eval_path: Path, model: str, store: Any, options: Any) -> tuple[str, float]:
    """Run the eval on ``model``; returns (run id, seconds)."""
    from gradeloop import run_eval

    start = time.perf_counter()
    [run_id] = run_eval(eval_path, [model], store=store, progress=True, options=options)
    return run_id, time.perf_counter() - start


# -- the tables --------------------------------------------------------------------------


def measures(item: dict[str, Any]) -> dict[str, Any]:
    """What the four graders measured on one output item."""
    by = {r["type"].removesuffix("-grader").replace("-", "_"): r for r in item["results"]}
    ext = (by.get("extraneous_edits") or {}).get("details") or {}
    lint = (by.get("lint_delta") or {}).get("details") or {}
    applied = bool(ext.get("applied"))
    sample = item.get("sample") or {}
    return {"applies": (by.get("applies") or {}).get("score"), "tests_pass": (by.get("tests_pass") or {}).get("score"),
            "applied": applied, "reason": ext.get("reason"),
            "extraneous": ext.get("extraneous") if applied else None, "churn": ext.get("churn") if applied else None,
            "changed": ext.get("changed") if applied else None, "share": ext.get("share") if applied else None,
            "churn_share": ext.get("churn_share") if applied else None,
            "lint_new": lint.get("new") if lint.get("applied") else None,
            "tokens": (sample.get("usage") or {}).get("completion_tokens"),
            "finish": sample.get("finish_reason")}


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _expected_share(e: dict[str, Any], key: str) -> float | None:
    return None if e["changed"] is None else (e[key] / e["changed"] if e["changed"] else 0.0)


def scripted_table(rows: list[tuple[dict, dict]], field: str) -> None:
    """Per value of ``field``: each measure next to the value constructed."""
    groups: dict[str, list] = defaultdict(list)
    for item, m in rows:
        groups[item[field]].append((item["expected"], m))
    print(f"\nBy {field} (measured / constructed)")
    print(f"| {field} | items | applies | tests pass | extraneous share (applied) | churn share (applied) "
          f"| new lint findings | items off |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for value in sorted(groups):
        pairs = groups[value]
        got = {k: _mean([m[k] for _, m in pairs]) for k in ("applies", "tests_pass", "share", "churn_share")}
        want = {"applies": _mean([e["applies"] for e, _ in pairs]), "tests_pass": _mean([e["tests_pass"] for e, _ in pairs]),
                "share": _mean([_expected_share(e, "extraneous") for e, _ in pairs]),
                "churn_share": _mean([_expected_share(e, "churn") for e, _ in pairs])}
        lint_got = sum(m["lint_new"] or 0 for _, m in pairs)
        lint_want = sum(e["lint_new"] or 0 for e, _ in pairs)
        off = sum(1 for e, m in pairs if differences(e, m))
        print(f"| {value} | {len(pairs)} | {_pct(got['applies'])} / {_pct(want['applies'])} "
              f"| {_pct(got['tests_pass'])} / {_pct(want['tests_pass'])} | {_num(got['share'], 3)} / {_num(want['share'], 3)} "
              f"| {_num(got['churn_share'], 3)} / {_num(want['churn_share'], 3)} | {lint_got} / {lint_want} | {off} |")


def differences(expected: dict[str, Any], m: dict[str, Any]) -> list[str]:
    """The measures of one item that differ from their constructed values."""
    out = []
    for key in ("applies", "tests_pass", "extraneous", "churn", "changed", "lint_new"):
        if expected[key] is not None and m[key] != expected[key]:
            out.append(f"{key} {m[key]} (constructed {expected[key]})")
    return out


def report_scripted(store: Any, run_id: str, seconds: float | None) -> None:
    """Every table of a scripted run."""
    from gradeloop import output_item_objects

    items = output_item_objects(store, run_id)
    rows = [(i["datasource_item"], measures(i)) for i in items]
    timing = f" in {seconds:.0f}s" if seconds is not None else ""
    exact = sum(1 for item, m in rows if not differences(item["expected"], m))
    print(f"scripted answers through FakeOpenAI (run {run_id}): {len(rows)} items{timing}; "
          f"{exact} of {len(rows)} measured exactly as constructed")
    for field in ("construction", "format", "kind"):
        scripted_table(rows, field)
    off = [(item, m) for item, m in rows if differences(item["expected"], m)]
    print(f"\nitems whose measures differ from the construction: {len(off)}")
    for item, m in off:
        print(f"  {item['id']} [{item['construction']}]: {'; '.join(differences(item['expected'], m))}"
              + (f" — {m['reason']}" if m["reason"] else ""))
    print("\nwhy the malformed answers failed (strict parsing), per format:")
    print_reasons([(item, m) for item, m in rows if item["construction"] == "malformed"])


def _reason(reason: str | None) -> str:
    # one bucket per message: drop paths, line numbers and quoted text
    text = re.sub(r"^operation \d+ \([^)]*\): ", "", reason or "(applied)")
    text = re.split(r" \(|: '|: \"", text)[0]
    return re.sub(r"\b\d+\b", "N", text)[:120]


def model_table(rows: list[tuple[dict, dict]], field: str) -> None:
    """Per value of ``field``: applies, tests pass, extraneous-edit rate and share, churn, lint."""
    groups: dict[str, list] = defaultdict(list)
    for item, m in rows:
        groups[item[field]].append(m)
    print(f"\nBy {field}")
    print(f"| {field} | items | applies | applies (lenient) | tests pass | edits with extraneous lines (applied) | mean extraneous share "
          f"| mean churn share | new lint findings | mean completion tokens | at token limit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for value in sorted(groups) + ["all"]:
        ms = [m for ms in groups.values() for m in ms] if value == "all" else groups[value]
        applied = [m for m in ms if m["applied"]]
        rate = _mean([1.0 if m["extraneous"] else 0.0 for m in applied])
        print(f"| {value} | {len(ms)} | {_pct(_mean([m['applies'] for m in ms]))} "
              f"| {_pct(_mean([m['lenient'] for m in ms]))} | {_pct(_mean([m['tests_pass'] for m in ms]))} "
              f"| {_pct(rate)} (n={len(applied)}) | {_num(_mean([m['share'] for m in applied]), 3)} "
              f"| {_num(_mean([m['churn_share'] for m in applied]), 3)} | {sum(m['lint_new'] or 0 for m in applied)} "
              f"| {_num(_mean([m['tokens'] for m in ms]), 0)} | {sum(1 for m in ms if m['finish'] == 'length')} |")


def applies_leniently(output_item: dict[str, Any]) -> float:
    """1.0 when the sample's answer parses and applies in lenient mode (not graded by the run)."""
    from gradeloop.edits import EditError, Tree, apply_edit, parse_edit

    item, output = output_item["datasource_item"], (output_item.get("sample") or {}).get("output") or [{}]
    text = output[0].get("content") if isinstance(output[0].get("content"), str) else ""
    try:
        with Tree.from_item(item) as tree:
            apply_edit(tree, parse_edit(text, item["format"], lenient=True))
    except EditError:
        return 0.0
    return 1.0


def report_model(store: Any, run_id: str, seconds: float | None) -> None:
    """Every table of a model's run."""
    from gradeloop import output_item_objects, run_summary

    summary = run_summary(store, run_id)
    items = output_item_objects(store, run_id)
    rows = [(i["datasource_item"], measures(i)) for i in items]
    tasks = len({item["task_id"] for item, _ in rows})
    timing = f" in {seconds:.0f}s ({seconds / max(len(rows), 1):.1f}s per item)" if seconds is not None else ""
    print(f"{summary['model']} (run {run_id}): {len(rows)} items ({tasks} tasks){timing}, "
          f"{summary['completion_tokens']} completion tokens")
    for item, m in zip(items, (m for _, m in rows)):
        m["lenient"] = applies_leniently(item)
    for field in ("format", "kind"):
        model_table(rows, field)
    print("\nwhy edits did not apply (strict parsing), per format:")
    print_reasons([(item, m) for item, m in rows if not m["applied"]])


def print_reasons(rows: list[tuple[dict, dict]]) -> None:
    """How many edits failed for each reason, per format (paths, numbers and quotes blanked)."""
    reasons = Counter((item["format"], _reason(m["reason"])) for item, m in rows)
    for (fmt, reason), n in sorted(reasons.items(), key=lambda kv: (kv[0][0], -kv[1])):
        print(f"  {fmt}: {n}× {reason}")


def report(store: Any, run_id: str, seconds: float | None = None) -> None:
    """The scripted tables when the run's items carry constructed values, else the model tables."""
    from gradeloop import output_item_objects

    first = output_item_objects(store, run_id, limit=1)
    if first and "expected" in first[0]["datasource_item"]:
        report_scripted(store, run_id, seconds)
    else:
        report_model(store, run_id, seconds)


def code_edit_runs(store: Any) -> list[str]:
    """The ids of every run in the store of an eval the code-edits suite wrote, oldest first."""
    runs = [r for r in store.list_runs(limit=10_000)
            if (store.get_eval(r["eval_id"])["definition"].get("metadata") or {}).get("suite") == "code-edits"]
    return [r["id"] for r in reversed(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("scripted", "smollm2"), default="scripted")
    parser.add_argument("--n", type=int, default=None,
                        help="items (scripted: all 164; smollm2: 16); tasks × 4 formats")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="local/smollm2")
    parser.add_argument("--max-tokens", type=int, default=768, help="smollm2: max_completion_tokens")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--home", type=Path, required=False, help="eval and store (default: a new temp dir)")
    parser.add_argument("--report-only", type=Path, default=None, metavar="HOME",
                        help="run nothing: print the tables of every code-edit run in HOME/gradeloop.db")
    args = parser.parse_args()

    from gradeloop import Store
    from gradeloop.runner import RunOptions

    if args.report_only is not None:
        db = args.report_only / "gradeloop.db"
        if not db.is_file():
            parser.error(f"--report-only: {db} does not exist")
        store = Store(db)
        for run_id in code_edit_runs(store) or parser.error(f"--report-only: {db} holds no code-edit run"):
            report(store, run_id)
            print()
        return
    import tempfile

    home = args.home or Path(tempfile.mkdtemp(prefix="code-edits-"))
    home.mkdir(parents=True, exist_ok=True)
    store = Store(home / "gradeloop.db")
    if args.part == "scripted":
        from gradeloop.testing import FakeOpenAI

        eval_path = build(home / "suite", args.n, args.seed, None)
        answers = script(eval_path)
        os.environ.setdefault("OPENAI_API_KEY", "not-a-key")  # the fake server asks for none
        with FakeOpenAI(responder=lambda body: answers.get(_key(body["messages"]), ""), record=False) as server:
            options = RunOptions(base_url=server.url, use_cache=False, concurrency=args.concurrency or 4)
            run_id, seconds = run(eval_path, "openai/fake", store, options)
    else:
        eval_path = build(home / "suite", args.n or 16, args.seed, args.max_tokens)
        run_id, seconds = run(eval_path, args.model, store, RunOptions(use_cache=False, concurrency=args.concurrency))
    print(f"eval: {eval_path}; store: {home / 'gradeloop.db'}")
    report(store, run_id, seconds)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
