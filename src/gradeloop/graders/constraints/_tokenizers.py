"""NLTK's Punkt sentence tokenizer and Treebank word tokenizer, without the per-call timeout.

Since 3.10 NLTK compiles every regular expression with the ``regex`` engine inside a
``TimedPattern`` that passes a wall-clock ``timeout=`` to each match (a ReDoS backstop for
caller-supplied patterns). The tokenizers IFEval uses have fixed patterns, and the wrapper
about halves their speed. The classes here are NLTK's own with each fixed pattern swapped for
the compiled ``regex`` pattern inside its wrapper: the same engine and pattern, so the same
tokens (tests/test_ifeval.py compares them with ``nltk.sent_tokenize`` and
``nltk.word_tokenize`` on every IFEval response). With an NLTK that has no wrapper, or one
whose internals differ, NLTK's tokenizers are used as they are.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fast_punkt", "fast_treebank"]


def _unwrap(pattern: Any) -> Any:
    """The compiled pattern inside NLTK's ``TimedPattern``, or ``pattern`` itself."""
    inner = getattr(pattern, "_rx", None) if type(pattern).__name__ == "TimedPattern" else None
    return inner if inner is not None and hasattr(inner, "sub") else pattern


def fast_treebank() -> Any:
    """An ``NLTKWordTokenizer`` (what ``nltk.word_tokenize`` uses) with unwrapped patterns."""
    from nltk.tokenize import NLTKWordTokenizer as Base

    try:
        pairs = {name: [(_unwrap(p), s) for p, s in getattr(Base, name)]
                 for name in ("STARTING_QUOTES", "PUNCTUATION", "ENDING_QUOTES", "CONVERT_PARENTHESES")}
        singles = {name: (_unwrap(getattr(Base, name)[0]), getattr(Base, name)[1])
                   for name in ("PARENS_BRACKETS", "DOUBLE_DASHES")}
        lists = {name: [_unwrap(p) for p in getattr(Base, name)] for name in ("CONTRACTIONS2", "CONTRACTIONS3")}
    except (AttributeError, TypeError, ValueError):
        return Base()
    return type("TreebankWords", (Base,), {**pairs, **singles, **lists})()


def fast_punkt(loaded: Any) -> Any:
    """A Punkt sentence tokenizer with the parameters of ``loaded`` (NLTK's ``PunktTokenizer``)
    and unwrapped patterns; ``loaded`` itself when NLTK's internals are not as expected."""
    try:
        from nltk.tokenize import punkt

        class Vars(punkt.PunktLanguageVars):
            re_boundary_realignment = _unwrap(punkt.PunktLanguageVars.re_boundary_realignment)

        lang_vars = Vars()
        lang_vars._re_word_tokenizer = _unwrap(lang_vars._word_tokenizer_re())
        lang_vars._re_period_context = _unwrap(lang_vars.period_context_re())
        non_punct = _unwrap(punkt._re_non_punct)

        class Token(punkt.PunktToken):
            __slots__ = ()
            _RE_ELLIPSIS = _unwrap(punkt.PunktToken._RE_ELLIPSIS)
            _RE_NUMERIC = _unwrap(punkt.PunktToken._RE_NUMERIC)
            _RE_INITIAL = _unwrap(punkt.PunktToken._RE_INITIAL)
            _RE_ALPHA = _unwrap(punkt.PunktToken._RE_ALPHA)

            @property
            def is_non_punct(self) -> Any:
                return non_punct.search(self.type)

        return punkt.PunktSentenceTokenizer(loaded._params, lang_vars=lang_vars, token_cls=Token)
    except (AttributeError, TypeError, ImportError):
        return loaded
