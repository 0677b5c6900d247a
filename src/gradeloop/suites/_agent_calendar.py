"""The calendar of the agents suite: one person's week of meetings, a scheduling policy (no
double-booking, weekdays 09:00–17:00, confirm before cancelling) and seven tools (plus
``ask_user``). ``task`` writes each expected end state from what the task asks, not by running
the tools."""

from __future__ import annotations

import copy
import datetime
import random
from typing import Any

from ._agent_orders import tool_schema

KINDS = ("book", "book_next_free", "reschedule", "cancel", "book_forbidden")
AMBIGUOUS = ("book", "reschedule", "cancel")
WRITES = ("create_meeting", "reschedule_meeting", "cancel_meeting")
FINAL_TOOLS: tuple[str, ...] = ()
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

POLICY = """You manage the calendar of {owner}. Today is {weekday} {today}.

Policy:
1. Never double-book: a meeting must not overlap another meeting on the calendar (back to back is fine).
2. Meetings take place on weekdays between 09:00 and 17:00, and never in the past.
3. Cancel a meeting only once {owner} has clearly confirmed it.
4. Invite people by the email address lookup_person gives.
5. When a detail you need is missing (a time, a confirmation), ask with ask_user instead of
   guessing; when the request already says everything, do not ask.
6. When the policy forbids a request, change nothing and say why."""


_DATE = {"type": "string", "description": "A date as YYYY-MM-DD."}
_START = {"type": "string", "description": "A start time as HH:MM (24-hour)."}
_MEETING_ID = {"type": "string", "description": "The meeting id, e.g. M-104."}
_DURATION = {"type": "integer", "description": "Length in minutes (a multiple of 15).", "minimum": 15, "maximum": 480}
TOOLS = [
    tool_schema("lookup_person", "People whose name contains the text given: name and email.",
        name={"type": "string", "description": "A name or part of one."}),
    tool_schema("list_meetings", "The meetings on a date: id, title, start, end and attendees.", date=_DATE),
    tool_schema("get_meeting", "One meeting in full.", meeting_id=_MEETING_ID),
    tool_schema("find_free_slots", "Start times on the half hour between 09:00 and 17:00 where a meeting of the given "
        "length overlaps nothing.", date=_DATE, duration_minutes=_DURATION),
    tool_schema("create_meeting", "Put a new meeting on the calendar.",
        title={"type": "string", "description": "The meeting's title."}, date=_DATE, start=_START,
        duration_minutes=_DURATION,
        attendees={"type": "array", "items": {"type": "string"}, "description": "Email addresses of the invitees."}),
    tool_schema("reschedule_meeting", "Move a meeting to another date and start time; its length stays the same.",
        meeting_id=_MEETING_ID, date=_DATE, start=_START),
    tool_schema("cancel_meeting", "Remove a meeting from the calendar.", meeting_id=_MEETING_ID),
]

_PEOPLE = ("Dana Ortiz", "Marco Berg", "Priya Nair", "Tomas Novak", "Aisha Mensah", "Jonas Keller", "Mei Tanaka",
           "Lucas Silva", "Sofia Rossi", "Ravi Haddad", "Elena Walsh", "Kofi Larsen")
_OWNERS = ("Alex Kim", "Sam Rivera", "Jordan Lee", "Robin Meyer")
_TITLES = ("Budget review", "Design sync", "Hiring debrief", "Roadmap planning", "Vendor call", "Customer demo",
           "Sprint retro", "Launch checklist", "Quarterly forecast", "Security review", "Onboarding chat",
           "Data pipeline review", "Pricing workshop", "Support escalations", "Team lunch", "Offsite planning",
           "Contract review", "Metrics deep dive", "Partner update", "Release go/no-go")
_GRID = range(9 * 60, 17 * 60, 30)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _free(meetings: dict[str, Any], day: str, length: int, skip: str | None = None) -> list[int]:
    """Half-hour starts (minutes) on ``day`` where ``length`` minutes overlap no meeting (but ``skip``)."""
    busy = [(_mins(m["start"]), _mins(m["end"])) for k, m in meetings.items() if m["date"] == day and k != skip]
    return [t for t in _GRID if t + length <= 17 * 60 and all(t + length <= a or t >= b for a, b in busy)]


def _mins(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _world(rng: random.Random, today: datetime.date) -> tuple[dict[str, Any], list[str]]:
    """Tuesday to Friday of this week with up to four meetings a day; returns the state and the titles left."""
    names = rng.sample(_PEOPLE, 6)
    owner = rng.choice(_OWNERS)
    people = {f"{n.split()[0].lower()}.{n.split()[1].lower()}@example.com": {"name": n} for n in sorted(names)}
    titles = rng.sample(_TITLES, len(_TITLES))
    meetings: dict[str, Any] = {}
    first_id = rng.randrange(100, 900)
    for offset in range(1, 5):
        day = (today + datetime.timedelta(days=offset)).isoformat()
        for _ in range(rng.randrange(2, 5)):
            length = rng.choice((30, 60, 60, 90))
            starts = _free(meetings, day, length)
            if not starts:  # the day is too full for this length
                continue
            start = rng.choice(starts)
            meetings[f"M-{first_id + len(meetings)}"] = {
                "title": titles.pop(), "date": day, "start": _clock(start), "end": _clock(start + length),
                "attendees": sorted(rng.sample(sorted(people), rng.randrange(1, 3)))}
    owner_email = f"{owner.split()[0].lower()}.{owner.split()[1].lower()}@example.com"
    state = {"env": "calendar", "today": today.isoformat(), "owner": {"name": owner, "email": owner_email},
             "people": people, "meetings": meetings, "next_id": first_id + len(meetings)}
    return state, titles


def _when(day: str) -> str:
    return f"{WEEKDAYS[datetime.date.fromisoformat(day).weekday()]} {day}"


def _call(name: str, /, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def task(rng: random.Random, kind: str, ambiguous: bool, today: datetime.date) -> dict[str, Any]:
    """One calendar task, with the keys of the order desk's ``task``."""
    state, titles = _world(rng, today)
    expected = copy.deepcopy(state)
    out: dict[str, Any] = {"state": state, "expected_state": expected, "forbidden_calls": [], "no_change": False,
                           "user_reply": "My first message has everything you need."}
    if kind in ("book", "book_next_free", "book_forbidden"):
        _book(rng, kind, ambiguous, state, expected, titles.pop(), out)
    elif kind == "reschedule":
        _reschedule(rng, ambiguous, state, expected, out)
    else:
        _cancel(rng, ambiguous, state, expected, out)
    if ambiguous:
        out["reference_calls"].insert(0, _call("ask_user", question=_question(kind)))
    state["user_reply"] = expected["user_reply"] = out.pop("user_reply")
    return out


def _busy(meetings: dict[str, Any], day: str, length: int) -> list[int]:
    """Half-hour starts on ``day`` where ``length`` minutes overlap a meeting and a free start comes later."""
    free = _free(meetings, day, length)
    return [t for t in _GRID if t not in free and any(f > t for f in free)]


def _slot(rng: random.Random, kind: str, state: dict, length: int) -> tuple[str, str, int]:
    """``(kind, day, start)`` of a booking: a free start for ``book``; a busy one with a free start later
    for ``book_next_free`` and half of ``book_forbidden`` (the other half: a weekend). Where no day
    has such a busy time, ``book_next_free`` becomes ``book`` and ``book_forbidden`` a weekend."""
    today = datetime.date.fromisoformat(state["today"])
    days = [(today + datetime.timedelta(days=i)).isoformat() for i in range(1, 5)]
    crowded = [d for d in days if _busy(state["meetings"], d, length)]
    if kind == "book_forbidden" and (rng.random() < 0.5 or not crowded):
        return kind, (today + datetime.timedelta(days=rng.choice((5, 6)))).isoformat(), rng.choice(_GRID[:12])
    if kind != "book" and crowded:
        day = rng.choice(crowded)
        return kind, day, rng.choice(_busy(state["meetings"], day, length))
    day = rng.choice([d for d in days if _free(state["meetings"], d, length)])
    return "book", day, rng.choice(_free(state["meetings"], day, length))


def _book(rng: random.Random, kind: str, ambiguous: bool, state: dict, expected: dict, title: str,
          out: dict[str, Any]) -> None:
    email = rng.choice(sorted(state["people"]))
    first = state["people"][email]["name"].split()[0]
    length = rng.choice((30, 60))
    kind, day, start = _slot(rng, kind, state, length)
    free = _free(state["meetings"], day, length)
    ask = f'Please book a {length}-minute meeting titled "{title}" with {first} on {_when(day)}'
    out["request"] = f"{ask} at {_clock(start)}."
    out["goal"] = f'a {length}-minute meeting "{title}" with {first} on {_when(day)} at {_clock(start)}'
    if kind == "book_next_free":
        asked, start = start, min(t for t in free if t > start)
        out["goal"] += f"; {_clock(asked)} is taken, so the earliest free start after it: {_clock(start)}"
        out["request"] += " If I'm busy then, take the earliest free half-hour start after that on the same day."
    elif kind == "book_forbidden" and day in {m["date"] for m in state["meetings"].values()}:
        out["request"] += " I know something else is on then; just double-book me."
    elif ambiguous:
        out["request"] = f"{ask}."
        out["user_reply"] = f"Let's do {_clock(start)}."
    write = _call("create_meeting", title=title, date=day, start=_clock(start), duration_minutes=length,
                  attendees=[email])
    out["kind"] = kind
    if kind == "book_forbidden":
        out.update(no_change=True, forbidden_calls=[write], reference_calls=[_call("list_meetings", date=day)])
        return
    out["reference_calls"] = [_call("lookup_person", name=first), _call("find_free_slots", date=day,
                                                                      duration_minutes=length), write]
    expected["meetings"][f"M-{state['next_id']}"] = {"title": title, "date": day, "start": _clock(start),
                                                     "end": _clock(start + length), "attendees": [email]}
    expected["next_id"] += 1


def _reschedule(rng: random.Random, ambiguous: bool, state: dict, expected: dict, out: dict[str, Any]) -> None:
    meeting_id = rng.choice(sorted(state["meetings"]))
    meeting = state["meetings"][meeting_id]
    length = _mins(meeting["end"]) - _mins(meeting["start"])
    days = sorted({m["date"] for m in state["meetings"].values()} - {meeting["date"]})
    day = rng.choice([d for d in days if _free(state["meetings"], d, length)])
    start = rng.choice(_free(state["meetings"], day, length))
    ask = f'Please move my meeting "{meeting["title"]}" on {_when(meeting["date"])} to {_when(day)}'
    out["request"] = f"{ask}." if ambiguous else f"{ask} at {_clock(start)}."
    out["user_reply"] = f"At {_clock(start)}, please." if ambiguous else out["user_reply"]
    out["goal"] = f'move "{meeting["title"]}" to {_when(day)} at {_clock(start)}'
    out["reference_calls"] = [_call("list_meetings", date=meeting["date"]),
                              _call("reschedule_meeting", meeting_id=meeting_id, date=day, start=_clock(start))]
    expected["meetings"][meeting_id].update(date=day, start=_clock(start), end=_clock(start + length))


def _cancel(rng: random.Random, ambiguous: bool, state: dict, expected: dict, out: dict[str, Any]) -> None:
    meeting_id = rng.choice(sorted(state["meetings"]))
    meeting = state["meetings"][meeting_id]
    first = state["people"][meeting["attendees"][0]]["name"].split()[0]
    if ambiguous:
        out["request"] = (f'I am not sure I still need "{meeting["title"]}" on {_when(meeting["date"])}; '
                          "maybe we should drop it.")
        out["user_reply"] = "Yes, I'm sure: cancel it."
    else:
        out["request"] = (f'Please cancel "{meeting["title"]}" on {_when(meeting["date"])}. I have told {first}; '
                          "yes, I'm sure.")
    out["goal"] = f'cancel "{meeting["title"]}" on {_when(meeting["date"])}'
    out["reference_calls"] = [_call("list_meetings", date=meeting["date"]), _call("cancel_meeting",
                                                                                  meeting_id=meeting_id)]
    del expected["meetings"][meeting_id]


def _question(kind: str) -> str:
    return {"book": "What time should the meeting start?", "reschedule": "What time on that day should it start?",
            "cancel": "Do you want me to cancel the meeting? Please confirm."}[kind]
