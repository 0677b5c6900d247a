"""The six instruction-following categories of real API use, as a deterministic eval generator.

GPT-4.1's post-training team measured instruction following on prompts from real API use in
six categories, each split into easy, medium and hard. This suite writes such an eval:

- **format**: XML, YAML or a Markdown table with named fields (hard: filtered and sorted);
- **negative**: "never tell the user to contact support", never apologize, never promise a
  refund, never name a competitor (hard: the user pushes for exactly that);
- **ordered**: an intake flow ("first the name, then the email…") several turns in; the reply
  must ask for the next detail and no later one (hard: the user skips ahead, asks a side question);
- **content**: "always state the protein amount", prices, warranties, delivery times;
- **ranking**: sort the entities of a made-up table by one column (hard: near-miss values,
  a distractor column, top-k, a Markdown table);
- **overconfidence**: answer from the FAQ or reply exactly with the fallback when the answer is
  absent (hard: near-miss questions).

Instructions live in the developer message, the way API users write them: a product persona,
rules, reference content. Prompt variants (``baseline``, ``markdown``, ``xml``, ``before``,
``after``, ``both``, ``persist`` and ``+`` combinations such as ``xml+both``) change only how
the instructions are laid out, so results compare variants on the same items.

``build(n, seed, out_dir)`` writes ``eval.yaml`` and ``rows.jsonl``; the same ``n`` and ``seed``
give byte-identical files. Each item carries ``category``, ``difficulty`` and ``variant`` (for
per-field breakdowns), its ``messages``, its ``constraints``, what the verifiers need
(``expected``) and a reference reply that passes them (``gold``, never shown to the model).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ..errors import InputError
from ..graders.constraints import get_constraint, parse_params
from ..graders.constraints._categories import STEPS
from . import _if_data as data

__all__ = [
    "CATEGORIES",
    "DIFFICULTIES",
    "VARIANTS",
    "Variant",
    "build",
    "developer_message",
    "eval_definition",
    "generate",
    "parse_variant",
]

CATEGORIES = ("format", "negative", "ordered", "content", "ranking", "overconfidence")
DIFFICULTIES = ("easy", "medium", "hard")
SUITE_VERSION = 1

# ------------------------------------------------------------------------------- variants

_STYLES = ("plain", "markdown", "xml")
_PLACEMENTS = ("before", "after", "both")
VARIANTS = {
    "baseline": "instructions as a plain bulleted list before the reference content",
    "markdown": "Markdown sections: # Role and Objective, # Instructions, # Context",
    "xml": "XML tags: <role>, <instructions>, <context>",
    "before": "instructions before the reference content (the baseline's placement)",
    "after": "instructions after the reference content",
    "both": "instructions before the reference content and repeated after it",
    "persist": "adds a persistence reminder (keep going until the request is fully handled)",
}
"""Variant names; join several with ``+`` (``xml+both+persist``), at most one style
(markdown, xml) and one placement (before, after, both)."""


@dataclass(frozen=True)
class Variant:
    """How the developer message is laid out: delimiter style, where the instructions go
    relative to the reference content, and whether the persistence reminder is added."""

    name: str
    style: str = "plain"
    placement: str = "before"
    persist: bool = False


def parse_variant(name: str) -> Variant:
    """The :class:`Variant` named ``name``; raises InputError for an unknown or contradictory name."""
    tokens = [t.strip().lower() for t in name.split("+") if t.strip()]
    if not tokens or any(t not in VARIANTS for t in tokens):
        raise InputError(f"unknown variant '{name}' (known: {', '.join(VARIANTS)}; combine with '+')",
                         field="variant")
    styles = [t for t in tokens if t in _STYLES]
    places = [t for t in tokens if t in _PLACEMENTS]
    clash = len(styles) > 1 or len(places) > 1 or ("baseline" in tokens and len(tokens) > 1)
    if clash or len(set(tokens)) < len(tokens):
        raise InputError(f"variant '{name}' combines clashing parts (one style, one placement, no repeats)",
                         field="variant")
    return Variant(name="+".join(tokens), style=styles[0] if styles else "plain",
                   placement=places[0] if places else "before", persist="persist" in tokens)


# ---------------------------------------------------------------------------------- drafts


@dataclass
class Draft:
    """One item before layout: persona, rules, reference content, turns and what checks them."""

    role: str
    rules: list[str]
    context_title: str
    context: str
    turns: list[dict[str, str]]
    constraints: list[dict[str, Any]]
    gold: str
    expected: dict[str, Any] = field(default_factory=dict)
    topic: str = ""


def _constraint(rng: random.Random, cid: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """The constraint entry and its instruction, in a randomly chosen phrasing."""
    constraint = get_constraint(cid)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    params = parse_params(cid, kwargs)
    return {"id": cid, **kwargs}, constraint.describe(params, rng.randrange(constraint.phrasings))


def _draft(rng: random.Random, role: str, checks: list[tuple[dict, str]], context: tuple[str, str],
           turns: list[dict[str, str]], gold: str, expected: dict[str, Any] | None = None,
           topic: str = "") -> Draft:
    rules = [text for _, text in checks] + [rng.choice(data.STYLE_RULES)]
    return Draft(role=role, rules=rules, context_title=context[0], context=context[1], turns=turns,
                 constraints=[entry for entry, _ in checks], gold=gold, expected=expected or {}, topic=topic)


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _persona(company: data.Company) -> str:
    return f"You are {company.assistant}, the assistant of {company.name}, {company.what}."


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _years(n: int) -> str:
    return f"{n} year" if n == 1 else f"{n} years"


# ---------------------------------------------------------------------------------- format


@dataclass(frozen=True)
class _Kind:
    company: str
    plural: str
    tag: str
    key: str
    fields: tuple[str, ...]
    title: str


_KINDS = {
    "lamp": _Kind("lumora", "lamps", "lamp", "name", ("name", "price", "wattage", "lumens", "color", "warranty",
                                                       "stock"), "Lamp catalog"),
    "bike": _Kind("fernway", "bikes", "bike", "name", ("name", "price", "weight", "gears", "frame", "warranty",
                                                       "stock"), "Bike catalog"),
    "order": _Kind("lumora", "orders", "order", "order_id", ("order_id", "status", "carrier", "eta", "total"),
                   "Orders on this account"),
    "trip": _Kind("tidepool", "trips", "trip", "trip_id", ("trip_id", "route", "mode", "departs", "price",
                                                           "seats_left"), "Trips on sale this week"),
}


def _lamp(row: tuple) -> dict[str, Any]:
    name, price, watts, lumens, color, warranty, _, stock = row
    return {"name": name, "price": _money(price), "wattage": f"{watts} W", "lumens": str(lumens), "color": color,
            "warranty": _years(warranty), "stock": "in stock" if stock else "out of stock", "_price": price,
            "_available": stock}


def _bike(row: tuple) -> dict[str, Any]:
    name, price, kg, gears, frame, warranty, _, stock, _ = row
    return {"name": name, "price": _money(price), "weight": f"{kg} kg", "gears": str(gears), "frame": frame,
            "warranty": _years(warranty), "stock": "in stock" if stock else "out of stock", "_price": price,
            "_available": stock}


def _orders(rng: random.Random, count: int) -> list[dict[str, Any]]:
    ids = rng.sample(range(1000, 9999), count)
    out = []
    for order_id in ids:
        total = rng.choice(data.LAMPS)[1] + rng.choice([0.0, rng.choice(data.LAMPS)[1]])
        out.append({"order_id": f"LM-{order_id}", "status": rng.choice(data.ORDER_STATUSES),
                    "carrier": rng.choice(data.CARRIERS),
                    "eta": f"{rng.randint(1, 28)} {rng.choice(data.MONTHS)}", "total": _money(total),
                    "_price": total, "_available": True})
    return out


def _trips(rng: random.Random, count: int) -> list[dict[str, Any]]:
    ids = rng.sample(range(100, 999), count)
    prices = rng.sample(range(18, 240), count)
    out = []
    for trip_id, price in zip(ids, prices):
        a, b = rng.sample(data.TRIP_STOPS, 2)
        seats = rng.choice([0, 0, 2, 5, 9, 14, 23])
        out.append({"trip_id": f"TP-{trip_id}", "route": f"{a} to {b}", "mode": rng.choice(data.TRIP_MODES),
                    "departs": f"{rng.randint(6, 21):02d}:{rng.choice(['00', '15', '30', '45'])}",
                    "price": _money(price), "seats_left": str(seats), "_price": float(price), "_available": seats > 0})
    return out


def _records(rng: random.Random, kind: str, count: int) -> list[dict[str, Any]]:
    if kind == "lamp":
        return [_lamp(r) for r in rng.sample(data.LAMPS, count)]
    if kind == "bike":
        return [_bike(r) for r in rng.sample(data.BIKES, count)]
    return _orders(rng, count) if kind == "order" else _trips(rng, count)


def _record_line(record: dict[str, Any], kind: _Kind) -> str:
    rest = "; ".join(f"{f.replace('_', ' ')}: {record[f]}" for f in kind.fields if f != kind.key)
    return f"- {record[kind.key]}: {rest}"


def _column(name: str) -> str:
    return name.replace("_", " ").title()


def _render_records(fmt: str, kind: _Kind, records: list[dict[str, Any]], fields: list[str], many: bool) -> str:
    if fmt == "table":
        lines = ["| " + " | ".join(_column(f) for f in fields) + " |", "|" + "---|" * len(fields)]
        lines += ["| " + " | ".join(str(r[f]) for f in fields) + " |" for r in records]
        return "\n".join(lines)
    if fmt == "yaml":
        import yaml

        body = [{f: r[f] for f in fields} for r in records]
        return yaml.safe_dump(body if many else body[0], sort_keys=False, allow_unicode=True).strip()

    def element(r: dict[str, Any], indent: str) -> str:
        inner = "\n".join(f"{indent}  <{f}>{escape(str(r[f]))}</{f}>" for f in fields)
        return f"{indent}<{kind.tag}>\n{inner}\n{indent}</{kind.tag}>"

    if not many:
        return element(records[0], "")
    return f"<{kind.plural}>\n" + "\n".join(element(r, "  ") for r in records) + f"\n</{kind.plural}>"


def _format_check(rng: random.Random, fmt: str, kind: _Kind, fields: list[str], rows: int,
                  many: bool) -> tuple[dict, str]:
    if fmt == "xml":
        extra = {"root": kind.plural, "record": kind.tag} if many else {"root": kind.tag}
        return _constraint(rng, "api:format_xml", **extra, fields=fields)
    if fmt == "yaml":
        return _constraint(rng, "api:format_yaml", fields=fields, shape="list" if many else "mapping")
    return _constraint(rng, "api:format_markdown_table", columns=[_column(f) for f in fields], min_rows=rows)


def _format(rng: random.Random, difficulty: str, index: int) -> Draft:
    kind_name = rng.choice(["lamp", "bike", "trip"] if difficulty == "hard" else list(_KINDS))
    kind = _KINDS[kind_name]
    fmt = rng.choice(["xml", "yaml", "table"])
    size, extra_fields = {"easy": (4, 2), "medium": (5, 3), "hard": (9, 4)}[difficulty]
    records = _records(rng, kind_name, size)
    fields = [kind.key] + sorted(rng.sample([f for f in kind.fields if f != kind.key], extra_fields),
                                 key=kind.fields.index)
    checks, expected = [], {}
    if difficulty == "easy":
        chosen, many = [rng.choice(records)], False
        ask = {"order": "What's the status of order {}?", "trip": "Can you give me the details of trip {}?"}.get(
            kind_name, "Can you give me the details of the {}?").format(chosen[0][kind.key])
    elif difficulty == "medium":
        chosen, many = records, True
        ask = rng.choice([f"Give me an overview of all the {kind.plural} listed.",
                          f"Can you list every one of the {kind.plural} you have there?"])
    else:
        while sum(r["_available"] for r in records) < 2 or all(r["_available"] for r in records):
            records = _records(rng, kind_name, size)
        chosen, many = sorted([r for r in records if r["_available"]], key=lambda r: r["_price"]), True
        word = "have seats left" if kind_name == "trip" else "are in stock"
        ask = rng.choice([f"Which {kind.plural} {word}? Cheapest first, please.",
                          f"Show me the {kind.plural} that {word}, from the lowest price up."])
        checks.append(_constraint(rng, "api:ranked_order", by="price", descending=False, noun=kind.plural))
        expected = {"order": [r[kind.key] for r in chosen],
                    "exclude": [r[kind.key] for r in records if not r["_available"]]}
    checks.insert(0, _format_check(rng, fmt, kind, fields, len(chosen), many))
    company = data.COMPANIES[kind.company]
    context = (kind.title, "\n".join(_record_line(r, kind) for r in records))
    gold = _render_records(fmt, kind, chosen, fields, many)
    return _draft(rng, _persona(company), checks, context, [_user(ask)], gold, expected, topic=kind_name)


# -------------------------------------------------------------------------------- negative


def _facts_context(rng: random.Random, company: str, count: int) -> tuple[str, str]:
    facts = data.FAQS[company]
    chosen = sorted(rng.sample(range(len(facts)), min(count, len(facts))))
    return "Help notes", "\n".join(f"- {facts[i].topic}: {facts[i].text}" for i in chosen)


def _negative(rng: random.Random, difficulty: str, index: int) -> Draft:
    issue = rng.choice(data.ISSUES)
    company = data.COMPANIES[issue.company]
    extra = {"easy": [], "medium": [rng.choice(["apology", "avoid_names", "refund_promise"])],
             "hard": ["apology", rng.choice(["avoid_names", "refund_promise"])]}[difficulty]
    topics = ["contact_support"] + extra
    checks = []
    competitors = rng.sample(list(company.competitors), 2)
    for topic in topics:
        if topic == "avoid_names":
            checks.append(_constraint(rng, "api:avoid_names", names=competitors, kind="competitors"))
        else:
            checks.append(_constraint(rng, "api:avoid_phrases", topic=topic))
    rng.shuffle(checks)
    user, gold = issue.user, issue.gold
    if difficulty == "hard":
        pushes = [data.TEMPTATIONS[t] for t in topics]
        user = " ".join([user] + [p.format(competitor=competitors[0]) for p, _ in pushes])
        gold = pushes[0][1] + " " + gold
    size = {"easy": 3, "medium": 6, "hard": 10}[difficulty]
    return _draft(rng, _persona(company), checks, _facts_context(rng, issue.company, size), [_user(user)], gold,
                  topic=issue.company)


# --------------------------------------------------------------------------------- ordered


def _said(text: str, step: str) -> bool:
    return re.search(STEPS[step].pattern, text, re.I) is not None


def _ordered(rng: random.Random, difficulty: str, index: int) -> Draft:
    flow = rng.choice(data.FLOWS)
    steps = list(flow.steps[:3] if difficulty == "easy" else flow.steps[:4] if difficulty == "medium" else flow.steps)
    done = 0  # steps already asked for in earlier turns
    if difficulty != "easy":
        done = rng.randint(1, 2) if difficulty == "medium" else rng.randint(2, len(steps) - 1)
    who = rng.randrange(4)
    turns = [_user(rng.choice(flow.openers))]
    for step in steps[:done]:
        turns.append(_assistant(rng.choice(flow.asks[step])))
        answer = flow.answers[step][who % len(flow.answers[step])]
        turns.append(_user(f"It's {answer}." if step == "name" else answer))
    following, later = steps[done], steps[done + 1:]
    gold = rng.choice(flow.asks[following])
    checks = [_constraint(rng, "api:ordered_steps", steps=steps)]
    if difficulty == "hard":
        extras = []
        if following in flow.pushes:
            extras.append(flow.pushes[following])
        sides = [(q, a) for q, a in flow.side if not any(_said(a, s) for s in later)]
        if sides:
            question, answer = rng.choice(sides)
            extras.append(question)
            gold = f"{answer} {gold}"
        last = turns[-1]["content"]
        turns[-1] = _user(" ".join([last if last[-1] in ".?!" else last + "."] + extras))
        checks.append(_constraint(rng, "api:avoid_phrases", topic="apology"))
    role = f"You are {flow.assistant}, the assistant of {flow.company}, {flow.what}. You help people {flow.goal}."
    expected = {"next_step": following, "asked": steps[:done]}
    return _draft(rng, role, checks, (flow.context_title, flow.context), turns, gold, expected, topic=flow.key)


# --------------------------------------------------------------------------------- content


def _food_line(food: tuple) -> str:
    name, serving, meal, tags, protein, kcal, fiber = food
    diet = ", ".join(sorted(tags)) or "contains meat"
    return f"- {name} ({serving}, {meal}; {diet}): protein {protein} g, energy {kcal} kcal, fiber {fiber} g"


def _fits(food: tuple, diet: str) -> bool:
    tags = food[3]
    return diet == "any" or diet in tags or (diet == "pescatarian" and "vegetarian" in tags)


def _nutrition(rng: random.Random, difficulty: str) -> Draft:
    diet = rng.choice(data.DIETS)
    word = "" if diet == "any" else f"{diet} "
    meals = {"easy": [rng.choice(["breakfast", "lunch", "dinner"])], "medium": ["lunch", "snack"],
             "hard": ["breakfast", "lunch", "dinner"]}[difficulty]
    picks = [rng.choice([f for f in data.FOODS if f[2] == meal and _fits(f, diet)]) for meal in meals]
    others = [f for f in data.FOODS if f not in picks]
    shown = {"easy": 6, "medium": 10, "hard": len(data.FOODS)}[difficulty]
    table = sorted(picks + rng.sample(others, shown - len(picks)), key=data.FOODS.index)
    lines = [f"{meal.title()}: {f[0]} ({f[1]}) with {f[4]} g protein and {f[5]} kcal." for meal, f in zip(meals, picks)]
    checks = [_constraint(rng, "api:state_amount", quantity="protein")]
    if difficulty == "easy":
        ask = f"Can you suggest a {word}{meals[0]} for tomorrow?"
        lines = [f"Try the {picks[0][0]} ({picks[0][1]}): it has {picks[0][4]} g protein."]
    elif difficulty == "medium":
        ask = f"What {word}lunch and snack would you suggest for a workday?"
        checks.append(_constraint(rng, "api:state_amount", quantity="calories"))
    else:
        ask = f"Plan my meals for Monday: breakfast, lunch and dinner. I eat {diet if diet != 'any' else 'everything'}."
        checks = [_constraint(rng, "api:state_amount", quantity="protein", min_count=3, per="meal"),
                  _constraint(rng, "api:state_amount", quantity="calories", min_count=3, per="meal"),
                  _constraint(rng, "api:state_amount", quantity="fiber")]
        lines.append(f"Total fiber for the day: {sum(f[6] for f in picks)} g fiber.")
    role = _persona(data.GREENPLATE) + " You build meal plans only from the foods in the list below."
    return _draft(rng, role, checks, ("Food list (per serving)", "\n".join(_food_line(f) for f in table)),
                  [_user(ask)], " ".join(lines), topic="nutrition")


def _bike_line(bike: tuple) -> str:
    name, price, kg, gears, frame, warranty, days, stock, use = bike
    return (f"- {name}: {_money(price)}, {kg} kg, {gears} gears, {frame} frame, best for {use}; "
            f"warranty {_years(warranty)}; delivery {days} business days; {'in stock' if stock else 'out of stock'}")


def _bike_advice(rng: random.Random, difficulty: str) -> Draft:
    count = 3 if difficulty == "hard" else 1
    picks = rng.sample(data.BIKES, count)
    shown = {"easy": 5, "medium": 7, "hard": len(data.BIKES)}[difficulty]
    table = sorted(picks + rng.sample([b for b in data.BIKES if b not in picks], shown - count), key=data.BIKES.index)
    checks = [_constraint(rng, "api:state_amount", quantity="price")]
    first = picks[0]
    if difficulty == "easy":
        ask = f"Which bike would you recommend for {first[8]}?"
        gold = f"I'd go for the {first[0]}: it costs {_money(first[1])} and is built for {first[8]}."
    elif difficulty == "medium":
        ask = f"I need a bike for {first[8]}. Which one, and what do I get with it?"
        checks.append(_constraint(rng, "api:state_amount", quantity="warranty"))
        gold = (f"The {first[0]} is the one for {first[8]}. It costs {_money(first[1])} and comes with a "
                f"{first[5]}-year warranty.")
    else:
        names = ", ".join(b[0] for b in picks[:2]) + f" and {picks[2][0]}"
        ask = f"Can you compare the {names} for me?"
        checks = [_constraint(rng, "api:state_amount", quantity="price", min_count=3, per="bike"),
                  _constraint(rng, "api:state_amount", quantity="warranty", min_count=3, per="bike"),
                  _constraint(rng, "api:state_amount", quantity="delivery_time")]
        gold = " ".join(f"The {b[0]} costs {_money(b[1])}, weighs {b[2]} kg and has a {b[5]}-year warranty; it "
                        f"ships in {b[6]} business days." for b in picks)
    company = data.COMPANIES["fernway"]
    return _draft(rng, _persona(company), checks, ("Bike catalog", "\n".join(_bike_line(b) for b in table)),
                  [_user(ask)], gold, topic="bikes")


def _content(rng: random.Random, difficulty: str, index: int) -> Draft:
    return _nutrition(rng, difficulty) if (index // 18) % 2 == 0 else _bike_advice(rng, difficulty)


# --------------------------------------------------------------------------------- ranking

_SINGULAR = {"cities": "City", "trails": "Trail", "apps": "App", "sales reps": "Rep"}


def _near_miss(value: int) -> int | None:
    """``value`` with two adjacent middle digits swapped (1,240,300 -> 1,204,300), or None."""
    digits = list(str(value))
    for i in range(1, len(digits) - 2):
        if digits[i] != digits[i + 1]:
            digits[i], digits[i + 1] = digits[i + 1], digits[i]
            return int("".join(digits))
    return None


def _values(rng: random.Random, rs: data.RankSet, count: int, near: bool) -> list[int]:
    step = 100 if rs.high > 100_000 else 1
    values: list[int] = []
    while len(values) < count:
        value = rng.randrange(rs.low // step, rs.high // step) * step
        twin = _near_miss(value) if near and len(values) < 4 and len(values) % 2 == 0 else None
        for v in (value, twin):
            if v is not None and v not in values and len(values) < count:
                values.append(v)
    return values


def _show(rs: data.RankSet, value: int) -> str:
    if rs.unit == "USD":
        return f"${value:,}"
    return f"{value:,} {rs.unit}"


def _ranking(rng: random.Random, difficulty: str, index: int) -> Draft:
    rs = rng.choice(data.RANK_SETS)
    count = {"easy": 5, "medium": rng.randint(7, 8), "hard": rng.randint(11, 12)}[difficulty]
    names = rng.sample(list(rs.names), count)
    values = dict(zip(names, _values(rng, rs, count, near=difficulty == "hard")))
    descending = rng.random() < 0.7
    ranked = sorted(names, key=values.__getitem__, reverse=descending)
    while names in (ranked, ranked[::-1]):
        rng.shuffle(names)
    top = rng.randint(3, 5) if difficulty == "hard" else None
    order = ranked[:top] if top else ranked
    lines = []
    for name in names:
        line = f"- {name}: {rs.column} {_show(rs, values[name])}"
        if difficulty != "easy":
            low, high = rs.distractor_range
            other = rng.randint(low, high)
            line += f"; {rs.distractor} {other / 10 if rs.distractor == 'rating' else other}"
        lines.append(line)
    checks = [_constraint(rng, "api:ranked_order", by=rs.by, descending=descending, top=top, noun=rs.noun)]
    ask = rng.choice([f"Can you rank these {rs.noun} for me?", f"Please put the {rs.noun} in order.",
                      f"How do these {rs.noun} compare?"])
    gold = "\n".join(f"{n}. {name} ({_show(rs, values[name])})" for n, name in enumerate(order, 1))
    if difficulty == "hard":
        columns = [_SINGULAR[rs.noun], rs.by.title()]
        checks.append(_constraint(rng, "api:format_markdown_table", columns=columns, min_rows=len(order)))
        gold = "\n".join([f"| {columns[0]} | {columns[1]} |", "|---|---:|"]
                         + [f"| {name} | {_show(rs, values[name])} |" for name in order])
    expected = {"order": order, "exclude": ranked[top:] if top else []}
    context = (rs.title, rs.note + "\n" + "\n".join(lines))
    return _draft(rng, rs.persona, checks, context, [_user(ask)], gold, expected, topic=rs.key)


# -------------------------------------------------------------------------- overconfidence


def _overconfidence(rng: random.Random, difficulty: str, index: int) -> Draft:
    key = rng.choice(sorted(data.FAQS))
    company, facts = data.COMPANIES[key], data.FAQS[key]
    fallback = rng.choice(data.FALLBACKS).format(domain=company.domain)
    answerable = (index // 18) % 2 == 0
    size = {"easy": 4, "medium": 7, "hard": len(facts)}[difficulty]
    target = rng.choice(facts)
    if answerable:
        question = target.direct if difficulty == "easy" else target.paraphrase
    elif difficulty == "easy":
        question = rng.choice(data.OFF_TOPIC)
    elif difficulty == "medium":
        # the target's own question, its fact left out of the FAQ; a near miss; or off topic
        question = rng.choice([target.direct, rng.choice(data.NEAR_MISSES[key]), rng.choice(data.OFF_TOPIC)])
    else:
        question = rng.choice(data.NEAR_MISSES[key])
    others = [f for f in facts if f is not target]
    shown = [target] + rng.sample(others, size - 1) if answerable else rng.sample(others, min(size, len(others)))
    shown.sort(key=facts.index)
    checks = [_constraint(rng, "api:fallback_if_unknown", fallback=fallback, source="the FAQ below")]
    if difficulty == "hard":
        checks.append(_constraint(rng, "api:avoid_phrases", topic="apology"))
    expected = {"answerable": answerable}
    if answerable:
        expected["answer"] = list(target.answers)
    context = ("FAQ", "\n".join(f"- {f.topic}: {f.text}" for f in shown))
    gold = target.text if answerable else fallback
    return _draft(rng, _persona(company), checks, context, [_user(question)], gold, expected, topic=key)


_BUILDERS = {"format": _format, "negative": _negative, "ordered": _ordered, "content": _content,
             "ranking": _ranking, "overconfidence": _overconfidence}


# ---------------------------------------------------------------------------------- layout


def _bullets(rules: list[str]) -> str:
    return "\n".join(f"- {r}" for r in rules)


def developer_message(draft: Draft, variant: Variant) -> str:
    """The developer message of ``draft`` laid out as ``variant`` says."""
    role = draft.role + (f"\n\n{data.PERSIST}" if variant.persist else "")
    rules = _bullets(draft.rules)
    if variant.style == "markdown":
        head, instructions = f"# Role and Objective\n{role}", f"# Instructions\n{rules}"
        context, again = f"# Context\n## {draft.context_title}\n{draft.context}", f"# Final Instructions\n{rules}"
    elif variant.style == "xml":
        head, instructions = f"<role>\n{role}\n</role>", f"<instructions>\n{rules}\n</instructions>"
        context = f'<context title="{escape(draft.context_title)}">\n{draft.context}\n</context>'
        again = instructions
    else:
        head, instructions = role, f"Rules:\n{rules}"
        context, again = f"{draft.context_title}:\n{draft.context}", f"Remember these rules:\n{rules}"
    parts = {"before": [head, instructions, context], "after": [head, context, instructions],
             "both": [head, instructions, context, again]}[variant.placement]
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------- generator


def _slot(index: int) -> tuple[str, str]:
    """Category and difficulty of item ``index``: they cycle, so any prefix is balanced."""
    return CATEGORIES[index % len(CATEGORIES)], DIFFICULTIES[(index // len(CATEGORIES)) % len(DIFFICULTIES)]


def _item(index: int, seed: int, variants: list[Variant]) -> list[dict[str, Any]]:
    category, difficulty = _slot(index)
    draft = _BUILDERS[category](random.Random(f"if-categories:{seed}:{index}"), difficulty, index)
    stem = f"ifcat-{index:04d}"
    rows = []
    for variant in variants:
        messages = [{"role": "developer", "content": developer_message(draft, variant)}] + draft.turns
        rows.append({"id": f"{stem}.{variant.name}", "stem": stem, "category": category, "difficulty": difficulty,
                     "variant": variant.name, "topic": draft.topic, "messages": messages,
                     "constraints": draft.constraints, "expected": draft.expected, "gold": draft.gold})
    return rows


def generate(n: int, seed: int = 0, variants: list[str] | None = None) -> list[dict[str, Any]]:
    """``n`` items per variant (default: ``baseline``), stems in order, each stem once per variant.

    Items cycle through the categories and then the difficulties, so the first ``k`` rows are
    as balanced as ``k`` allows. Returns the items (the ``item`` of each row)."""
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    parsed = [parse_variant(v) for v in (variants or ["baseline"])]
    if len({v.name for v in parsed}) < len(parsed):
        raise InputError("a variant is listed twice", field="variant")
    return [row for index in range(n) for row in _item(index, seed, parsed)]


_ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "stem": {"type": "string"},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "difficulty": {"type": "string", "enum": list(DIFFICULTIES)},
        "variant": {"type": "string"}, "topic": {"type": "string"},
        "messages": {"type": "array", "minItems": 2, "items": {"type": "object", "required": ["role", "content"]}},
        "constraints": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["id"]}},
        "expected": {"type": "object"}, "gold": {"type": "string"},
    },
    "required": ["id", "category", "difficulty", "variant", "messages", "constraints"],
}


def eval_definition(n: int, seed: int, variants: list[str]) -> dict[str, Any]:
    """The eval definition ``build`` writes next to ``rows.jsonl``."""
    return {
        "name": f"IF categories (n={n}, seed={seed})",
        "metadata": {"suite": "if-categories", "version": SUITE_VERSION, "n": n, "seed": seed,
                     "variants": variants,
                     "description": "GPT-4.1's six instruction-following categories of real API use: format, "
                                    "negative, ordered, content, ranking, overconfidence; easy/medium/hard."},
        "data_source_config": {"type": "custom", "item_schema": _ITEM_SCHEMA, "include_sample_schema": True},
        "testing_criteria": [{"type": "constraints", "name": "follows the instructions",
                              "input": "{{ sample.output_text }}", "constraints": "{{ item.constraints }}",
                              "mode": "strict", "score": "all"}],
        "data_source": {"type": "completions", "source": {"type": "file", "path": "rows.jsonl"},
                        "input_messages": {"type": "item_reference", "item_reference": "item.messages"},
                        "sampling_params": {"temperature": 0, "max_completion_tokens": 512}},
    }


def build(n: int, seed: int, out_dir: str | Path, variants: list[str] | None = None) -> dict[str, Any]:
    """Write ``out_dir/eval.yaml`` and ``out_dir/rows.jsonl`` (``n`` items per variant).

    Returns ``{"eval": path, "rows": path, "items": count, "counts": {...}}``: counts per
    ``category``, ``difficulty`` and ``variant``, and ``category_difficulty`` (category ->
    difficulty -> count)."""
    import yaml

    items = generate(n, seed, variants)
    names = list(dict.fromkeys(i["variant"] for i in items))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path, eval_path = out / "rows.jsonl", out / "eval.yaml"
    with open(rows_path, "w", encoding="utf-8", newline="\n") as handle:
        for item in items:
            handle.write(json.dumps({"item": item}, ensure_ascii=False) + "\n")
    header = "# Built by `gradeloop suite if-categories build`; rows are in rows.jsonl.\n"
    text = yaml.safe_dump(eval_definition(n, seed, names), sort_keys=False, allow_unicode=True, width=100)
    eval_path.write_text(header + text, encoding="utf-8", newline="\n")
    counts: dict[str, Any] = {k: dict(Counter(i[k] for i in items)) for k in ("category", "difficulty", "variant")}
    pairs = Counter((i["category"], i["difficulty"]) for i in items)
    counts["category_difficulty"] = {c: {d: pairs[c, d] for d in DIFFICULTIES} for c in CATEGORIES}
    return {"eval": str(eval_path), "rows": str(rows_path), "items": len(items), "counts": counts}
