"""The six instruction-following categories: the ``api:`` constraints and the suite generator."""

import json
import re
import subprocess
import sys

import pytest

from conftest import run_cli
from gradeloop import RunOptions, load_eval, run_eval
from gradeloop.errors import InputError
from gradeloop.graders.constraints import check_constraint, constraint_ids, get_constraint, parse_params
from gradeloop.graders.constraints._categories import FORBIDDEN_PHRASES, STEPS, markdown_tables, unfence
from gradeloop.report import output_item_objects
from gradeloop.store import Store
from gradeloop.suites import _if_data as data
from gradeloop.suites.if_categories import (CATEGORIES, DIFFICULTIES, VARIANTS, build, generate,
                                            parse_variant)

API_IDS = ["api:avoid_names", "api:avoid_phrases", "api:fallback_if_unknown", "api:format_markdown_table",
           "api:format_xml", "api:format_yaml", "api:ordered_steps", "api:ranked_order", "api:state_amount"]


def ok(cid, response, item=None, loose=False, **kwargs):
    return check_constraint(cid, response, kwargs, item=item, loose=loose)[0]


def test_every_api_constraint_is_registered_with_two_phrasings():
    assert set(API_IDS) <= set(constraint_ids())
    for cid in API_IDS:
        assert get_constraint(cid).phrasings >= 2


# ------------------------------------------------------------------------------- format


XML_FIELDS = {"root": "order", "fields": ["order_id", "status", "eta"]}


def test_xml_pass_cases():
    doc = "<order><order_id>LM-1</order_id><status>shipped</status><eta>4 May</eta></order>"
    assert ok("api:format_xml", doc, **XML_FIELDS)
    assert ok("api:format_xml", f"```xml\n{doc}\n```", **XML_FIELDS)
    spaced = ('\n\n  <?xml version="1.0" encoding="UTF-8"?>\n<order>\n   <order_id>  LM-1 </order_id>\n\n'
              '   <status>\tshipped</status>\n   <eta>4 May</eta>\n</order>\n  ')
    assert ok("api:format_xml", spaced, **XML_FIELDS)
    # a field as an attribute, or nested deeper, still counts
    assert ok("api:format_xml", '<order order_id="LM-1"><info><status>shipped</status><eta>x</eta></info></order>',
              **XML_FIELDS)


def test_xml_fail_cases():
    assert not ok("api:format_xml", "<shipment><order_id>1</order_id><status>a</status><eta>b</eta></shipment>",
                  **XML_FIELDS)
    assert not ok("api:format_xml", "<order><order_id>1</order_id><status>a</status></order>", **XML_FIELDS)
    assert not ok("api:format_xml", "<order><order_id>1</order_id><status> </status><eta>b</eta></order>",
                  **XML_FIELDS)
    assert not ok("api:format_xml", "<order><order_id>1</order_id><status>a</status><eta>b</order>", **XML_FIELDS)
    assert not ok("api:format_xml", "<order_id>1</order_id><status>a</status><eta>b</eta>", **XML_FIELDS)
    prose = "Here is your order:\n<order><order_id>1</order_id><status>a</status><eta>b</eta></order>"
    assert not ok("api:format_xml", prose, **XML_FIELDS)
    assert ok("api:format_xml", prose, loose=True, **XML_FIELDS)  # loose drops the first line
    _, why = check_constraint("api:format_xml", "<order><status>a</status></order>", XML_FIELDS)
    assert "<order_id>" in why and "<eta>" in why


def test_xml_records_each_need_every_field():
    params = {"root": "lamps", "record": "lamp", "fields": ["name", "price"]}
    good = "<lamps><lamp><name>A</name><price>1</price></lamp><lamp><name>B</name><price>2</price></lamp></lamps>"
    assert ok("api:format_xml", good, **params)
    assert not ok("api:format_xml", good.replace("<price>2</price>", ""), **params)
    assert not ok("api:format_xml", "<lamps></lamps>", **params)


YAML_FIELDS = {"fields": ["product", "price", "in_stock"]}


def test_yaml_pass_and_fail():
    doc = "product: Aster Desk Lamp\nprice: $49.00\nin_stock: true\n"
    assert ok("api:format_yaml", doc, **YAML_FIELDS)
    assert ok("api:format_yaml", f"```yaml\n{doc}```", **YAML_FIELDS)
    assert ok("api:format_yaml", f"```\n---\n{doc}\n```\n", **YAML_FIELDS)
    assert ok("api:format_yaml", doc.replace("true", "false"), **YAML_FIELDS)  # false is a value
    assert not ok("api:format_yaml", doc.replace("price:", "Price:"), **YAML_FIELDS)  # keys are exact
    assert not ok("api:format_yaml", doc.replace("$49.00", ""), **YAML_FIELDS)  # null value
    assert not ok("api:format_yaml", "product: A\nin_stock: yes\n", **YAML_FIELDS)
    assert not ok("api:format_yaml", "The Aster Desk Lamp costs $49.00 and is in stock.", **YAML_FIELDS)
    assert not ok("api:format_yaml", "product: [unclosed\nprice: 1", **YAML_FIELDS)
    assert not ok("api:format_yaml", "Sure! Here it is:\n" + doc, **YAML_FIELDS)


def test_yaml_list_shape():
    params = {"fields": ["name", "price"], "shape": "list"}
    assert ok("api:format_yaml", "- name: A\n  price: 1\n- name: B\n  price: 2\n", **params)
    assert not ok("api:format_yaml", "- name: A\n  price: 1\n- name: B\n", **params)
    assert not ok("api:format_yaml", "- A\n- B\n", **params)
    assert not ok("api:format_yaml", "lamps:\n  - name: A\n    price: 1\n", **params)  # not top-level
    assert not ok("api:format_yaml", "name: A\nprice: 1\n", **params)


TABLE = {"columns": ["Name", "Price", "Wattage"]}


def test_markdown_table_pass_cases():
    aligned = "| Name | Price | Wattage |\n|:-----|------:|:-------:|\n| Aster | $49.00 | 8 W |\n"
    assert ok("api:format_markdown_table", aligned, **TABLE)
    assert ok("api:format_markdown_table", "Here you go:\n\n" + aligned + "\nAnything else?", **TABLE)
    assert ok("api:format_markdown_table", "```markdown\n" + aligned + "```", **TABLE)
    bold = "| **name** | PRICE (USD) | `Wattage` |\n| --- | --- | --- |\n| Aster | 49 | 8 |"
    assert ok("api:format_markdown_table", bold, **TABLE)
    no_outer_pipes = "Name | Price | Wattage\n--- | --- | ---\nAster | 49 | 8"
    assert ok("api:format_markdown_table", no_outer_pipes, **TABLE)
    assert markdown_tables(aligned)[0] == (["Name", "Price", "Wattage"], [["Aster", "$49.00", "8 W"]])


def test_markdown_table_fail_cases():
    assert not ok("api:format_markdown_table", "| Name | Price |\n|---|---|\n| Aster | 49 |", **TABLE)
    assert not ok("api:format_markdown_table", "| Name | Price | Wattage |\n| Aster | 49 | 8 |", **TABLE)
    assert not ok("api:format_markdown_table", "Name: Aster, Price: 49, Wattage: 8", **TABLE)
    assert not ok("api:format_markdown_table", "| Name | Price | Wattage |\n|---|---|---|\n", **TABLE)
    two_rows = "| Name | Price | Wattage |\n|---|---|---|\n| A | 1 | 2 |\n| B | 3 | 4 |"
    assert ok("api:format_markdown_table", two_rows, min_rows=2, **TABLE)
    assert not ok("api:format_markdown_table", two_rows, min_rows=3, **TABLE)


def test_unfence_only_strips_a_fence_around_everything():
    assert unfence("```yaml\na: 1\n```") == "a: 1"
    assert unfence("  ```\na: 1\n```  \n") == "a: 1"
    assert unfence("text\n```\na: 1\n```") == "text\n```\na: 1\n```"


# ----------------------------------------------------------------------------- negative


@pytest.mark.parametrize("reply", [
    "Please contact support.", "You can contact our customer support for this.",
    "Feel free to reach out to our support team.", "Reach out to the team and they'll sort it.",
    "Email support@lumora.example with a photo.", "Write to help@fernway.example.",
    "Get in touch with our team.", "Call our helpline on 0800 123.", "Open a support ticket from the app.",
    "You could file a ticket.", "I'd suggest you speak to one of our agents.", "Talk to a human agent.",
    "Our customer service team can look at it.", "Contact us if that fails.", "Try our help desk.",
    "Call customer service.",
])
def test_contact_support_paraphrases_fail(reply):
    assert not ok("api:avoid_phrases", reply, topic="contact_support")


@pytest.mark.parametrize("reply", [
    "Unplug the lamp for ten seconds and pair it again.", "The lamp supports Matter, so your speaker works.",
    "Supporting documents are in your account.", "Your order ticket number is on the invoice.",
])
def test_contact_support_innocent_replies_pass(reply):
    assert ok("api:avoid_phrases", reply, topic="contact_support")


def test_apology_and_refund_promise():
    for reply in ("Sorry about that!", "We apologise for the trouble.", "My apologies.", "I'm so sorry.",
                  "We regret the inconvenience."):
        assert not ok("api:avoid_phrases", reply, topic="apology"), reply
    assert ok("api:avoid_phrases", "Thanks for flagging this; here is the fix.", topic="apology")
    for reply in ("You'll get a full refund.", "Your refund has been approved.", "We guarantee a refund.",
                  "I will refund you today.", "We'll send you a refund by Friday.",
                  "You will receive your money back."):
        assert not ok("api:avoid_phrases", reply, topic="refund_promise"), reply
    assert ok("api:avoid_phrases", "Returns are inspected first; then the payment is released.", topic="refund_promise")
    assert set(FORBIDDEN_PHRASES) == {"contact_support", "apology", "refund_promise"}


def test_avoid_names_whole_words_any_case():
    names = {"names": ["Notewell", "Paper Trail"]}
    assert not ok("api:avoid_names", "Unlike notewell, we sync offline.", **names)
    assert not ok("api:avoid_names", "Notewell's export is different.", **names)
    assert not ok("api:avoid_names", "Paper\ntrail does this.", **names)
    assert ok("api:avoid_names", "Notewellness is not a word we use.", **names)


# ------------------------------------------------------------------------------ ordered

FLOW = {"steps": ["name", "email", "phone"]}


def conversation(*assistant_turns):
    messages = [{"role": "developer", "content": "first ask their name, then email, then phone"},
                {"role": "user", "content": "Hi, I want to sign up. My phone is 0770 and email a@b.c"}]
    for turn in assistant_turns:
        messages += [{"role": "assistant", "content": turn}, {"role": "user", "content": "Dana"}]
    return {"messages": messages}


def test_ordered_steps_next_one_only():
    start = conversation()
    assert ok("api:ordered_steps", "Welcome! What's your name?", start, **FLOW)
    assert not ok("api:ordered_steps", "What's your email?", start, **FLOW)
    after_name = conversation("What's your name?")
    assert ok("api:ordered_steps", "Thanks, Dana! What email address should we use?", after_name, **FLOW)
    assert ok("api:ordered_steps", "Thanks for your name. Which e-mail should we use?", after_name, **FLOW)
    assert not ok("api:ordered_steps", "Thanks! What's your phone number?", after_name, **FLOW)
    assert not ok("api:ordered_steps", "Thanks! What's your email and phone number?", after_name, **FLOW)
    assert not ok("api:ordered_steps", "Thanks, Dana!", after_name, **FLOW)
    _, why = check_constraint("api:ordered_steps", "What's your email and phone?", FLOW, item=after_name)
    assert "phone" in why and "before their email" in why
    done = conversation("Name?", "Email?", "Phone?")
    assert ok("api:ordered_steps", "All set, thanks!", done, **FLOW)
    assert ok("api:ordered_steps", "What's your name?", None, **FLOW)  # no conversation: the first step


def test_ordered_steps_tell_date_from_date_of_birth():
    steps = {"steps": ["name", "date_of_birth", "insurance", "date"]}
    item = conversation("What's your full name?")
    assert ok("api:ordered_steps", "Thanks. What is your date of birth?", item, **steps)
    assert not ok("api:ordered_steps", "Which date suits you for the visit?", item, **steps)
    assert set(STEPS) >= set(steps["steps"])


# ------------------------------------------------------------------------------ content


def test_state_amount_protein():
    for reply in ("Dal: 18 g protein.", "Protein: 18 g", "It has 18 grams of protein.", "protein (18g)",
                  "with a protein content of about 18 g", "18g of protein, 430 kcal"):
        assert ok("api:state_amount", reply, quantity="protein"), reply
    for reply in ("Protein 18", "High in protein and fiber.", "18 g fat, and some protein",
                  "fat: 12 g, carbs: 40 g"):
        assert not ok("api:state_amount", reply, quantity="protein"), reply
    three = "Breakfast 22 g protein. Lunch 19 g protein. Dinner: protein 34 g."
    assert ok("api:state_amount", three, quantity="protein", min_count=3)
    assert not ok("api:state_amount", three.replace("Dinner: protein 34 g.", ""), quantity="protein", min_count=3)


def test_state_amount_other_quantities():
    assert ok("api:state_amount", "It costs $749.00.", quantity="price")
    assert ok("api:state_amount", "Price: 749 EUR", quantity="price")
    assert not ok("api:state_amount", "It costs 749.", quantity="price")
    assert ok("api:state_amount", "It has a 2-year warranty.", quantity="warranty")
    assert ok("api:state_amount", "The warranty runs for 5 years.", quantity="warranty")
    assert not ok("api:state_amount", "Warranty included. Made in 2 years.", quantity="warranty")
    assert ok("api:state_amount", "It ships in 3-5 business days.", quantity="delivery_time")
    assert not ok("api:state_amount", "It ships soon. Returns within 30 days.", quantity="delivery_time")
    assert ok("api:state_amount", "About 450 kcal.", quantity="calories")


# ------------------------------------------------------------------------------ ranking

RANK_ITEM = {"expected": {"order": ["Marrowick", "Tessaly", "Port Ondra"], "exclude": ["Quillon"]}}
RANK = {"by": "population", "top": 3, "noun": "cities"}


def test_ranked_order_pass_with_extra_prose():
    reply = ("Tessaly is famous, but by population the top three are:\n1. Marrowick (1,240,300)\n"
             "2. **Tessaly** (1,204,300)\n3. Port Ondra (870,000)\nQuillon comes fourth.")
    assert ok("api:ranked_order", reply, RANK_ITEM, **RANK)  # prose outside the list is ignored
    assert ok("api:ranked_order", "From largest: Marrowick, Tessaly, then Port Ondra.", RANK_ITEM, **RANK)
    table = "| City | Population |\n|---|---:|\n| Marrowick | 1 |\n| Tessaly | 2 |\n| Port Ondra | 3 |"
    assert ok("api:ranked_order", table, RANK_ITEM, **RANK)


def test_ranked_order_fail_cases():
    assert not ok("api:ranked_order", "1. Tessaly\n2. Marrowick\n3. Port Ondra", RANK_ITEM, **RANK)
    assert not ok("api:ranked_order", "1. Marrowick\n2. Tessaly", RANK_ITEM, **RANK)
    assert not ok("api:ranked_order", "1. Marrowick\n2. Tessaly\n3. Port Ondra\n4. Quillon", RANK_ITEM, **RANK)
    assert not ok("api:ranked_order", "1. Marrowick\n2. Tessaly\n3. Port Ondra", {}, **RANK)
    _, why = check_constraint("api:ranked_order", "1. Tessaly\n2. Marrowick\n3. Port Ondra", RANK, item=RANK_ITEM)
    assert "position 1 is Tessaly" in why


# ----------------------------------------------------------------------- overconfidence

FALLBACK = {"fallback": "I don't have that information.", "source": "the FAQ below"}
ABSENT = {"expected": {"answerable": False}}
PRESENT = {"expected": {"answerable": True, "answer": ["30 days", "1,000 notes"]}}


@pytest.mark.parametrize("reply", [
    "I don't have that information.", "I don't have that information", "  I don't have that information.\n",
    '"I don\'t have that information."', "I don\u2019t have that information.", "“I don't have that information.”",
    "i don't have that information!", "`I don't have that information.`",
])
def test_fallback_exact_with_tolerated_typography(reply):
    assert ok("api:fallback_if_unknown", reply, ABSENT, **FALLBACK)


@pytest.mark.parametrize("reply", [
    "I don't have that information. Maybe try the website?", "Sorry, I don't have that information.",
    "I do not have that information.", "Trash keeps notes for 30 days.", "I don't know.",
])
def test_fallback_wrong_when_absent(reply):
    assert not ok("api:fallback_if_unknown", reply, ABSENT, **FALLBACK)


def test_fallback_when_answer_present():
    assert ok("api:fallback_if_unknown", "Deleted notes stay in the Trash for 30 days.", PRESENT, **FALLBACK)
    assert ok("api:fallback_if_unknown", "You can keep up to 1000 notes.", PRESENT, **FALLBACK)
    assert not ok("api:fallback_if_unknown", "I don't have that information.", PRESENT, **FALLBACK)
    assert not ok("api:fallback_if_unknown", "30 days. I don't have that information.", PRESENT, **FALLBACK)
    assert not ok("api:fallback_if_unknown", "Notes stay for a month.", PRESENT, **FALLBACK)
    assert not ok("api:fallback_if_unknown", "It is 300 days.", PRESENT, **FALLBACK)
    assert not ok("api:fallback_if_unknown", "30 days", {}, **FALLBACK)


# ------------------------------------------------------------------- describe / detect


def _canonical(cid, params):
    """What detect can recover from the words: counts like min_rows/min_count are not stated."""
    drop = {"api:format_markdown_table": {"min_rows"}, "api:state_amount": {"min_count"}}.get(cid, set())
    return params.model_dump(exclude=drop)


def test_describe_has_phrasings_and_detect_reads_them_back():
    seen = set()
    for item in generate(60, 5):
        for entry in item["constraints"]:
            cid = entry["id"]
            constraint = get_constraint(cid)
            params = parse_params(cid, {k: v for k, v in entry.items() if k != "id"})
            texts = {constraint.describe(params, k) for k in range(constraint.phrasings)}
            assert len(texts) >= 2
            for text in texts:
                found = [_canonical(cid, p) for p in constraint.detect(text)]
                assert _canonical(cid, params) in found, (cid, text, found)
            seen.add(cid)
    assert seen == set(API_IDS)


def test_detect_finds_instructions_in_a_real_style_prompt():
    prompt = ("You are Mia, the helper for Notewise.\n- Don't ever tell users to contact support; fix it yourself.\n"
              "- Never mention competitors: Paperly, Scribbit.\n"
              "- First ask for the user's name, then ask for their email.\n"
              "- If you do not know, reply exactly: \"Let me check with the team.\"")
    assert get_constraint("api:avoid_phrases").detect(prompt)[0].topic == "contact_support"
    assert get_constraint("api:avoid_names").detect(prompt)[0].names == ["Paperly", "Scribbit"]
    assert get_constraint("api:ordered_steps").detect(prompt)[0].steps == ["name", "email"]
    assert get_constraint("api:fallback_if_unknown").detect(prompt)[0].fallback == "Let me check with the team."
    assert get_constraint("api:format_xml").detect(prompt) == []


# ---------------------------------------------------------------------------- generator


def test_build_is_deterministic_and_seed_dependent(tmp_path):
    a, b, c = (build(60, seed, tmp_path / name, variants=["baseline", "xml+both"])
               for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    for name in ("eval", "rows"):
        assert open(a[name], "rb").read() == open(b[name], "rb").read()
    assert open(a["rows"], "rb").read() != open(c["rows"], "rb").read()


def test_balanced_over_categories_and_difficulties():
    items = generate(300, 1)
    for category in CATEGORIES:
        per = [sum(i["category"] == category and i["difficulty"] == d for i in items) for d in DIFFICULTIES]
        assert sum(per) == 50 and max(per) - min(per) <= 1
    first = generate(24, 1)  # what `eval run --limit 24` runs: 4 of each category
    assert {c: sum(i["category"] == c for i in first) for c in CATEGORIES} == {c: 4 for c in CATEGORIES}
    answerable = [i["expected"]["answerable"] for i in items if i["category"] == "overconfidence"]
    assert abs(sum(answerable) - len(answerable) / 2) <= 3


def test_every_item_loads_and_its_constraints_validate(tmp_path):
    summary = build(120, 3, tmp_path, variants=["baseline", "markdown", "xml+after+persist"])
    spec = load_eval(summary["eval"])
    assert len(spec.rows) == 360 == summary["items"]
    for row in spec.rows:
        item = row.item
        assert {"category", "difficulty", "variant"} <= set(item)
        assert item["messages"][0]["role"] == "developer" and item["messages"][-1]["role"] == "user"
        assert all(m["content"] != item["gold"] for m in item["messages"])  # the gold is never shown
        for entry in item["constraints"]:
            parse_params(entry["id"], {k: v for k, v in entry.items() if k != "id"})
    assert spec.data_source.input_messages.item_reference == "item.messages"


def test_variants_change_only_the_developer_message():
    items = generate(12, 2, ["baseline", "markdown", "xml", "after", "both", "persist", "markdown+both+persist"])
    by_stem = {}
    for item in items:
        by_stem.setdefault(item["stem"], []).append(item)
    assert len(by_stem) == 12 and all(len(v) == 7 for v in by_stem.values())
    for group in by_stem.values():
        assert len({json.dumps([g["messages"][1:], g["constraints"], g["gold"]]) for g in group}) == 1
        dev = {g["variant"]: g["messages"][0]["content"] for g in group}
        assert "# Instructions" in dev["markdown"] and "<instructions>" in dev["xml"]
        role, rules, context = dev["baseline"].split("\n\n")
        assert rules.startswith("Rules:\n- ")
        assert dev["after"] == "\n\n".join([role, context, rules])
        assert dev["both"] == "\n\n".join([role, rules, context, rules.replace("Rules:", "Remember these rules:")])
        assert data.PERSIST in dev["persist"] and data.PERSIST not in dev["baseline"]
        assert "# Final Instructions" in dev["markdown+both+persist"]
        assert {g["id"] for g in group} == {f"{group[0]['stem']}.{g['variant']}" for g in group}


def test_bad_variants_are_input_errors():
    assert parse_variant("XML+Both").name == "xml+both"
    for bad in ("bogus", "xml+markdown", "before+after", "persist+persist", "baseline+xml", ""):
        with pytest.raises(InputError):
            parse_variant(bad)
    with pytest.raises(InputError):
        generate(3, 0, ["xml", "xml"])
    assert set(VARIANTS) == {"baseline", "markdown", "xml", "before", "after", "both", "persist"}


# ------------------------------------------------------------------ gold and bad replies


def bad_replies(item):
    """Plausible replies that break the item's main instruction."""
    gold, category, expected = item["gold"], item["category"], item["expected"]
    if category == "format":
        field = item["constraints"][0].get("fields", item["constraints"][0].get("columns", ["name"]))[0]
        renamed = re.sub(rf"\b{re.escape(field)}\b", "title", gold, flags=re.I)
        prose = [] if item["constraints"][0]["id"] == "api:format_markdown_table" else [
            "Here are the details you asked for:\n" + gold]  # prose around a table is fine
        return [renamed] + prose
    if category == "negative":
        return [gold + " If that does not help, please contact our support team."]
    if category == "ordered":
        steps = item["constraints"][0]["steps"]
        later = steps[steps.index(expected["next_step"]) + 1:]
        flow = next(f for f in data.FLOWS if f.key == item["topic"])
        out = ["Thanks, that's noted."]
        if later:
            out.append(flow.asks[later[-1]][0])
            out.append(gold + " " + flow.asks[later[0]][0])
        return out
    if category == "content":
        unitless = re.sub(r"(\d+) g\b", r"\1", gold)  # "18 protein": a number without its unit
        return [re.sub(r"\d", "", gold)] + ([unitless] if unitless != gold else [])
    if category == "ranking":
        lines = gold.splitlines()
        head, body = (lines[:2], lines[2:]) if lines[0].startswith("|") else ([], lines)
        return ["\n".join(head + body[::-1]), "\n".join(head + body[1:])]
    fallback = item["constraints"][0]["fallback"]
    if expected["answerable"]:
        return [fallback, "I'm not sure, but probably not."]
    return ["Yes, that is possible from our side.", f"{fallback} But you could try our website."]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_item_has_a_passing_gold_and_failing_bad_replies(seed):
    for item in generate(150, seed):
        for entry in item["constraints"]:
            kwargs = {k: v for k, v in entry.items() if k != "id"}
            passed, why = check_constraint(entry["id"], item["gold"], kwargs, item=item)
            assert passed, (item["id"], entry, why, item["gold"])
        for bad in bad_replies(item):
            verdicts = [check_constraint(e["id"], bad, {k: v for k, v in e.items() if k != "id"}, item=item)[0]
                        for e in item["constraints"]]
            assert not all(verdicts), (item["id"], bad)


def test_ordered_items_read_the_next_step_from_the_conversation():
    for item in generate(300, 4):
        if item["category"] != "ordered":
            continue
        steps = item["constraints"][0]["steps"]
        asked = [s for s in steps if any(re.search(STEPS[s].pattern, m["content"], re.I)
                                         for m in item["messages"] if m["role"] == "assistant")]
        assert asked == item["expected"]["asked"]
        assert steps[len(asked)] == item["expected"]["next_step"]
        if item["difficulty"] != "easy":
            assert any(m["role"] == "assistant" for m in item["messages"])


# -------------------------------------------------------------------------- end to end


def test_runs_end_to_end_with_a_scripted_model(tmp_path):
    summary = build(12, 9, tmp_path / "suite")
    spec = load_eval(summary["eval"])
    rows = spec.rows[:6]
    prompts = [r.item["messages"][-1]["content"] for r in rows]
    assert len(set(prompts)) == len(prompts)
    rules = tmp_path / "rules.jsonl"
    with open(rules, "w") as handle:
        for n, row in enumerate(rows):
            reply = row.item["gold"] if n < 4 else bad_replies(row.item)[0]
            handle.write(json.dumps({"contains": prompts[n], "response": reply}) + "\n")
    [run_id] = run_eval(spec, [f"scripted/{rules}"], options=RunOptions(limit=6))
    items = output_item_objects(Store(), run_id)
    status = {o["datasource_item"]["category"]: o["status"] for o in items}
    assert status == {"format": "pass", "negative": "pass", "ordered": "pass", "content": "pass",
                      "ranking": "fail", "overconfidence": "fail"}
    for o in items:
        assert {"category", "difficulty", "variant"} <= set(o["datasource_item"])
        assert o["results"][0]["details"]["constraints"][0]["id"].startswith("api:")


def test_cli_build(tmp_path):
    result = run_cli("suite", "if-categories", "build", "--n", "12", "--seed", "3", "--out", str(tmp_path / "a"),
                     "--variant", "markdown", "--variant", "xml+both", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["items"] == 24 and summary["counts"]["variant"] == {"markdown": 12, "xml+both": 12}
    assert summary["counts"]["category"] == {c: 4 for c in CATEGORIES}
    human = run_cli("suite", "if-categories", "build", "--n", "6", "--out", str(tmp_path / "b"))
    assert human.returncode == 0 and "overconfidence" in human.stdout and "baseline 6" in human.stdout
    bad = run_cli("suite", "if-categories", "build", "--n", "6", "--out", str(tmp_path / "c"), "--variant", "huh")
    assert bad.returncode == 2 and "unknown variant 'huh'" in bad.stderr and "Traceback" not in bad.stderr


def test_import_gradeloop_stays_light():
    code = ("import sys, gradeloop; bad = [m for m in ('gradeloop.suites.if_categories', "
            "'gradeloop.suites._if_data', 'xml.etree.ElementTree') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
