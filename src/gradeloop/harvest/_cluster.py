"""Use-case clusters and near duplicates.

A cluster is one product behaviour: the records whose system prompt (the first system or
developer message) follows one template once its variable parts (names, dates, ids, e-mails,
redaction placeholders) are masked. Templates are mined with drain3's Drain over the prompt
with whitespace collapsed; Drain only compares prompts of the same length token by token, so a
new Drain group whose template aligns with a known one (difflib's ratio over tokens ≥
``template_similarity``) joins that cluster: a name of two words instead of one does not make
a new product. Records without a system prompt cluster by the shape of the request (tool
names, ``response_format``).

Within a cluster, near duplicates of the user content (character 5-grams; MinHash LSH finds
candidates, their exact Jaccard ≥ ``near_dup_threshold`` decides) fold into the first stored
record. Each record is considered once: clustering takes only records no earlier call has
seen, so it is incremental and running it twice changes nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from ..store import Store
from ._shingle import NEAR_DUP_THRESHOLD, NUM_PERM, jaccard, lsh_threshold, shingles, user_text

__all__ = ["NEAR_DUP_THRESHOLD", "TEMPLATE_SIMILARITY", "cluster_records", "system_prompt", "last_user_text"]

TEMPLATE_SIMILARITY = 0.7  # token alignment ratio at which prompts of different lengths share a cluster
_DRAIN_SIM = 0.7  # Drain's own threshold for same-length prompts (share of equal tokens)
_PROMPT_ROLES = ("system", "developer")

# what varies inside one product's prompt; order matters (placeholders and e-mails before ids and numbers)
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*?)_\d+>")
_MASKS = [
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "EMAIL"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b", "DATE"),
    (r"\b\d{1,2}/\d{1,2}/\d{2,4}\b", "DATE"),
    (r"\b\d{1,2}:\d{2}(?::\d{2})?\b", "TIME"),
    (r"(?<![\w<])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]*[A-Za-z0-9]", "ID"),
    (r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*(?![\w>])", "NUM"),
]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def system_prompt(messages: list[dict[str, Any]]) -> str | None:
    """The text of the first system or developer message, or None when there is none."""
    for message in messages:
        if message.get("role") in _PROMPT_ROLES:
            return _text(message.get("content"))
    return None


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (the request topics group), or ``""``."""
    users = [m for m in messages if m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


# ---------------------------------------------------------------- templates


def _miner() -> Any:
    from drain3 import TemplateMiner
    from drain3.masking import AbstractMaskingInstruction, MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    class Placeholders(AbstractMaskingInstruction):
        """``<EMAIL_1>`` (a redaction placeholder) → ``<EMAIL>``: the kind stays, the number goes."""

        def mask(self, content: str, mask_prefix: str, mask_suffix: str) -> str:
            return _PLACEHOLDER.sub(lambda m: f"{mask_prefix}{m.group(1)}{mask_suffix}", content)

    config = TemplateMinerConfig()
    config.masking_instructions = [Placeholders("PLACEHOLDER")] + [MaskingInstruction(p, m) for p, m in _MASKS]
    config.drain_sim_th = _DRAIN_SIM
    config.parametrize_numeric_tokens = True
    return TemplateMiner(config=config)


def _shape(params: dict[str, Any]) -> tuple[str, str]:
    """Key and template of a record without a system prompt: its tools and response format."""
    tools = sorted(str((t.get("function") or t).get("name")) for t in params.get("tools") or [] if isinstance(t, dict))
    fmt = params.get("response_format") or (params.get("text") or {}).get("format")
    parts = ["(no system prompt)"]
    if tools:
        parts.append("tools: " + ", ".join(tools))
    if isinstance(fmt, dict):
        schema = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else fmt
        parts.append("response_format: " + " ".join(str(x) for x in (fmt.get("type"), schema.get("name")) if x))
    template = "; ".join(parts)
    return "shape:" + hashlib.sha256(template.encode()).hexdigest()[:16], template


class _Templates:
    """Drain seeded with the stored templates, so known clusters keep their keys, plus the
    alignment step that joins prompts Drain keeps apart only because their lengths differ."""

    def __init__(self, stored: list[dict[str, Any]], similarity: float) -> None:
        self.miner, self.similarity = _miner(), similarity
        self.key_of: dict[int, str] = {}  # Drain group → cluster key
        self.home: dict[str, int] = {}  # cluster key → the Drain group whose template it shows
        for cluster in stored:
            if cluster["key"].startswith("prompt:"):
                self._place(cluster["template"], cluster["key"])

    def _place(self, text: str, key: str | None = None) -> str:
        result = self.miner.add_log_message(text)
        group = result["cluster_id"]
        if group not in self.key_of:
            key = key or self._aligned(result["template_mined"].split()) or self._new_key(result["template_mined"])
            self.key_of[group] = key
            self.home.setdefault(key, group)
        return self.key_of[group]

    def key(self, prompt: str) -> str:
        """The cluster key of a system prompt."""
        return self._place(" ".join(prompt.split()))

    def _aligned(self, tokens: list[str]) -> str | None:
        best, best_key = self.similarity, None
        for key, group in self.home.items():
            matcher = difflib.SequenceMatcher(None, self._tokens(group), tokens, autojunk=False)
            if matcher.real_quick_ratio() < best or matcher.quick_ratio() < best:
                continue  # cheap upper bounds first
            ratio = matcher.ratio()
            if ratio >= best:
                best, best_key = ratio, key
        return best_key

    def _tokens(self, group: int) -> list[str]:
        return list(self.miner.drain.id_to_cluster[group].log_template_tokens)

    def _new_key(self, template: str) -> str:
        return "prompt:" + hashlib.sha256(template.encode()).hexdigest()[:16]

    def templates(self) -> dict[str, str]:
        """Cluster key → its template now (known ones may have gained wildcards)."""
        return {key: " ".join(self._tokens(group)) for key, group in self.home.items()}


# ---------------------------------------------------------------- near duplicates


def _fold_near_dups(store: Store, cluster_ids: Iterable[int], new_ids: set[str], threshold: float) -> int:
    """Fold each new record whose user content nearly repeats an earlier record's of the same
    cluster into the first stored one; returns how many were folded."""
    from datasketch import MinHash, MinHashLSH

    pairs: list[tuple[str, str]] = []
    for cluster_id in cluster_ids:
        rows = [(r["id"], r["seq"], shingles(user_text(r["messages"]))) for r in store.harvest_records(
            cluster_id=cluster_id)]
        rows = [r for r in rows if r[2]]  # no user text: nothing to compare
        lsh, kept = MinHashLSH(threshold=lsh_threshold(threshold), num_perm=NUM_PERM), {}
        hashes = MinHash.bulk([[g.encode() for g in r[2]] for r in rows], num_perm=NUM_PERM, seed=1)
        for (record_id, seq, grams), minhash in zip(rows, hashes):
            # the exact Jaccard of the shingle sets decides
            twins = [k for k in lsh.query(minhash) if jaccard(grams, kept[k][1]) >= threshold] \
                if record_id in new_ids else []
            if twins:
                pairs.append((record_id, min(twins, key=lambda k: kept[k][0])))
            else:
                lsh.insert(record_id, minhash)
                kept[record_id] = (seq, grams)
    return store.harvest_mark_near_dups(pairs)


# ---------------------------------------------------------------- the whole step


def cluster_records(store: Store, *, near_dup_threshold: float = NEAR_DUP_THRESHOLD,
                    template_similarity: float = TEMPLATE_SIMILARITY) -> list[dict[str, Any]]:
    """Cluster the records no earlier call has seen and fold their near duplicates; returns
    every cluster as :meth:`Store.harvest_clusters` gives it (id, key, template, records,
    occurrences, first, last, errors, with_feedback, negative_feedback, models)."""
    new = store.harvest_unclustered()
    if new:
        templates = _Templates(store.harvest_clusters(), template_similarity)
        keys, shapes = {}, {}
        for row in new:
            prompt = system_prompt(row["messages"])
            if prompt is None:
                key, template = _shape(row["params"] or {})
                shapes[key] = template
            else:
                key = templates.key(prompt)
            keys[row["id"]] = key
        ids = store.harvest_assign_clusters({**templates.templates(), **shapes}, keys)
        _fold_near_dups(store, sorted({ids[k] for k in keys.values()}), set(keys), near_dup_threshold)
    return store.harvest_clusters()
