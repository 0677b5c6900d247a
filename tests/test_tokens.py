"""Token counts for the long-context suites: o200k_base offline, in pieces that tokenize as a whole."""

import random

import pytest

from gradeloop.errors import InputError
from gradeloop.suites._tokens import _cut_points, get_tokenizer


def _text(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    words = "the quick brown fox jumps over lazy dogs tapir poem 123 4567 Hello, world! café naïve".split()
    ends = [".", "!", "?\n", "\n\n", "  ", " ", "\n   "]
    return "".join(" ".join(rng.choices(words, k=rng.randint(3, 40))) + rng.choice(ends) for _ in range(n))


def test_pieces_tokenize_exactly_as_the_whole_text():
    import bpe_openai

    enc = bpe_openai.get_encoding("o200k_base")
    text = _text(3000)
    cuts = _cut_points(text, 5000)
    assert len(cuts) > 10
    pieces, start = [], 0
    for cut in [*cuts, len(text)]:
        pieces += enc.encode_ordinary(text[start:cut])
        start = cut
    assert pieces == enc.encode_ordinary(text)


def test_o200k_counts_a_text_beyond_the_encoders_limit_and_round_trips():
    tok = get_tokenizer()
    text = _text(30000)  # about a million tokens: more than one call of the encoder takes
    ids = tok.encode(text)
    assert len(ids) > 200_000 and tok.decode(ids) == text
    assert tok.count("Hello, world!") == 4


def test_an_unknown_tokenizer_is_one_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        get_tokenizer(str(tmp_path / "nothing-here"))
    assert info.value.field == "tokenizer"
