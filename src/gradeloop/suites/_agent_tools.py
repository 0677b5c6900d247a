"""Tools of gradeloop's built-in agents suite (`gradeloop suite agents build`): an order desk and a calendar.

Each public function is one function tool: ``tool(state, **arguments)`` reads and changes the
episode state (a dict, the item's ``state``) and returns the result the model sees. A bad
argument (an unknown id, a malformed date) raises ValueError, which the runner reports to the
model as an error result. The tools check validity only; the policy in the system prompt
(refund windows, no double-booking, confirmation before cancelling) is the agent's job, so a
policy breach changes the state and the end-state check catches it. Standard library only.
"""

import copy
import datetime


def _need(state, env):
    if state.get("env") != env:
        raise ValueError(f"this tool belongs to the {env.replace('_', ' ')}; this conversation is about the "
                         f"{str(state.get('env', 'unknown')).replace('_', ' ')}")


def _text(value, name):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return " ".join(value.split())


def _order(state, order_id):
    """``(id, order)``; the id with surrounding spaces removed."""
    _need(state, "order_desk")
    key = _text(order_id, "order_id")
    if key not in state["orders"]:
        raise ValueError(f"no order {order_id!r}")
    return key, state["orders"][key]


def _total(order):
    return round(sum(line["price"] * line["qty"] for line in order["items"]), 2)


def ask_user(state, question):
    """Ask the customer or user a question; returns their reply."""
    _text(question, "question")
    return state.get("user_reply", "I have nothing to add.")


def get_customer(state, email):
    """The customer with this email: id, name and order ids."""
    _need(state, "order_desk")
    wanted = _text(email, "email").lower()
    for customer_id, customer in state["customers"].items():
        if customer["email"].lower() == wanted:
            orders = sorted(k for k, o in state["orders"].items() if o["customer_id"] == customer_id)
            return {"customer_id": customer_id, "name": customer["name"], "email": customer["email"],
                    "order_ids": orders}
    raise ValueError(f"no customer with email {email!r}")


def list_orders(state, customer_id):
    """A customer's orders, one line each: id, status, placed date and total."""
    _need(state, "order_desk")
    key = _text(customer_id, "customer_id")
    if key not in state["customers"]:
        raise ValueError(f"no customer {customer_id!r}")
    return [{"order_id": k, "status": o["status"], "placed": o["placed"], "total": _total(o)}
            for k, o in sorted(state["orders"].items()) if o["customer_id"] == key]


def get_order(state, order_id):
    """One order in full: status, dates, address, lines (sku, name, qty, price, refunded) and total."""
    key, order = _order(state, order_id)
    return {"order_id": key, **copy.deepcopy(order), "total": _total(order)}


def cancel_order(state, order_id):
    """Cancel an order that has not shipped; returns the new status."""
    key, order = _order(state, order_id)
    if order["status"] == "cancelled":
        raise ValueError(f"order {key} is already cancelled")
    order["status"] = "cancelled"
    return {"order_id": key, "status": "cancelled"}


def update_address(state, order_id, address):
    """Change an order's shipping address; returns the order id and the address stored."""
    key, order = _order(state, order_id)
    order["address"] = _text(address, "address")
    return {"order_id": key, "address": order["address"]}


def refund_item(state, order_id, sku):
    """Refund one line of an order in full (price × quantity); returns the amount refunded."""
    key, order = _order(state, order_id)
    if order["status"] == "cancelled":
        raise ValueError(f"order {key} is cancelled; there is nothing to refund")
    line = next((x for x in order["items"] if x["sku"] == _text(sku, "sku")), None)
    if line is None:
        raise ValueError(f"order {key} has no item {sku!r}")
    if line["refunded"]:
        raise ValueError(f"item {line['sku']} of order {key} is already refunded")
    line["refunded"] = True
    amount = round(line["price"] * line["qty"], 2)
    state["refunds"].append({"order_id": key, "sku": line["sku"], "amount": amount})
    return {"order_id": key, "sku": line["sku"], "amount": amount}


def transfer_to_human(state, summary):
    """Hand the conversation to a human agent (ends the episode)."""
    _need(state, "order_desk")
    _text(summary, "summary")
    state["escalated"] = True
    return "Transferred to a human agent."


def _date(value, name="date"):
    try:
        return datetime.date.fromisoformat(_text(value, name))
    except ValueError:
        raise ValueError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def _minutes(value, name="start"):
    text = _text(value, name)
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 23 or int(parts[1]) > 59:
        raise ValueError(f"{name} must be a time as HH:MM (24-hour), not {value!r}")
    return int(parts[0]) * 60 + int(parts[1])


def _clock(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _meeting(state, meeting_id):
    """``(id, meeting)``; the id with surrounding spaces removed."""
    _need(state, "calendar")
    key = _text(meeting_id, "meeting_id")
    if key not in state["meetings"]:
        raise ValueError(f"no meeting {meeting_id!r}")
    return key, state["meetings"][key]


def _duration(value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 15 <= value <= 480 or value % 15:
        raise ValueError("duration_minutes must be a whole number of minutes, a multiple of 15 from 15 to 480")
    return value


def lookup_person(state, name):
    """People whose name contains ``name`` (case-insensitive): name and email."""
    _need(state, "calendar")
    wanted = _text(name, "name").lower()
    return [{"name": p["name"], "email": email} for email, p in sorted(state["people"].items())
            if wanted in p["name"].lower()]


def list_meetings(state, date):
    """The meetings on a date, in time order: id, title, start, end, attendees."""
    _need(state, "calendar")
    day = _date(date).isoformat()
    found = [{"meeting_id": k, **copy.deepcopy(m)} for k, m in state["meetings"].items() if m["date"] == day]
    return sorted(found, key=lambda m: (m["start"], m["meeting_id"]))


def get_meeting(state, meeting_id):
    """One meeting in full."""
    key, meeting = _meeting(state, meeting_id)
    return {"meeting_id": key, **copy.deepcopy(meeting)}


def find_free_slots(state, date, duration_minutes):
    """Start times on the half hour between 09:00 and 17:00 on ``date`` where a meeting of that length
    overlaps nothing on the calendar."""
    _need(state, "calendar")
    day, length = _date(date).isoformat(), _duration(duration_minutes)
    busy = [(_minutes(m["start"]), _minutes(m["end"])) for m in state["meetings"].values() if m["date"] == day]
    return [_clock(t) for t in range(9 * 60, 17 * 60 - length + 1, 30)
            if all(t + length <= a or t >= b for a, b in busy)]


def _attendees(state, attendees):
    if not isinstance(attendees, list):
        raise ValueError("attendees must be a list of email addresses")
    emails = sorted({_text(a, "attendee").lower() for a in attendees})
    unknown = [e for e in emails if e not in state["people"]]
    if unknown:
        raise ValueError(f"unknown attendee {unknown[0]!r} (use the email lookup_person returns)")
    return emails


def create_meeting(state, title, date, start, duration_minutes, attendees):
    """Put a meeting on the calendar; returns its id and times."""
    _need(state, "calendar")
    begin, length = _minutes(start), _duration(duration_minutes)
    if begin + length > 24 * 60:
        raise ValueError("the meeting must end on the day it starts")
    meeting = {"title": _text(title, "title"), "date": _date(date).isoformat(), "start": _clock(begin),
               "end": _clock(begin + length), "attendees": _attendees(state, attendees)}
    meeting_id = f"M-{state['next_id']}"
    state["next_id"] += 1
    state["meetings"][meeting_id] = meeting
    return {"meeting_id": meeting_id, **copy.deepcopy(state["meetings"][meeting_id])}


def reschedule_meeting(state, meeting_id, date, start):
    """Move a meeting to another date and start time, keeping its length; returns the new times."""
    key, meeting = _meeting(state, meeting_id)
    length = _minutes(meeting["end"]) - _minutes(meeting["start"])
    begin, day = _minutes(start), _date(date).isoformat()
    if begin + length > 24 * 60:
        raise ValueError("the meeting must end on the day it starts")
    meeting.update(date=day, start=_clock(begin), end=_clock(begin + length))
    return {"meeting_id": key, **copy.deepcopy(meeting)}


def cancel_meeting(state, meeting_id):
    """Remove a meeting from the calendar."""
    key, _ = _meeting(state, meeting_id)
    del state["meetings"][key]
    return {"meeting_id": key, "cancelled": True}
