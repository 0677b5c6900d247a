"""IFEval's 25 verifiable instructions (Zhou et al. 2023), checked as Google's reference does.

Every check reproduces the reference's semantics, quirks included (see docs/ifeval.md):
keywords are raw regular expressions searched without word boundaries, words are ``\\w+``
runs, ``***`` paragraphs discount an empty first or last piece and fail on an empty middle
one, every line starting with ``-`` (a ``---`` rule too) is a bullet, JSON may sit in a code
fence, letters are counted in the lowercased text, and a response langdetect cannot read
passes the language checks. Parameters carry the reference's kwarg names.

Known differences from the reference, all on inputs where it misbehaves:

- ``keywords:letter_frequency`` counts the character it is given; the reference swaps any
  ``letter`` that is not one ASCII letter (``#`` and ``!`` in the data) for a random one;
- a keyword, section splitter or postscript marker that is not a valid regular expression is
  matched literally (the reference raises ``re.error``);
- without NLTK's ``punkt_tab`` data, sentences and word tokens come from the documented
  fallbacks in :mod:`._text`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._base import Constraint, register_constraint
from ._text import count_capital_words, count_sentences, count_words, detect_language

__all__ = ["IFEVAL_IDS", "LANGUAGES"]

Relation = Literal["less than", "at least"]

# langdetect's language codes and their English names (IFEval's 30 come first)
LANGUAGES: dict[str, str] = {
    "en": "English", "es": "Spanish", "pt": "Portuguese", "ar": "Arabic", "hi": "Hindi", "fr": "French",
    "ru": "Russian", "de": "German", "ja": "Japanese", "it": "Italian", "bn": "Bengali", "uk": "Ukrainian",
    "th": "Thai", "ur": "Urdu", "ta": "Tamil", "te": "Telugu", "bg": "Bulgarian", "ko": "Korean",
    "pl": "Polish", "he": "Hebrew", "fa": "Persian", "vi": "Vietnamese", "ne": "Nepali", "sw": "Swahili",
    "kn": "Kannada", "mr": "Marathi", "gu": "Gujarati", "pa": "Punjabi", "ml": "Malayalam", "fi": "Finnish",
    "af": "Afrikaans", "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish", "el": "Greek",
    "et": "Estonian", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "nl": "Dutch", "no": "Norwegian", "ro": "Romanian", "sk": "Slovak",
    "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sv": "Swedish", "tl": "Tagalog", "tr": "Turkish",
    "zh-cn": "Simplified Chinese", "zh-tw": "Traditional Chinese",
}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _compare(actual: int, relation: str, threshold: int) -> bool:
    return actual < threshold if relation == "less than" else actual >= threshold


@lru_cache(maxsize=1024)
def _regex(raw: str, flags: int = 0, prefix: str = "", suffix: str = "") -> re.Pattern[str]:
    """``prefix + raw + suffix`` compiled as the reference builds it (``raw`` is a user's word used
    as a regular expression); ``raw`` is taken literally when that does not compile."""
    try:
        return re.compile(prefix + raw + suffix, flags)
    except re.error:
        return re.compile(prefix + re.escape(raw) + suffix, flags)


# ----------------------------------------------------------------------------- detection helpers

_NUMBER_WORDS = {
    "a single": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100, "once": 1, "twice": 2, "thrice": 3,
}
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8,
    "9th": 9, "10th": 10,
}
_NUM = r"\d+|" + "|".join(sorted((w for w in _NUMBER_WORDS if w not in ("once", "twice", "thrice")),
                                 key=len, reverse=True))
_ORD = "|".join(sorted(_ORDINALS, key=len, reverse=True))
_AT_LEAST = ("at least", "no less than", "no fewer than", "not less than", "not fewer than",
             "a minimum of", "minimum of")
_MORE = ("more than", "over", "greater than")
_LESS = ("less than", "fewer than", "under", "below")
_AT_MOST = ("at most", "no more than", "not more than", "a maximum of", "maximum of", "up to")
_REL = "|".join(sorted(_AT_LEAST + _MORE + _LESS + _AT_MOST, key=len, reverse=True))
_ITEM = r"\"([^\"\n]+)\"|“([^”\n]+)”|'([^'\n]+)'|‘([^’\n]+)’"
_QUOTED = r"(?:\"[^\"\n]+\"|“[^”\n]+”|'[^'\n]+'|‘[^’\n]+’)"
_SEP = r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)"
_QUOTED_LIST = rf"{_QUOTED}(?:{_SEP}{_QUOTED})*"
_BARE_LIST = rf"[A-Za-z][\w'-]*(?:{_SEP}[A-Za-z][\w'-]*)*"
_NEGATION = re.compile(r"(?:\bnot|\bnever|n't|n’t|\bwithout|\bavoid|\bexclude)\W+(?:\w+\W+){0,2}$", re.IGNORECASE)


def _number(text: str) -> int:
    text = text.lower().strip()
    return int(text) if text.isdigit() else _NUMBER_WORDS[text]


def _relation(word: str, n: int) -> tuple[str, int]:
    """``("at least", 5)`` for "at least 5"; "more than 5" → at least 6; "at most 5" → less than 6."""
    word = " ".join(word.lower().split())
    if word in _AT_LEAST:
        return "at least", n
    if word in _MORE:
        return "at least", n + 1
    if word in _LESS:
        return "less than", n
    return "less than", n + 1


def _count_phrases(text: str, unit: str) -> list[tuple[str, int]]:
    """Every count of ``unit`` stated in ``text`` as ``(relation, n)``: "at least 5 words",
    "300+ words", "100 words or less", "5 to 10 sentences" (two), "exactly 3 sentences" (two)."""
    found: list[tuple[int, str, int]] = []
    flags = re.IGNORECASE
    patterns = [
        (rf"\b(?P<rel>{_REL})\s+(?:a total of\s+)?(?P<n>{_NUM})[\s-]+(?:\w+\s+)?{unit}", None),
        (rf"\b(?P<n>\d+)\s*\+\s*-?\s*{unit}", "at least"),
        (rf"\b(?P<n>{_NUM})[\s-]+{unit}\s+or\s+(?P<more>more|fewer|less)\b", None),
        (rf"\b(?P<n>{_NUM})\s+or\s+(?P<more>more|fewer|less)\s+{unit}", None),
    ]
    for pattern, fixed in patterns:
        for m in re.finditer(pattern, text, flags):
            n = _number(m.group("n"))
            if fixed:
                rel, value = fixed, n
            elif m.groupdict().get("rel"):
                rel, value = _relation(m.group("rel"), n)
            else:
                rel, value = ("at least", n) if m.group("more").lower() == "more" else ("less than", n + 1)
            found.append((m.start(), rel, value))
    for m in re.finditer(rf"\b(?:(?P<exact>exactly)\s+(?P<n>{_NUM})|(?P<lo>\d+)\s*(?:to|-|–)\s*(?P<hi>\d+))"
                         rf"\s+(?:\w+\s+)?{unit}", text, flags):
        lo = _number(m.group("n") or m.group("lo"))
        hi = _number(m.group("n") or m.group("hi"))
        found += [(m.start(), "at least", lo), (m.start() + 1, "less than", hi + 1)]
    return [(rel, n) for _, rel, n in sorted(found)]


_TIMES = (rf"(?:(?P<rel>{_REL})\s+(?:(?P<n>{_NUM})\s+times?\b|(?P<adv>once|twice|thrice)\b)"
          rf"|(?P<n2>{_NUM})\s+(?:times?\s+)?or\s+(?P<more>more|fewer|less)(?:\s+times)?\b"
          rf"|(?P<adv2>once|twice|thrice)\s+or\s+(?P<more2>more|fewer|less)\b"
          r"|(?P<only>only\s+once|just\s+once)\b)")
_TIMES_RE = re.compile(_TIMES, re.IGNORECASE)


def _count_after(text: str, pos: int, reach: int = 90) -> tuple[str, int] | None:
    """The first "at least 3 times" / "twice" / "5 or more times" / "only once" within ``reach``
    characters after ``pos`` and in the same sentence, as ``(relation, n)``."""
    window = re.split(r"(?<=[.!?])\s|\n", text[pos:pos + reach], maxsplit=1)[0]
    m = _TIMES_RE.search(window)
    if m is None:
        return None
    if m.group("only"):
        return "less than", 2
    if m.group("rel"):
        return _relation(m.group("rel"), _number(m.group("n") or m.group("adv")))
    n = _number(m.group("n2") or m.group("adv2"))
    return ("at least", n) if (m.group("more") or m.group("more2")).lower() == "more" else ("less than", n + 1)


def _sentence_before(text: str, pos: int) -> str:
    """The text from the start of the sentence holding ``pos`` up to ``pos``."""
    start = max(text.rfind(". ", 0, pos), text.rfind("\n", 0, pos), text.rfind("? ", 0, pos)) + 1
    return text[start:pos]


def _items(text: str) -> list[str]:
    """The quoted items of a list ("a", 'b' and “c”), or the bare words of "a, b and c"."""
    quoted = [next(g for g in m.groups() if g is not None) for m in re.finditer(_ITEM, text)]
    if quoted:
        return [q.strip() for q in quoted if q.strip()]
    words = re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", text.strip())
    return [w for w in words if w]


def _language_code(name: str) -> str | None:
    name = name.lower()
    for code, language in LANGUAGES.items():
        if language.lower() == name:
            return code
    return {"farsi": "fa", "chinese": "zh-cn", "mandarin": "zh-cn", "tagalog": "tl"}.get(name)


_LANGUAGE_NAMES = "|".join(sorted([*LANGUAGES.values(), "Farsi", "Chinese", "Mandarin"], key=len, reverse=True))


# ----------------------------------------------------------------------------- base class

class _IFEval(Constraint):
    """Shared plumbing: ``templates`` give the phrasings, ``_detect`` the parameters found."""

    templates: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.phrasings = max(1, len(cls.templates))

    def _fields(self, params: Any) -> dict[str, Any]:
        return params.model_dump()

    def describe(self, params: Any, phrasing: int = 0) -> str:
        """The instruction in words; ``phrasing`` is taken modulo ``phrasings``."""
        return self.templates[phrasing % self.phrasings].format(**self._fields(params))

    def _detect(self, text: str) -> list[dict[str, Any]]:
        return []

    def detect(self, text: str) -> list[Any]:
        """Parameters of every instance of this instruction stated in ``text``."""
        out: list[Any] = []
        for kwargs in self._detect(text):
            try:
                params = self.Params.model_validate(kwargs)
            except ValidationError:
                continue
            if params not in out:
                out.append(params)
        return out


def _found(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def _quoted_list(items: list[str]) -> str:
    quoted = [f'"{i}"' for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


# ============================================================================= keywords

class KeywordsParams(_Params):
    """``keywords``: every one must occur (a raw, case-insensitive regex search)."""

    keywords: list[str] = Field(min_length=1)


@register_constraint
class KeywordExistence(_IFEval):
    """``keywords:existence``: each keyword found by ``re.search(kw, response, re.I)``, so
    "mom" matches "moment" (no word boundary, as in the reference)."""

    id = "keywords:existence"
    Params = KeywordsParams
    templates = ("Include the keywords {items} in the response.",
                 "Make sure your answer mentions {items}.")

    def _fields(self, params: Any) -> dict[str, Any]:
        return {"items": _quoted_list(params.keywords)}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        missing = [k for k in params.keywords if not _regex(k, re.IGNORECASE).search(response)]
        if missing:
            return False, f"missing keyword(s): {', '.join(missing)}"
        return True, "all keywords present"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        verbs = r"(?:include|includes|including|contain|contains|containing|mention|mentions|use|using|have|has)"
        lead = rf"\b{verbs}\s+(?:the\s+|these\s+|both\s+)?"
        quoted = rf"(?:key\s?words?|words?|terms?|phrases?|lines?)?\s*:?\s*(?P<list>{_QUOTED_LIST}|\[[^\]\n]*\])"
        bare = rf"(?:key\s?words?|words?\s*:|terms?\s*:)\s*(?P<list>{_BARE_LIST})"
        for pattern in (lead + quoted, lead + bare, rf"\bmentions?\s+(?P<list>{_QUOTED_LIST})"):
            for m in re.finditer(pattern, text, re.IGNORECASE):
                if _NEGATION.search(text[max(0, m.start() - 40):m.start()]):
                    continue  # "do not include the keywords …" forbids them
                if _count_after(text, m.end(), 40) is not None:
                    continue  # "use the word "x" at least 3 times" is a frequency
                items = [i for i in _items(m.group("list")) if re.search(r"\w", i)]
                if items:
                    out.append({"keywords": items})
        return out


class KeywordFrequencyParams(_Params):
    """``keyword`` found ``relation`` ``frequency`` times (raw case-insensitive regex, no word boundary)."""

    keyword: str = Field(min_length=1)
    frequency: int = Field(ge=0)
    relation: Relation


@register_constraint
class KeywordFrequency(_IFEval):
    """``keywords:frequency``: ``len(re.findall(keyword, response, re.I))`` compared with ``relation``."""

    id = "keywords:frequency"
    Params = KeywordFrequencyParams
    templates = ('In your response, the word "{keyword}" should appear {relation} {frequency} times.',
                 'Use the word "{keyword}" {relation} {frequency} times.')

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = len(_regex(params.keyword.strip(), re.IGNORECASE).findall(response))
        ok = _compare(n, params.relation, params.frequency)
        return ok, f"'{params.keyword}' appears {n} times ({params.relation} {params.frequency} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        word = (r"\b(?:key)?(?:word|term|keyword|name)\s+"
                r"(?:[\"“'‘](?P<q>[^\"”'’\n]+)[\"”'’]|(?P<kw>[\w-]+))")
        for m in re.finditer(word, text, re.IGNORECASE):
            count = _count_after(text, m.end())
            if count is not None:
                out.append({"keyword": m.group("q") or m.group("kw"), "relation": count[0], "frequency": count[1]})
        return out


class ForbiddenWordsParams(_Params):
    """``forbidden_words``: none may occur as a whole word (``\\bword\\b``, case-insensitive)."""

    forbidden_words: list[str] = Field(min_length=1)


@register_constraint
class ForbiddenWords(_IFEval):
    """``keywords:forbidden_words``: fails when ``re.search(r"\\b" + w + r"\\b", response, re.I)``
    finds any of the words."""

    id = "keywords:forbidden_words"
    Params = ForbiddenWordsParams
    templates = ("Do not include the keywords {items} in the response.",
                 "Never use any of these words: {items}.")

    def _fields(self, params: Any) -> dict[str, Any]:
        return {"items": _quoted_list(params.forbidden_words)}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        used = [w for w in params.forbidden_words if _regex(w, re.IGNORECASE, r"\b", r"\b").search(response)]
        if used:
            return False, f"uses forbidden word(s): {', '.join(used)}"
        return True, "no forbidden word used"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        neg = (r"\b(?:do not|don't|don’t|never|must not|should not|cannot|can't|without|avoid|exclude|not)\s+"
               r"(?:to\s+)?(?:include|use|using|mention|say|saying|including|contain|containing)?\s*"
               r"(?:any\s+of\s+)?(?:the\s+|these\s+)?(?:following\s+)?")
        quoted = rf"(?:key\s?words?|words?|terms?)?\s*:?\s*(?P<list>{_QUOTED_LIST}|\[[^\]\n]*\])"
        bare = rf"(?:key\s?words?|words?|terms?)\s*:?\s*(?P<list>{_BARE_LIST})"
        out = []
        for pattern in (neg + quoted, neg + bare):
            for m in re.finditer(pattern, text, re.IGNORECASE):
                items = [i.lower() for i in _items(m.group("list")) if len(i) > 1]
                if items and items[0] not in ("in", "with", "that", "from", "more", "than", "any"):
                    out.append({"forbidden_words": items})
        after = (rf"\b(?:the\s+)?(?:key)?words?\s+(?P<list>{_QUOTED_LIST}|{_BARE_LIST})\s+(?:should|must|can|does|do)"
                 r"(?:\s+not|n't|not)\s+(?:appear|be\s+(?:in|used|included))")
        for m in re.finditer(after, text, re.IGNORECASE):
            out.append({"forbidden_words": [i.lower() for i in _items(m.group("list"))]})
        return out


class LetterFrequencyParams(_Params):
    """``letter`` (one character, compared lowercased) appears ``let_relation`` ``let_frequency`` times."""

    letter: str = Field(min_length=1, max_length=1)
    let_frequency: int = Field(ge=0)
    let_relation: Relation


@register_constraint
class LetterFrequency(_IFEval):
    """``keywords:letter_frequency``: the letter's count in the lowercased response."""

    id = "keywords:letter_frequency"
    Params = LetterFrequencyParams
    templates = ("In your response, the letter {letter} should appear {let_relation} {let_frequency} times.",
                 'Use the letter "{letter}" {let_relation} {let_frequency} times in your answer.')

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = response.lower().count(params.letter.lower())
        ok = _compare(n, params.let_relation, params.let_frequency)
        return ok, f"'{params.letter}' appears {n} times ({params.let_relation} {params.let_frequency} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        for m in re.finditer(r"\bletter\s+[\"“'‘]?(?P<l>\w)\b[\"”'’]?", text, re.IGNORECASE):
            count = _count_after(text, m.end())
            if count is None and _NEGATION.search(_sentence_before(text, m.start())):
                count = ("less than", 1)  # "without using the letter e", "do not include the letter c"
            if count is not None:
                out.append({"letter": m.group("l").lower(), "let_relation": count[0], "let_frequency": count[1]})
        return out


# ============================================================================= language

class LanguageParams(_Params):
    """``language``: the ISO 639-1 code langdetect must return (``zh-cn``/``zh-tw`` for Chinese)."""

    language: Literal[tuple(LANGUAGES)]  # type: ignore[valid-type]


@register_constraint
class ResponseLanguage(_IFEval):
    """``language:response_language``: ``langdetect.detect(response) == language`` (seeded); a
    response langdetect cannot read (no letters) passes, as in the reference."""

    id = "language:response_language"
    Params = LanguageParams
    templates = ("Your ENTIRE response should be in {name} language, no other language is allowed.",
                 "Respond only in {name}.")

    def _fields(self, params: Any) -> dict[str, Any]:
        return {"name": LANGUAGES[params.language]}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        found = detect_language(response)
        if found is None:
            return True, "language not detectable (passes, as in IFEval)"
        return found == params.language, f"detected language '{found}', expected '{params.language}'"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        pattern = (r"\b(?:respond|response|reply|replies|answer|write|written|output|use)\b[^.\n]{0,40}?"
                   rf"\b(?:in|using)\s+(?:the\s+)?(?:only\s+)?(?P<lang>{_LANGUAGE_NAMES})\b")
        for m in re.finditer(pattern, text, re.IGNORECASE):
            sentence = re.split(r"(?<=[.!?])\s", text[m.start():], maxsplit=1)[0]
            if m.group("lang").lower() == "english" and re.search(r"capital|lower\s?case|upper\s?case", sentence, re.I):
                continue  # "in English, and in all capital letters": change_case's instructions
            out.append({"language": _language_code(m.group("lang"))})
        pattern = (rf"\b(?:only|solely|exclusively|entirely)\s+(?:use\s+|using\s+|in\s+)?(?:the\s+)?"
                   rf"(?P<lang>{_LANGUAGE_NAMES})\b|\b(?P<lang2>{_LANGUAGE_NAMES})(?:\s+language)?"
                   r"(?:\s+only|,\s+no\s+other\s+language)")
        for m in re.finditer(pattern, text, re.IGNORECASE):
            out.append({"language": _language_code(m.group("lang") or m.group("lang2"))})
        pattern = rf"\b(?:only|solely|exclusively)\s+(?:use\s+)?(?P<lang>{_LANGUAGE_NAMES})\b"
        for m in re.finditer(pattern, text, re.IGNORECASE):
            out.append({"language": _language_code(m.group("lang"))})
        return out


# ============================================================================= length

class SentencesParams(_Params):
    """``num_sentences`` and ``relation`` (sentences counted by NLTK Punkt, or the fallback)."""

    num_sentences: int = Field(ge=0)
    relation: Relation


@register_constraint
class NumberSentences(_IFEval):
    """``length_constraints:number_sentences``: Punkt's sentence count compared with ``relation``."""

    id = "length_constraints:number_sentences"
    Params = SentencesParams
    templates = ("Your response should contain {relation} {num_sentences} sentences.",
                 "Write {relation} {num_sentences} sentences in total.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = count_sentences(response)
        ok = _compare(n, params.relation, params.num_sentences)
        return ok, f"{n} sentences ({params.relation} {params.num_sentences} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        return [{"relation": rel, "num_sentences": n} for rel, n in _count_phrases(text, r"sentences?\b")]


class ParagraphsParams(_Params):
    """``num_paragraphs``: the exact number of paragraphs separated by ``***``."""

    num_paragraphs: int = Field(ge=0)


_PARAGRAPH_SPLIT = re.compile(r"\s?\*\*\*\s?")


@register_constraint
class NumberParagraphs(_IFEval):
    """``length_constraints:number_paragraphs``: ``re.split(r"\\s?\\*\\*\\*\\s?")`` pieces; an empty
    first or last piece is not counted, an empty middle piece fails; the count must equal N."""

    id = "length_constraints:number_paragraphs"
    Params = ParagraphsParams
    templates = ("There should be {num_paragraphs} paragraphs. Paragraphs are separated with the "
                 "markdown divider: ***",
                 "Write exactly {num_paragraphs} paragraphs and put the markdown divider *** between them.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        pieces = _PARAGRAPH_SPLIT.split(response)
        count = len(pieces)
        for index, piece in enumerate(pieces):
            if not piece.strip():
                if index in (0, len(pieces) - 1):
                    count -= 1
                else:
                    return False, f"empty paragraph between *** dividers (piece {index + 1})"
        ok = count == params.num_paragraphs
        return ok, f"{count} paragraphs separated by *** ({params.num_paragraphs} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        divider = text.find("***")
        if divider < 0:
            return []
        units = r"(?:paragraphs?|sections?|parts?|stanzas?|steps?|scenes?|chapters?)"
        before = text[max(0, divider - 220):divider]
        counts = list(re.finditer(rf"\b(?P<n>{_NUM})\s+(?:\w+\s+)?{units}\b", before, re.IGNORECASE))
        return [{"num_paragraphs": _number(counts[-1].group("n"))}] if counts else []


class WordsParams(_Params):
    """``num_words`` and ``relation`` (words are ``\\w+`` runs)."""

    num_words: int = Field(ge=0)
    relation: Relation


@register_constraint
class NumberWords(_IFEval):
    """``length_constraints:number_words``: ``len(re.findall(r"\\w+", response))`` compared with ``relation``."""

    id = "length_constraints:number_words"
    Params = WordsParams
    templates = ("Answer with {relation} {num_words} words.",
                 "Your response must be {relation} {num_words} words long.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = count_words(response)
        ok = _compare(n, params.relation, params.num_words)
        return ok, f"{n} words ({params.relation} {params.num_words} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        # "words in all capital letters" counts capitals, not length
        unit = r"words?\b(?!\s+(?:in|with|written in)\s+(?:all\s+)?(?:capital|caps|upper))"
        return [{"relation": rel, "num_words": n} for rel, n in _count_phrases(text, unit)]


class NthParagraphParams(_Params):
    """``num_paragraphs`` separated by blank lines; paragraph ``nth_paragraph`` (1-based) starts
    with ``first_word`` (compared lowercased)."""

    num_paragraphs: int = Field(ge=0)
    nth_paragraph: int = Field(ge=1)
    first_word: str = Field(min_length=1)


_FIRST_WORD_STOP = frozenset(".,?!'\"")


@register_constraint
class NthParagraphFirstWord(_IFEval):
    """``length_constraints:nth_paragraph_first_word``: paragraphs are ``re.split(r"\\n\\n")`` pieces
    (empty ones not counted, but the nth is indexed among all pieces, as in the reference); the
    first word drops leading ``'`` then ``"`` and stops at ``. , ? ! ' "``."""

    id = "length_constraints:nth_paragraph_first_word"
    Params = NthParagraphParams
    templates = ("There should be {num_paragraphs} paragraphs. Paragraphs and only paragraphs are separated "
                 "from each other by two new lines, as if it was '\\n\\n' in python. Paragraph {nth_paragraph} "
                 "must start with the word {first_word}.",
                 "Write {num_paragraphs} paragraphs separated by blank lines; {which} must begin with the "
                 'word "{first_word}".')

    def _fields(self, params: Any) -> dict[str, Any]:
        ordinal = next((w for w, n in _ORDINALS.items() if n == params.nth_paragraph and w.isalpha()), None)
        which = f"the {ordinal} paragraph" if ordinal else f"paragraph {params.nth_paragraph}"
        return {**params.model_dump(), "which": which}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        pieces = response.split("\n\n")
        count = sum(1 for p in pieces if p.strip())
        if params.nth_paragraph > count or not pieces[params.nth_paragraph - 1].strip():
            return False, f"{count} paragraphs: no paragraph {params.nth_paragraph}"
        word = pieces[params.nth_paragraph - 1].strip().split()[0].lstrip("'").lstrip('"')
        first = ""
        for char in word:
            if char in _FIRST_WORD_STOP:
                break
            first += char.lower()
        ok = count == params.num_paragraphs and first == params.first_word.lower()
        return ok, (f"{count} paragraphs ({params.num_paragraphs} required); paragraph {params.nth_paragraph} "
                    f"starts with '{first}' ('{params.first_word.lower()}' required)")

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        pattern = (rf"\b(?P<n>{_NUM})\s+paragraphs?\b[\s\S]{{0,300}}?"
                   rf"(?:\bparagraph\s+(?:number\s+)?(?P<nth>\d+)|\b(?:the\s+)?(?P<ord>{_ORD})\s+paragraph)"
                   r"\s+(?:must|should|has to|needs to)\s+(?:start|begin)\s+with\s+(?:the\s+)?(?:word\s+)?"
                   r"[\"“'‘]?(?P<word>[\w'-]+)")
        for m in re.finditer(pattern, text, re.IGNORECASE):
            nth = int(m.group("nth")) if m.group("nth") else _ORDINALS[m.group("ord").lower()]
            out.append({"num_paragraphs": _number(m.group("n")), "nth_paragraph": nth,
                        "first_word": m.group("word").lower()})
        return out


# ============================================================================= detectable content

class PlaceholdersParams(_Params):
    """``num_placeholders``: at least this many ``[...]`` placeholders."""

    num_placeholders: int = Field(ge=0)


_PLACEHOLDER = re.compile(r"\[.*?\]")


@register_constraint
class NumberPlaceholders(_IFEval):
    """``detectable_content:number_placeholders``: ``len(re.findall(r"\\[.*?\\]"))`` ≥ N."""

    id = "detectable_content:number_placeholders"
    Params = PlaceholdersParams
    templates = ("The response must contain at least {num_placeholders} placeholders in square brackets, "
                 "such as [address].",
                 "Include at least {num_placeholders} placeholders written in square brackets, like [name].")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = len(_PLACEHOLDER.findall(response))
        return n >= params.num_placeholders, f"{n} placeholders (at least {params.num_placeholders} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = rf"\b(?:at least|minimum of|a minimum of)\s+(?P<n>{_NUM})\s+placeholders?"
        out = [{"num_placeholders": _number(m.group("n"))} for m in re.finditer(pattern, text, re.IGNORECASE)]
        pattern = rf"\b(?P<n>{_NUM})\s+(?:or more\s+)?placeholders?\b"
        out += [{"num_placeholders": _number(m.group("n"))} for m in re.finditer(pattern, text, re.IGNORECASE)]
        return out


class PostscriptParams(_Params):
    """``postscript_marker``: ``P.S.`` or ``P.P.S`` (matched loosely), or any other marker (a raw regex)."""

    postscript_marker: str = Field(min_length=1)


@register_constraint
class Postscript(_IFEval):
    """``detectable_content:postscript``: on the lowercased response, "P.P.S" matches
    ``\\s*p\\.\\s?p\\.\\s?s.*$``, "P.S." matches ``\\s*p\\.\\s?s\\..*$``, any other marker
    ``\\s*<marker>.*$`` (multiline, anywhere in the text)."""

    id = "detectable_content:postscript"
    Params = PostscriptParams
    templates = ("At the end of your response, please explicitly add a postscript starting with {marker}",
                 "Add a postscript starting with {marker} after the main part of your answer.")

    def _fields(self, params: Any) -> dict[str, Any]:
        marker = params.postscript_marker.strip()
        return {"marker": marker if marker in ("P.S.", "P.P.S") else f'"{marker}"'}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        marker = params.postscript_marker.strip()
        if marker == "P.P.S":
            pattern = _regex(r"\s*p\.\s?p\.\s?s.*$", re.MULTILINE)
        elif marker == "P.S.":
            pattern = _regex(r"\s*p\.\s?s\..*$", re.MULTILINE)
        else:
            pattern = _regex(marker.lower(), re.MULTILINE, r"\s*", r".*$")
        if pattern.search(response.lower()):
            return True, f"postscript starting with {marker} found"
        return False, f"no postscript starting with {marker}"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        pattern = (r"\b(?:postscript|p\.\s?s\.?)[^.\n]{0,40}?\b(?:start(?:ing|s)?|begin(?:ning|s)?|indicated|"
                   r"marked)\s+(?:with|by)\s+(?P<m>[\"“'‘][^\"”'’\n]+[\"”'’]|P\.\s?P\.\s?S\.?|P\.\s?S\.?)")
        for m in re.finditer(pattern, text, re.IGNORECASE):
            marker = m.group("m").strip("\"“”'‘’")
            compact = marker.replace(" ", "").upper().rstrip(".")
            marker = {"P.P.S": "P.P.S", "P.S": "P.S."}.get(compact, marker)
            out.append({"postscript_marker": marker})
        return out


# ============================================================================= detectable format

class BulletsParams(_Params):
    """``num_bullets``: exactly this many markdown bullet lines (``* `` or any line starting with ``-``)."""

    num_bullets: int = Field(ge=0)


_BULLET_STAR = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_BULLET_DASH = re.compile(r"^\s*-.*$", re.MULTILINE)


@register_constraint
class NumberBulletLists(_IFEval):
    """``detectable_format:number_bullet_lists``: lines matching ``^\\s*\\*[^\\*].*$`` plus lines
    matching ``^\\s*-.*$`` (so a ``---`` rule counts) must number exactly N."""

    id = "detectable_format:number_bullet_lists"
    Params = BulletsParams
    templates = ("Your answer must contain exactly {num_bullets} bullet points. Use markdown bullet points "
                 "such as:\n* This is point 1.\n* This is point 2",
                 "Format your answer as a markdown list of exactly {num_bullets} bullet points (lines "
                 "starting with * ).")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = len(_BULLET_STAR.findall(response)) + len(_BULLET_DASH.findall(response))
        return n == params.num_bullets, f"{n} bullet lines ({params.num_bullets} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = rf"\b(?:exactly\s+)?(?P<n>{_NUM})\s+(?:markdown\s+)?bullet(?:\s+points?|s)?\b"
        return [{"num_bullets": _number(m.group("n"))} for m in re.finditer(pattern, text, re.IGNORECASE)]


_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


@register_constraint
class ConstrainedResponse(_IFEval):
    """``detectable_format:constrained_response``: the stripped response contains one of
    "My answer is yes.", "My answer is no.", "My answer is maybe." (case-sensitive)."""

    id = "detectable_format:constrained_response"
    templates = ('Answer with one of the following options: "My answer is yes.", "My answer is no.", '
                 '"My answer is maybe."',
                 'Reply with exactly one of "My answer is yes.", "My answer is no." or "My answer is maybe."')

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        stripped = response.strip()
        for option in _OPTIONS:
            if option in stripped:
                return True, f"contains '{option}'"
        return False, "none of the allowed answers"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        return [{}] if _found(r"my answer is yes", text) and _found(r"my answer is no", text) else []


class HighlightsParams(_Params):
    """``num_highlights``: at least this many ``*highlighted*`` sections (``**bold**`` counts twice)."""

    num_highlights: int = Field(ge=0)


_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")


@register_constraint
class NumberHighlightedSections(_IFEval):
    """``detectable_format:number_highlighted_sections``: non-empty ``*…*`` matches plus non-empty
    ``**…**`` matches, at least N."""

    id = "detectable_format:number_highlighted_sections"
    Params = HighlightsParams
    templates = ("Highlight at least {num_highlights} sections in your answer with markdown, for example "
                 "*highlighted section*.",
                 "Use markdown to highlight at least {num_highlights} parts of your answer, like *this part*.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = sum(1 for h in _HIGHLIGHT.findall(response) if h.strip("*").strip())
        n += sum(1 for h in _DOUBLE_HIGHLIGHT.findall(response) if h.removeprefix("**").removesuffix("**").strip())
        return n >= params.num_highlights, f"{n} highlighted sections (at least {params.num_highlights} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        things = r"(?:sections?|parts?|phrases?|words?|keywords?|passages?|names?)"
        patterns = (
            rf"\b(?:highlight|italici[sz]e|bold)\w*\s+(?:(?:at least|a minimum of)\s+)?(?P<n>{_NUM})\s+(?:\w+\s+){{0,2}}?"
            rf"{things}",
            rf"\b(?P<n>{_NUM})\s+(?:or more\s+)?(?:\w+\s+)?(?:italic|highlighted|italicized|bold)\s+(?:text\s+)?{things}",
            rf"\b(?:at least|a minimum of)\s+(?P<n>{_NUM})\s+(?:(?:text|key)\s+)?{things}\s+(?:\w+\s+){{0,4}}?"
            r"(?:highlighted|italicized|in markdown)",
        )
        out = [{"num_highlights": _number(m.group("n"))}
               for pattern in patterns for m in re.finditer(pattern, text, re.IGNORECASE)]
        if not out and _found(r"\b(?:highlight|italici[sz]e)\w*\b[^.\n]{0,80}\*[^*\n]+\*", text):
            out.append({"num_highlights": 1})  # "highlight some key parts, like *this*"
        return out


class SectionsParams(_Params):
    """``section_spliter`` (a raw, case-sensitive regex such as "Section") and ``num_sections``."""

    section_spliter: str = Field(min_length=1)
    num_sections: int = Field(ge=0)


@register_constraint
class MultipleSections(_IFEval):
    """``detectable_format:multiple_sections``: ``re.split(r"\\s?" + spliter + r"\\s?\\d+\\s?")``
    gives at least N + 1 pieces."""

    id = "detectable_format:multiple_sections"
    Params = SectionsParams
    templates = ("Your response must have {num_sections} sections. Mark the beginning of each section with "
                 "{section_spliter} X, such as:\n{section_spliter} 1\n[content of section 1]\n"
                 "{section_spliter} 2\n[content of section 2]",
                 'Split your answer into {num_sections} sections, each starting with "{section_spliter} X" '
                 "where X is its number.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        splitter = params.section_spliter.strip()
        n = len(_regex(splitter, 0, r"\s?", r"\s?\d+\s?").split(response)) - 1
        return n >= params.num_sections, f"{n} '{splitter} X' sections (at least {params.num_sections} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        out = []
        marker = re.compile(r"[\"'“‘(]?\b(?P<s>[A-Z][A-Za-z]*)\s+(?:X\b|\{?N\}?\b|1\b(?=[\"'”’)]?\s+and\s+(?P=s)\s+2))")
        count = re.compile(rf"\b(?P<n>{_NUM})[\s-]+(?:\w+\s+)?(?:sections?|paragraphs?|parts?|chapters?|days?|"
                           r"advertisements?|ads?|stanzas?|steps?)\b", re.IGNORECASE)
        for m in marker.finditer(text):
            before = text[max(0, m.start() - 60):m.start()].lower()
            if not re.search(r"mark|label|begin|start|noted|with|as|:|\(|include", before):
                continue
            counts = list(count.finditer(text, max(0, m.start() - 250), m.start())) or \
                list(count.finditer(text, m.end(), m.end() + 150))
            if counts:
                nearest = counts[-1] if counts[-1].start() < m.start() else counts[0]
                out.append({"section_spliter": m.group("s"), "num_sections": _number(nearest.group("n"))})
        return out


_FENCE_PREFIXES = ("```json", "```Json", "```JSON", "```")


@register_constraint
class JsonFormat(_IFEval):
    """``detectable_format:json_format``: after stripping, one leading ```` ```json ````/```` ```Json ````/
    ```` ```JSON ```` and then ```` ``` ```` prefix and one trailing ```` ``` ```` are removed; the rest
    must parse with ``json.loads``."""

    id = "detectable_format:json_format"
    templates = ("Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
                 "Reply with valid JSON only (a markdown code fence around it is fine).")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        value = response.strip()
        for prefix in _FENCE_PREFIXES:
            value = value.removeprefix(prefix)
        value = value.removesuffix("```").strip()
        try:
            json.loads(value)
        except ValueError as exc:
            return False, f"not JSON: {exc}"
        return True, "valid JSON"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = (r"\b(?:wrap(?:ped)?|format(?:ted)?|respond|reply|answer|output|return|write)\b[^.\n]{0,40}?"
                   r"\bJSON\b|\bJSON\s+(?:format|only|object)\b|\bvalid\s+JSON\b")
        return [{}] if _found(pattern, text) else []


_TITLE = re.compile(r"<<[^\n]+>>")


@register_constraint
class Title(_IFEval):
    """``detectable_format:title``: some ``<<[^\\n]+>>`` match with non-empty text inside."""

    id = "detectable_format:title"
    templates = ("Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
                 "Give your answer a title in double angle brackets, for example <<my title>>.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        for title in _TITLE.findall(response):
            if title.lstrip("<").rstrip(">").strip():
                return True, f"title {title[:60]}"
        return False, "no <<title>>"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = r"\btitle\b[^.\n]{0,60}?(?:double angular brackets|double angle brackets|<<)"
        return [{}] if _found(pattern, text) else []


# ============================================================================= combination

@register_constraint
class TwoResponses(_IFEval):
    """``combination:two_responses``: ``split("******")`` gives exactly two non-empty, different
    (after strip) pieces; an empty piece other than the first or last fails."""

    id = "combination:two_responses"
    templates = ("Give two different responses. Responses and only responses should be separated by 6 "
                 "asterisk symbols: ******.",
                 "Write two different answers, separated by a line of six asterisks (******).")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        pieces = response.split("******")
        valid = []
        for index, piece in enumerate(pieces):
            if piece.strip():
                valid.append(piece)
            elif index not in (0, len(pieces) - 1):
                return False, "an empty response between ****** separators"
        if len(valid) != 2:
            return False, f"{len(valid)} responses separated by ****** (2 required)"
        if valid[0].strip() == valid[1].strip():
            return False, "the two responses are the same"
        return True, "two different responses"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        return [{}] if _found(r"\*{6}|\b(?:six|6)\s+asterisks?", text) and _found(r"\btwo\b", text) else []


class RepeatPromptParams(_Params):
    """``prompt_to_repeat``: the request the response must start with (case-insensitive)."""

    prompt_to_repeat: str = Field(min_length=1)


_REPEAT = re.compile(r"\brepeat\w*\s+(?:the\s+|this\s+|my\s+|your\s+)?(?:exact\s+|entire\s+|whole\s+|original\s+|"
                     r"following\s+|same\s+)*(?:request|sentence|question|prompt|instructions?|query|text|task)\b"
                     r"|\brepeat\s+it\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?)](?=\s|$)|\n")
_ABOUT_REPEATING = re.compile(r"\b(?:before|repeat\w*)\b.*\b(?:request|repeat\w*|sentence|question)\b", re.IGNORECASE)


def _instruction_block(text: str, match: re.Match[str]) -> tuple[int, int]:
    """Where the "repeat the request" instruction starts and ends: its sentence, and the
    sentences right after it that still talk about repeating ("Do not say anything before
    repeating the request.")."""
    start = max(text.rfind(". ", 0, match.start()), text.rfind("? ", 0, match.start()),
                text.rfind("\n", 0, match.start())) + 1
    stop = _SENTENCE_END.search(text, match.end())
    end = stop.end() if stop else len(text)
    while True:
        stop = _SENTENCE_END.search(text, end + 1)
        following = text[end:stop.end() if stop else len(text)]
        if not following.strip() or not _ABOUT_REPEATING.search(following):
            return start, end
        end = stop.end() if stop else len(text)


@register_constraint
class RepeatPrompt(_IFEval):
    """``combination:repeat_prompt``: the stripped, lowercased response starts with the stripped,
    lowercased ``prompt_to_repeat``."""

    id = "combination:repeat_prompt"
    Params = RepeatPromptParams
    templates = ("First repeat the request word for word without change, then give your answer (1. do not "
                 "say anything before repeating the request; 2. the request to repeat does not include this "
                 "sentence)",
                 "Before answering, first repeat the request above exactly, word for word, with nothing "
                 "before it (this sentence is not part of the request).")

    def _fields(self, params: Any) -> dict[str, Any]:
        return {}

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        if response.strip().lower().startswith(params.prompt_to_repeat.strip().lower()):
            return True, "starts with the repeated request"
        return False, "does not start with the request, word for word"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        match = _REPEAT.search(text)
        if match is None:
            return []
        start, end = _instruction_block(text, match)
        window = text[start:end]
        below = re.search(r"\b(?:below|following)\b", window, re.IGNORECASE) and not re.search(
            r"\babove\b", window, re.IGNORECASE)
        request = text[end:] if below else text[:start]
        request = request.strip()
        return [{"prompt_to_repeat": request}] if request else []


# ============================================================================= start / end

class EndPhraseParams(_Params):
    """``end_phrase``: the response (stripped, outer double quotes removed) must end with it,
    case-insensitively."""

    end_phrase: str = Field(min_length=1)


@register_constraint
class EndChecker(_IFEval):
    """``startend:end_checker``: ``response.strip().strip('"').lower().endswith(end_phrase.strip().lower())``."""

    id = "startend:end_checker"
    Params = EndPhraseParams
    templates = ('Finish your response with this exact phrase "{end_phrase}". No other words should follow '
                 "this phrase.",
                 'End your answer with the exact words "{end_phrase}" and nothing after them.')

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        if response.strip().strip('"').lower().endswith(params.end_phrase.strip().lower()):
            return True, "ends with the phrase"
        return False, f"does not end with '{params.end_phrase.strip()}'"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        lead = (r"\b(?:finish|end|conclude|close)\w*\s+(?:(?:your|the|with)\s+)?(?:\w+\s+){0,3}?(?:with\b\s*)?"
                r"(?:(?:this|the)\s+)?(?:exact\s+)?(?:phrase|words|sentence|question|line)?")
        # single quotes too; the closing one followed by no letter, so "don't" does not end a phrase
        quoted = (r"\s*(?:of\s+)?:?\s*(?:\"(?P<a>[^\"\n]+)\"|“(?P<b>[^”\n]+)”|'(?P<c>[^\n]+?)'(?![A-Za-z])"
                  r"|‘(?P<d>[^’\n]+)’)")
        out = [{"end_phrase": next(g for g in m.group("a", "b", "c", "d") if g).strip()}
               for m in re.finditer(lead + quoted, text, re.IGNORECASE)]
        last = (r"\b(?:very\s+)?(?:last\s+sentence|end)\s+of\s+(?:your|the)\s+(?:entire\s+)?(?:response|answer|reply)\s+"
                r"(?:should|must)\s+(?:be|read)(?:\s+exactly)?(?:\s+like)?")
        out += [{"end_phrase": next(g for g in m.group("a", "b", "c", "d") if g).strip()}
                for m in re.finditer(last + quoted, text, re.IGNORECASE)]
        bare = r"\s*:?\s*(?P<p>[A-Za-z][^\n\"“:]*?[.?!])(?=\s+No\s|[ \t]*\n|\s*$)"
        if not out:
            for pattern in (lead + r"\s*:" + bare, last + bare, r"\bexact\s+(?:phrase|question|sentence)" + bare):
                out += [{"end_phrase": m.group("p").strip()} for m in re.finditer(pattern, text, re.IGNORECASE)]
        return out


@register_constraint
class Quotation(_IFEval):
    """``startend:quotation``: the stripped response is longer than one character and starts and
    ends with ``"``."""

    id = "startend:quotation"
    templates = ("Wrap your entire response with double quotation marks.",
                 'Put your whole answer inside double quotes ("like this").')

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        value = response.strip()
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            return True, "wrapped in double quotes"
        return False, "not wrapped in double quotes"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = (r"\b(?:wrap|enclose|put|surround)\w*\b[^.\n]{0,60}?\b(?:double\s+quot\w*(?:\s+marks?)?|"
                   r"quotation\s+marks|quotes)")
        return [{}] if _found(pattern, text) else []


# ============================================================================= change case

class CapitalWordsParams(_Params):
    """``capital_frequency`` and ``capital_relation``: how many all-capital word tokens."""

    capital_frequency: int = Field(ge=0)
    capital_relation: Relation


@register_constraint
class CapitalWordFrequency(_IFEval):
    """``change_case:capital_word_frequency``: tokens of ``nltk.word_tokenize`` with ``isupper()``
    compared with ``capital_relation``."""

    id = "change_case:capital_word_frequency"
    Params = CapitalWordsParams
    templates = ("In your response, words with all capital letters should appear {capital_relation} "
                 "{capital_frequency} times.",
                 "Use {capital_relation} {capital_frequency} words written entirely in capital letters.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = count_capital_words(response)
        ok = _compare(n, params.capital_relation, params.capital_frequency)
        return ok, f"{n} all-capital words ({params.capital_relation} {params.capital_frequency} required)"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        caps = r"(?:all[- ]capital(?:\s+letters)?|all[- ]caps|capital\s+letters|upper\s?case)"
        anchors = (rf"\bwords?\s+(?:with|in|written\s+in)\s+{caps}|\b(?:all[- ]caps|capitali[sz]ed|uppercase)\s+"
                   r"(?:\w+\s+)?words?\b")
        out = []
        for m in re.finditer(anchors, text, re.IGNORECASE):
            count = _count_after(text, m.end())
            if count is None:
                after = re.match(rf"[^.\n]{{0,40}}?\b(?:to|be|is)\s+(?P<rel>{_REL})\s+(?P<n>{_NUM})\b",
                                 text[m.end():], re.IGNORECASE)
                count = _relation(after.group("rel"), _number(after.group("n"))) if after else None
            if count is not None:
                out.append({"capital_relation": count[0], "capital_frequency": count[1]})
        pattern = (rf"\b(?P<rel>{_REL})\s+(?P<n>{_NUM})\s+words?\s+(?:with\s+|in\s+|written\s+|be\s+in\s+)?"
                   rf"(?:entirely\s+in\s+|fully\s+in\s+|in\s+)?{caps}")
        for m in re.finditer(pattern, text, re.IGNORECASE):
            rel, n = _relation(m.group("rel"), _number(m.group("n")))
            out.append({"capital_relation": rel, "capital_frequency": n})
        return out


def _english_case(response: str, cased: bool, what: str) -> tuple[bool, str]:
    if not cased:
        return False, f"not all {what}"
    found = detect_language(response)
    if found is None:
        return True, f"all {what}; language not detectable (passes, as in IFEval)"
    return found == "en", f"all {what}; detected language '{found}'"


@register_constraint
class EnglishCapital(_IFEval):
    """``change_case:english_capital``: ``response.isupper()`` and langdetect says English (an
    undetectable language passes)."""

    id = "change_case:english_capital"
    templates = ("Your entire response should be in English, and in all capital letters.",
                 "Reply in English using only capital letters.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        return _english_case(response, response.isupper(), "capital letters")

    def _detect(self, text: str) -> list[dict[str, Any]]:
        caps = (r"\b(?:all\s+capital\s+letters|only\s+capital\s+letters|all\s+caps|all\s+upper\s?case|"
                r"capitalize\s+all)\b")
        context = r"\b(?:english|entire|whole|response|answer|reply|respond|write|written|output)\b"
        for m in re.finditer(caps, text, re.IGNORECASE):
            before = text[:m.start()]
            if re.search(r"words?\s+(?:with|in|written in)\s+$", before, re.IGNORECASE):
                continue  # "words in all capital letters" counts words: capital_word_frequency
            sentence_start = max(before.rfind("."), before.rfind("\n")) + 1
            sentence_end = min([i for i in (text.find(".", m.end()), text.find("\n", m.end())) if i >= 0]
                               or [len(text)])
            if re.search(context, text[sentence_start:sentence_end], re.IGNORECASE):
                return [{}]
        return []


@register_constraint
class EnglishLowercase(_IFEval):
    """``change_case:english_lowercase``: ``response.islower()`` and langdetect says English (an
    undetectable language passes)."""

    id = "change_case:english_lowercase"
    templates = ("Your entire response should be in English, and in all lowercase letters. No capital "
                 "letters are allowed.",
                 "Write in English using only lowercase letters.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        return _english_case(response, response.islower(), "lowercase")

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = (r"\b(?:all|only|in)\s+lower\s?case\b|\blower\s?case\s+(?:letters\s+)?only\b|"
                   r"\bno\s+capital\s+letters\b|\bwithout\s+(?:using\s+)?(?:any\s+)?capital\s+letters\b")
        return [{}] if _found(pattern, text) else []


# ============================================================================= punctuation

@register_constraint
class NoComma(_IFEval):
    """``punctuation:no_comma``: no ASCII comma anywhere."""

    id = "punctuation:no_comma"
    templates = ("In your entire response, refrain from the use of any commas.",
                 "Do not use any commas.")

    def check(self, response: str, params: Any, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        n = response.count(",")
        return n == 0, f"{n} commas" if n else "no commas"

    def _detect(self, text: str) -> list[dict[str, Any]]:
        pattern = (r"\b(?:refrain\s+from|avoid|without|do\s+not|don't|don’t|never|no|not|must\s+not|"
                   r"should\s+not)\b[^.\n]{0,30}?\bcommas?\b")
        return [{}] if _found(pattern, text) else []


IFEVAL_IDS: tuple[str, ...] = tuple(cls.id for cls in (
    KeywordExistence, KeywordFrequency, ForbiddenWords, LetterFrequency, ResponseLanguage, NumberSentences,
    NumberParagraphs, NumberWords, NthParagraphFirstWord, NumberPlaceholders, Postscript, NumberBulletLists,
    ConstrainedResponse, NumberHighlightedSections, MultipleSections, JsonFormat, Title, TwoResponses,
    RepeatPrompt, EndChecker, Quotation, CapitalWordFrequency, EnglishCapital, EnglishLowercase, NoComma,
))
