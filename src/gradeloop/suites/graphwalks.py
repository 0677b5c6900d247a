"""Graphwalks: a random directed graph written as an edge list of hex node ids, and an operation
on it (a breadth-first search to an exact depth, or the parents of a node), at the lengths you
need; or the published ``openai/graphwalks`` records.

The prompt follows the published layout (the instructions, a worked example graph with four
examples, "Here is the graph to operate on:", the edges, the operation, and the request to put
the answer on the last line). The BFS sentence asks for the nodes at exactly the given depth,
as the card's 2026 fix does: BFS does not revisit nodes, so a node counts at its shortest
distance only. As published, every node has four outgoing edges drawn at random (repeats and
self-loops included) and the edges are listed grouped by source.

Length: the tokens of the prompt (o200k_base or ``tokenizer``), within 2% of the target and
never over it. Each node id's tokens are counted once; an edge line costs its two ids plus
``" ->"`` and the newline (o200k's pre-tokenizer never joins them), so the edge list is sized
without tokenizing it; the whole prompt is counted once at the end.

Layouts (issue 14, point 5): ``native`` is the published prompt. The document layouts (``xml``,
``pipe``, ``json``, see ``_layout``) cut the edge list into documents of ``EDGES_PER_DOC`` edges
(id: the document's number; title: which edges, ``edges 201-400``), with the instructions, the
example, the operation and the request for the answer as one block at the ``start``, the ``end``
or ``both``. Their edge budget is corrected by what the written prompt counts (a few rounds).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._layout import Doc, compose
from ._long import NATIVE, length_bin, read_records, variants, write_eval
from ._tokens import Tokenizer, get_tokenizer

__all__ = ["PROBLEMS", "TOLERANCE", "generate_item", "generate", "build", "import_records", "eval_definition",
           "bfs_at_depth", "parents_of", "prompt_text", "documents_prompt", "EDGES_PER_DOC"]

PROBLEMS = ("bfs", "parents")
TOLERANCE = 0.02
OUT_DEGREE = 4
MAX_COMPLETION_TOKENS = 2048
EDGES_PER_DOC = 200
PROBE_TOKENS = 16384

INSTRUCTIONS = (
    "You will be given a graph as a list of directed edges. All nodes are at least degree 1. You will also "
    "get a description of an operation to perform on the graph.\n"
    "Your job is to execute the operation on the graph and return the set of nodes that the operation "
    "results in. If asked for a breadth-first search (BFS), only return the nodes at exactly that depth "
    "from the starting node (a node reached earlier does not count again), do not return the starting "
    "node. If asked for the parents of a node, only return the nodes that have an edge leading to the "
    "given node, do not return the given node itself.\n\n"
    "Here is an example:\n<begin example>\n\n"
    "The graph has the following edges:\nuvwx -> alke\nabcd -> uvwx\nabcd -> efgh\nefgh -> uvwx\n\n"
    "Example 1:\nOperation:\nPerform a BFS from node abcd with depth 1.\nFinal Answer: [uvwx, efgh]\n\n"
    "Example 2:\nOperation:\nPerform a BFS from node alke with depth 1.\nFinal Answer: []\n\n"
    "Example 3:\nOperation:\nFind the parents of node uvwx.\nFinal Answer: [abcd, efgh]\n\n"
    "Example 4:\nOperation:\nFind the parents of node abcd.\nFinal Answer: []\n\n"
    "<end example>\nHere is the graph to operate on:\nThe graph has the following edges:\n"
)
_DOCS_INTRO = "The graph to operate on is the list of edges in the documents, one edge per line."
FOOTER = ("You should immediately return the set of nodes that the operation results in, with no additional "
          "text. Return your final answer as a list of nodes in the very last line of your response.\n")


def operation(problem: str, node: str, depth: int) -> str:
    """The operation line, in the published wording."""
    if problem == "bfs":
        return f"Perform a BFS from node {node} with depth {depth}."
    return f"Find the parents of node {node}."


def prompt_text(edge_lines: str, problem: str, node: str, depth: int) -> str:
    """The whole user message: instructions and example, the edges, the operation, the footer."""
    return f"{INSTRUCTIONS}{edge_lines}\nOperation:\n{operation(problem, node, depth)}\n\n{FOOTER}"


def documents_prompt(edges: list[tuple[str, str]], problem: str, node: str, depth: int, layout: str,
                     placement: str) -> str:
    """The user message in a document ``layout``: the edges in documents of ``EDGES_PER_DOC``
    (``a -> b`` lines; id: the document's number, title: ``edges 1-200``), and the instructions,
    the operation and the footer as one block at the ``start``, ``end`` or ``both``."""
    head = INSTRUCTIONS[:INSTRUCTIONS.index("Here is the graph to operate on:")]
    block = f"{head}{_DOCS_INTRO}\n\nOperation:\n{operation(problem, node, depth)}\n\n{FOOTER.rstrip()}"
    docs = [Doc(str(k + 1), f"edges {start + 1}-{min(start + EDGES_PER_DOC, len(edges))}",
                "\n".join(f"{s} -> {d}" for s, d in edges[start:start + EDGES_PER_DOC]))
            for k, start in enumerate(range(0, len(edges), EDGES_PER_DOC))]
    return compose(block, docs, layout, placement)


def bfs_at_depth(edges: list[tuple[str, str]], start: str, depth: int) -> list[str]:
    """Nodes whose shortest distance from ``start`` is exactly ``depth`` (sorted); never ``start``."""
    children: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        children[src].append(dst)
    seen, frontier = {start}, [start]
    for _ in range(depth):
        nxt = []
        for node in frontier:
            for child in children.get(node, ()):
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
        frontier = nxt
    return sorted(frontier) if depth > 0 else []


def parents_of(edges: list[tuple[str, str]], node: str) -> list[str]:
    """Nodes with an edge to ``node``, other than ``node`` itself (sorted)."""
    return sorted({src for src, dst in edges if dst == node and src != node})


def _edges(rng: random.Random, tok: Tokenizer, budget: int) -> list[tuple[str, str]]:
    """Edges grouped by source, four per node, whose lines take at most ``budget`` tokens."""
    sample = [f"{rng.getrandbits(40):010x}" for _ in range(64)]
    per_line = sum(tok.count(n) + tok.count(" " + n) for n in sample) / len(sample) + 2
    ids = list(dict.fromkeys(f"{rng.getrandbits(40):010x}" for _ in range(int(budget / per_line / OUT_DEGREE * 1.3) + 4)))
    head = {n: tok.count(n) for n in ids}
    tail = {n: tok.count(" " + n) for n in ids}
    edges, used = [], 0
    for src in ids:
        for dst in rng.choices(ids, k=OUT_DEGREE):
            cost = head[src] + tail[dst] + 2
            if used + cost > budget:
                return edges
            edges.append((src, dst))
            used += cost
    return edges


def _question(rng: random.Random, edges: list[tuple[str, str]], problem: str) -> tuple[str, int, list[str]]:
    """A start node and depth with, when possible, a non-empty answer (a few tries)."""
    sources = sorted({s for s, _ in edges})
    targets = sorted({d for _, d in edges})
    for _ in range(20):
        if problem == "bfs":
            node, depth = rng.choice(sources), rng.randint(1, 3)
            answer = bfs_at_depth(edges, node, depth)
        else:
            node, depth = rng.choice(targets), 0
            answer = parents_of(edges, node)
        if answer:
            break
    return node, depth, answer


def generate_item(target: int, problem: str, seed: int | str, tokenizer: Tokenizer | None = None,
                  layout: str = NATIVE, placement: str = NATIVE) -> dict[str, Any]:
    """One Graphwalks item whose prompt is at most ``target`` tokens (at least 98% of it): the
    published fields (``prompt``, ``answer_nodes``, ``prompt_chars``, ``problem_type``) plus
    ``n_tokens``, ``length_bin``, ``target_tokens``, ``node`` and ``depth``. A document ``layout``
    (xml, pipe, json) writes the prompt with :func:`documents_prompt` and adds ``layout`` and
    ``placement``; ``native`` (the default) is the published prompt."""
    if problem not in PROBLEMS:
        raise InputError(f"unknown problem {problem!r} (bfs or parents)", field="problem")
    tok = tokenizer or get_tokenizer()
    if layout != NATIVE:
        return _documents_item(target, problem, seed, tok, layout, placement)
    rng = random.Random(f"graphwalks:{seed}:{target}:{problem}")
    fixed = tok.count(prompt_text("", problem, "0" * 10, 3)) + 4  # the operation's id may cost a token more
    if fixed + 40 > target:
        raise InputError(f"{target} tokens is too short for a graph (the instructions take {fixed})", field="tokens")
    edges = _edges(rng, tok, target - fixed)
    node, depth, answer = _question(rng, edges, problem)
    text = prompt_text("".join(f"{s} -> {d}\n" for s, d in edges), problem, node, depth)
    tokens = tok.count(text)
    while tokens > target:  # a safety net: the sizing above is exact for o200k_base
        edges = edges[:-max(1, (tokens - target) // 20)]
        node, depth, answer = _question(rng, edges, problem)
        text = prompt_text("".join(f"{s} -> {d}\n" for s, d in edges), problem, node, depth)
        tokens = tok.count(text)
    return {"prompt": text, "answer_nodes": answer, "prompt_chars": len(text), "problem_type": problem,
            "n_tokens": tokens, "length_bin": length_bin(tokens), "target_tokens": target, "node": node,
            "depth": depth}


def _documents_item(target: int, problem: str, seed: int | str, tok: Tokenizer, layout: str,
                    placement: str) -> dict[str, Any]:
    """An item in a document layout within 2% below ``target``: edges drawn to a budget, the
    written prompt counted, the budget corrected by the difference (aiming 0.5% under)."""
    fixed = tok.count(documents_prompt([], problem, "0" * 10, 3, layout, placement)) + 4
    if fixed + 40 > target:
        raise InputError(f"{target} tokens is too short for a graph (the instructions take {fixed})", field="tokens")
    budget, floor = target - fixed, math.ceil((1 - TOLERANCE) * target)
    if budget > 2 * PROBE_TOKENS:  # the first budget from the layout's cost per edge on a small graph
        edges = _edges(random.Random(f"graphwalks:{seed}:{target}:{problem}"), tok, PROBE_TOKENS)
        written = tok.count(documents_prompt(edges, problem, "0" * 10, 3, layout, placement)) - fixed
        budget = int(budget * PROBE_TOKENS / written) - target // 100
    for _ in range(8):
        rng = random.Random(f"graphwalks:{seed}:{target}:{problem}")
        edges = _edges(rng, tok, budget)
        node, depth, answer = _question(rng, edges, problem)
        text = documents_prompt(edges, problem, node, depth, layout, placement)
        tokens = tok.count(text)
        if floor <= tokens <= target:
            return {"prompt": text, "answer_nodes": answer, "prompt_chars": len(text), "problem_type": problem,
                    "n_tokens": tokens, "length_bin": length_bin(tokens), "target_tokens": target, "node": node,
                    "depth": depth, "layout": layout, "placement": placement}
        budget += target - tokens - target // 200
    raise InputError(f"could not fit a {layout} prompt to {target} tokens", field="tokens")


def generate(tokens: list[int], problems: list[str], n: int, seed: int = 0, tokenizer: str | None = None,
             layouts: list[str] | None = None, placements: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """``n`` items per (length, problem), each once per layout and placement (see
    ``_long.variants``; placement defaults to ``both``), one at a time; deterministic for ``seed``.
    Without ``layouts`` and ``placements`` the items are the published form, without ``layout``
    fields; with them, every item (``native`` ones too) carries ``layout`` and ``placement``."""
    tok = get_tokenizer(tokenizer)
    pairs, tagged = variants(layouts, placements, "both"), bool(layouts or placements)
    for target in tokens:
        for problem in problems:
            for i in range(n):
                for layout, placement in pairs:
                    item = generate_item(target, problem, f"{seed}:{i}", tok, layout, placement)
                    yield item | {"layout": layout, "placement": placement} if tagged else item


_ITEM_SCHEMA = {
    "type": "object", "required": ["prompt", "answer_nodes"],
    "properties": {"prompt": {"type": "string"}, "answer_nodes": {"type": "array", "items": {"type": "string"}},
                   "problem_type": {"type": "string"}, "length_bin": {"type": "integer"},
                   "n_tokens": {"type": "integer"}},
}


def eval_definition(name: str, metadata: dict[str, Any], mode: str = "corrected",
                    max_completion_tokens: int = MAX_COMPLETION_TOKENS) -> dict[str, Any]:
    """The eval :func:`build` and :func:`import_records` write: the prompt as one user message,
    graded by the ``graphwalks`` grader (set F1) in ``mode`` (``corrected`` or ``card``)."""
    return {
        "name": name,
        "metadata": {"suite": "graphwalks", "gradeloop_metric": "mean_score", **metadata},
        "data_source_config": {"type": "custom", "include_sample_schema": True, "item_schema": _ITEM_SCHEMA},
        "testing_criteria": [{"type": "graphwalks", "name": "Graphwalks F1", "input": "{{ sample.output_text }}",
                              "answer_nodes": "{{ item.answer_nodes }}", "mode": mode}],
        "data_source": {
            "type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{ item.prompt }}"}]},
            "sampling_params": {"temperature": 0, "max_completion_tokens": max_completion_tokens},
        },
    }


def build(tokens: list[int], problems: list[str], n: int, seed: int, out_dir: str | Path, *,
          tokenizer: str | None = None, mode: str = "corrected", max_completion_tokens: int = MAX_COMPLETION_TOKENS,
          layouts: list[str] | None = None, placements: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``rows.jsonl``; returns ``{"eval", "rows", "items", "counts"}``
    (counts per ``length_bin`` and ``problem_type``, and per ``layout`` and ``placement`` when asked for)."""
    counts: dict[str, Counter] = {"length_bin": Counter(), "problem_type": Counter(), "layout": Counter(),
                                  "placement": Counter()}

    def items() -> Iterator[dict[str, Any]]:
        for item in generate(tokens, problems, n, seed, tokenizer, layouts, placements):
            for key in counts:
                if key in item:
                    counts[key][item[key]] += 1
            yield item

    meta = {"seed": seed, "tokens": tokens, "problems": problems, "n": n, "tokenizer": tokenizer or "o200k_base"}
    if layouts or placements:
        meta |= {"layouts": layouts or [NATIVE], "placements": placements or ["both"]}
    header = "# Built by `gradeloop suite graphwalks build`; rows are in rows.jsonl.\n"
    result = write_eval(out_dir, eval_definition("Graphwalks", meta, mode, max_completion_tokens), items(), header)
    return result | {"counts": {k: dict(v) for k, v in counts.items() if v}}


def _record_item(record: dict[str, Any], file: str, line: int, tok: Tokenizer) -> dict[str, Any]:
    if not isinstance(record.get("prompt"), str):
        message = "required field is missing" if "prompt" not in record else "must be a string"
        raise InputError(message, file=file, line=line, field="prompt")
    key = "answer_nodes" if "answer_nodes" in record else "answer"
    nodes = record.get(key)
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        raise InputError("must be a list of node ids (answer_nodes, or answer as the card's table names it)",
                         file=file, line=line, field=key)
    if record.get("problem_type") not in PROBLEMS:
        raise InputError("must be bfs or parents", file=file, line=line, field="problem_type")
    tokens = tok.count(record["prompt"])
    return {**record, "answer_nodes": nodes, "n_tokens": tokens, "length_bin": length_bin(tokens)}


def import_records(path: str | Path, out_dir: str | Path, *, tokenizer: str | None = None,
                   limit: int | None = None, mode: str = "corrected",
                   max_completion_tokens: int = MAX_COMPLETION_TOKENS) -> dict[str, Any]:
    """Write an eval from the published ``openai/graphwalks`` file (Parquet or JSONL), every field
    kept, with ``n_tokens`` and ``length_bin`` added (and ``answer_nodes`` when a record names
    its list ``answer``)."""
    tok = get_tokenizer(tokenizer)
    counts: dict[str, Counter] = {"length_bin": Counter(), "problem_type": Counter()}

    def items() -> Iterator[dict[str, Any]]:
        for n, (line, record) in enumerate(read_records(path)):
            if limit is not None and n >= limit:
                return
            item = _record_item(record, str(path), line, tok)
            for key in counts:
                counts[key][item[key]] += 1
            yield item

    meta = {"source": Path(path).name, "tokenizer": tokenizer or "o200k_base"}
    header = f"# openai/graphwalks records from {Path(path).name}, imported by `gradeloop suite graphwalks import`.\n"
    result = write_eval(out_dir, eval_definition("OpenAI-Graphwalks", meta, mode, max_completion_tokens), items(),
                        header)
    if not result["items"]:
        raise InputError("no records", file=str(path))
    return result | {"counts": {k: dict(v) for k, v in counts.items()}}
