"""Topics within a use-case cluster: what users ask, and which kinds of request go wrong.

The last user message of each record is embedded with the MiniLM model that ships with
gradeloop (the ``text_similarity`` grader's local embedder), the vectors are reduced to their
first principal components and grouped with scikit-learn's HDBSCAN (records in no dense group
form the topic "other"), and each group is labelled by its distinctive terms: class-based
TF-IDF, where a term scores by its frequency in the group times the log of how rare it is
across all groups, English stop words removed.
A judge model can name each group (``namer``); nothing needs one.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError
from ..store import Store
from ._cluster import last_user_text

__all__ = ["Topic", "topics", "is_failing", "OTHER"]

OTHER = -1  # the id of the topic of records in no dense group
EXAMPLES = 3
LABEL_TERMS = 5
REDUCED_DIMS = 5  # what HDBSCAN clusters: the embeddings' first principal components
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_\d+>")
_NAMER_PROMPT = ("You name groups of user requests sent to an assistant. Answer with a name of two to five words "
                 "that says what the requests in the group ask for; answer with the name only.")


@dataclass
class Topic:
    """One group of similar requests in a cluster: ``label`` (its distinctive terms), ``name``
    (from the namer, when one was given), how many records and occurrences, ``examples``
    (the requests nearest the group's centre), errors, negative feedback and ``record_ids``."""

    id: int
    label: list[str]
    size: int
    occurrences: int
    examples: list[str]
    errors: int
    negative_feedback: int
    record_ids: list[str] = field(default_factory=list)
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The topic as JSON (``object: harvest.topic``)."""
        return {"object": "harvest.topic", "id": self.id, "name": self.name, "label": self.label, "size": self.size,
                "occurrences": self.occurrences, "examples": self.examples, "errors": self.errors,
                "negative_feedback": self.negative_feedback, "record_ids": self.record_ids}


def _errored(record: dict[str, Any]) -> bool:
    return record.get("error") is not None or (record.get("status") or 200) >= 400


def is_failing(record: dict[str, Any], failed_in_runs: set[str]) -> bool:
    """Whether a record errored (status ≥ 400 or an error), got negative feedback, or failed a
    criterion in an eval run whose item names it (``failed_in_runs``)."""
    negative = record.get("feedback") is not None and record["feedback"] < 0
    return _errored(record) or negative or record["id"] in failed_in_runs


def _embed(texts: list[str]) -> Any:
    import numpy as np

    from ..graders._similarity import _local_embedder

    distinct = list(dict.fromkeys(texts))
    vectors = dict(zip(distinct, _local_embedder().encode(distinct)))
    return np.array([vectors[t] for t in texts], dtype=np.float32)


def min_topic_size(records: int) -> int:
    """HDBSCAN's ``min_cluster_size`` for a cluster of ``records``: about √n, at least 3."""
    return max(3, round(math.sqrt(records)))


def _groups(vectors: Any) -> list[int]:
    """A group label per vector (``OTHER`` for noise); fewer than 6 requests, or requests with
    no dense group among them, are one group."""
    if len(vectors) < 6:
        return [0] * len(vectors)
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    # density is poorly defined in 384 dimensions (all distances look alike): reduce first,
    # as BERTopic does (it uses UMAP to 5 dimensions; PCA is deterministic and already here)
    reduced = PCA(n_components=min(REDUCED_DIMS, len(vectors) - 1), random_state=0).fit_transform(vectors)
    size = min_topic_size(len(vectors))
    # a small min_samples keeps "other" small: phrasings of one intent are dense but not very
    labels = HDBSCAN(min_cluster_size=size, min_samples=max(2, size // 10), copy=True).fit(reduced).labels_
    if (labels < 0).all():  # no dense group at all (few or scattered requests): one topic, not all "other"
        return [0] * len(vectors)
    return [int(x) if x >= 0 else OTHER for x in labels]


def _terms(texts: list[str], labels: list[int]) -> dict[int, list[str]]:
    """The distinctive terms of each group (c-TF-IDF, unigrams and bigrams)."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    groups = sorted(set(labels))
    docs = [" ".join(_PLACEHOLDER.sub(" ", t) for t, g in zip(texts, labels) if g == group) for group in groups]
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2), token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    try:
        counts = vectorizer.fit_transform(docs).toarray().astype(float)  # (groups, terms)
    except ValueError:  # nothing but stop words
        return {group: [] for group in groups}
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1 + counts.sum() / len(groups) / np.maximum(counts.sum(axis=0), 1))
    vocabulary = vectorizer.get_feature_names_out()
    return {group: _top_terms(row, vocabulary) for group, row in zip(groups, tf * idf)}


def _top_terms(scores: Any, vocabulary: Any) -> list[str]:
    chosen: list[str] = []
    for i in scores.argsort()[::-1]:
        term = str(vocabulary[i])
        if scores[i] <= 0 or len(chosen) == LABEL_TERMS:
            break
        if any(term in c.split() or c in term.split() for c in chosen):
            continue  # "baggage" adds nothing next to "checked baggage"
        chosen.append(term)
    return chosen


def _examples(texts: list[str], vectors: Any) -> list[str]:
    centre = vectors.mean(axis=0)
    order = (vectors @ centre).argsort()[::-1]
    return list(dict.fromkeys(texts[i] for i in order))[:EXAMPLES]


def topics(store: Store, cluster_id: int, failing: bool = False, namer: str | None = None) -> list[Topic]:
    """The topics of cluster ``cluster_id`` (from :func:`cluster_records`), largest first and
    "other" last; ``failing`` keeps only failing records (see :func:`is_failing`); ``namer``
    (a model name) names each topic. Raises NotFoundError for an unknown cluster."""
    if cluster_id not in {c["id"] for c in store.harvest_clusters()}:
        raise NotFoundError(f"no harvest cluster {cluster_id} (see `gradeloop harvest clusters`)")
    records = store.harvest_records(cluster_id=cluster_id)
    if failing:
        failed = store.harvest_failed_in_runs()
        records = [r for r in records if is_failing(r, failed)]
    if not records:
        return []
    texts = [last_user_text(r["messages"]) for r in records]
    vectors = _embed(texts)
    labels = _groups(vectors)
    terms = _terms(texts, labels)
    found = [_topic(group, [i for i, g in enumerate(labels) if g == group], records, texts, vectors, terms[group])
             for group in set(labels)]
    found.sort(key=lambda t: (t.id == OTHER, -t.size, t.id))
    for number, topic in enumerate(t for t in found if t.id != OTHER):
        topic.id = number
    if namer:
        _name_topics(store, found, namer)
    return found


def _topic(group: int, members: list[int], records: list[dict[str, Any]], texts: list[str], vectors: Any,
           label: list[str]) -> Topic:
    chosen = [records[i] for i in members]
    return Topic(id=group, label=["other"] if group == OTHER else label, size=len(members),
                 occurrences=sum(r["occurrences"] for r in chosen),
                 examples=_examples([texts[i] for i in members], vectors[members]),
                 errors=sum(_errored(r) for r in chosen),
                 negative_feedback=sum(r["feedback"] is not None and r["feedback"] < 0 for r in chosen),
                 record_ids=[r["id"] for r in chosen])


def _name_topics(store: Store, found: list[Topic], namer: str) -> None:
    """Ask ``namer`` for a short name of each topic but "other" (through the runner's model
    pool: retries, the response cache, calls stored)."""
    from ..models import GenerateRequest
    from ..runner._pool import grading_session

    async def name_all() -> list[str]:
        async with grading_session(store=store) as context:
            requests = [GenerateRequest(messages=[{"role": "system", "content": _NAMER_PROMPT},
                                                  {"role": "user", "content": _namer_question(t)}],
                                        params={"temperature": 0, "max_completion_tokens": 20})
                        for t in found if t.id != OTHER]
            results = await asyncio.gather(*(context.generate(namer, r) for r in requests))
            return [r.output_text for r in results]

    for topic, text in zip((t for t in found if t.id != OTHER), asyncio.run(name_all())):
        topic.name = _clean_name(text)


def _namer_question(topic: Topic) -> str:
    examples = "\n".join(f"- {e}" for e in topic.examples)
    return f"Distinctive terms: {', '.join(topic.label)}\nExample requests:\n{examples}\nName this group."


def _clean_name(text: str | None) -> str | None:
    lines = [line.strip().strip("\"'*.").strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0][:80] if lines else None
