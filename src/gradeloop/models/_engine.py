"""A continuous-batching generation engine for transformers causal LMs.

One worker thread owns the model. Its loop, one token per iteration:

1. admit waiting requests (up to ``max_batch`` rows, ``max_batch_tokens`` padded tokens in
   the batch (by default what fits in ``GRADELOOP_KV_CACHE_GB``, 4 GB) and ``max_prefill_tokens`` prompt tokens per iteration, so a burst of requests
   is prefilled in chunks while running rows keep decoding): prefill them together, pick each
   one's first token, and merge their KV cache into the running batch (both sides left-padded
   to the same width);
2. run one decode step for every row, each with its own position, sampling params, seed,
   token budget and stop strings;
3. rows that finished leave the batch and the KV cache; columns that are padding for every
   remaining row are cut off the left.

So a request never waits for another one to finish before it starts. Text streams back to
the caller's event loop as it is decoded (a partial stop string is held back until it is
known not to be one). A ``response_format`` of ``json_object`` or ``json_schema`` constrains
every token of that row to the schema's grammar (:mod:`._structured`); offered ``tools``
constrain it to the tool-call grammar of :mod:`._tools`. Besides the usual sampling params
(``logit_bias`` included) a request may set ``ignore_eos`` (as vLLM does) to always generate
``max_completion_tokens`` tokens, for benchmarks.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import os
import queue
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ProviderError
from ._base import GenerateRequest, Usage
from ._structured import Constraints, TokenConstraint, json_schema_of, with_json_instruction
from ._tools import (
    ToolPlan,
    native_messages,
    render_history,
    template_tool_format,
    tool_grammar,
    tool_plan,
    with_tool_section,
)

# Engines whose worker thread is running. The thread is a daemon so a forgotten engine
# never keeps the process alive, but a daemon thread still inside a torch kernel when the
# interpreter tears down aborts the process ("terminate called without an active
# exception"), so every live engine is stopped and joined at exit.
_LIVE: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _close_live_engines() -> None:
    for engine in list(_LIVE):
        engine.close()

__all__ = ["Engine", "EngineOutput", "load_engine_model"]

DEFAULT_MAX_NEW_TOKENS = 512


@dataclass
class EngineOutput:
    """A finished generation: text, why it stopped, token usage and timing."""

    text: str
    finish_reason: str
    usage: Usage
    time_to_first_token: float
    seconds: float


@dataclass
class _Job:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    on_text: Callable[[str], None] | None = None
    ignore_eos: bool = False
    constraint: TokenConstraint | None = None
    logit_bias: dict[int, float] | None = None
    enqueued: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None


@dataclass
class _Row:
    job: _Job
    generator: Any
    tokens: list[int] = field(default_factory=list)
    sent: int = 0  # characters of text already streamed
    next_token: int = -1


def load_engine_model(model_dir: Path) -> tuple[Any, Any]:
    """``(tokenizer, model)`` from a checkpoint directory (a PEFT adapter directory loads its
    base model and merges the adapter). Raises InputError when that is impossible."""
    import torch
    import transformers

    try:
        if (model_dir / "adapter_config.json").exists() and not (model_dir / "config.json").exists():
            return _load_adapter(model_dir)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load a transformers model from {model_dir}: {exc}", field="model") from None
    return tokenizer, model


def _load_adapter(model_dir: Path) -> tuple[Any, Any]:
    import json

    import torch
    import transformers

    try:
        import peft
    except ImportError:
        raise InputError(f"{model_dir} is a PEFT adapter: pip install 'gradeloop[tune]'", field="model") from None
    base = json.loads((model_dir / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    base_dir = Path(base) if Path(base).is_absolute() else (model_dir / base).resolve()
    if not (base_dir / "config.json").exists():
        raise InputError(f"adapter {model_dir} names base model '{base}', which is not a local checkpoint "
                         "directory", field="model")
    tokenizer_dir = model_dir if (model_dir / "tokenizer_config.json").exists() else base_dir
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(model, str(model_dir)).merge_and_unload()
    return tokenizer, model


def kv_token_budget(config: Any) -> int:
    """How many cached tokens fit in ``GRADELOOP_KV_CACHE_GB`` (default 4) of fp32 keys and values."""
    gigabytes = float(os.environ.get("GRADELOOP_KV_CACHE_GB") or 4)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    per_token = config.num_hidden_layers * 2 * heads * head_dim * 4  # layers x (key, value) x fp32 bytes
    return max(1024, int(gigabytes * 2**30 / per_token))


class Engine:
    """Serves concurrent requests to one model with continuous batching (see the module docstring)."""

    def __init__(self, tokenizer: Any, model: Any, *, max_batch: int = 32, max_batch_tokens: int | None = None,
                 max_prefill_tokens: int = 2048, threads: int | None = None, name: str = "model") -> None:
        import torch
        import transformers

        self.torch = torch
        self.tokenizer, self.model = tokenizer, model.eval()
        self.max_batch, self.max_prefill_tokens = max_batch, max_prefill_tokens
        self.max_batch_tokens = max_batch_tokens or kv_token_budget(model.config)
        threads = threads or int(os.environ.get("GRADELOOP_THREADS", "0")) or None
        if threads:
            torch.set_num_threads(threads)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5
        self._cache_cls = transformers.DynamicCache
        self.context_length = getattr(model.config, "max_position_embeddings", 4096)
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.constraints = Constraints(tokenizer, model.get_output_embeddings().weight.shape[0], self.eos_ids)
        self.stats = {"steps": 0, "prefills": 0, "requests": 0, "max_batch_seen": 0, "joined_running_batch": 0}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._held: _Job | None = None
        self._thread = threading.Thread(target=self._work, name=f"gradeloop-engine-{name}", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self.model, "generation_config", None)
        for value in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            for v in value if isinstance(value, list) else [value]:
                if v is not None and int(v) not in ids:
                    ids.append(int(v))
        if not ids:
            raise InputError("the model defines no end-of-sequence token", field="model")
        return ids

    # -- the caller's side ------------------------------------------------------------

    def encode(self, messages: list[dict[str, Any]], plan: ToolPlan | None = None) -> list[int]:
        """Token ids of the chat-templated prompt, ready for the assistant's turn: tool calls and
        results in ``messages`` and ``plan``'s tools rendered in the model's tool format."""
        if self.tool_format == "hermes":
            chat: list[dict[str, Any]] = native_messages(messages, message_text)
            tools = [{"type": "function", "function": f} for f in plan.functions] if plan else None
            text = self.tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=False)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        chat = render_history(with_tool_section(messages, plan) if plan else messages, message_text)
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        else:
            text = "\n".join(f"{m['role']}: {m['content']}" for m in chat) + "\nassistant:"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @functools.cached_property
    def tool_format(self) -> str:
        """How this model's prompts carry tools: ``hermes`` (its chat template) or ``generic``
        (see :mod:`._tools`)."""
        return template_tool_format(self.tokenizer)

    def prompt_ids(self, request: GenerateRequest) -> list[int]:
        """Token ids of the prompt the engine runs for ``request`` (with the JSON instruction a
        json ``response_format`` adds, or the tools when it offers some)."""
        plan = tool_plan(request.params)
        schema = json_schema_of(request.params)
        messages = request.messages
        if plan is None and schema is not None:
            messages = with_json_instruction(messages, schema)
        return self.encode(messages, plan)

    def _job(self, request: GenerateRequest, on_text: Callable[[str], None] | None) -> _Job:
        params = request.params
        constraint = self._constraint(params)
        ids = self.prompt_ids(request)
        if len(ids) + 1 > self.context_length:
            raise ProviderError(f"prompt has {len(ids)} tokens; the model's context is {self.context_length}",
                                kind="context_length_exceeded")
        if len(ids) + 1 > self.max_batch_tokens:
            raise ProviderError(f"prompt has {len(ids)} tokens, more than max_batch_tokens "
                                f"({self.max_batch_tokens})", kind="context_length_exceeded")
        max_new = int(params.get("max_completion_tokens") or DEFAULT_MAX_NEW_TOKENS)
        max_new = max(1, min(max_new, self.context_length - len(ids)))
        temperature = params.get("temperature")
        stop = params.get("stop") or []
        loop = asyncio.get_running_loop()
        return _Job(prompt_ids=ids, max_new_tokens=max_new,
                    temperature=1.0 if temperature is None else float(temperature),
                    top_p=float(params.get("top_p") or 1.0), seed=params.get("seed"),
                    stop=[stop] if isinstance(stop, str) else [s for s in stop if s],
                    loop=loop, future=loop.create_future(), on_text=on_text,
                    ignore_eos=bool(params.get("ignore_eos")), constraint=constraint,
                    logit_bias=self._logit_bias(params.get("logit_bias")))

    def _logit_bias(self, bias: Any) -> dict[int, float] | None:
        """OpenAI's ``logit_bias`` ({token id: -100..100}, added to the logits) with ids in the vocabulary."""
        if not bias:
            return None
        try:
            return {int(k): float(v) for k, v in bias.items() if 0 <= int(k) < self.constraints.vocab_size}
        except (AttributeError, TypeError, ValueError):
            raise ProviderError("logit_bias must map token ids to numbers", kind="invalid_request") from None

    def _constraint(self, params: dict[str, Any]) -> TokenConstraint | None:
        """The grammar the reply follows: the tool calls offered, else the json response_format."""
        try:
            plan = tool_plan(params)
            if plan is not None:
                return self.constraints.new_grammar(tool_grammar(plan, self.tool_format))
        except InputError as exc:
            raise ProviderError(exc.message, kind="invalid_tools") from None
        schema = json_schema_of(params)
        try:
            return self.constraints.new(schema) if schema is not None else None
        except InputError as exc:
            raise ProviderError(exc.message, kind="invalid_response_format") from None

    async def generate(self, request: GenerateRequest) -> EngineOutput:
        """Generate for one request; returns when it is finished."""
        job = self._job(request, None)
        self._queue.put(job)
        return await job.future

    async def stream(self, request: GenerateRequest) -> AsyncIterator[str | EngineOutput]:
        """Yield text pieces as they are decoded, then the EngineOutput."""
        pieces: asyncio.Queue[str] = asyncio.Queue()
        job = self._job(request, pieces.put_nowait)
        self._queue.put(job)
        while not job.future.done() or not pieces.empty():
            getter = asyncio.ensure_future(pieces.get())
            done, _ = await asyncio.wait({getter, job.future}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
            else:
                getter.cancel()
        yield job.future.result()

    def close(self) -> None:
        """Stop the worker thread (requests in flight fail) and wait for it."""
        _LIVE.discard(self)
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(30)

    # -- the worker thread ------------------------------------------------------------

    def _work(self) -> None:
        rows: list[_Row] = []
        state: tuple[Any, Any, Any] | None = None  # (cache, mask (B, W), next positions (B, 1))
        while True:
            jobs = self._admit(rows, state)
            if jobs is None:
                self._fail([r.job for r in rows], ProviderError("the engine was closed", kind="engine_error"))
                return
            try:
                with self.torch.inference_mode():
                    if jobs:
                        rows, state = self._join(rows, state, jobs)
                    if rows:
                        rows, state = self._step(rows, state)
            except Exception as exc:  # noqa: BLE001 - a failure goes back to every waiting caller
                self._fail([r.job for r in rows] + (jobs or []),
                           ProviderError(f"local generation failed: {type(exc).__name__}: {exc}", kind="engine_error"))
                rows, state = [], None

    def _admit(self, rows: list[_Row], state: Any) -> list[_Job] | None:
        """Waiting jobs that fit; blocks while the batch is empty. None means: shut down."""
        width = state[1].shape[1] if state else 0
        jobs: list[_Job] = []
        while len(rows) + len(jobs) < self.max_batch:
            job = self._held
            self._held = None
            if job is None:
                try:
                    job = self._queue.get(block=not rows and not jobs)
                except queue.Empty:
                    break
            if job is None:
                return None
            need = max(width, *(len(j.prompt_ids) for j in jobs), len(job.prompt_ids)) * (len(rows) + len(jobs) + 1)
            prefill = sum(len(j.prompt_ids) for j in jobs) + len(job.prompt_ids)
            if jobs and prefill > self.max_prefill_tokens:
                self._held = job  # prefill in chunks: running rows keep decoding in between
                break
            if (rows or jobs) and need > self.max_batch_tokens:
                self._held = job  # bounded memory: it starts when rows finish
                break
            jobs.append(job)
            if not rows and len(jobs) == 1:
                time.sleep(0.002)  # requests sent together arrive together: prefill them as one
        return jobs

    def _join(self, rows: list[_Row], state: Any, jobs: list[_Job]) -> tuple[list[_Row], Any]:
        """Prefill ``jobs``, pick their first tokens and merge them into the running batch."""
        torch = self.torch
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for i, j in enumerate(jobs):  # left padding: every row's next token is at the last column
            ids[i, width - len(j.prompt_ids):] = torch.tensor(j.prompt_ids)
            mask[i, width - len(j.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache()
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         **{self._cache_kw: cache, "use_cache": True, "logits_to_keep": 1})
        new_rows = [_Row(job=j, generator=self._generator(j.seed)) for j in jobs]
        self.stats["prefills"] += 1
        self.stats["requests"] += len(jobs)
        self.stats["joined_running_batch"] += len(jobs) if rows else 0
        keep = self._advance(new_rows, out.logits[:, -1, :])
        new_state = self._select((cache, mask, positions[:, -1:] + 1), keep)
        new_rows = [new_rows[i] for i in keep]
        if not new_rows:
            return rows, state
        if not rows:
            return new_rows, new_state
        merged = self._merge(state, new_state)
        self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(rows) + len(new_rows))
        return rows + new_rows, merged

    def _step(self, rows: list[_Row], state: Any) -> tuple[list[_Row], Any]:
        """One decode step for every row; finished rows leave."""
        torch = self.torch
        cache, mask, positions = state
        tokens = torch.tensor([[r.next_token] for r in rows], dtype=torch.long)
        mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
        out = self.model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                         **{self._cache_kw: cache, "use_cache": True, "logits_to_keep": 1})
        self.stats["steps"] += 1
        self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(rows))
        keep = self._advance(rows, out.logits[:, -1, :])
        if not keep:
            return [], None
        state = self._trim(self._select((cache, mask, positions + 1), keep))
        return [rows[i] for i in keep], state

    def _select(self, state: Any, keep: list[int]) -> Any:
        cache, mask, positions = state
        if len(keep) == mask.shape[0]:
            return state
        index = self.torch.tensor(keep, dtype=self.torch.long)
        if keep:
            cache.batch_select_indices(index)
        return cache, mask[index], positions[index]

    def _trim(self, state: Any) -> Any:
        """Cut the columns on the left that are padding for every row."""
        cache, mask, positions = state
        if mask.shape[0] == 0:
            return state
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start == 0:
            return state
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
        return cache, mask[:, start:], positions

    def _merge(self, a: Any, b: Any) -> Any:
        """One batch from two: left-pad the narrower cache and mask, then stack the rows."""
        torch = self.torch
        (cache_a, mask_a, pos_a), (cache_b, mask_b, pos_b) = a, b
        width = max(mask_a.shape[1], mask_b.shape[1])

        def pad(t: Any, dim: int) -> Any:
            missing = width - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim=dim)

        for la, lb in zip(cache_a.layers, cache_b.layers):
            la.keys = torch.cat([pad(la.keys, 2), pad(lb.keys, 2)], dim=0)
            la.values = torch.cat([pad(la.values, 2), pad(lb.values, 2)], dim=0)
        return cache_a, torch.cat([pad(mask_a, 1), pad(mask_b, 1)], dim=0), torch.cat([pos_a, pos_b], dim=0)

    def _new_cache(self) -> Any:
        try:
            cache = self._cache_cls(config=self.model.config)
        except TypeError:  # older transformers
            return self._cache_cls()
        growing = _growing_layer_class()
        if growing is not None and hasattr(cache, "layers"):
            plain = growing.__mro__[1]
            cache.layers = [growing() if type(layer) is plain else layer for layer in cache.layers]
        return cache

    def _generator(self, seed: int | None) -> Any:
        generator = self.torch.Generator()
        generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        return generator

    def _advance(self, rows: list[_Row], logits: Any) -> list[int]:
        """Pick each row's next token, stream text, settle finished rows; returns rows to keep."""
        picked = self._pick(logits, rows)
        keep = []
        for i, (row, token) in enumerate(zip(rows, picked)):
            job = row.job
            if job.first_token_at is None:
                job.first_token_at = time.perf_counter()
            reason = None
            if token in self.eos_ids and not job.ignore_eos:
                reason = "stop"
            else:
                row.tokens.append(token)
                row.next_token = token
                if job.constraint is not None and (not job.constraint.consume(token) or job.constraint.finished):
                    reason = "stop"  # the grammar is complete (or, never expected, broken): nothing may follow
                elif len(row.tokens) >= job.max_new_tokens:
                    reason = "length"
            text, stopped = self._text(row, final=reason is not None)
            if stopped:
                reason = "stop"
            if reason is None:
                keep.append(i)
            else:
                self._finish(row, text, reason)
        return keep

    def _text(self, row: _Row, final: bool) -> tuple[str, bool]:
        """The row's text so far (cut at a stop string); streams the part that is certain."""
        job = row.job
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        stopped = False
        if job.stop:
            cuts = [text.find(s) for s in job.stop if s in text]
            if cuts:
                text, stopped, final = text[:min(cuts)], True, True
        if job.on_text is not None:
            safe = len(text)
            if not final:
                safe -= max((len(s) - 1 for s in job.stop), default=0)  # could be the start of a stop string
                while safe > 0 and text[safe - 1] == "\ufffd":  # an incomplete multi-byte character
                    safe -= 1
            if safe > row.sent:
                job.loop.call_soon_threadsafe(job.on_text, text[row.sent:safe])
                row.sent = safe
        return text, stopped

    def _pick(self, logits: Any, rows: list[_Row]) -> list[int]:
        torch = self.torch
        for i, row in enumerate(rows):
            if row.job.logit_bias:
                ids = list(row.job.logit_bias)
                logits[i, ids] += torch.tensor(list(row.job.logit_bias.values()), dtype=logits.dtype)
            if row.job.constraint is not None:  # what the grammar forbids can never be picked
                allowed = row.job.constraint.allowed(torch)
                if not allowed.any():  # a broken grammar state: end the text rather than sample nothing
                    allowed[self.eos_ids] = True
                logits[i].masked_fill_(~allowed, float("-inf"))
        picked = logits.argmax(dim=-1).tolist()
        for i, row in enumerate(rows):
            job = row.job
            if job.temperature <= 0:
                continue
            probs = torch.softmax(logits[i].float() / job.temperature, dim=-1)
            if job.top_p < 1.0:
                sorted_p, order = probs.sort(descending=True)
                sorted_p[sorted_p.cumsum(0) - sorted_p > job.top_p] = 0  # outside the nucleus
                probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
            picked[i] = int(torch.multinomial(probs, 1, generator=row.generator).item())
        return picked

    def _finish(self, row: _Row, text: str, reason: str) -> None:
        job = row.job
        now = time.perf_counter()
        output = EngineOutput(text=text, finish_reason=reason,
                              usage=Usage(prompt_tokens=len(job.prompt_ids), completion_tokens=len(row.tokens)),
                              time_to_first_token=(job.first_token_at or now) - job.enqueued,
                              seconds=now - job.enqueued)
        job.loop.call_soon_threadsafe(_settle, job.future, output, None)

    def _fail(self, jobs: list[_Job], error: BaseException) -> None:
        for job in jobs:
            job.loop.call_soon_threadsafe(_settle, job.future, None, error)


@functools.cache
def _growing_layer_class() -> Any:
    """A DynamicLayer that appends into a buffer with spare room (doubling) instead of
    concatenating the whole cache at every step: long generations copy O(n) once, not O(n²).
    The engine's batch edits (select, merge, trim) replace ``keys``; the next update notices
    and rebuilds the buffer from them. None when transformers has no DynamicLayer."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class GrowingLayer(DynamicLayer):
        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            keys = self.keys
            length = keys.shape[-2] if keys is not None and keys.dim() == 4 else 0
            n = key_states.shape[-2]
            buffer = getattr(self, "_buffer_keys", None)
            if buffer is None or getattr(self, "_view", None) is not keys or length + n > buffer.shape[-2]:
                shape = (key_states.shape[0], key_states.shape[1], max(64, 2 * (length + n)), key_states.shape[3])
                new_keys, new_values = key_states.new_empty(shape), value_states.new_empty(shape)
                if length:
                    new_keys[:, :, :length] = keys
                    new_values[:, :, :length] = self.values
                self._buffer_keys, self._buffer_values = new_keys, new_values
            self._buffer_keys[:, :, length:length + n] = key_states
            self._buffer_values[:, :, length:length + n] = value_states
            self.keys = self._buffer_keys[:, :, :length + n]
            self.values = self._buffer_values[:, :, :length + n]
            self._view = self.keys
            return self.keys, self.values

    return GrowingLayer


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def message_text(message: dict[str, Any]) -> str:
    """A chat message's text (text parts joined)."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return content or ""
