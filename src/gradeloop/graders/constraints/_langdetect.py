"""``langdetect.detect`` with the same answers, faster.

IFEval's language checks call ``langdetect.detect``: it cleans the text, extracts character
n-grams, then runs 7 random trials (seeded: ``DetectorFactory.seed = 0``) that multiply 55
per-language probabilities by each sampled n-gram's profile, and returns the language with
the highest mean probability. Pure Python, that is about 10 ms per response.

:class:`FastDetector` subclasses langdetect's ``Detector`` and keeps its algorithm and its
random draws exactly (same ``random.Random`` calls in the same order), changing only how the
arithmetic is done:

- the probability vector is a numpy array: the element-wise ``prob[i] *= weight + p[i]`` and
  ``prob[i] / sum`` are the same IEEE double operations, and the sum stays Python's ``sum``
  over the list, so every intermediate value is bit-identical;
- text cleaning uses regular expressions for its character loops, and n-gram extraction is
  the same state machine computed with numpy over the whole text (n-grams packed as ints);
- the trials stop once the leading language cannot be overtaken: each trial adds at most
  ``1/7`` to any language's mean, so when the leader is ahead by more than the remaining
  trials' share, the answer of ``detect()`` is already fixed (only ``detect()`` is offered).

tests/test_ifeval.py checks the answers against ``langdetect.detect`` on every IFEval
response and its loose variants.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["detect"]

_SPACES = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z' (with [\]^_` between)
_NON_LATIN = re.compile("[\u0300-\U0010ffff]")


_BITS = 21  # a code point fits in 21 bits: an n-gram (n <= 3) packs into one int64
_MASK = (1 << _BITS) - 1


def _pack(gram: str) -> int:
    code = 0
    for char in gram:
        code = (code << _BITS) | ord(char)
    return code


def _unpack(code: int) -> str:
    return "".join(chr(part) for shift in (2 * _BITS, _BITS, 0) if (part := (code >> shift) & _MASK))


@lru_cache(maxsize=1)
def _factory() -> tuple[Any, type]:
    """langdetect's loaded profiles and the FastDetector class."""
    import numpy as np
    from langdetect import DetectorFactory, detector_factory
    from langdetect.detector import Detector
    from langdetect.lang_detect_exception import ErrorCode, LangDetectException
    from langdetect.utils.ngram import NGram

    DetectorFactory.seed = 0
    detector_factory.init_factory()
    factory = detector_factory._factory
    normalize = lru_cache(maxsize=65536)(NGram.normalize)
    known = np.sort(np.fromiter((_pack(w) for w in factory.word_lang_prob_map), dtype=np.int64))
    vectors: dict[int, Any] = {}

    def vector(code: int) -> Any:
        found = vectors.get(code)
        if found is None:
            found = vectors[code] = np.array(factory.word_lang_prob_map[_unpack(code)])
        return found

    class FastDetector(Detector):
        """langdetect's Detector with vectorized, bit-identical arithmetic (see the module doc)."""

        def append(self, text: str) -> None:
            text = self.URL_RE.sub(" ", text)
            text = self.MAIL_RE.sub(" ", text)
            text = NGram.normalize_vi(text)
            self.text += _SPACES.sub(" ", text[:self.max_text_length])

        def cleaning_text(self) -> None:
            # langdetect compares a block number with a block name here, so every char >= U+0300 counts
            if len(_LATIN.findall(self.text)) * 2 < len(_NON_LATIN.findall(self.text)):
                self.text = _LATIN.sub("", self.text)

        def _extract_codes(self) -> list[int]:
            """langdetect's n-grams, in its order, packed as ints. Its NGram state machine comes
            down to: normalize every char, collapse spaces, prepend one; at a space emit the
            previous word's last 2- and 3-gram with it; at any other char emit its 1-, 2- and
            3-gram (a 3-gram only past the word's first char) unless it and the char before
            are both capitals. Only n-grams in the profiles are kept."""
            text = self.text
            mapping = {ord(c): n for c in set(text) if (n := normalize(c)) != c}
            padded = _SPACES.sub(" ", " " + text.translate(mapping))
            if len(padded) < 2:
                return []
            cp = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
            upper = np.isin(cp, [ord(c) for c in set(padded) if c.isupper()])
            c, p = cp[1:], cp[:-1]
            pp = np.concatenate(([32], cp[:-2]))
            space, after_space = c == 32, p == 32
            keep = ~(upper[1:] & upper[:-1]) & ~space
            grams = np.stack([c, (p << _BITS) | c, (pp << 2 * _BITS) | (p << _BITS) | c], axis=1)
            valid = np.stack([keep, keep | space, (keep & ~after_space) | space], axis=1)
            flat = grams[valid]
            where = np.minimum(np.searchsorted(known, flat), len(known) - 1)
            return flat[known[where] == flat].tolist()

        def _extract_ngrams(self) -> list[str]:
            return [_unpack(code) for code in self._extract_codes()]

        def _detect_block(self) -> None:
            self.cleaning_text()
            ngrams = self._extract_codes()
            if not ngrams:
                raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
            n_lang, count = len(self.langlist), len(ngrams)
            below = self.random._randbelow  # what random.choice calls: the same draws
            total = np.zeros(n_lang)
            self.random.seed(self.seed)
            for trial in range(self.n_trial):
                prob = np.full(n_lang, 1.0 / n_lang)
                alpha = self.alpha + self.random.gauss(0.0, 1.0) * self.ALPHA_WIDTH
                weight = alpha / self.BASE_FREQ
                i = 0
                while True:
                    prob *= weight + vector(ngrams[below(count)])
                    if i % 5 == 0:
                        values = prob.tolist()
                        total_p = sum(values)  # Python's sum, as langdetect: the same rounding
                        prob /= total_p
                        # division is monotonic, so this is the largest normalized value exactly
                        if max(values) / total_p > self.CONV_THRESHOLD or i >= self.ITERATION_LIMIT:
                            break
                    i += 1
                total += prob / self.n_trial
                remaining = self.n_trial - trial - 1
                if remaining and _decided(total, remaining / self.n_trial):
                    break
            self.langprob = total.tolist()

    return factory, FastDetector


def _decided(total: Any, still_to_add: float) -> bool:
    """Whether the leader of ``total`` stays first whatever the remaining trials add."""
    top2 = sorted(total.tolist())[-2:]
    return top2[1] - top2[0] > still_to_add + 1e-9


def detect(text: str) -> str:
    """The language code ``langdetect.detect(text)`` returns (with ``DetectorFactory.seed = 0``);
    raises ``LangDetectException`` where langdetect does (no features in the text)."""
    factory, detector_class = _factory()
    detector = detector_class(factory)
    detector.append(text)
    return detector.detect()
