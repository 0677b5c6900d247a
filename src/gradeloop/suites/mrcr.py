"""OpenAI-MRCR (multi-round co-reference resolution): build conversations at the lengths you
need, or import the published ``openai/mrcr`` records.

A conversation asks for pieces of writing ("write a poem about tapirs"); 2, 4 or 8 of its
requests are identical (the needles) among distractor requests drawn from the same forms and
topics (near misses: the same topic in another form, the same form about another topic), and
every answer comes from the same seeded writer, so a needle's answer does not stand out. The
last user turn is the published one: "Prepend HASH to the k-th (1 indexed) <form> about
<topic>. Do not include any other text in your response." The expected answer is the hash
followed by the k-th needle's answer, graded by the ``mrcr`` grader (the published rule).

Length is counted as the card does (the tokens of every message's content, plus the answer's)
with o200k_base or ``tokenizer``; a built item is within 2% of its target and never over it,
so an ``8k`` item lands in the published bin (4096, 8192]. Each message is counted once as it is
made; the last distractor answer is cut to the tokens left.

Layouts (issue 14, point 5): ``native`` is the published form, the conversation as messages. The
document layouts (``xml``, ``pipe``, ``json``, see ``_layout``) flatten it into one user message,
each turn a document (id: its turn number, 1 for the first message; title: its role), with the
final request at the ``start``, the ``end`` or ``both``. The answer and the grader do not change.
A flattened item is fitted to its length by building the conversation to a budget, counting what
is written, and correcting the budget (a few rounds at most).
"""

from __future__ import annotations

import json
import math
import random
import string
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import _prose
from ._layout import Doc, compose
from ._long import NATIVE, length_bin, read_records, variants, write_eval
from ._tokens import Tokenizer, get_tokenizer

__all__ = ["NEEDLES", "TOLERANCE", "generate_item", "generate", "build", "import_records", "eval_definition",
           "flatten"]

NEEDLES = (2, 4, 8)
TOLERANCE = 0.02
MAX_COMPLETION_TOKENS = 1024
_HASH_CHARS = string.ascii_letters + string.digits
_PUBLISHED = ("prompt", "answer", "random_string_to_prepend", "n_needles", "desired_msg_index",
              "total_messages", "n_chars")


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def final_request(random_string: str, k: int, form: str, topic: str) -> str:
    """The last user turn, in the published wording."""
    return (f"Prepend {random_string} to the {_ordinal(k)} (1 indexed) {form} about {topic}. "
            "Do not include any other text in your response.")


class _Counter:
    """Tokens of texts, each counted once."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok, self.total = tokenizer, 0

    def add(self, text: str) -> int:
        n = self.tok.count(text)
        self.total += n
        return n


def _distractor(rng: random.Random, form: str, topic: str) -> tuple[str, str]:
    """Another request: a near miss (same topic or same form) two times in three, else any."""
    while True:
        roll = rng.random()
        other = (form if roll < 0.33 else rng.choice(_prose.FORMS),
                 topic if 0.33 <= roll < 0.66 else rng.choice(_prose.TOPICS))
        if other != (form, topic):
            return other


def _cut(tokenizer: Tokenizer, text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` tokens, at a word boundary."""
    ids = tokenizer.encode(text)
    if len(ids) <= budget:
        return text
    cut = tokenizer.decode(ids[:budget]).rsplit(None, 1)[0].rstrip(",;:") + "."
    while tokenizer.count(cut) > budget and " " in cut:
        cut = cut.rsplit(None, 1)[0] + "."
    return cut


def generate_item(target: int, n_needles: int, seed: int | str, tokenizer: Tokenizer | None = None,
                  layout: str = NATIVE, placement: str = NATIVE) -> dict[str, Any]:
    """One MRCR item of at most ``target`` tokens (and at least 98% of it): the messages and the
    published fields plus ``length_bin``, ``n_tokens``, ``target_tokens``, ``form``, ``topic``.
    A document ``layout`` (xml, pipe, json) writes the conversation as one user message (see
    :func:`flatten`) and adds ``layout`` and ``placement``; ``native`` (the default) is the published form."""
    tok = tokenizer or get_tokenizer()
    if layout == NATIVE:
        return _conversation(target, n_needles, seed, tok, target)
    return _flat_item(target, n_needles, seed, tok, layout, placement)


FLAT_INTRO = "The documents are the turns of a conversation (id: the turn's number; title: who spoke)."


def flatten(messages: list[dict[str, Any]], layout: str, placement: str) -> str:
    """The conversation as one user message: every turn but the last a document (id: its turn
    number from 1, title: its role) in ``layout``, and the last turn (the request), after a line
    saying what the documents are, at the ``start``, ``end`` or ``both``."""
    docs = [Doc(str(i + 1), m["role"], m["content"]) for i, m in enumerate(messages[:-1])]
    return compose(f"{FLAT_INTRO}\n{messages[-1]['content']}", docs, layout, placement)


PROBE_TOKENS = 16384


def _flat_item(target: int, n_needles: int, seed: int | str, tok: Tokenizer, layout: str,
               placement: str) -> dict[str, Any]:
    """A flattened item within 2% below ``target``: the conversation is built to a budget, its
    written form counted, and the budget corrected by the difference (aiming 0.5% under). The
    first budget comes from the layout's cost on a short conversation, so a long item is
    usually built once."""
    budget, floor = target, math.ceil((1 - TOLERANCE) * target)
    if target > 2 * PROBE_TOKENS:
        probe = _conversation(target, n_needles, seed, tok, PROBE_TOKENS)
        written = tok.count(flatten(probe["messages"], layout, placement)) + tok.count(probe["answer"])
        budget = int(target * probe["n_tokens"] / written) - target // 100  # ids grow longer: 1% under
    for _ in range(8):
        item = _conversation(target, n_needles, seed, tok, budget)
        text = flatten(item["messages"], layout, placement)
        tokens = tok.count(text) + tok.count(item["answer"])
        if floor <= tokens <= target:
            return item | {"messages": [{"role": "user", "content": text}], "n_chars": len(text),
                           "length_bin": length_bin(tokens), "n_tokens": tokens, "layout": layout,
                           "placement": placement}
        budget += target - tokens - target // 200
    raise InputError(f"could not fit a {layout} item to {target} tokens", field="tokens")


def _conversation(target: int, n_needles: int, seed: int | str, tok: Tokenizer, budget: int) -> dict[str, Any]:
    """The conversation of the item for ``target`` (its seed and answer sizes), built to ``budget`` tokens."""
    rng = random.Random(f"mrcr:{seed}:{target}:{n_needles}")
    form, topic = rng.choice(_prose.FORMS), rng.choice(_prose.TOPICS)
    k = rng.randint(1, n_needles)
    prefix = "".join(rng.choices(_HASH_CHARS, k=10))
    max_words = max(30, min(450, int(target / (n_needles + 6) / 1.4)))
    words = lambda: rng.randint(max_words // 4, max_words)  # noqa: E731
    counter = _Counter(tok)
    ask, last = _prose.request(form, topic), final_request(prefix, k, form, topic)
    counter.add(last)
    needles = [(ask, _prose.answer(rng, form, topic, words())) for _ in range(n_needles)]
    for pair in needles:
        counter.add(pair[0]), counter.add(pair[1])
    answer = prefix + needles[k - 1][1]
    counter.add(answer)
    if counter.total > budget:
        raise InputError(f"{target} tokens is too short for {n_needles} needles (they alone take "
                         f"{counter.total})", field="tokens")
    distractors = _fill(rng, tok, counter, budget, form, topic, words)
    return _assemble(rng, needles, distractors, last, k, answer, prefix, counter.total, target) | {
        "form": form, "topic": topic}


def _fill(rng: random.Random, tok: Tokenizer, counter: _Counter, target: int, form: str, topic: str,
          words: Any) -> list[tuple[str, str]]:
    """Distractor pairs until ``target`` is reached; the last one's answer is cut to fit."""
    pairs: list[tuple[str, str]] = []
    while True:
        f, t = _distractor(rng, form, topic)
        ask, reply = _prose.request(f, t), _prose.answer(rng, f, t, words())
        cost = tok.count(ask) + tok.count(reply)
        if counter.total + cost <= target:
            counter.total += cost
            pairs.append((ask, reply))
            continue
        left = target - counter.total - tok.count(ask)
        if left >= 16:
            reply = _cut(tok, reply, left)
            counter.total += tok.count(ask) + tok.count(reply)
            pairs.append((ask, reply))
        return pairs


def _assemble(rng: random.Random, needles: list, distractors: list, last: str, k: int, answer: str,
              prefix: str, tokens: int, target: int) -> dict[str, Any]:
    slots = set(rng.sample(range(len(distractors) + len(needles)), len(needles)))
    pairs, d, n, desired = [], iter(distractors), 0, -1
    for i in range(len(distractors) + len(needles)):
        if i in slots:
            n += 1
            if n == k:
                desired = 2 * i + 1
            pairs.append(needles[n - 1])
        else:
            pairs.append(next(d))
    messages = [{"role": role, "content": text} for pair in pairs
                for role, text in zip(("user", "assistant"), pair)]
    messages.append({"role": "user", "content": last})
    return {"messages": messages, "answer": answer, "random_string_to_prepend": prefix,
            "n_needles": len(needles), "desired_msg_index": desired, "total_messages": len(messages),
            "n_chars": sum(len(m["content"]) for m in messages), "length_bin": length_bin(tokens),
            "n_tokens": tokens, "target_tokens": target}


def generate(tokens: list[int], needles: list[int], n: int, seed: int = 0, tokenizer: str | None = None,
             layouts: list[str] | None = None, placements: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """``n`` items per (length, needle count), each once per layout and placement (see
    ``_long.variants``; placement defaults to ``end``), one at a time; the same arguments give the
    same items, and an item does not change when other lengths or counts are added. Without
    ``layouts`` and ``placements`` the items are the published form, without ``layout`` fields;
    with them, every item (``native`` ones too) carries ``layout`` and ``placement``."""
    tok = get_tokenizer(tokenizer)
    pairs, tagged = variants(layouts, placements, "end"), bool(layouts or placements)
    for target in tokens:
        for count in needles:
            if count not in NEEDLES:
                raise InputError(f"{count} needles is not offered (2, 4 or 8, as published)", field="needles")
            for i in range(n):
                for layout, placement in pairs:
                    item = generate_item(target, count, f"{seed}:{i}", tok, layout, placement)
                    yield item | {"layout": layout, "placement": placement} if tagged else item


_ITEM_SCHEMA = {
    "type": "object", "required": ["messages", "answer", "random_string_to_prepend"],
    "properties": {"messages": {"type": "array", "items": {"type": "object"}}, "answer": {"type": "string"},
                   "random_string_to_prepend": {"type": "string"}, "n_needles": {"type": "integer"},
                   "length_bin": {"type": "integer"}, "n_tokens": {"type": "integer"}},
}


def eval_definition(name: str, metadata: dict[str, Any], max_completion_tokens: int = MAX_COMPLETION_TOKENS
                    ) -> dict[str, Any]:
    """The eval both :func:`build` and :func:`import_records` write: the conversation as input,
    graded by the ``mrcr`` grader."""
    return {
        "name": name,
        "metadata": {"suite": "mrcr", "gradeloop_metric": "mean_score", **metadata},
        "data_source_config": {"type": "custom", "include_sample_schema": True, "item_schema": _ITEM_SCHEMA},
        "testing_criteria": [{"type": "mrcr", "name": "MRCR", "input": "{{ sample.output_text }}",
                              "answer": "{{ item.answer }}",
                              "random_string_to_prepend": "{{ item.random_string_to_prepend }}"}],
        "data_source": {
            "type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
            "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
            "sampling_params": {"temperature": 0, "max_completion_tokens": max_completion_tokens},
        },
    }


def _summary(result: dict[str, Any], counts: dict[str, Counter]) -> dict[str, Any]:
    result["counts"] = {key: dict(c) for key, c in counts.items() if c}
    return result


def build(tokens: list[int], needles: list[int], n: int, seed: int, out_dir: str | Path,
          tokenizer: str | None = None, max_completion_tokens: int = MAX_COMPLETION_TOKENS, *,
          layouts: list[str] | None = None, placements: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``rows.jsonl``; returns ``{"eval", "rows", "items",
    "counts": {"length_bin": {...}}}`` (and ``layout`` / ``placement`` counts when asked for)."""
    counts: dict[str, Counter] = {"length_bin": Counter(), "layout": Counter(), "placement": Counter()}

    def items() -> Iterator[dict[str, Any]]:
        for item in generate(tokens, needles, n, seed, tokenizer, layouts, placements):
            for key in counts:
                if key in item:
                    counts[key][item[key]] += 1
            yield item

    meta = {"seed": seed, "tokens": tokens, "needles": needles, "n": n,
            "tokenizer": tokenizer or "o200k_base"}
    if layouts or placements:
        meta |= {"layouts": layouts or [NATIVE], "placements": placements or ["end"]}
    header = "# Built by `gradeloop suite mrcr build`; rows are in rows.jsonl.\n"
    result = write_eval(out_dir, eval_definition("MRCR", meta, max_completion_tokens), items(), header)
    return _summary(result, counts)


def _record_item(record: dict[str, Any], file: str, line: int, tok: Tokenizer) -> dict[str, Any]:
    for name in _PUBLISHED:
        if name not in record:
            raise InputError("required field is missing (an openai/mrcr record)", file=file, line=line, field=name)
    try:
        messages = json.loads(record["prompt"]) if isinstance(record["prompt"], str) else None
    except json.JSONDecodeError:
        messages = None
    if not isinstance(messages, list) or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                                 for m in messages):
        raise InputError("must be a JSON string of a list of {role, content} messages", file=file, line=line,
                         field="prompt")
    for name in ("answer", "random_string_to_prepend"):
        if not isinstance(record[name], str):
            raise InputError("must be a string", file=file, line=line, field=name)
    tokens = sum(tok.count(m["content"]) for m in messages) + tok.count(record["answer"])
    item = {"messages": messages, **{k: v for k, v in record.items() if k != "prompt"}}
    return item | {"n_tokens": tokens, "length_bin": length_bin(tokens)}


def import_records(path: str | Path, out_dir: str | Path, *, tokenizer: str | None = None,
                   limit: int | None = None, max_completion_tokens: int = MAX_COMPLETION_TOKENS) -> dict[str, Any]:
    """Write an eval from the published ``openai/mrcr`` file (Parquet or JSONL) as it is: every
    field is kept; ``prompt`` (a JSON string of messages) becomes the item's ``messages``, and
    ``n_tokens`` / ``length_bin`` are added (prompt + answer tokens, as the card bins them)."""
    tok, counts = get_tokenizer(tokenizer), {"length_bin": Counter()}

    def items() -> Iterator[dict[str, Any]]:
        for n, (line, record) in enumerate(read_records(path)):
            if limit is not None and n >= limit:
                return
            item = _record_item(record, str(path), line, tok)
            counts["length_bin"][item["length_bin"]] += 1
            yield item

    meta = {"source": Path(path).name, "tokenizer": tokenizer or "o200k_base"}
    header = f"# openai/mrcr records from {Path(path).name}, imported by `gradeloop suite mrcr import`.\n"
    result = write_eval(out_dir, eval_definition("OpenAI-MRCR", meta, max_completion_tokens), items(), header)
    if not result["items"]:
        raise InputError("no records", file=str(path))
    return _summary(result, counts)
