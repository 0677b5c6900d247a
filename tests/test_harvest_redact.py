"""Redaction measured on a labelled synthetic set (issue 12, point 3 and its "Done means"):
recall per kind against the issue's bars, precision against a floor, and the options
(kinds, phone region, user patterns, the CLI helper)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from gradeloop.errors import InputError
from gradeloop.harvest import Redactor, from_chat, make_redactor

DATA = Path(__file__).parent / "data" / "harvest"
LABELLED = DATA / "redaction_labelled.jsonl"
# the issue's bars: e-mails, cards, keys (every kind of secret) and IBANs 0.98, phones 0.95;
# IP addresses have no bar in the issue and are held to the phones' one
RECALL_BAR = {"EMAIL": 0.98, "CARD": 0.98, "IBAN": 0.98, "API_KEY": 0.98, "BEARER_TOKEN": 0.98, "SECRET": 0.98,
              "PHONE": 0.95, "IP": 0.95}
# a placeholder over a harmless number costs an eval item some readability; a missed secret is
# stored for good. So the floor is lower than the recall bars: at most about one placeholder in
# seven may hide something harmless (the set's hard negatives are meant to draw such mistakes)
PRECISION_FLOOR = 0.85


def _score(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per kind: gold spans, recall (a gold span counts when one finding of its kind covers it
    whole), precision (a finding counts when it overlaps a gold span of its kind) and leaks
    (gold spans that no finding of any kind covers)."""
    found, gold, right, predicted, leaked = Counter(), Counter(), Counter(), Counter(), Counter()
    redactors: dict[str, Redactor] = {}
    for row in rows:
        redactor = redactors.setdefault(row["region"], Redactor(region=row["region"]))
        spans = redactor.spans(row["text"])
        for g in row["spans"]:
            gold[g["kind"]] += 1
            found[g["kind"]] += any(s <= g["start"] and e >= g["end"] and k == g["kind"] for s, e, k in spans)
            leaked[g["kind"]] += not any(s <= g["start"] and e >= g["end"] for s, e, _ in spans)
        for s, e, k in spans:
            predicted[k] += 1
            right[k] += any(k == g["kind"] and s < g["end"] and e > g["start"] for g in row["spans"])
    return {k: {"spans": gold[k], "recall": found[k] / gold[k] if gold[k] else 0.0,
                "precision": right[k] / predicted[k] if predicted[k] else 1.0,
                "findings": predicted[k], "leaked": leaked[k]} for k in sorted(gold.keys() | predicted.keys())}


def _table(scores: dict[str, dict[str, float]]) -> str:
    lines = ["| kind | spans | recall | precision | findings | leaked |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {v['spans']} | {v['recall']:.3f} | {v['precision']:.3f} | {v['findings']} | {v['leaked']} |"
              for k, v in scores.items()]
    return "\n".join(lines)


def test_labelled_set_meets_the_issue_recall_bars_with_precision_reported():
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    scores = _score(rows)
    print(f"\nredaction on {LABELLED.name}: {len(rows)} texts\n{_table(scores)}")
    assert sum(v["spans"] for v in scores.values()) >= 300
    assert set(RECALL_BAR) <= {k for k, v in scores.items() if v["spans"] >= 10}
    for kind, bar in RECALL_BAR.items():
        assert scores[kind]["recall"] >= bar, (kind, scores[kind])
        assert scores[kind]["precision"] >= PRECISION_FLOOR, (kind, scores[kind])


def test_labelled_set_is_reproduced_by_its_seeded_script(tmp_path):
    spec = importlib.util.spec_from_file_location("make_redaction_set", DATA / "make_redaction_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.OUT = tmp_path / "again.jsonl"
    module.main()
    assert module.OUT.read_bytes() == LABELLED.read_bytes()


def test_each_kind_gets_its_typed_placeholder_consistently_within_a_conversation():
    user = ("I'm ann+shop@mail.example.co.uk, call +44 20 7946 0958. Card 4242 4242 4242 4242, "
            "IBAN DE89 3704 0044 0532 0130 00, from 203.0.113.9 and 2001:db8::7, key AKIAQWERTYUIOPASDFGHJ, "
            "curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz12' and password = \"Tr0ub4dor&3x\"")
    record = from_chat({"model": "m", "messages": [{"role": "user", "content": user}]},
                       {"choices": [{"message": {"role": "assistant", "content": "Noted ann+shop@mail.example.co.uk, "
                                                 "card 4242-4242-4242-4242 and 203.0.113.9."}}]})
    redacted = Redactor().redact_record(record)
    assert redacted.messages[0]["content"] == (
        "I'm <EMAIL_1>, call <PHONE_1>. Card <CARD_1>, IBAN <IBAN_1>, from <IP_1> and <IP_2>, key <API_KEY_1>, "
        "curl -H 'Authorization: Bearer <BEARER_TOKEN_1>' and password = \"<SECRET_1>\"")
    # the same value is the same placeholder; the same card written with dashes is another text
    assert redacted.output["content"] == "Noted <EMAIL_1>, card <CARD_2> and <IP_1>."


def test_texts_remembered_across_records_keep_each_records_own_numbering():
    """One redactor over many records (the proxy's writer) searches a recurring text once, but
    placeholders are still numbered per record, in the order each record meets its values."""
    redactor = Redactor()
    system = "Escalate to ops@shop.example.com when unsure."

    def record(user: str) -> object:
        return from_chat({"model": "m", "messages": [{"role": "user", "content": user},
                                                       {"role": "system", "content": system}]}, None)

    first = redactor.redact_record(record("hi, I'm bo@mail.example.org"))
    second = redactor.redact_record(record("no address here"))
    assert [m["content"] for m in first.messages] == ["hi, I'm <EMAIL_1>", "Escalate to <EMAIL_2> when unsure."]
    assert [m["content"] for m in second.messages] == ["no address here", "Escalate to <EMAIL_1> when unsure."]
    # a long text is searched each time it comes back, not kept
    long = "x " * 5000 + "reach me at long@mail.example.org"
    assert redactor.redact_text(long).endswith("<EMAIL_1>")
    assert long not in redactor._known and system in redactor._known


def test_hard_negatives_are_left_alone():
    text = ("Order #100234567 of 2024-05-12, $1,234.56, version 1.2.3.4, v2.14.0, "
            "uuid 123e4567-e89b-12d3-a456-426614174000, "
            "colour #ff8800, ISBN 978-3-16-148410-0, tracking 1Z999AA10123456784, card 4111 1111 1111 1112 (bad Luhn), "
            "IBAN DE89 3704 0044 0532 0130 01 (bad checksum), root@localhost, icon@2x.png, "
            "git@github.com:org/repo.git, "
            "127.0.0.1, 0.0.0.0, [::1]:8080, 12:30:45, std::vector, ORD-2024-406579, EAN 4006381333931")
    assert Redactor().redact_text(text) == text


def test_kinds_region_and_patterns_are_options():
    text = "Ring 020 7946 0958 or mail ann@example.org about ORD-123456"
    assert Redactor(kinds=["EMAIL"]).redact_text(text) == "Ring 020 7946 0958 or mail <EMAIL_1> about ORD-123456"
    assert Redactor().redact_text(text) == "Ring 020 7946 0958 or mail <EMAIL_1> about ORD-123456"  # US: not a number
    assert Redactor(region="GB").redact_text(text) == "Ring <PHONE_1> or mail <EMAIL_1> about ORD-123456"
    custom_only = Redactor([r"ORD-\d{6}"], kinds=[])
    assert custom_only.redact_text(text) == "Ring 020 7946 0958 or mail ann@example.org about <CUSTOM_1>"
    with pytest.raises(ValueError, match="unknown redaction kind"):
        Redactor(kinds=["NAME"])


def test_a_custom_pattern_inside_a_card_cannot_leave_the_rest_visible():
    assert Redactor([r"\d{4}"]).redact_text("card 4242 4242 4242 4242 ok") == "card <CARD_1> ok"


def test_make_redactor_follows_the_flags_and_refuses_bad_input_quietly(capsys):
    assert make_redactor(False, [r"("], "XX") is None
    redactor = make_redactor(True, [r"ORD-\d+"], "gb")
    assert redactor is not None and redactor.region == "GB"
    assert redactor.redact_text("ORD-77 on 020 7946 0958") == "<CUSTOM_1> on <PHONE_1>"
    assert make_redactor(True, [], None).region == "US"
    with pytest.raises(InputError) as bad:
        make_redactor(True, [r"ORD-(\d+"], None)
    assert bad.value.field == "--redact-pattern" and bad.value.exit_code == 2 and "ORD-(" in str(bad.value)
    with pytest.raises(InputError) as region:
        make_redactor(True, [], "XX")
    assert region.value.field == "--redact-region"
    assert capsys.readouterr() == ("", "")


def test_numbers_around_a_card_or_an_iban_stay_outside_its_placeholder():
    text = "qty 3 card 4242 4242 4242 4242 12 27 then GB82 WEST 1234 5698 7654 32 DE89 3704 0044 0532 0130 00 ok"
    assert Redactor().redact_text(text) == "qty 3 card <CARD_1> 12 27 then <IBAN_1> <IBAN_2> ok"


def test_a_missing_library_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "phonenumbers", None)
    with pytest.raises(InputError, match=r"gradeloop\[harvest\]"):
        Redactor()
    assert Redactor(kinds=["EMAIL"]).redact_text("a@b.co") == "<EMAIL_1>"
