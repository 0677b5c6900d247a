"""Shingles and MinHash over the user content of a conversation: the near-duplicate measure
that deduplication and the build's leakage check share.

A text is case-folded, its runs of punctuation and whitespace become one space (``<`` and
``>`` stay, so redaction placeholders remain words), and it is cut into overlapping character
5-grams: robust to a typo or an added "please" in a short request, where word n-grams of a
ten-word question would share too little. The near-duplicate folding of ``cluster_records``
and the build's leakage check both use this module, so "near duplicate" means one thing in both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["NEAR_DUP_THRESHOLD", "NUM_PERM", "jaccard", "lsh_threshold", "near_duplicates", "shingles",
           "user_text"]

SHINGLE = 5
NUM_PERM = 128
NEAR_DUP_THRESHOLD = 0.8  # Jaccard similarity of the shingle sets


def user_text(messages: list[dict[str, Any]]) -> str:
    """The user turns of a conversation as one text (parts' texts joined)."""
    texts = []
    for m in messages:
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
        texts.append(content if isinstance(content, str) else "")
    return "\n".join(texts)


def shingles(text: str) -> set[str]:
    """The character 5-gram shingles of ``text`` normalized (see the module docstring); empty
    for a text with no word character."""
    norm = " ".join(re.sub(r"[^\w<>]+", " ", text.casefold()).split())
    if len(norm) <= SHINGLE:
        return {norm} if norm else set()
    return {norm[i:i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two shingle sets (0.0 when both are empty: nothing to compare)."""
    return len(a & b) / len(a | b) if a | b else 0.0


def lsh_threshold(threshold: float) -> float:
    """The threshold to tune MinHash LSH for when pairs at ``threshold`` must be found: LSH only
    proposes candidates (their exact Jaccard decides), and tuned for 0.8 itself (9 bands of 13
    rows) it finds a pair at Jaccard 0.8 with probability 1 - (1 - 0.8^13)^9, about 40%; tuned for
    0.5 (25 bands of 5) the same pair is found with probability above 0.9999."""
    return max(0.3, threshold - 0.3)


def _minhash(shingle_set: Iterable[str]) -> Any:
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingle_set])
    return m


def near_duplicates(queries: dict[str, str], corpus: dict[str, str],
                    threshold: float = NEAR_DUP_THRESHOLD) -> dict[str, str]:
    """For each query (id → text) with a near duplicate in ``corpus`` (id → text): query id →
    the most similar corpus id. MinHash LSH finds candidates; the exact Jaccard of the shingle
    sets decides, so the answer does not depend on hashing luck beyond LSH's recall."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=lsh_threshold(threshold), num_perm=NUM_PERM)
    sets = {key: s for key, text in corpus.items() if (s := shingles(text))}
    for key, s in sets.items():
        lsh.insert(key, _minhash(s))
    found: dict[str, str] = {}
    for key, text in queries.items():
        mine = shingles(text)
        if not mine:
            continue
        scored = [(jaccard(mine, sets[c]), c) for c in lsh.query(_minhash(mine))]
        best = max((s for s in scored if s[0] >= threshold), default=None)
        if best:
            found[key] = best[1]
    return found
