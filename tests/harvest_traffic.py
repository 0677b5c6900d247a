"""Synthetic production traffic for harvest tests: three products, each with its own system
prompt template (customer names, dates, ids inserted), user requests drawn from a few intents
per product, some errors, some user feedback and some near-duplicate questions.

``three_products(seed)`` returns records in the order they were made; each carries the truth
in ``metadata["truth"]``: ``product``, ``intent`` and ``near_dup_of`` (the index, in the list,
of the request it repeats with a trivial change, or None).
"""

from __future__ import annotations

import random
from typing import Any

from gradeloop.harvest import Record, from_chat, from_responses

__all__ = ["PRODUCTS", "three_products"]

_FIRST = ["Ann", "Bob", "María José", "Wei", "Oluwaseun", "Jean-Luc", "Priya", "Tom", "Ana Lucía", "Kenji", "Fatima",
          "Liam", "Zoë", "Mohammed Ali", "Sven", "Chiara"]
_LAST = ["Lee", "Smith", "van der Berg", "García López", "Okafor", "Nakamura", "Dubois", "O'Neill", "Rossi", "Kowalski"]
_CITIES = ["Lisbon", "Tokyo", "New York", "Cape Town", "Buenos Aires", "Oslo", "Hanoi", "Marrakesh", "Vancouver", "Rome"]
_ITEMS = ["running shoes", "blue hoodie", "coffee grinder", "phone case", "desk lamp", "yoga mat", "backpack",
          "wireless earbuds", "winter jacket", "water bottle", "board game", "kitchen scale"]

PRODUCTS: dict[str, dict[str, Any]] = {
    "shop": {
        "count": 160,
        "system": ("You are ShopBot, the customer support assistant of Northwind Outfitters.\n"
                   "The customer is {name} (e-mail {email}, customer id C-{num}).\n"
                   "Today is {date}. Their latest order is #{order}.\n\n"
                   "Rules:\n- Answer in at most 3 sentences.\n- Never promise a refund before checking the order.\n"
                   "- Always end with: Is there anything else I can help with?"),
        "intents": {
            "order_status": ["Where is my order #{order}? The {item} should have arrived {when}.",
                             "My {item} still hasn't arrived in {city}, can you check the tracking?",
                             "When will the {item} I ordered {when} be delivered?",
                             "Has order {order} with the {item} shipped yet?",
                             "The tracking page for my {item} has not updated since {when}, where is the parcel?"],
            "refund": ["I want a refund for the {item}, it arrived {damage}.",
                       "How do I return the {item} I bought {when} and get my money back?",
                       "The {item} is {damage}, can I send it back for a refund?",
                       "You charged me twice for the {item}, please refund one of the {amount} payments.",
                       "I returned the {item} {when} and still have no refund of {amount}."],
            "payment": ["Can I pay for the {item} with {method}?",
                        "Do you accept {method} for orders over {amount}?",
                        "My card was declined when buying the {item}, can I use {method} instead?",
                        "Is it possible to pay for a {item} in installments with {method}?"],
        },
        "failing": "refund",
    },
    "travel": {
        "count": 110,
        "system": ("You are TripMate, a travel planning assistant. Traveller: {name}, home city {home}. "
                   "Current date: {date}. Booking reference {ref}. Suggest concrete options with prices in EUR and "
                   "never book anything without explicit confirmation. Reply in JSON when asked for an itinerary."),
        "intents": {
            "visa": ["Do I need a visa to visit {city} {when2} with a {passport} passport?",
                     "What documents do I need to enter {city} as a {passport} citizen?",
                     "How long does a tourist visa for {city} take to process {when2}?",
                     "Can {person} get a visa on arrival when we land in {city}?"],
            "hotel": ["Recommend a {style} hotel near the centre of {city} under {amount} a night.",
                      "Which neighbourhood in {city} is best to stay in with {person}?",
                      "Find me a {style} hotel in {city} {when2}.",
                      "Is there a {style} hostel in {city} close to the train station?"],
            "baggage": ["How many kilos of checked baggage can I bring on my flight to {city} with {person}?",
                        "My suitcase with the {item} was lost on the flight to {city}, what should I do?",
                        "Can I take a {item} in my carry-on luggage to {city}?",
                        "What does an extra checked bag cost on my flight to {city} {when2}?"],
        },
        "failing": "baggage",
    },
    "hr": {
        "count": 80,
        "system": ("You are the HR policy assistant of Contoso Ltd.\n"
                   "Employee: {name}\nDepartment: {dept}\nEmployee number: E{num}\nDate: {date}\n"
                   "Only answer from the employee handbook. If the handbook does not cover a question, say so and "
                   "refer the employee to hr@contoso.example."),
        "intents": {
            "vacation": ["How many vacation days can I still take {when2}, and does {person} need to sign off?",
                         "Can I carry unused holiday days from {month} into next year?",
                         "I want to take {days} days off in {month}, how do I request leave?",
                         "Do public holidays in {month} count against my annual leave?",
                         "Can {person} approve my vacation request for {month}?",
                         "Is it fine to book a holiday in {city} for {days} days in {month} before it is approved?",
                         "Does unpaid leave in {month} reduce my vacation allowance, asks {person}?",
                         "What happens to my holiday entitlement if I fall ill during my trip to {city}?",
                         "Can I swap {days} days of overtime for extra vacation in {month}?",
                         "My {person} is visiting from {city} in {month}; can I take special leave for it?"],
            "expenses": ["How do I get reimbursed for a train ticket to {city} that cost {amount}?",
                         "What is the daily meal allowance on a business trip to {city} in {month}?",
                         "Can I expense a {item} I bought for work in {month}?",
                         "Where do I submit the receipts from my trip to {city} with {person}?",
                         "Is a taxi from the airport in {city} covered by the travel expense policy?",
                         "Who signs off on an expense claim of {amount} for a {item}?",
                         "How soon after my trip to {city} in {month} will the expense claim be paid out?",
                         "Are hotel minibar charges of {amount} in {city} reimbursable?",
                         "I lost the receipt for a {item}; can I still claim the {amount} as an expense?"],
        },
        "failing": None,
    },
}

_WHEN = ["last Monday", "two weeks ago", "on Friday", "at the start of the month", "yesterday morning",
         "ten days ago", "before Christmas", "on the 3rd"]
_WHEN2 = ["next spring", "in July", "over Easter", "for a long weekend", "in December", "next summer",
          "for two weeks in August", "this autumn"]
_DAMAGE = ["broken", "scratched", "the wrong colour", "missing a part", "the wrong size", "soaking wet", "dented"]
_METHOD = ["PayPal", "Apple Pay", "a gift card", "bank transfer", "Klarna", "Google Pay", "cash on delivery"]
_PASSPORT = ["German", "Brazilian", "Indian", "Canadian", "Nigerian", "Japanese", "Australian", "Mexican"]
_PERSON = ["my manager", "my partner", "my two kids", "my elderly mother", "a colleague", "my dog", "my team lead",
           "the new intern", "my best friend", "our whole department"]
_STYLE = ["quiet", "family friendly", "cheap", "luxury", "pet friendly", "boutique", "business"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_AMOUNTS = ["40 euros", "120 dollars", "75 pounds", "300 euros", "15 dollars", "950 kronor", "60 francs"]

_DEPTS = ["Finance", "Research and Development", "Sales", "Customer Success", "IT"]
_NOISE = [str.lower, lambda q: q.rstrip("?.!") + "??", lambda q: "Hi, " + q, lambda q: q + " Thanks!",
          lambda q: q.replace(" the ", " teh ", 1) if " the " in q and len(q) > 80 else q.upper()]


def _variables(rng: random.Random) -> dict[str, Any]:
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    day = rng.randint(1, 28)
    return {"name": name, "email": f"{name.split()[0].lower()}{rng.randint(1, 99)}@mail.example",
            "num": rng.randint(10_000, 99_999), "order": rng.randint(100_000, 999_999),
            "date": f"2026-{rng.randint(1, 11):02d}-{day:02d}", "home": rng.choice(_CITIES),
            "ref": f"TM{rng.randint(1000, 9999)}{rng.choice('ABCDEFGH')}", "dept": rng.choice(_DEPTS),
            "city": rng.choice(_CITIES), "item": rng.choice(_ITEMS), "days": rng.randint(2, 21),
            "when": rng.choice(_WHEN), "when2": rng.choice(_WHEN2), "damage": rng.choice(_DAMAGE),
            "method": rng.choice(_METHOD), "passport": rng.choice(_PASSPORT), "person": rng.choice(_PERSON),
            "style": rng.choice(_STYLE), "month": rng.choice(_MONTHS), "amount": rng.choice(_AMOUNTS)}


def _record(product: str, system: str, question: str, answer: str | None, rng: random.Random,
            created: float) -> Record:
    model = rng.choice(["gpt-4.1-mini", "gpt-4.1-mini", "gpt-4.1"])
    failed = answer is None
    known: dict[str, Any] = {"created_at": created, "tags": [product], "status": 500 if failed else 200}
    if failed:
        known["error"] = {"message": "upstream overloaded", "type": "server_error"}
    if product == "travel":  # this product talks to the Responses API
        request = {"model": model, "instructions": system, "input": question}
        response = None if failed else {"id": "resp_x", "object": "response", "model": model, "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}]}
        return from_responses(request, response, **known)
    role = "developer" if product == "hr" else "system"
    request = {"model": model, "messages": [{"role": role, "content": system}, {"role": "user", "content": question}]}
    response = None if failed else {"id": "chatcmpl-x", "object": "chat.completion", "model": model, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}
    return from_chat(request, response, **known)


def three_products(seed: int = 0) -> list[Record]:
    """Records of three products (160 shop, 110 travel, 80 HR requests, about 7% of them
    near-duplicate repeats), interleaved in time over November 2026. Errors (status 500) hit
    about 4% of requests; negative feedback (-1) hits about 45% of each product's ``failing``
    intent and 3% of the others; some records get positive feedback (1)."""
    rng = random.Random(seed)
    plan = [(p, i) for p, spec in PRODUCTS.items() for i in range(spec["count"])]
    rng.shuffle(plan)
    records: list[Record] = []
    asked: dict[str, list[set[str]]] = {p: [] for p in PRODUCTS}  # the words of each product's questions
    start = 1_793_491_200.0  # 2026-11-01
    for n, (product, _) in enumerate(plan):
        spec = PRODUCTS[product]
        values = _variables(rng)
        system = spec["system"].format(**values)
        twin = None
        if records and rng.random() < 0.07:  # repeat an earlier question of this product, trivially changed
            earlier = [i for i, r in enumerate(records) if r.metadata["truth"]["product"] == product
                       and r.metadata["truth"]["near_dup_of"] is None]
            if earlier:
                twin = rng.choice(earlier)
        if twin is not None:
            intent = records[twin].metadata["truth"]["intent"]
            question = rng.choice(_NOISE)(records[twin].messages[-1]["content"])
        else:
            intent, question = _fresh_question(spec, rng, asked[product])
        failing = intent == spec["failing"]
        answer = None if rng.random() < 0.04 else f"Thanks for asking. Here is what I found about: {question[:40]}"
        record = _record(product, system, question, answer, rng, start + n * 3600 * 0.2)
        record.metadata["truth"] = {"product": product, "intent": intent, "near_dup_of": twin}
        if answer is not None and rng.random() < (0.45 if failing else 0.03):
            record.feedback = -1.0
        elif answer is not None and rng.random() < 0.1:
            record.feedback = 1.0
        records.append(record)
    return records


def _fresh_question(spec: dict[str, Any], rng: random.Random, asked: list[set[str]]) -> tuple[str, str]:
    """A question unlike every earlier one of the product: under 7/10 of its words shared
    (so only the planted repeats are near duplicates)."""
    for _ in range(5000):
        intent = rng.choice(sorted(spec["intents"]))
        question = rng.choice(spec["intents"][intent]).format(**_variables(rng))
        words = set(question.lower().replace("?", " ").replace(",", " ").replace(".", " ").split())
        if all(len(words & other) / len(words | other) < 0.7 for other in asked):
            asked.append(words)
            return intent, question
    raise RuntimeError(f"too few question templates for {len(asked) + 1} distinct questions of "
                       f"{sorted(spec['intents'])}")
