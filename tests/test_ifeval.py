"""IFEval: the 25 constraints (reference semantics and quirks), describe/detect, the suite
(score, build, metrics), the CLI, and parity with Google's reference on published responses.

The reference verdicts in tests/data/ were produced by bench/ifeval_speed.py running Google's
checkers (see tests/data/README.md). Tests that need NLTK's punkt_tab read it from
../shared/data/nltk_data and are skipped when that folder is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from gradeloop.errors import InputError
from gradeloop.graders.constraints import check_constraint, constraint_ids, get_constraint, parse_params
from gradeloop.graders.constraints import _text
from gradeloop.graders.constraints._ifeval import IFEVAL_IDS
from gradeloop.suites import ifeval

SHARED = ROOT.parent / "shared" / "data"
IFEVAL_DATA = SHARED / "ifeval"
NLTK_DATA = SHARED / "nltk_data"
INPUTS = IFEVAL_DATA / "input_data.jsonl"
GPT4 = IFEVAL_DATA / "input_response_data_gpt4_20231107_145030.jsonl"
BISON = IFEVAL_DATA / "input_response_data_text_bison.jsonl"
DATA = Path(__file__).parent / "data"

needs_ifeval = pytest.mark.skipif(not INPUTS.exists(), reason="../shared/data/ifeval is not there")
needs_punkt = pytest.mark.skipif(not (NLTK_DATA / "tokenizers" / "punkt_tab").exists(),
                                 reason="../shared/data/nltk_data is not there")

# the kwarg names of Google's instructions_registry / instructions.py build_description
REFERENCE_KWARGS = {
    "keywords:existence": {"keywords"},
    "keywords:frequency": {"keyword", "frequency", "relation"},
    "keywords:forbidden_words": {"forbidden_words"},
    "keywords:letter_frequency": {"letter", "let_frequency", "let_relation"},
    "language:response_language": {"language"},
    "length_constraints:number_sentences": {"num_sentences", "relation"},
    "length_constraints:number_paragraphs": {"num_paragraphs"},
    "length_constraints:number_words": {"num_words", "relation"},
    "length_constraints:nth_paragraph_first_word": {"num_paragraphs", "nth_paragraph", "first_word"},
    "detectable_content:number_placeholders": {"num_placeholders"},
    "detectable_content:postscript": {"postscript_marker"},
    "detectable_format:number_bullet_lists": {"num_bullets"},
    "detectable_format:constrained_response": set(),
    "detectable_format:number_highlighted_sections": {"num_highlights"},
    "detectable_format:multiple_sections": {"section_spliter", "num_sections"},
    "detectable_format:json_format": set(),
    "detectable_format:title": set(),
    "combination:two_responses": set(),
    "combination:repeat_prompt": {"prompt_to_repeat"},
    "startend:end_checker": {"end_phrase"},
    "startend:quotation": set(),
    "change_case:capital_word_frequency": {"capital_frequency", "capital_relation"},
    "change_case:english_capital": set(),
    "change_case:english_lowercase": set(),
    "punctuation:no_comma": set(),
}

SAMPLES = {
    "keywords:existence": [{"keywords": ["river", "stone lantern"]}, {"keywords": ["mom"]}],
    "keywords:frequency": [{"keyword": "forest", "frequency": 3, "relation": "at least"},
                           {"keyword": "the", "frequency": 2, "relation": "less than"}],
    "keywords:forbidden_words": [{"forbidden_words": ["bark", "run"]}],
    "keywords:letter_frequency": [{"letter": "q", "let_frequency": 5, "let_relation": "at least"},
                                  {"letter": "e", "let_frequency": 10, "let_relation": "less than"}],
    "language:response_language": [{"language": "hi"}, {"language": "de"}, {"language": "zh-cn"}],
    "length_constraints:number_sentences": [{"num_sentences": 5, "relation": "less than"},
                                            {"num_sentences": 12, "relation": "at least"}],
    "length_constraints:number_paragraphs": [{"num_paragraphs": 4}],
    "length_constraints:number_words": [{"num_words": 300, "relation": "at least"},
                                        {"num_words": 50, "relation": "less than"}],
    "length_constraints:nth_paragraph_first_word": [
        {"num_paragraphs": 4, "nth_paragraph": 2, "first_word": "summary"},
        {"num_paragraphs": 12, "nth_paragraph": 11, "first_word": "elm"}],
    "detectable_content:number_placeholders": [{"num_placeholders": 3}],
    "detectable_content:postscript": [{"postscript_marker": "P.S."}, {"postscript_marker": "P.P.S"},
                                      {"postscript_marker": "Note:"}],
    "detectable_format:number_bullet_lists": [{"num_bullets": 4}],
    "detectable_format:constrained_response": [{}],
    "detectable_format:number_highlighted_sections": [{"num_highlights": 2}],
    "detectable_format:multiple_sections": [{"section_spliter": "SECTION", "num_sections": 3},
                                            {"section_spliter": "Day", "num_sections": 5}],
    "detectable_format:json_format": [{}],
    "detectable_format:title": [{}],
    "combination:two_responses": [{}],
    "combination:repeat_prompt": [{"prompt_to_repeat": "Write a haiku about the sea."}],
    "startend:end_checker": [{"end_phrase": "Is there anything else I can help with?"}, {"end_phrase": "Peace!"}],
    "startend:quotation": [{}],
    "change_case:capital_word_frequency": [{"capital_frequency": 3, "capital_relation": "at least"},
                                           {"capital_frequency": 10, "capital_relation": "less than"}],
    "change_case:english_capital": [{}],
    "change_case:english_lowercase": [{}],
    "punctuation:no_comma": [{}],
}


@pytest.fixture
def punkt(monkeypatch):
    """NLTK_DATA pointing at the shared punkt_tab (NLTK's search path restored afterwards)."""
    if not (NLTK_DATA / "tokenizers" / "punkt_tab").exists():
        pytest.skip("../shared/data/nltk_data is not there")
    import nltk.data

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    monkeypatch.setenv("NLTK_DATA", str(NLTK_DATA))
    _text.reset_text_caches()
    assert _text.sentence_backend() == "punkt"
    yield
    _text.reset_text_caches()


def ok(cid: str, response: str, loose: bool = False, **kwargs) -> bool:
    return check_constraint(cid, response, kwargs, loose=loose)[0]


# ----------------------------------------------------------------------------- registry

def test_all_25_ids_registered_with_reference_kwargs():
    assert set(IFEVAL_IDS) == set(REFERENCE_KWARGS)
    assert set(IFEVAL_IDS) <= set(constraint_ids())
    for cid, names in REFERENCE_KWARGS.items():
        assert set(get_constraint(cid).Params.model_fields) == names, cid


def test_params_are_strict():
    with pytest.raises(ValueError, match="relation"):
        parse_params("length_constraints:number_words", {"num_words": 3, "relation": "at most"})
    with pytest.raises(ValueError, match="Extra inputs"):
        parse_params("punctuation:no_comma", {"comma": True})
    with pytest.raises(ValueError, match="language"):
        parse_params("language:response_language", {"language": "xx"})


# ----------------------------------------------------------------------------- checks

def test_keywords_existence_is_a_raw_regex_substring():
    assert ok("keywords:existence", "A moment of calm.", keywords=["mom"])  # no word boundary
    assert ok("keywords:existence", "RIVER and stone", keywords=["river", "stone"])
    assert not ok("keywords:existence", "river only", keywords=["river", "stone"])
    assert ok("keywords:existence", "colour", keywords=["colou?r"])  # a regex, as in the reference
    assert ok("keywords:existence", "C++ rocks", keywords=["C++"])  # invalid regex: taken literally


def test_keywords_frequency_counts_substrings():
    assert ok("keywords:frequency", "cat catalog Cat", keyword="cat", frequency=3, relation="at least")
    assert not ok("keywords:frequency", "cat cat cat", keyword="cat", frequency=3, relation="less than")
    assert ok("keywords:frequency", "cat cat", keyword=" cat ", frequency=3, relation="less than")  # stripped


def test_forbidden_words_use_word_boundaries():
    assert ok("keywords:forbidden_words", "a running dog", forbidden_words=["run"])
    assert not ok("keywords:forbidden_words", "I will Run", forbidden_words=["run"])


def test_letter_frequency_on_lowercased_text():
    assert ok("keywords:letter_frequency", "Queen quiz", letter="q", let_frequency=2, let_relation="at least")
    assert ok("keywords:letter_frequency", "QQQ", letter="Q", let_frequency=3, let_relation="at least")
    assert ok("keywords:letter_frequency", "#a #b #c #d", letter="#", let_frequency=4, let_relation="at least")
    assert not ok("keywords:letter_frequency", "eee", letter="e", let_frequency=3, let_relation="less than")


def test_language_checks_with_seeded_langdetect():
    german = "Das ist ein kurzer Text, der ganz eindeutig auf Deutsch geschrieben wurde und nichts anderes."
    assert ok("language:response_language", german, language="de")
    assert not ok("language:response_language", german, language="fr")
    # no letters at all: langdetect raises, which the reference counts as a pass
    assert ok("language:response_language", "🙂🙂🙂 123", language="ja")
    assert ok("change_case:english_capital", "🙂 123 !!!".upper()) is False  # not isupper: fails first
    assert ok("change_case:english_capital", "THIS IS AN ENGLISH SENTENCE WRITTEN IN CAPITALS.")
    assert not ok("change_case:english_capital", "This is mixed case.")
    assert ok("change_case:english_lowercase", "this is an english sentence in lowercase letters.")
    assert not ok("change_case:english_lowercase", "das ist ein deutscher satz, ganz klein geschrieben und lang.")


def test_language_is_deterministic():
    text = "Bonjour amigo, how are you ciao"
    first = _text.detect_language(text)
    _text.detect_language.cache_clear()
    assert all(_text.detect_language(text) == first for _ in range(3))


def test_missing_langdetect_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "langdetect", None)
    _text.detect_language.cache_clear()
    with pytest.raises(InputError, match="pip install langdetect"):
        check_constraint("language:response_language", "hello there", {"language": "en"})
    _text.detect_language.cache_clear()


def test_number_words_counts_word_runs():
    assert _text.count_words("It's a well-known fact: 3.5% rise!") == 9  # It s a well known fact 3 5 rise
    assert ok("length_constraints:number_words", "one two three", num_words=3, relation="at least")
    assert ok("length_constraints:number_words", "one two", num_words=3, relation="less than")


def test_number_paragraphs_star_dividers_and_empty_pieces():
    cid = "length_constraints:number_paragraphs"
    assert ok(cid, "One.\n***\nTwo.\n***\nThree.", num_paragraphs=3)
    assert ok(cid, "***\nOne.\n***\nTwo.\n***", num_paragraphs=2)  # empty first and last are not counted
    assert not ok(cid, "One.\n***\n***\nTwo.", num_paragraphs=2)  # an empty middle piece fails
    assert not ok(cid, "One.\n***\nTwo.", num_paragraphs=3)  # the count must be equal
    assert ok(cid, "One.\n* * *\nTwo.", num_paragraphs=1)  # only *** divides


def test_nth_paragraph_first_word():
    cid = "length_constraints:nth_paragraph_first_word"
    text = "Intro here.\n\n\"Summary, first.\" More.\n\nEnd."
    assert ok(cid, text, num_paragraphs=3, nth_paragraph=2, first_word="summary")  # quote and comma dropped
    assert not ok(cid, text, num_paragraphs=2, nth_paragraph=2, first_word="summary")
    assert ok(cid, "A.\n\n'Elm's tree.\n\nC.", num_paragraphs=3, nth_paragraph=2, first_word="elm")
    # the nth paragraph is indexed among all pieces, empty ones included (as in the reference)
    assert not ok(cid, "A.\n\n\n\nB.", num_paragraphs=2, nth_paragraph=2, first_word="b")
    assert ok(cid, "A.\n\n\n\nB.", num_paragraphs=2, nth_paragraph=1, first_word="a")


def test_placeholders():
    assert ok("detectable_content:number_placeholders", "[name] at [address]", num_placeholders=2)
    assert not ok("detectable_content:number_placeholders", "[name] only", num_placeholders=2)


@pytest.mark.parametrize("marker, text, expected", [
    ("P.S.", "Body.\n\nP.S. See you", True),
    ("P.S.", "Body.\nps. lowercase", False),
    ("P.S.", "Body. p. s. spaced", True),
    ("P.P.S", "Body.\nP.P.S more", True),
    ("P.P.S", "Body.\nP.P. S", True),
    ("P.P.S", "Body.\nP.S. only", False),
    ("Note:", "Body.\nNOTE: here", True),
    ("P.S", "Body. PXS matches: a custom marker is a raw regex", True),
])
def test_postscript_variants(marker, text, expected):
    assert ok("detectable_content:postscript", text, postscript_marker=marker) is expected


def test_bullets_count_dash_rules_too():
    cid = "detectable_format:number_bullet_lists"
    assert ok(cid, "* one\n* two\n- three", num_bullets=3)
    assert not ok(cid, "* one\n* two\n---\nText", num_bullets=2)  # a --- rule is a bullet
    assert ok(cid, "* one\n* two\n---\nText", num_bullets=3)
    assert ok(cid, "**bold** line\n* one", num_bullets=1)  # ** does not start a bullet


def test_constrained_response():
    assert ok("detectable_format:constrained_response", "  Well... My answer is maybe.  ")
    assert not ok("detectable_format:constrained_response", "my answer is yes.")


def test_highlighted_sections():
    cid = "detectable_format:number_highlighted_sections"
    assert ok(cid, "*one* and *two*", num_highlights=2)
    assert ok(cid, "**bold**", num_highlights=1)  # the *…* pass finds only the empty "**" pairs
    assert not ok(cid, "**bold**", num_highlights=2)
    assert ok(cid, "*one* **two**", num_highlights=2)
    assert not ok(cid, "* * and **", num_highlights=1)


def test_multiple_sections():
    cid = "detectable_format:multiple_sections"
    assert ok(cid, "SECTION 1\nA\nSECTION 2\nB", section_spliter="SECTION", num_sections=2)
    assert not ok(cid, "Section 1\nA\nSection 2\nB", section_spliter="SECTION", num_sections=2)  # case-sensitive


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', True),
    ('```json\n{"a": 1}\n```', True),
    ('```JSON\n[1, 2]\n```', True),
    ('```\n{"a": 1}\n```', True),
    ('Here: {"a": 1}', False),
    ('```python\n{"a": 1}\n```', False),
])
def test_json_in_code_fences(text, expected):
    assert ok("detectable_format:json_format", text) is expected


def test_title():
    assert ok("detectable_format:title", "<<Poem of Joy>>\nLines")
    assert not ok("detectable_format:title", "<<  >> and <<\n>>")


def test_two_responses():
    cid = "combination:two_responses"
    assert ok(cid, "First answer.\n******\nSecond answer.")
    assert ok(cid, "******\nFirst.\n******\nSecond.\n******")  # empty ends are fine
    assert not ok(cid, "Same.\n******\nSame.")
    assert not ok(cid, "A\n******\n\n******\nB")  # an empty middle response fails


def test_repeat_prompt_end_and_quotation():
    assert ok("combination:repeat_prompt", "  write a poem.  Here it is", prompt_to_repeat="Write a poem. ")
    assert not ok("combination:repeat_prompt", "Sure! Write a poem.", prompt_to_repeat="Write a poem.")
    assert ok("startend:end_checker", 'Text. "Any other questions?"', end_phrase="any other questions?")
    assert not ok("startend:end_checker", "Any other questions? Bye", end_phrase="Any other questions?")
    assert ok("startend:quotation", '  "quoted"  ')
    assert not ok("startend:quotation", '"')


def test_capital_word_frequency(punkt):
    cid = "change_case:capital_word_frequency"
    assert ok(cid, "THIS is VERY important. DON'T stop.", capital_frequency=4, capital_relation="at least")
    assert _text.word_tokens("DON'T stop.") == ("DO", "N'T", "stop", ".")
    assert not ok(cid, "NO caps HERE", capital_frequency=2, capital_relation="less than")


def test_no_comma_ascii_only():
    assert ok("punctuation:no_comma", "No commas here，only a fullwidth one")
    assert not ok("punctuation:no_comma", "a, b")


def test_strict_needs_a_non_empty_response_and_loose_tries_variants():
    assert not ok("punctuation:no_comma", "   ")
    text = "Sure, here it is:\nthe answer without any commas"
    assert not ok("punctuation:no_comma", text)
    assert ok("punctuation:no_comma", text, loose=True)  # without the first line
    assert ok("detectable_format:title", "<<*title*>>", loose=True)


# ----------------------------------------------------------------------------- sentences

def test_sentence_count_with_punkt(punkt):
    assert _text.count_sentences("Hello Mr. Smith. How are you? Fine.") == 3
    assert _text.split_sentences("1. Apples are red. 2. Bananas.") == ["1.", "Apples are red.", "2.", "Bananas."]


def test_regex_sentence_fallback():
    split = _text.split_sentences_regex
    assert split("Hello Mr. Smith. How are you? Fine.") == ["Hello Mr. Smith.", "How are you?", "Fine."]
    assert split('He said "Stop." Then left.') == ['He said "Stop."', "Then left."]
    assert split("Wait... what? Really!  Yes.") == ["Wait... what?", "Really!", "Yes."]
    assert split("* item one\n* item two\n\nHello there. ok.") == ["* item one\n* item two\n\nHello there.", "ok."]
    assert split("Bold **claim.** Next") == ["Bold **claim.", "** Next"]
    assert split("J. K. Rowling wrote it. Yes") == ["J. K. Rowling wrote it.", "Yes"]
    assert split("Price is 3.5 dollars. Next") == ["Price is 3.5 dollars.", "Next"]


@needs_punkt
def test_fast_tokenizers_equal_nltk(punkt):
    import nltk

    texts = [r["response"] for _, r in zip(range(120), _jsonl(GPT4))]
    for text in texts:
        assert _text.split_sentences(text) == nltk.sent_tokenize(text)
        assert list(_text.word_tokens(text)) == nltk.word_tokenize(text)


# ----------------------------------------------------------------------------- langdetect

@needs_ifeval
def test_fast_langdetect_matches_langdetect():
    import langdetect
    from langdetect.detector import Detector

    from gradeloop.graders.constraints._base import loose_variants
    from gradeloop.graders.constraints._langdetect import _factory, detect

    langdetect.DetectorFactory.seed = 0
    factory, fast = _factory()
    texts = []
    for record in _jsonl(GPT4):
        texts += [v for v in loose_variants(record["response"])[:4] if v.strip()]
    texts = list(dict.fromkeys(texts))[::4] + ["Bonjour amigo, how are you ciao", "ÀÉÎ çà et là", "日本語のテキストです"]
    for text in texts:
        reference = Detector(factory)
        reference.append(text)
        ours = fast(factory)
        ours.append(text)
        assert ours.text == reference.text
        reference.cleaning_text()
        ours.cleaning_text()
        assert ours._extract_ngrams() == reference._extract_ngrams()
        try:
            expected = langdetect.detect(text)
        except langdetect.LangDetectException:
            expected = None
        try:
            assert detect(text) == expected
        except langdetect.LangDetectException:
            assert expected is None


# ----------------------------------------------------------------------------- describe / detect

@pytest.mark.parametrize("cid", IFEVAL_IDS)
def test_describe_has_two_phrasings_and_detect_round_trips(cid):
    constraint = get_constraint(cid)
    assert constraint.phrasings >= 2
    for kwargs in SAMPLES[cid]:
        params = parse_params(cid, kwargs)
        for phrasing in range(constraint.phrasings):
            text = constraint.describe(params, phrasing)
            if cid == "combination:repeat_prompt":
                text = f"{kwargs['prompt_to_repeat']}\n{text}"  # the request comes first, as in IFEval
            assert params in constraint.detect(text), (phrasing, text)


def test_describe_first_phrasing_is_close_to_ifeval():
    describe = lambda cid, **kw: get_constraint(cid).describe(parse_params(cid, kw))  # noqa: E731
    assert describe("length_constraints:number_words", num_words=300, relation="at least") == \
        "Answer with at least 300 words."
    assert "less than 5 sentences" in describe("length_constraints:number_sentences", num_sentences=5,
                                               relation="less than")
    assert "Hindi language" in describe("language:response_language", language="hi")


def test_detect_in_a_system_prompt():
    text = ("You are a support bot. Answer with at least 300 words and do not use any commas. "
            "Wrap your entire response with double quotation marks. End your reply with \"Have a nice day!\"")
    assert [p.model_dump() for p in get_constraint("length_constraints:number_words").detect(text)] == \
        [{"num_words": 300, "relation": "at least"}]
    assert get_constraint("punctuation:no_comma").detect(text)
    assert get_constraint("startend:quotation").detect(text)
    assert get_constraint("startend:end_checker").detect(text)[0].end_phrase == "Have a nice day!"
    assert not get_constraint("detectable_format:json_format").detect(text)
    words = get_constraint("length_constraints:number_words").detect("Keep it to 100 words or less, at most.")
    assert [p.model_dump() for p in words] == [{"num_words": 101, "relation": "less than"}]


@needs_ifeval
def test_detect_recovers_most_of_ifeval_instructions():
    inputs = ifeval.read_inputs(INPUTS)

    def norm(p):
        return {k: sorted(v) if isinstance(v, list) else v for k, v in p.model_dump().items()}

    found = total = 0
    for inp in inputs:
        for cid, params in zip(inp.instruction_id_list, inp.params):
            total += 1
            found += any(norm(p) == norm(params) for p in get_constraint(cid).detect(inp.prompt))
    assert found / total >= 0.85, f"{found}/{total}"


# ----------------------------------------------------------------------------- suite

def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _agreement(records: list[dict], reference_file: Path) -> dict[str, float]:
    reference = {r["key"]: r for r in _jsonl(reference_file)}
    assert {r["key"] for r in records} == set(reference)
    out = {}
    for mode in ("strict", "loose"):
        pairs = [(a, b) for r in records for a, b in zip(r[mode], reference[r["key"]][mode], strict=True)]
        out[mode] = sum(a == b for a, b in pairs) / len(pairs)
    return out


@needs_ifeval
def test_parity_with_the_reference_on_gpt4_responses(punkt):
    result = ifeval.score(ifeval.read_inputs(INPUTS), ifeval.read_responses(GPT4))
    agreement = _agreement(result.records, DATA / "ifeval_reference_verdicts.jsonl")
    assert agreement["strict"] >= 0.995 and agreement["loose"] >= 0.995, agreement
    # the four metrics follow from the verdicts: the reference's give the same numbers
    reference = ifeval.IFEvalScores(records=_jsonl(DATA / "ifeval_reference_verdicts.jsonl"),
                                    instruction_ids=result.instruction_ids)
    assert result.metrics == pytest.approx(reference.metrics, abs=0.005)
    assert result.sentence_splitter == "punkt"


@needs_ifeval
def test_parity_on_text_bison_responses(punkt):
    result = ifeval.score(ifeval.read_inputs(INPUTS), ifeval.read_responses(BISON), skip_missing=True)
    assert len(result.records) == 156 and result.skipped == 385
    agreement = _agreement(result.records, DATA / "ifeval_reference_verdicts_text_bison.jsonl")
    assert min(agreement.values()) >= 0.995, agreement


@needs_ifeval
def test_without_nltk_data_the_fallback_still_agrees(tmp_path):
    empty = tmp_path / "nltk_data"
    empty.mkdir()
    code = (
        "import json, sys\n"
        "from gradeloop.suites import ifeval\n"
        f"r = ifeval.score(ifeval.read_inputs({str(INPUTS)!r}), ifeval.read_responses({str(GPT4)!r}))\n"
        "print(json.dumps({'splitter': r.sentence_splitter, 'records': r.records}))\n"
    )
    env = {**os.environ, "NLTK_DATA": str(empty), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout)
    if result["splitter"] != "regex":
        pytest.skip("punkt_tab is installed in one of NLTK's default folders")
    agreement = _agreement(result["records"], DATA / "ifeval_reference_verdicts.jsonl")
    print(f"agreement without NLTK data: {agreement}")
    assert min(agreement.values()) >= 0.97, agreement


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_read_inputs_errors_name_file_line_and_field(tmp_path):
    good = {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    cases = [
        ({**good, "instruction_id_list": ["nope:nope"]}, "instruction_id_list[0]", "unknown constraint"),
        ({**good, "kwargs": []}, "kwargs", "one object per instruction"),
        ({**good, "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 3}]},
         "kwargs[0]", "relation"),
        ({k: v for k, v in good.items() if k != "prompt"}, "prompt", "missing"),
    ]
    for bad, field, message in cases:
        path = _write(tmp_path / "in.jsonl", [good, bad])
        with pytest.raises(InputError, match=message) as info:
            ifeval.read_inputs(path)
        assert (info.value.file, info.value.line, info.value.field) == (str(path), 2, field)
    path = _write(tmp_path / "in.jsonl", [good, good])
    with pytest.raises(InputError, match="duplicate key"):
        ifeval.read_inputs(path)


def test_read_responses_errors(tmp_path):
    path = _write(tmp_path / "r.jsonl", [{"prompt": "a", "response": "b"}, {"prompt": "a"}])
    with pytest.raises(InputError, match="missing") as info:
        ifeval.read_responses(path)
    assert (info.value.line, info.value.field) == (2, "response")


def test_huggingface_nulls_are_dropped_and_scores(tmp_path):
    hf = {"key": 7, "prompt": "Say hi without commas.", "instruction_id_list": [
        "punctuation:no_comma", "length_constraints:number_words"],
        "kwargs": [{"num_words": None, "relation": None},
                   {"num_words": 2, "relation": "less than", "keywords": None, "letter": "", "forbidden_words": []}]}
    inputs = ifeval.read_inputs(_write(tmp_path / "in.jsonl", [hf]))
    assert inputs[0].kwargs == [{}, {"num_words": 2, "relation": "less than"}]
    result = ifeval.score(inputs, {"Say hi without commas.": "Hi, there friend\nhi"})
    assert result.records == [{"key": 7, "strict": [False, False], "loose": [True, True]}]
    assert result.metrics == {"prompt_level_strict_acc": 0.0, "inst_level_strict_acc": 0.0,
                              "prompt_level_loose_acc": 1.0, "inst_level_loose_acc": 1.0}
    assert result.per_instruction("category")["punctuation"] == {"count": 1, "strict": 0.0, "loose": 1.0}
    with pytest.raises(InputError, match="no response"):
        ifeval.score(inputs, {})


@needs_ifeval
def test_build_writes_an_eval_that_runs(tmp_path):
    from gradeloop import Store, load_eval, output_item_objects, run_eval
    from gradeloop.runner import RunOptions

    path = ifeval.build(INPUTS, tmp_path / "evals", limit=8)
    spec = load_eval(path)
    assert len(spec.rows) == 8 and [c.mode for c in spec.testing_criteria] == ["strict", "loose"]
    params = spec.data_source.sampling_params
    assert (params.temperature, params.max_completion_tokens) == (0, 1280)
    assert spec.rows[0].item == ifeval.read_inputs(INPUTS)[0].item()
    store = Store(tmp_path / "home" / "gradeloop.db")
    [run_id] = run_eval(spec, ["scripted/echo"], store=store, options=RunOptions(use_cache=False))
    from_run = ifeval.scores_from_output_items(output_item_objects(store, run_id))
    inputs = ifeval.read_inputs(INPUTS)[:8]
    direct = ifeval.score(inputs, {i.prompt: i.prompt for i in inputs})  # echo answers with the prompt
    by_key = {r["key"]: r for r in from_run.records}
    assert [by_key[r["key"]] for r in direct.records] == direct.records
    assert from_run.metrics == direct.metrics


# ----------------------------------------------------------------------------- CLI

@needs_ifeval
def test_cli_score_json_and_table(tmp_path):
    inputs = _write(tmp_path / "in.jsonl", [json.loads(line) for line in INPUTS.read_text().splitlines()[:20]])
    env = {"NLTK_DATA": str(NLTK_DATA)}
    done = run_cli("suite", "ifeval", "score", "--data", str(inputs), "--responses", str(GPT4),
                   "--skip-missing", "--json", env=env)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 21 and set(lines[0]) == {"key", "strict", "loose"}
    assert set(lines[-1]["metrics"]) == set(ifeval.METRICS)
    table = run_cli("suite", "ifeval", "score", "--data", str(inputs), "--responses", str(GPT4), env=env)
    assert table.returncode == 0 and "prompt_level_loose_acc" in table.stdout and "keywords" in table.stdout
    missing = run_cli("suite", "ifeval", "score", "--data", str(INPUTS), "--responses", str(BISON), env=env)
    assert missing.returncode == 2 and "no response" in missing.stderr


@needs_ifeval
def test_cli_build(tmp_path):
    done = run_cli("suite", "ifeval", "build", "--data", str(INPUTS), "--out", str(tmp_path / "ev"))
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "ev" / "rows.jsonl").read_text().splitlines()) == 541
    bad = run_cli("suite", "ifeval", "build", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path))
    assert bad.returncode == 2 and "file not found" in bad.stderr


def test_import_gradeloop_stays_light():
    code = ("import sys, gradeloop, gradeloop.suites.ifeval; "
            "print(','.join(m for m in ('langdetect', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
