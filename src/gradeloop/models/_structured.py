"""Structured output for local models: ``response_format`` as a constraint on every token.

A ``json_object`` or ``json_schema`` response format becomes a grammar (llguidance compiles
the schema); at each decode step the engine masks the tokens the grammar forbids, so the text
is JSON that matches the schema unless it is cut at the token limit (finish reason ``length``),
as with OpenAI's structured outputs. The model is also told, in its system message, to answer
with JSON of that schema: constrained decoding fixes the syntax, the instruction helps the
content. llguidance is imported on first use.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from typing import Any

from ..errors import InputError

JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_INSTALL_HINT = "pip install 'gradeloop[local]'"
# compact JSON with Python's separators: a small model cannot wander off into whitespace
_JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ", "lenient": True}


def json_schema_of(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema ``params['response_format']`` asks for (``{"type": "object"}`` for
    ``json_object``), or None for text."""
    fmt = params.get("response_format") or {}
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema") or {}
        schema = inner.get("schema") if isinstance(inner, dict) else None
        return schema if isinstance(schema, dict) and schema else {"type": "object"}
    return None


def with_json_instruction(messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """``messages`` with the JSON instruction (and the schema, when it says more than "an
    object") added to the first system message, or in a new one."""
    instruction = JSON_INSTRUCTION
    if schema != {"type": "object"}:
        instruction += f" It must match this JSON schema: {json.dumps(schema)}"
    if messages and messages[0].get("role") in ("system", "developer") and isinstance(messages[0].get("content"), str):
        first = dict(messages[0], content=f"{messages[0]['content']}\n\n{instruction}")
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _llguidance() -> Any:
    try:
        import llguidance
    except ImportError:
        raise InputError(f"response_format json on a local model needs llguidance: {_INSTALL_HINT}",
                         field="response_format") from None
    return llguidance


def grammar_of(schema: dict[str, Any]) -> str:
    """The llguidance grammar of ``schema``; InputError (field ``response_format``) when the
    schema cannot be compiled. Compiled once per distinct schema."""
    return _grammar(json.dumps(schema, sort_keys=True))


@functools.lru_cache(maxsize=64)
def _grammar(schema: str) -> str:
    llguidance = _llguidance()
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=_JSON_OPTIONS)
    except (ValueError, TypeError) as exc:
        raise InputError(f"invalid JSON schema: {exc}", field="response_format") from None
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise InputError(f"invalid JSON schema: {messages[0] if messages else 'rejected'}",
                         field="response_format")
    return grammar


def lark_grammar(lark: str, field: str = "tools") -> str:
    """The llguidance grammar of a Lark grammar text (which may embed ``%json`` schemas);
    InputError (at ``field``) when it does not compile. Compiled once per distinct text."""
    return _lark(lark, field)


@functools.lru_cache(maxsize=64)
def _lark(lark: str, field: str) -> str:
    llguidance = _llguidance()
    grammar = llguidance.LLMatcher.grammar_from_lark(lark)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise InputError(f"invalid JSON schema: {messages[0] if messages else 'rejected'}", field=field)
    return grammar


def check_response_format(params: dict[str, Any]) -> None:
    """Raise InputError when ``params`` asks for a JSON schema no grammar can be made of."""
    schema = json_schema_of(params)
    if schema is not None:
        grammar_of(schema)


class TokenConstraint:
    """One generation's grammar state: which tokens may come next, and the tokens so far."""

    def __init__(self, matcher: Any, vocab_size: int) -> None:
        self.matcher, self.vocab_size = matcher, vocab_size

    def allowed(self, torch: Any) -> Any:
        """A bool tensor over the vocabulary: True where the grammar allows the token."""
        import numpy as np

        bits = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
        allowed = np.unpackbits(bits, bitorder="little")[: self.vocab_size].astype(bool)
        if allowed.shape[0] < self.vocab_size:  # logits wider than the tokenizer: never allowed
            allowed = np.concatenate([allowed, np.zeros(self.vocab_size - allowed.shape[0], dtype=bool)])
        return torch.from_numpy(allowed)

    def consume(self, token: int) -> bool:
        """Advance past ``token``; False when the grammar does not allow it."""
        return bool(self.matcher.consume_token(token))

    @property
    def finished(self) -> bool:
        """The grammar is complete: nothing but the end of the text may follow."""
        return bool(self.matcher.is_stopped())


class Constraints:
    """Makes :class:`TokenConstraint` objects for one engine's tokenizer (the llguidance
    tokenizer is built once, on first use; compiled grammars are kept)."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: list[int]) -> None:
        self.tokenizer, self.vocab_size, self.eos_ids = tokenizer, vocab_size, eos_ids
        self._lltokenizer: Any = None
        self._pristine: dict[str, Any] = {}
        self._lock = threading.Lock()

    def new(self, schema: dict[str, Any]) -> TokenConstraint:
        """A fresh constraint to ``schema``'s grammar."""
        return self._new(json.dumps(schema, sort_keys=True), lambda: grammar_of(schema), "response_format")

    def new_grammar(self, grammar: str, field: str = "tools") -> TokenConstraint:
        """A fresh constraint to a compiled llguidance ``grammar`` (see :func:`lark_grammar`)."""
        return self._new(grammar, lambda: grammar, field)

    def _new(self, key: str, compile_grammar: Any, field: str) -> TokenConstraint:
        llguidance = _llguidance()
        with self._lock:
            if self._lltokenizer is None:
                import llguidance.hf

                try:
                    self._lltokenizer = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab_size,
                                                                     eos_token=self.eos_ids)
                except ValueError as exc:
                    raise InputError(f"response_format json needs a fast tokenizer: {exc}",
                                     field="response_format") from None
            if key not in self._pristine:
                matcher = llguidance.LLMatcher(self._lltokenizer, compile_grammar(), log_level=0)
                if matcher.is_error():
                    raise InputError(f"invalid JSON schema: {matcher.get_error()}", field=field)
                if len(self._pristine) > 64:
                    self._pristine.clear()
                self._pristine[key] = matcher
            return TokenConstraint(self._pristine[key].deep_copy(), self.vocab_size)


class GrammarLogitsProcessor:
    """A transformers logits processor for one ``generate()`` call: every row of the batch
    follows ``schema``'s grammar (what it forbids gets -inf), and once the grammar is complete
    only an end-of-text token may follow. The same constraint local models decode with,
    for code that samples with ``model.generate`` (RFT rollouts and validation)."""

    def __init__(self, constraints: Constraints, schema: dict[str, Any]) -> None:
        self.constraints, self.schema = constraints, schema
        self.rows: list[TokenConstraint] = []
        self.done: list[bool] = []
        self.start = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Consume each row's newest token, then mask ``scores`` (batch × vocabulary) in place."""
        import torch

        if not self.rows:  # the first step: input_ids is the (left-padded) prompt
            self.start = input_ids.shape[1]
            self.rows = [self.constraints.new(self.schema) for _ in range(input_ids.shape[0])]
            self.done = [False] * len(self.rows)
        elif input_ids.shape[1] > self.start:
            self._consume(input_ids[:, -1].tolist())
        for i, row in enumerate(self.rows):
            if self.done[i]:
                continue  # ended: generate() pads this row whatever is picked
            if row.finished:
                allowed = torch.zeros(scores.shape[1], dtype=torch.bool)
                allowed[[t for t in self.constraints.eos_ids if t < scores.shape[1]]] = True
            else:
                allowed = row.allowed(torch)[: scores.shape[1]]
            scores[i, ~allowed.to(scores.device)] = -math.inf
        return scores

    def _consume(self, tokens: list[int]) -> None:
        for i, token in enumerate(tokens):
            if not self.done[i] and (token in self.constraints.eos_ids or not self.rows[i].consume(token)):
                self.done[i] = True
