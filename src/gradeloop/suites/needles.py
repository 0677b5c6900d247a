"""RULER-style needle tasks at chosen token lengths, as a deterministic eval generator.

RULER (Hsieh et al., 2024) tests whether a model uses its whole context with synthetic tasks
whose answers are planted in filler text. This suite writes those tasks as an ordinary eval:

- ``single``: one "special magic number" for a key, hidden in the essay; asked for it;
- ``multikey``: four keys each with a number, one of them asked (the others distract);
- ``multivalue``: four numbers for the same key, all asked;
- ``multiquery``: four keys, all four asked;
- ``vartrack``: variable tracking, ``VAR ABCDE = 12345`` then hops ``VAR FGHIJ = VAR ABCDE``
  spread through the text; asked for every variable that holds the value;
- ``common-words``: a numbered word list in which ten words occur many times and the rest
  a few times each; asked for the ten most common;
- ``frequent-words``: a text of coded words drawn from a Zipf distribution; asked for the three
  most frequent.

Every item is written once per layout and placement (see ``_layout``); each carries the expected
strings (``answer``), ``task``, ``length_bin`` (the requested length in tokens), ``n_tokens`` (the
prompt's real length in the chosen tokenizer, within 2% of the bin), ``layout`` and ``placement``.
The ``needles`` grader scores them the way RULER's string-match metrics do (case-insensitive
containment; ``all``: the share of expected strings found, passing when every one is; ``any``:
one is enough). ``build`` writes ``eval.yaml`` and ``rows.jsonl``; the same arguments give
byte-identical files.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._filler import fit, sentences
from ._layout import LAYOUTS, PLACEMENTS, Doc, compose
from ._long import write_eval
from ._tokens import get_tokenizer

__all__ = ["TASKS", "generate", "build", "eval_definition"]

TASKS = ("single", "multikey", "multivalue", "multiquery", "vartrack", "common-words", "frequent-words")
SUITE_VERSION = 1
_DOC_SENTENCES = 30
_KEY_WORDS = ("amber", "brisk", "cedar", "dusty", "ember", "frosty", "glossy", "hollow", "ivory", "jolly", "lunar",
              "mellow", "nimble", "opal", "plucky", "quiet", "rusty", "silky", "tawny", "velvet", "wistful", "zesty")
_KEY_NOUNS = ("falcon", "harbor", "lantern", "meadow", "orchid", "pebble", "quill", "rafter", "saddle", "thimble",
              "umbrella", "violin", "walnut", "yarrow", "anchor", "beacon", "compass", "dagger", "easel", "fiddle")
_SYLLABLES = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "bo", "da", "fe", "gi", "ho", "ju")


def _needle(key: str, value: str) -> str:
    return f"One of the special magic numbers for {key} is: {value}."


def _keys(rng: random.Random, count: int) -> list[str]:
    return rng.sample([f"{a}-{b}" for a in _KEY_WORDS for b in _KEY_NOUNS], count)


def _ask_one(key: str) -> str:
    return f"What is the special magic number for {key} mentioned in the provided text?"


def _number(rng: random.Random) -> str:
    return str(rng.randrange(1_000_000, 10_000_000))


def _niah(rng: random.Random, task: str) -> tuple[list[str], str, list[str]]:
    """Needle sentences, the question and the expected strings of a NIAH task."""
    keys = _keys(rng, 4)
    if task == "single":
        value = _number(rng)
        return [_needle(keys[0], value)], _ask_one(keys[0]), [value]
    if task == "multivalue":
        values = [_number(rng) for _ in range(4)]
        return ([_needle(keys[0], v) for v in values],
                f"What are all the special magic numbers for {keys[0]} mentioned in the provided text?", values)
    values = [_number(rng) for _ in keys]
    needles = [_needle(k, v) for k, v in zip(keys, values)]
    if task == "multikey":
        return needles, _ask_one(keys[0]), [values[0]]
    asked = ", ".join(keys[:-1]) + f" and {keys[-1]}"
    return needles, f"What are all the special magic numbers for {asked} mentioned in the provided text?", values


def _vartrack(rng: random.Random, hops: int = 4) -> tuple[list[str], str, list[str]]:
    names = ["".join(rng.choices(string.ascii_uppercase, k=5)) for _ in range(hops + 1)]
    value = str(rng.randrange(10_000, 100_000))
    lines = [f"VAR {names[0]} = {value}."] + [f"VAR {names[i]} = VAR {names[i - 1]}." for i in range(1, hops + 1)]
    question = f"Find all variables that are assigned the value {value} in the text above."
    return lines, question, names


def _haystack(pool: list[str], n: int, needles: list[str], depths: list[float]) -> list[Doc]:
    """``n`` filler sentences with the needles inserted at the given depths (0–1), cut into documents."""
    body = list(pool[:n])
    for depth, needle in sorted(zip(depths, needles), key=lambda p: p[0], reverse=True):
        body.insert(round(depth * len(body)), needle)
    return [Doc(str(i + 1), f"Essay {i + 1}", " ".join(body[s:s + _DOC_SENTENCES]))
            for i, s in enumerate(range(0, len(body), _DOC_SENTENCES))]


def _vocab(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct made-up words; longer words when many are needed (16 syllables: 16**k words)."""
    syllables = 3
    while len(_SYLLABLES) ** syllables < 4 * size:
        syllables += 1
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES) for _ in range(syllables))] = None
    return list(words)


def _common_words(rng: random.Random, n: int, repeats: int = 30) -> tuple[list[Doc], list[str]]:
    """A numbered list: ten words ``repeats`` times each (RULER: 30), ``n`` more 3 times each, shuffled."""
    vocab = _vocab(random.Random(rng.random()), n + 10)
    common, rare = vocab[:10], vocab[10:]
    words = common * repeats + rare * 3
    random.Random(rng.random()).shuffle(words)
    listing = "\n".join(f"{i + 1}. {w}" for i, w in enumerate(words))
    return [Doc("1", "Word list", listing)], common


def _frequent_words(rng: random.Random, n: int) -> tuple[list[Doc], list[str]]:
    """``n`` coded words drawn from a Zipf law (exponent 2) over a shuffled vocabulary; the top three."""
    draw = random.Random(rng.random())
    vocab = _vocab(draw, 200)
    weights = [1 / (k + 1) ** 2 for k in range(len(vocab))]
    words = draw.choices(vocab, weights=weights, k=n)
    counts = Counter(words).most_common(4)
    top = [w for w, _ in counts[:3]]
    if len(counts) > 3 and counts[3][1] == counts[2][1]:
        words.append(top[2])  # break a tie for third place
    text = " ".join(words)
    return [Doc("1", "Coded text", text)], top


_INSTRUCTIONS = {
    "niah": "Some special magic numbers are hidden within the following text. Make sure to memorize them. "
            "I will quiz you about the numbers afterwards.",
    "vartrack": "Memorize and track the chain(s) of variable assignments hidden in the following text.",
    "common-words": "Below is a numbered list of words. In these words, some appear more often than others. "
                    "Memorize the ones that appear most often.",
    "frequent-words": "Read the following coded text and track the frequency of each coded word. Find the three "
                      "most frequently appeared coded words.",
}
_ASKS = {
    "common-words": "What are the 10 most common words in the above list? Answer with the words only.",
    "frequent-words": "What are the three most frequently appeared words in the above coded text? "
                      "Answer with the words only.",
}


class _Draft:
    """One task instance before layout: a renderer from a size to documents, and the expected strings."""

    def __init__(self, task: str, rng: random.Random, target: int) -> None:
        self.task, self.target = task, target
        self.guess = max(8, target // 15)
        if task in ("common-words", "frequent-words"):
            self.intro, self.question = _INSTRUCTIONS[task], _ASKS[task]
            # ten words repeated 30 times are ~1,200 tokens alone: fewer repeats at short lengths
            repeats = max(5, min(30, target // 200))
            maker = (lambda r, n: _common_words(r, n, repeats)) if task == "common-words" else _frequent_words
            seed = rng.random()
            self.docs_for = lambda n: maker(random.Random(seed), n)[0]
            self.guess = max(4, (target - 40 * repeats) // 12) if task == "common-words" else max(16, target // 3)
            self.maker, self.seed = maker, seed
            return
        if task == "vartrack":
            needles, self.question, self.answer = _vartrack(rng)
            self.intro = _INSTRUCTIONS["vartrack"]
        else:
            needles, self.question, self.answer = _niah(rng, task)
            self.intro = _INSTRUCTIONS["niah"]
        depths = sorted(rng.random() for _ in needles)
        pool = sentences(rng, target // 6 + 50)
        self.docs_for = lambda n: _haystack(pool, n, needles, depths)

    def expected(self, n: int) -> list[str]:
        """The expected strings when the context has size ``n``."""
        if self.task in ("common-words", "frequent-words"):
            return self.maker(random.Random(self.seed), n)[1]
        return list(self.answer)


def _instructions(draft: _Draft) -> str:
    return f"{draft.intro}\n\nQuestion: {draft.question}"


def _rows(task: str, target: int, index: int, seed: int, layouts: list[str], placements: list[str],
          tokenizer: str | None) -> list[dict[str, Any]]:
    tok = get_tokenizer(tokenizer)
    draft = _Draft(task, random.Random(f"needles:{seed}:{task}:{target}:{index}"), target)
    stem = f"niah-{task}-{target}-{index:03d}"
    rows = []
    for layout in layouts:
        for placement in placements:
            def render(n: int, layout: str = layout, placement: str = placement) -> str:
                return compose(_instructions(draft), draft.docs_for(n), layout, placement)

            text, count, size = fit(render, target, tok, draft.guess)
            rows.append({"id": f"{stem}.{layout}.{placement}", "stem": stem, "task": task, "length_bin": target,
                         "n_tokens": count, "tokenizer": tok.name, "layout": layout, "placement": placement,
                         "answer": draft.expected(size),
                         "messages": [{"role": "user", "content": text}]})
    return rows


def generate(lengths: list[int], tasks: list[str], n: int = 1, seed: int = 0, layouts: list[str] | None = None,
             placements: list[str] | None = None, tokenizer: str | None = None) -> list[dict[str, Any]]:
    """``n`` items per task and length, each once per layout and placement (defaults: ``xml``,
    ``start``). Returns the items in order (length, task, index, layout, placement)."""
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise InputError(f"unknown task '{bad[0] if bad else ''}' (known: {', '.join(TASKS)})", field="task")
    layouts, placements = layouts or ["xml"], placements or ["start"]
    for value, known, name in ((layouts, LAYOUTS, "layout"), (placements, PLACEMENTS, "placement")):
        if any(v not in known for v in value):
            raise InputError(f"unknown {name} (known: {', '.join(known)})", field=name)
    return [row for target in lengths for task in tasks for index in range(n)
            for row in _rows(task, target, index, seed, layouts, placements, tokenizer)]


_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "task": {"type": "string", "enum": list(TASKS)},
        "length_bin": {"type": "integer"}, "n_tokens": {"type": "integer"},
        "layout": {"type": "string"}, "placement": {"type": "string"},
        "answer": {"type": "array", "items": {"type": "string"}},
        "messages": {"type": "array", "minItems": 1},
    },
    "required": ["id", "task", "length_bin", "n_tokens", "answer", "messages"],
}


def eval_definition(meta: dict[str, Any]) -> dict[str, Any]:
    """The eval definition ``build`` writes next to ``rows.jsonl``."""
    return {
        "name": f"Needles ({', '.join(meta['tasks'])}; {', '.join(map(str, meta['lengths']))} tokens)",
        "metadata": {"suite": "needles", "version": SUITE_VERSION, **meta,
                     "description": "RULER-style retrieval, multi-hop tracing and aggregation tasks at set lengths."},
        "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
        "testing_criteria": [{"type": "needles", "name": "all found", "input": "{{ sample.output_text }}",
                              "references": "{{ item.answer }}", "score": "all"}],
        "data_source": {"type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": {"temperature": 0, "max_completion_tokens": 128}},
    }


def build(lengths: list[int], tasks: list[str], out_dir: str | Path, *, n: int = 1, seed: int = 0,
          layouts: list[str] | None = None, placements: list[str] | None = None,
          tokenizer: str | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``out_dir/rows.jsonl``. Returns ``{"eval", "rows", "items",
    "counts": {"task", "length_bin", "layout", "placement"}}``."""
    items = generate(lengths, tasks, n, seed, layouts, placements, tokenizer)
    meta = {"lengths": lengths, "tasks": tasks, "n": n, "seed": seed, "tokenizer": items[0]["tokenizer"],
            "layouts": layouts or ["xml"], "placements": placements or ["start"]}
    written = write_eval(out_dir, eval_definition(meta), items,
                         "# Built by `gradeloop suite needles build`; rows are in rows.jsonl.\n")
    counts = {k: dict(Counter(str(i[k]) for i in items)) for k in ("task", "length_bin", "layout", "placement")}
    return {**written, "counts": counts}
