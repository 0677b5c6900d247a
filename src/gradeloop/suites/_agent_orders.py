"""The order desk of the agents suite: customers and orders, a refund and cancellation policy, and
seven tools (plus ``ask_user``). ``task`` draws one task with its expected end state, written
here from what the task asks (not by running the tools), so a test that replays the reference
calls through the tools checks the two against each other."""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

KINDS = ("cancel", "refund", "address", "refund_late", "cancel_shipped", "escalate")
AMBIGUOUS = ("cancel", "refund", "address")
WRITES = ("cancel_order", "update_address", "refund_item", "transfer_to_human")
FINAL_TOOLS = ("transfer_to_human",)

POLICY = """You are the support agent of the Northwind Supplies order desk. Today is {today}.

Policy:
1. Identify the customer by email (get_customer) and act only on that customer's own orders.
2. Cancel an order only while its status is "processing", and only once the customer has clearly
   confirmed that they want it cancelled.
3. Change a shipping address only while the order is "processing".
4. Refund only items of delivered orders, within 30 days of the delivery date; a refund is the
   whole line (refund_item).
5. When the customer wants something your tools cannot do, hand over with transfer_to_human.
6. When a detail you need is missing (which item, the new address, a confirmation), ask with
   ask_user instead of guessing; when the request already says everything, do not ask.
7. When the policy forbids a request, change nothing and tell the customer why."""


def tool_schema(name: str, description: str, /, **params: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool whose parameters are all required strings, numbers or lists as given."""
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": params, "required": list(params),
                       "additionalProperties": False}}}


_ORDER_ID = {"type": "string", "description": "The order id, e.g. O-4821."}
TOOLS = [
    tool_schema("get_customer", "Look up a customer by email: id, name and order ids.",
        email={"type": "string", "description": "The customer's email address."}),
    tool_schema("list_orders", "A customer's orders: id, status, placed date and total.",
        customer_id={"type": "string", "description": "The customer id, e.g. C-104."}),
    tool_schema("get_order", "One order in full: status, placed and delivered dates, address, items (sku, name, "
        "qty, price, refunded) and total.", order_id=_ORDER_ID),
    tool_schema("cancel_order", "Cancel an order.", order_id=_ORDER_ID),
    tool_schema("update_address", "Change the shipping address of an order.", order_id=_ORDER_ID,
        address={"type": "string", "description": "The new address, as the customer gave it."}),
    tool_schema("refund_item", "Refund one item (order line) of an order in full.", order_id=_ORDER_ID,
        sku={"type": "string", "description": "The item's sku, e.g. SKU-310."}),
    tool_schema("transfer_to_human", "Hand the conversation to a human agent; ends the conversation.",
        summary={"type": "string", "description": "What the customer needs, for the human agent."}),
]

_FIRST = ("Dana", "Marco", "Priya", "Tomas", "Aisha", "Jonas", "Mei", "Lucas", "Sofia", "Ravi", "Elena", "Kofi",
          "Hana", "Oskar", "Leila", "Mateo", "Ines", "Yusuf", "Clara", "Noah")
_LAST = ("Ortiz", "Berg", "Nair", "Novak", "Mensah", "Keller", "Tanaka", "Silva", "Rossi", "Haddad", "Walsh",
         "Kowalski", "Larsen", "Okafor", "Dubois", "Moreno")
_PRODUCTS = (("wireless mouse", 24.99), ("USB-C hub", 39.5), ("desk lamp", 32.0), ("mechanical keyboard", 89.0),
             ("laptop stand", 45.25), ("noise-cancelling headphones", 129.99), ("webcam", 54.9),
             ("monitor arm", 74.0), ("ergonomic chair cushion", 29.95), ("cable organizer", 12.5),
             ("portable SSD", 99.0), ("bluetooth speaker", 59.99), ("phone charger", 19.99), ("notebook set", 9.75))
_STREETS = ("Alder Street", "Birch Lane", "Canal Road", "Dover Avenue", "Elm Court", "Fountain Way", "Granite Row",
            "Harbor View", "Iris Terrace", "Juniper Drive")
_CITIES = ("Springfield 01105", "Riverton 82501", "Lakewood 44107", "Fairview 97024", "Greenville 29601",
           "Maplewood 07040", "Brookside 19803", "Ashford 06278")
_COLOURS = ("black", "white", "grey", "blue", "green", "red")
STATUSES = ("processing", "shipped", "delivered")


def _day(today: datetime.date, back: int) -> str:
    return (today - datetime.timedelta(days=back)).isoformat()


def _address(rng: random.Random) -> str:
    return f"{rng.randrange(2, 400)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}"


def _order(rng: random.Random, customer_id: str, skus: list[str], today: datetime.date, status: str,
           lines: int, delivered_back: int | None = None) -> dict[str, Any]:
    """An order with ``lines`` distinct products; dates fit ``status`` (``delivered_back``: days since
    delivery, drawn when not given)."""
    if status == "delivered":
        delivered_back = rng.randrange(1, 60) if delivered_back is None else delivered_back
        placed_back, delivered = delivered_back + rng.randrange(2, 6), _day(today, delivered_back)
    else:
        placed_back, delivered = rng.randrange(1, 5) if status == "processing" else rng.randrange(3, 8), None
    products = rng.sample(range(len(_PRODUCTS)), lines)
    items = [{"sku": skus.pop(), "name": _PRODUCTS[p][0], "qty": rng.choice((1, 1, 2)), "price": _PRODUCTS[p][1],
              "refunded": False} for p in products]
    return {"customer_id": customer_id, "status": status, "placed": _day(today, placed_back), "delivered": delivered,
            "address": _address(rng), "items": items}


def _world(rng: random.Random, today: datetime.date) -> dict[str, Any]:
    """Three customers with two or three orders each (statuses at random), no refunds yet."""
    firsts, lasts = rng.sample(_FIRST, 3), rng.sample(_LAST, 3)
    customer_ids = [f"C-{n}" for n in rng.sample(range(100, 1000), 3)]
    order_ids = [f"O-{n}" for n in rng.sample(range(1000, 10000), 12)]
    skus = [f"SKU-{n}" for n in rng.sample(range(100, 1000), 40)]
    customers = {cid: {"name": f"{f} {l}", "email": f"{f.lower()}.{l.lower()}@example.com"}
                 for cid, f, l in zip(customer_ids, firsts, lasts)}
    orders = {}
    for cid in customer_ids:
        for _ in range(rng.randrange(2, 4)):
            orders[order_ids.pop()] = _order(rng, cid, skus, today, rng.choice(STATUSES), rng.randrange(1, 4))
    return {"env": "order_desk", "today": today.isoformat(), "customers": customers, "orders": orders,
            "refunds": [], "escalated": False, "_spare": {"order_ids": order_ids, "skus": skus}}


_TARGET = {  # kind -> (status, lines, days since delivery or None)
    "cancel": ("processing", (1, 3), None), "cancel_shipped": ("shipped", (1, 3), None),
    "address": ("processing", (1, 3), None), "refund": ("delivered", (2, 4), (1, 28)),
    "refund_late": ("delivered", (1, 4), (35, 90)), "escalate": ("delivered", (1, 3), (1, 20)),
}


def _target(rng: random.Random, state: dict[str, Any], kind: str) -> tuple[str, str]:
    """Add the order the task is about to a customer drawn at random; returns (customer id, order id)."""
    status, lines, back = _TARGET[kind]
    customer_id = rng.choice(sorted(state["customers"]))
    spare = state.pop("_spare")
    order_id = spare["order_ids"].pop()
    delivered_back = rng.randrange(*back) if back else None
    state["orders"][order_id] = _order(rng, customer_id, spare["skus"], datetime.date.fromisoformat(state["today"]),
                                       status, rng.randrange(*lines), delivered_back)
    state["orders"] = dict(sorted(state["orders"].items()))
    return customer_id, order_id


def _call(name: str, /, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


_PLAIN_REPLY = "My first message has everything you need."
_Drawn = tuple[str, str | None, dict[str, Any], str]  # request, ask_user's reply, the write call, goal


def task(rng: random.Random, kind: str, ambiguous: bool, today: datetime.date) -> dict[str, Any]:
    """One order-desk task: ``state`` (its ``user_reply`` is what ``ask_user`` returns),
    ``request`` (the customer's first message), ``expected_state``, ``reference_calls``,
    ``forbidden_calls``, ``no_change`` and ``goal`` (the request in a sentence, for a simulated user)."""
    state = _world(rng, today)
    customer_id, order_id = _target(rng, state, kind)
    customer = state["customers"][customer_id]
    expected = copy.deepcopy(state)
    make = {"cancel": _cancel, "cancel_shipped": _cancel, "refund": _refund, "refund_late": _refund,
            "address": _move, "escalate": _escalate}[kind]
    request, reply, write, goal = make(rng, order_id, state["orders"][order_id], expected, kind, ambiguous)
    no_change = kind in ("refund_late", "cancel_shipped")
    calls = [_call("get_customer", email=customer["email"]), _call("get_order", order_id=order_id)]
    calls += [] if no_change else [write]
    if ambiguous:
        calls.insert(0, _call("ask_user", question=_QUESTIONS[kind]))
    state["user_reply"] = expected["user_reply"] = reply or _PLAIN_REPLY
    return {"state": state, "expected_state": expected, "no_change": no_change,
            "request": f"Hi, this is {customer['name']} ({customer['email']}). {request}", "goal": goal,
            "reference_calls": calls, "forbidden_calls": [write] if no_change else []}


def _cancel(rng: random.Random, order_id: str, order: dict, expected: dict, kind: str, ambiguous: bool) -> _Drawn:
    if kind == "cancel":
        expected["orders"][order_id]["status"] = "cancelled"
    write, goal = _call("cancel_order", order_id=order_id), f"cancel order {order_id}"
    if ambiguous:
        return (f"Order {order_id} is taking a while and I am wondering whether to cancel it.",
                "Yes, I'm sure: please cancel it.", write, goal)
    return f"Please cancel order {order_id}, I no longer need it. Yes, I'm sure.", None, write, goal


def _refund(rng: random.Random, order_id: str, order: dict, expected: dict, kind: str, ambiguous: bool) -> _Drawn:
    line = rng.choice(order["items"])
    if kind == "refund":
        next(x for x in expected["orders"][order_id]["items"] if x["sku"] == line["sku"])["refunded"] = True
        expected["refunds"].append({"order_id": order_id, "sku": line["sku"],
                                    "amount": round(line["price"] * line["qty"], 2)})
    write = _call("refund_item", order_id=order_id, sku=line["sku"])
    goal = f"a refund for the {line['name']} of order {order_id}"
    if ambiguous:
        return (f"One of the things in order {order_id} arrived broken; I'd like a refund for it.",
                f"It's the {line['name']}.", write, goal)
    return f"The {line['name']} from order {order_id} arrived broken. Please refund it.", None, write, goal


def _move(rng: random.Random, order_id: str, order: dict, expected: dict, kind: str, ambiguous: bool) -> _Drawn:
    address = _address(rng)
    expected["orders"][order_id]["address"] = address
    write, goal = _call("update_address", order_id=order_id, address=address), f"ship order {order_id} to {address}"
    if ambiguous:
        return (f"I'm moving soon, so order {order_id} has to go to my new address.",
                f"The new address is {address}.", write, goal)
    return f"I'm moving: please ship order {order_id} to {address} instead.", None, write, goal


def _escalate(rng: random.Random, order_id: str, order: dict, expected: dict, kind: str, ambiguous: bool) -> _Drawn:
    """No tool exchanges an item: the right move is a human."""
    line, colour = rng.choice(order["items"]), rng.choice(_COLOURS)
    expected["escalated"] = True
    wish = f"the {line['name']} in order {order_id} for a {colour} one"
    write = _call("transfer_to_human", summary=f"Customer {order['customer_id']} wants to exchange {wish}.")
    return f"Could you exchange {wish}?", None, write, f"exchange {wish}"


_QUESTIONS = {"cancel": "Do you want me to cancel the order? Please confirm.",
              "refund": "Which item of the order arrived broken?",
              "address": "What is the new shipping address?"}
