"""Text measures shared by the constraints: words, sentences, word tokens, language.

IFEval's reference counts sentences with NLTK's Punkt model (``punkt_tab``) and tokenizes
words for ``change_case:capital_word_frequency`` with ``nltk.word_tokenize``, which also
needs Punkt. NLTK data is found the way NLTK finds it: the folders in ``NLTK_DATA`` (read
at each lookup, so a test may point it elsewhere) and then NLTK's default folders. Without
``punkt_tab`` gradeloop falls back, never failing:

- sentences: :func:`split_sentences_regex`, Punkt's mechanics without its trained tables
  (a break after ``.``, ``?`` or ``!`` when punctuation, or whitespace and a token, follow;
  closing quotes and brackets stay with the sentence; no break after common abbreviations
  or runs of initials, after an ellipsis only before a capital, after a number such as
  ``1.`` unless a lowercase word follows). On IFEval's published responses it gives the
  reference's verdicts on every instruction; sentence counts differ on about 3% of texts;
- word tokens: NLTK's Treebank-style word tokenizer over the whole text
  (``word_tokenize(text, preserve_line=True)``), which needs no data.

Language detection uses langdetect (a base dependency) with ``DetectorFactory.seed = 0``
set before its first use, so a verdict never changes between runs.

NLTK and langdetect are imported on first use only.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from ...errors import InputError
from ._tokenizers import fast_punkt, fast_treebank

__all__ = [
    "count_words",
    "count_sentences",
    "split_sentences",
    "split_sentences_regex",
    "word_tokens",
    "count_capital_words",
    "detect_language",
    "sentence_backend",
]

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """IFEval's word count: the number of ``\\w+`` runs (NLTK's ``RegexpTokenizer(r"\\w+")``)."""
    return len(_WORD.findall(text))


# ----------------------------------------------------------------------------- Punkt lookup

_PUNKT: dict[str, Any] = {}  # NLTK_DATA value → Punkt tokenizer or None


def _add_nltk_data_dirs() -> None:
    """Put the folders of the current ``NLTK_DATA`` first in NLTK's search path (NLTK itself
    reads the variable once, when it is imported)."""
    import nltk.data

    folders = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    for folder in reversed(folders):
        if folder not in nltk.data.path:
            nltk.data.path.insert(0, folder)


def _punkt() -> Any | None:
    """NLTK's English Punkt sentence tokenizer, or None when ``punkt_tab`` is not installed."""
    key = os.environ.get("NLTK_DATA", "")
    if key not in _PUNKT:
        _add_nltk_data_dirs()
        from nltk.tokenize.punkt import PunktTokenizer

        try:
            _PUNKT[key] = fast_punkt(PunktTokenizer("english"))
        except (LookupError, OSError):
            _PUNKT[key] = None
    return _PUNKT[key]


def sentence_backend() -> str:
    """``"punkt"`` when NLTK's ``punkt_tab`` data is found, else ``"regex"`` (the fallback)."""
    return "punkt" if _punkt() is not None else "regex"


def reset_text_caches() -> None:
    """Forget the Punkt lookup and the memoized measures (after changing ``NLTK_DATA``)."""
    _PUNKT.clear()
    clear_memos()


def clear_memos() -> None:
    """Forget memoized sentence counts, word tokens and languages (the bench times cold passes)."""
    for memo in (count_sentences, word_tokens, _sentence_tokens, detect_language):
        memo.cache_clear()


# ----------------------------------------------------------------------------- sentences

# common English abbreviations after which a period does not end a sentence (lowercase,
# without the final period); single letters are handled as initials
_ABBREVIATIONS = frozenset("""
mr mrs ms messrs dr prof rev hon st sr jr gen col lt maj capt sgt adm gov sen rep reps pres
inc ltd co corp bros llc plc dept univ assn est vs u.s u.k u.n u.s.a e.u ph.d m.d b.a m.a m.b.a
a.m p.m jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat
ave blvd rd mt ft approx
""".split())

# Punkt's view of text: [.?!] ends a sentence when other punctuation follows it, or whitespace
# and another token; closing quotes and brackets then followed by whitespace stay with it
_NON_WORD = r"[)\";}\]*:@'({\[‘’“”«»?!]"
_CANDIDATE = re.compile(rf"[.?!]+(?={_NON_WORD}|\s+\S)")
_REALIGN = re.compile(r"[\"')\]}‘’“”«»]+?(?:\s+|(?=--)|$)")
_WORD_BEFORE = re.compile(r"[^\s)\";}\]*:@'({\[‘’“”«»?!]*$")
_NUMBER = re.compile(r"^-?[.,]?\d[\d,.-]*$")
_FIRST_CASED = re.compile(r"[^\W\d_]")


def _period_breaks(text: str, start: int, end: int) -> bool:
    """Whether the period(s) at ``text[start:end]`` end a sentence (Punkt's rules without its
    trained tables): not after an abbreviation or a capital initial; after an ellipsis only
    before a capital; after a number unless a lowercase word follows."""
    word = _WORD_BEFORE.search(text, max(0, start - 80), start).group().lower()
    following = _FIRST_CASED.search(text, end, end + 40)
    next_upper = following is not None and following.group().isupper()
    next_lower = following is not None and following.group().islower()
    if end - start > 1 or word.endswith("."):  # an ellipsis
        return next_upper
    if word in _ABBREVIATIONS or word.rsplit("-", 1)[-1] in _ABBREVIATIONS:
        return False
    if len(word) == 1 and text[start - 1].isupper() and _in_initials(text, start):  # "J. K. Rowling"
        return False
    if _NUMBER.match(word):  # "1." in a numbered list
        return not next_lower
    return True


_INITIAL_BEFORE = re.compile(r"(?:^|\s)[A-Z]\.\s+$")
_INITIAL_AFTER = re.compile(r"\s+[A-Z]\.(?:\s|$)")


def _in_initials(text: str, start: int) -> bool:
    """Whether the capital letter before ``text[start]`` is one of a run of initials ("J. K.")."""
    return bool(_INITIAL_BEFORE.search(text, max(0, start - 4), start - 1)
                or _INITIAL_AFTER.match(text, start + 1))


def split_sentences_regex(text: str) -> list[str]:
    """Split ``text`` into sentences without NLTK data (gradeloop's documented fallback).

    It follows Punkt's mechanics: a break after ``.``, ``?`` or ``!`` (a run of them counts
    once) when punctuation, or whitespace and a token, follow; closing quotes and brackets
    followed by whitespace stay with the sentence; newlines alone never end one. Instead of
    Punkt's trained tables, periods follow :func:`_period_breaks`.
    """
    sentences, start = [], 0
    for m in _CANDIDATE.finditer(text):
        if m.start() < start:
            continue
        if text[m.end() - 1] == "." and not _period_breaks(text, m.start(), m.end()):
            continue
        end, resume = m.end(), m.end()
        realign = _REALIGN.match(text, end)
        if realign:
            end, resume = end + len(realign.group().rstrip()), realign.end()
        sentences.append(text[start:end].strip())
        start = resume
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: NLTK Punkt (English) when its data is installed, else the regex fallback."""
    punkt = _punkt()
    if punkt is not None:
        return punkt.tokenize(text)
    return split_sentences_regex(text)


@lru_cache(maxsize=4096)
def count_sentences(text: str) -> int:
    """The number of sentences, as IFEval counts them (see :func:`split_sentences`)."""
    return len(split_sentences(text))


# ----------------------------------------------------------------------------- word tokens

@lru_cache(maxsize=4096)
def word_tokens(text: str) -> tuple[str, ...]:
    """``nltk.word_tokenize(text)`` (Punkt sentences, then Treebank words); without Punkt data
    the Treebank-style tokenizer runs over the whole text (``preserve_line=True``)."""
    punkt = _punkt()
    sentences = punkt.tokenize(text) if punkt is not None else [text]
    return tuple(token for sentence in sentences for token in _sentence_tokens(sentence))


def count_capital_words(text: str) -> int:
    """How many of ``word_tokens(text)`` are all capitals (``str.isupper``)."""
    punkt = _punkt()
    sentences = punkt.tokenize(text) if punkt is not None else [text]
    # a token is a piece of its sentence: no uppercase letter there, no all-capital token
    return sum(1 for s in sentences if any(map(str.isupper, s)) for t in _sentence_tokens(s) if t.isupper())


@lru_cache(maxsize=16384)
def _sentence_tokens(sentence: str) -> tuple[str, ...]:
    return tuple(_treebank().tokenize(sentence))


@lru_cache(maxsize=1)
def _treebank() -> Any:
    return fast_treebank()  # the word tokenizer of nltk.word_tokenize


# ----------------------------------------------------------------------------- language

@lru_cache(maxsize=4096)
def detect_language(text: str) -> str | None:
    """langdetect's language code for ``text`` (seeded, so deterministic); None when langdetect
    finds no features (IFEval counts that as a pass). Raises InputError when langdetect is
    not installed."""
    try:
        from langdetect import LangDetectException
    except ImportError:
        raise InputError("the language constraints need langdetect: pip install langdetect") from None
    try:
        from ._langdetect import detect  # the same answers, faster (needs numpy)
    except ImportError:
        from langdetect import DetectorFactory, detect

        DetectorFactory.seed = 0
    try:
        return detect(text)
    except LangDetectException:
        return None
