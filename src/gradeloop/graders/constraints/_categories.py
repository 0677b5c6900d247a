"""Constraints for the six instruction-following categories of real API use (ids ``api:…``).

GPT-4.1's announcement sorts the instructions developers put in system prompts into format
following, negative instructions, ordered instructions, content requirements, ranking and
overconfidence. Each constraint here makes one of them checkable without a judge model:

- ``api:format_xml`` / ``api:format_yaml`` / ``api:format_markdown_table``: the reply parses
  (``xml.etree``, ``yaml.safe_load``, a Markdown table found by its header and ``|---|`` row)
  and has the named fields;
- ``api:avoid_phrases``: none of a named phrase set (``contact_support``, ``apology``,
  ``refund_promise``; see :data:`FORBIDDEN_PHRASES`); ``api:avoid_names``: none of the names;
- ``api:ordered_steps``: the reply asks for the next detail of an ordered intake, judged from
  the assistant turns already in ``item["messages"]``, and for none of the later ones;
- ``api:state_amount``: a number with its unit next to the quantity (``18 g protein``);
- ``api:ranked_order``: the entities of ``item["expected"]["order"]`` appear in that order
  (and ``item["expected"]["exclude"]`` not at all);
- ``api:fallback_if_unknown``: when ``item["expected"]["answerable"]`` is false the reply is
  exactly the fallback; when true it is not the fallback and contains an
  ``item["expected"]["answer"]``.

Strictness is written down in docs/if-categories.md. Everything is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import Constraint, register_constraint

__all__ = [
    "FORBIDDEN_PHRASES",
    "QUANTITIES",
    "STEPS",
    "amounts",
    "entities_in_order",
    "markdown_tables",
    "unfence",
]

_FIELD = r"^[A-Za-z_][\w.-]*$"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------ shared text


_FENCE = re.compile(r"\A```[\w+.-]*[ \t]*\n(.*?)\n?[ \t]*```\Z", re.S)


def unfence(text: str) -> str:
    """``text`` stripped, without one code fence wrapped around all of it (```` ```yaml ````)."""
    stripped = text.strip()
    match = _FENCE.match(stripped)
    return match.group(1) if match else stripped


def _join(names: list[str], word: str = "and", wrap: str = "") -> str:
    """``a, b and c`` (each name wrapped: ``<a>`` when ``wrap`` is ``"<>"``)."""
    left, right = (wrap[0], wrap[1]) if len(wrap) == 2 else (wrap, wrap)
    shown = [f"{left}{n}{right}" for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + f" {word} {shown[-1]}"


def _listed(fragment: str) -> list[str]:
    """Names listed in ``fragment`` (``a, b and c``; quotes, backticks and <> removed), up to
    the end of its sentence."""
    fragment = re.split(r"[.;](?:\s|$)|\n", fragment, maxsplit=1)[0]
    fragment = re.sub(r"\([^)]*\)", "", fragment)
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+", fragment)
    names = [p.strip().strip("`'\"<>/*").strip() for p in parts]
    return [n for n in names if n and len(n.split()) <= 3]


def _sentences_with(text: str, pattern: str) -> list[str]:
    """The lines/sentences of ``text`` that match ``pattern`` (case-insensitive)."""
    chunks = re.split(r"\n+|(?<=[.!?])\s+(?=[A-Z])", text)
    return [c for c in chunks if re.search(pattern, c, re.I)]


# ---------------------------------------------------------------------------------- format


class XmlParams(_Params):
    """``root`` element; ``fields`` each present with a value; with ``record``, every
    ``<record>`` child of the root holds every field."""

    root: str = Field(pattern=_FIELD)
    fields: list[str] = Field(min_length=1)
    record: str | None = Field(default=None, pattern=_FIELD)


def _xml_has(element: Any, name: str) -> bool:
    if (element.get(name) or "").strip():
        return True
    return any((e.text or "").strip() or len(e) for e in element.iter(name) if e is not element)


@register_constraint
class XmlFormat(Constraint):
    """The reply is one XML document (a code fence around it is tolerated) with named fields."""

    id = "api:format_xml"
    Params = XmlParams
    phrasings = 2

    def check(self, response: str, params: XmlParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        from xml.etree import ElementTree

        try:
            root = ElementTree.fromstring(unfence(response))
        except ElementTree.ParseError as exc:
            return False, f"not one well-formed XML document ({exc})"
        if root.tag != params.root:
            return False, f"the root element is <{root.tag}>, not <{params.root}>"
        holders = [root] if params.record is None else root.findall(params.record)
        if not holders:
            return False, f"<{params.root}> has no <{params.record}> child"
        for n, holder in enumerate(holders, 1):
            missing = [f for f in params.fields if not _xml_has(holder, f)]
            if missing:
                where = f"<{params.record}> #{n}" if params.record else f"<{params.root}>"
                return False, f"{where} lacks {_join(missing, wrap='<>')} (or it is empty)"
        count = f"{len(holders)} <{params.record}> records, " if params.record else ""
        return True, f"valid XML: <{params.root}>, {count}every field present"

    def describe(self, params: XmlParams, phrasing: int = 0) -> str:
        fields = _join(params.fields, wrap="<>")
        if params.record:
            shape = (f"The root element is <{params.root}> and it holds one <{params.record}> element per "
                     f"entry; each <{params.record}> contains the elements {fields}.")
        else:
            shape = f"The root element is <{params.root}> and it contains the elements {fields}."
        if phrasing % 2 == 0:
            return f"Reply with one XML document and nothing else. {shape}"
        return f"Format your entire answer as XML, with no text before or after it. {shape}"

    def detect(self, text: str) -> list[XmlParams]:
        found = []
        for chunk in _sentences_with(text, r"\bXML\b"):
            whole = chunk + " " + text[text.find(chunk) + len(chunk):][:300]
            tags = re.findall(r"<([A-Za-z_][\w.-]*)>", whole)
            root = re.search(r"root(?: element)?(?: is| should be|:)?\s*<([\w.-]+)>", whole, re.I)
            record = re.search(r"one <([\w.-]+)> (?:element )?per", whole, re.I)
            if not tags:
                continue
            root_tag = root.group(1) if root else tags[0]
            record_tag = record.group(1) if record else None
            fields = list(dict.fromkeys(t for t in tags if t not in (root_tag, record_tag)))
            if fields:
                found.append(XmlParams(root=root_tag, fields=fields, record=record_tag))
                break
        return found


class YamlParams(_Params):
    """``fields`` of a mapping (``shape: mapping``) or of every entry of a top-level list."""

    fields: list[str] = Field(min_length=1)
    shape: Literal["mapping", "list"] = "mapping"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


@register_constraint
class YamlFormat(Constraint):
    """The reply is one YAML document (fence tolerated) with the named keys."""

    id = "api:format_yaml"
    Params = YamlParams
    phrasings = 2

    def check(self, response: str, params: YamlParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        import yaml

        try:
            data = yaml.safe_load(unfence(response))
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return False, f"not valid YAML ({first})"
        if params.shape == "mapping":
            if not isinstance(data, dict):
                return False, f"the YAML is a {type(data).__name__}, not a mapping"
            entries = [data]
        else:
            if not isinstance(data, list) or not data:
                return False, f"the YAML is a {type(data).__name__}, not a non-empty top-level list"
            if not all(isinstance(e, dict) for e in data):
                return False, "every list entry must be a mapping"
            entries = data
        for n, entry in enumerate(entries, 1):
            keys = {str(k): v for k, v in entry.items()}
            where = f"entry {n}" if params.shape == "list" else "the mapping"
            missing = [f for f in params.fields if _empty(keys.get(f))]
            if missing:
                return False, f"{where} lacks {_join(missing)} (or the value is empty)"
            # a prose line such as "Sure, here it is:" parses as a key without a value
            stray = [k for k, v in keys.items() if v is None]
            if stray:
                return False, f"{where} has a line without a value ('{stray[0]}'): prose outside the YAML?"
        what = f"a list of {len(entries)} entries" if params.shape == "list" else "a mapping"
        return True, f"valid YAML, {what} with every key"

    def describe(self, params: YamlParams, phrasing: int = 0) -> str:
        keys = _join(params.fields, wrap="`")
        if params.shape == "list":
            shape = f"a top-level YAML list with one entry per result, each entry a mapping with the keys {keys}"
        else:
            shape = f"a YAML mapping with the keys {keys}"
        if phrasing % 2 == 0:
            return f"Respond only with YAML: {shape}. No prose outside the YAML."
        return f"Your whole reply must be a valid YAML document, {shape}; write nothing else."

    def detect(self, text: str) -> list[YamlParams]:
        for chunk in _sentences_with(text, r"\bYAML\b"):
            keys = re.search(r"\b(?:keys|fields)\b:?\s*(.+)", chunk, re.I | re.S)
            if not keys:
                continue
            fields = [f for f in _listed(keys.group(1)) if re.match(_FIELD, f)]
            if fields:
                shape = "list" if re.search(r"\blist\b", chunk, re.I) else "mapping"
                return [YamlParams(fields=fields, shape=shape)]
        return []


_SEPARATOR_CELL = re.compile(r"^:?-+:?$")


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table in ``text`` as ``(header cells, data rows)``: a row with ``|``
    followed by a separator row (``|---|:--:|``) of as many cells; fence lines are skipped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("```")]
    tables = []
    for i in range(len(lines) - 1):
        if "|" not in lines[i]:
            continue
        header, separator = _cells(lines[i]), _cells(lines[i + 1])
        if len(separator) != len(header) or not all(_SEPARATOR_CELL.match(c.replace(" ", "")) for c in separator):
            continue
        rows = []
        for line in lines[i + 2:]:
            if "|" not in line or not line.strip():
                break
            rows.append(_cells(line))
        tables.append((header, rows))
    return tables


def _header(cell: str) -> str:
    return " ".join(cell.strip().strip("*_` ").lower().split())


class TableParams(_Params):
    """``columns`` (header names, case-insensitive) and at least ``min_rows`` data rows."""

    columns: list[str] = Field(min_length=1)
    min_rows: int = Field(default=1, ge=1)


@register_constraint
class MarkdownTable(Constraint):
    """The reply contains a Markdown table with the named columns (prose around it allowed)."""

    id = "api:format_markdown_table"
    Params = TableParams
    phrasings = 2

    def check(self, response: str, params: TableParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        tables = markdown_tables(response)
        if not tables:
            return False, "no Markdown table (a header row followed by a |---| separator row)"
        wanted = [_header(c) for c in params.columns]
        why = ""
        for header, rows in tables:
            have = [_header(c) for c in header]
            missing = [c for c, w in zip(params.columns, wanted)
                       if not any(h == w or h.startswith(w + " (") for h in have)]
            filled = [r for r in rows if any(c for c in r)]
            if missing:
                why = f"the table's columns are {_join(header) if header else 'empty'}; missing {_join(missing)}"
            elif len(filled) < params.min_rows:
                why = f"the table has {len(filled)} data rows, fewer than {params.min_rows}"
            else:
                return True, f"a Markdown table with the columns and {len(filled)} rows"
        return False, why

    def describe(self, params: TableParams, phrasing: int = 0) -> str:
        columns = _join(params.columns)
        rows = " (one row per entry)" if params.min_rows > 1 else ""
        if phrasing % 2 == 0:
            return f"Present the answer as a Markdown table with the columns {columns}{rows}."
        return (f"Use a Markdown table: a header row with the columns {columns}, then a |---| separator "
                f"row, then the data rows{rows}.")

    def detect(self, text: str) -> list[TableParams]:
        for chunk in _sentences_with(text, r"\btable\b"):
            cols = re.search(r"\bcolumns\b:?\s*(.+)", chunk, re.I | re.S)
            if cols and (columns := _listed(cols.group(1))):
                min_rows = 2 if re.search(r"one row per", chunk, re.I) else 1
                return [TableParams(columns=columns, min_rows=min_rows)]
        return []


# ---------------------------------------------------------------------------------- negative


_SUPPORT = r"(?:customer\s+)?(?:support|service|care|help\s*desk|helpdesk|help\s+center|helpline|hotline)"

FORBIDDEN_PHRASES: dict[str, tuple[str, list[str]]] = {
    "contact_support": ("telling the user to contact support", [
        rf"\bcontact(?:ing)?\s+(?:our\s+|the\s+|a\s+)?{_SUPPORT}",
        rf"\breach(?:ing)?\s+out\s+to\s+(?:our\s+|the\s+)?(?:{_SUPPORT}|team|agents?|staff|specialists?)",
        rf"\bget\s+in\s+touch\s+with\s+(?:our\s+|the\s+)?(?:{_SUPPORT}|team|agents?|staff)",
        rf"\b(?:call|phone|ring|e-?mail|message|write\s+to|chat\s+with)\s+(?:our\s+|the\s+)?{_SUPPORT}",
        r"\b(?:contact|email|e-mail|write\s+to)\s+us\b",
        r"[\w.+-]*(?:support|help|care|service|contact)[\w.+-]*@[\w-]+(?:\.[\w-]+)+",
        r"\b(?:open|submit|file|raise|create|log)\s+(?:a\s+|an?\s+)?(?:support\s+|help\s+)?(?:ticket|case)\b",
        r"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a|an|one\s+of\s+our|our|the)\s+(?:human\s+|live\s+)?"
        r"(?:agent|representative|rep|specialist|advisor|person)",
        r"\b(?:support|customer\s+service|customer\s+care)\s+(?:team|department|staff|agents?|line|portal)\b",
        r"\bhelp\s*desk\b|\bhelpline\b|\bhotline\b",
    ]),
    "apology": ("apologizing", [
        r"\bsorry\b",
        r"\bapolog(?:y|ies|ise|ize|ised|ized|ising|izing)\b",
        r"\bregret\s+(?:the|any|this)\s+(?:inconvenience|trouble|frustration)",
        r"\bmy\s+bad\b",
        r"\bpardon\s+(?:me|the|us)\b",
    ]),
    "refund_promise": ("promising a refund or compensation", [
        r"\b(?:you(?:'ll|\s+will)|we(?:'ll|\s+will)|I(?:'ll|\s+will))\s+(?:definitely\s+|certainly\s+)?"
        r"(?:get|receive|be\s+(?:issued|given|sent|getting)|issue|send|process|give)\b[^.!?\n]{0,30}"
        r"\b(?:refund|money\s+back|reimburse\w*|credit|compensation)",
        r"\brefund\s+(?:is|has\s+been|will\s+be|was)\s+(?:approved|guaranteed|issued|processed|on\s+its\s+way|granted)",
        r"\bguarantee(?:d|s)?\s+(?:you\s+)?(?:a\s+|your\s+)?(?:full\s+)?refund",
        r"\b(?:I|we)(?:'ll|\s+will)\s+(?:refund|reimburse|compensate|credit)\b",
        r"\b(?:refund|reimburse|compensate)\s+you\b",
    ]),
}
"""The phrase sets of ``api:avoid_phrases``: ``topic -> (what it forbids, regexes)``, matched
case-insensitively anywhere in the reply (a mention inside a negation still counts)."""


@lru_cache(maxsize=None)
def _phrase_patterns(topic: str) -> list[re.Pattern]:
    return [re.compile(p, re.I) for p in FORBIDDEN_PHRASES[topic][1]]


class AvoidParams(_Params):
    """``topic``: one of :data:`FORBIDDEN_PHRASES`."""

    topic: Literal["contact_support", "apology", "refund_promise"]


_AVOID_WORDS = {
    "contact_support": [
        "Never tell the user to contact support: no 'contact support', 'reach out to our team', support "
        "email addresses, phone lines or tickets. Solve the problem in your reply.",
        "Do not send the customer to customer support, a help desk, a support email address or a ticket; "
        "resolve their question yourself.",
    ],
    "apology": [
        "Never apologize (no 'sorry', 'we apologize' or 'apologies').",
        "Do not apologize to the user; acknowledge the problem and go straight to the fix.",
    ],
    "refund_promise": [
        "Never promise a refund, credit or compensation; explain what happens next instead.",
        "Do not tell the customer that they will get a refund or that a refund is approved or guaranteed.",
    ],
}
_AVOID_DETECT = {
    "contact_support": r"\b(?:never|don't|do not|avoid|must not|should not|shouldn't)\b[^.\n]{0,60}"
                       r"\b(?:contact|reach out|get in touch|call|e-?mail|send)\b[^.\n]{0,40}"
                       r"\b(?:support|us|help desk)\b",
    "apology": r"\b(?:never|don't|do not|avoid|must not)\b[^.\n]{0,30}\b(?:apologi[sz]e|say sorry|apologies)",
    "refund_promise": r"\b(?:never|don't|do not|avoid|must not)\b[^.\n]{0,40}\b(?:promise|guarantee|tell)\b"
                      r"[^.\n]{0,60}\brefund",
}


@register_constraint
class AvoidPhrases(Constraint):
    """Negative instruction: the reply uses none of a named phrase set."""

    id = "api:avoid_phrases"
    Params = AvoidParams
    phrasings = 2

    def check(self, response: str, params: AvoidParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        what = FORBIDDEN_PHRASES[params.topic][0]
        for pattern in _phrase_patterns(params.topic):
            match = pattern.search(response)
            if match:
                return False, f"'{match.group(0)}' is {what}"
        return True, f"nothing {what}"

    def describe(self, params: AvoidParams, phrasing: int = 0) -> str:
        return _AVOID_WORDS[params.topic][phrasing % 2]

    def detect(self, text: str) -> list[AvoidParams]:
        return [AvoidParams(topic=t) for t, p in _AVOID_DETECT.items() if re.search(p, text, re.I)]


class NamesParams(_Params):
    """``names`` never to mention; ``kind`` only words the instruction (``competitors``)."""

    names: list[str] = Field(min_length=1)
    kind: str = "competitors"


def _name_pattern(name: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + r"\s+".join(re.escape(w) for w in name.split()) + r"(?!\w)", re.I)


@register_constraint
class AvoidNames(Constraint):
    """Negative instruction: the reply never names any of ``names`` (case-insensitive, whole words)."""

    id = "api:avoid_names"
    Params = NamesParams
    phrasings = 2

    def check(self, response: str, params: NamesParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        said = [n for n in params.names if _name_pattern(n).search(response)]
        if said:
            return False, f"mentions {_join(said)}"
        return True, f"no {params.kind} named"

    def describe(self, params: NamesParams, phrasing: int = 0) -> str:
        if phrasing % 2 == 0:
            return f"Never mention {params.kind}: {_join(params.names)}."
        return f"Do not name {params.kind} ({_join(params.names, 'or')}) in your replies, even if the user does."

    def detect(self, text: str) -> list[NamesParams]:
        match = re.search(r"\b(?:never|don't|do not)\s+(?:mention|name|recommend)\s+([\w ]{3,30}?)\s*[:(]\s*([^.)\n]+)",
                          text, re.I)
        if not match:
            return []
        names = [n for n in _listed(match.group(2)) if n[:1].isupper()]
        return [NamesParams(names=names, kind=match.group(1).strip())] if names else []


# ---------------------------------------------------------------------------------- ordered


@dataclass(frozen=True)
class Step:
    """A detail an intake flow collects: how the instruction names it, and the words that
    show a reply asks for it."""

    label: str
    pattern: str


STEPS: dict[str, Step] = {
    "name": Step("their name", r"(?<!company )(?<!user )(?<!file )(?<!account )(?<!business )\bname\b"),
    "email": Step("their email address", r"\be-?mail\b"),
    "phone": Step("their phone number", r"\b(?:phone|mobile|cell|telephone)\b"),
    "company": Step("their company", r"\b(?:company|organi[sz]ation|employer|business)\b"),
    "team_size": Step("the size of their team",
                      r"\b(?:team\s+size|size\s+of\s+(?:your|the|their)\s+team|"
                      r"how\s+many\s+(?:people|users|seats|members|teammates|employees)|"
                      r"number\s+of\s+(?:people|users|seats|members|employees)|seats)\b"),
    "order_number": Step("their order number", r"\border\s*(?:number|no\b|id\b|reference|ref\b|#)"),
    "reason": Step("the reason for the return", r"\b(?:reason|why)\b"),
    "postcode": Step("their postcode", r"\b(?:post\s?code|zip(?:\s?code)?|postal\s+code)\b"),
    "date": Step("the date", r"\b(?:date|day)\b(?!\s+of\s+birth)"),
    "time": Step("the time", r"\b(?:time|o'clock)\b"),
    "party_size": Step("the number of guests",
                       r"\b(?:party\s+size|size\s+of\s+(?:your|the|their)\s+party|"
                       r"how\s+many\s+(?:people|guests|diners)|"
                       r"number\s+of\s+(?:people|guests|diners)|guests)\b"),
    "date_of_birth": Step("their date of birth", r"\b(?:date\s+of\s+birth|birth\s?date|birthday|born|dob)\b"),
    "insurance": Step("their insurance provider", r"\b(?:insurance|insurer|policy\s+number)\b"),
    "booking_reference": Step("their booking reference",
                              r"\b(?:booking\s+(?:reference|number|code|ref)|reservation\s+(?:number|code)|"
                              r"confirmation\s+(?:number|code))\b"),
}
"""The details ``api:ordered_steps`` knows: a reply asks for a step when it matches the
step's pattern (case-insensitive)."""

StepName = Literal["name", "email", "phone", "company", "team_size", "order_number", "reason", "postcode",
                   "date", "time", "party_size", "date_of_birth", "insurance", "booking_reference"]


def _mentions(text: str, step: str) -> bool:
    return re.search(STEPS[step].pattern, text, re.I) is not None


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


class StepsParams(_Params):
    """The details to collect, in order (names from :data:`STEPS`)."""

    steps: list[StepName] = Field(min_length=2)


@register_constraint
class OrderedSteps(Constraint):
    """Ordered instruction: the reply asks for the next detail and no later one. The steps
    already asked are read from the assistant turns of ``item["messages"]``."""

    id = "api:ordered_steps"
    Params = StepsParams
    phrasings = 2

    def check(self, response: str, params: StepsParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        earlier = [_message_text(m) for m in (item or {}).get("messages") or [] if m.get("role") == "assistant"]
        remaining = [s for s in params.steps if not any(_mentions(t, s) for t in earlier)]
        if not remaining:
            return True, "every step was already asked for"
        following, later = remaining[0], remaining[1:]
        if not _mentions(response, following):
            return False, f"does not ask for {STEPS[following].label} (the next step)"
        ahead = [s for s in later if _mentions(response, s)]
        if ahead:
            return False, f"asks for {STEPS[ahead[0]].label} before {STEPS[following].label} is answered"
        return True, f"asks for {STEPS[following].label} and nothing later"

    def describe(self, params: StepsParams, phrasing: int = 0) -> str:
        labels = [STEPS[s].label for s in params.steps]
        if phrasing % 2 == 0:
            chain = ", then ".join(labels[1:])
            return (f"Collect the customer's details in this order, one per message: first {labels[0]}, then "
                    f"{chain}. Never ask for a detail before the earlier ones are answered.")
        numbered = ", ".join(f"{n}) {label}" for n, label in enumerate(labels, 1))
        return (f"Ask for these details strictly in this order: {numbered}. Ask for exactly one detail per "
                "message and never skip ahead.")

    def detect(self, text: str) -> list[StepsParams]:
        for chunk in _sentences_with(text, r"\b(?:first\b.*\bthen|in\s+(?:this|that|the\s+following)\s+order)\b"):
            spots = sorted((m.start(), s) for s in STEPS for m in [re.search(STEPS[s].pattern, chunk, re.I)] if m)
            steps = list(dict.fromkeys(s for _, s in spots))
            if len(steps) >= 2:
                return [StepsParams(steps=steps)]
        return []


# ---------------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Quantity:
    """A quantity ``api:state_amount`` looks for: an ``amount`` (a number with its unit) bound
    to the ``keyword``: ``adjacent`` (the keyword right after the amount or just before it:
    ``18 g protein``, ``protein: 18 g``), ``sentence`` (in the same sentence) or ``none``
    (the unit says it all: ``$129``, ``420 kcal``)."""

    label: str
    example: str
    keyword: str
    amount: str
    bind: Literal["adjacent", "sentence", "none"]


_GRAMS = r"\d+(?:\.\d+)?\s*(?:g|grams?|gr)\b"
QUANTITIES: dict[str, Quantity] = {
    "protein": Quantity("amount of protein in grams", "18 g protein", r"proteins?", _GRAMS, "adjacent"),
    "fiber": Quantity("amount of fiber in grams", "6 g fiber", r"fib(?:er|re)s?", _GRAMS, "adjacent"),
    "carbohydrates": Quantity("amount of carbohydrates in grams", "40 g carbs", r"carb(?:ohydrate)?s?", _GRAMS,
                              "adjacent"),
    "calories": Quantity("calories", "420 kcal", r"calories|kcal", r"\d[\d,]*(?:\.\d+)?\s*(?:kcal|calories|cals?)\b",
                         "none"),
    "price": Quantity("price", "$129.00", r"price|costs?",
                      r"[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:USD|EUR|GBP|dollars|euros)\b",
                      "none"),
    "warranty": Quantity("warranty length", "a 2-year warranty", r"warrant(?:y|ies|ied)|guarantee[ds]?",
                         r"\b\d+[- ]?(?:years?|yrs?|months?)\b", "sentence"),
    "delivery_time": Quantity("delivery time in days", "delivery in 3-5 business days",
                              r"deliver\w*|ship\w*|arriv\w*|dispatch\w*",
                              r"\b\d+(?:\s*(?:-|–|to)\s*\d+)?\s*(?:business\s+|working\s+)?days?\b", "sentence"),
}
"""The quantities of ``api:state_amount``."""

_CONNECTORS = r"(?:[\s:=(~–-]|\b(?:is|of|content|at|about|around|roughly|approximately|approx\.?|total)\b)*"


def _bound(text: str, start: int, end: int, quantity: Quantity) -> bool:
    keyword = quantity.keyword
    if quantity.bind == "none":
        return True
    if quantity.bind == "sentence":
        left = re.split(r"[.!?\n](?:\s|$)", text[:start])[-1]
        right = re.split(r"[.!?\n](?:\s|$)", text[end:])[0]
        return re.search(rf"\b(?:{keyword})\b", left + " " + right, re.I) is not None
    after = re.match(rf"\s*(?:of\s+)?(?:{keyword})\b", text[end:end + 30], re.I)
    before = re.search(rf"\b(?:{keyword})\b{_CONNECTORS}$", text[max(0, start - 40):start], re.I)
    return after is not None or before is not None


def amounts(text: str, quantity: str) -> list[str]:
    """Every amount of ``quantity`` stated in ``text`` (see :class:`Quantity`)."""
    q = QUANTITIES[quantity]
    return [m.group(0) for m in re.finditer(q.amount, text, re.I) if _bound(text, m.start(), m.end(), q)]


class AmountParams(_Params):
    """``quantity`` from :data:`QUANTITIES`, stated at least ``min_count`` times; ``per``
    (``meal``) only words the instruction."""

    quantity: Literal["protein", "fiber", "carbohydrates", "calories", "price", "warranty", "delivery_time"]
    min_count: int = Field(default=1, ge=1)
    per: str | None = None


@register_constraint
class StateAmount(Constraint):
    """Content requirement: the reply states a quantity as a number with its unit."""

    id = "api:state_amount"
    Params = AmountParams
    phrasings = 2

    def check(self, response: str, params: AmountParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        found = amounts(response, params.quantity)
        label = QUANTITIES[params.quantity].label
        if len(found) < params.min_count:
            need = f"{params.min_count} times" if params.min_count > 1 else "once"
            got = f" (found {_join(found)})" if found else ""
            return False, f"states the {label} {len(found)} times, needs {need}{got}"
        return True, f"states the {label}: {_join(found[:4])}"

    def describe(self, params: AmountParams, phrasing: int = 0) -> str:
        q = QUANTITIES[params.quantity]
        if phrasing % 2 == 0:
            scope = f" for each {params.per}" if params.per else ""
            return f"Always state the {q.label}{scope} (for example '{q.example}')."
        scope = f" of every {params.per}" if params.per else ""
        return f"Every answer must include the {q.label}{scope}, written as a number with its unit, e.g. '{q.example}'."

    def detect(self, text: str) -> list[AmountParams]:
        found = []
        for chunk in _sentences_with(text, r"\b(?:always|must|make sure|every answer)\b"):
            for name, q in QUANTITIES.items():
                verb = rf"\b(?:state|include|give|mention|list|says?)\b[^.\n]{{0,40}}\b(?:{q.keyword})\b"
                if re.search(verb, chunk, re.I):
                    per = re.search(r"\b(?:for each|of every|per)\s+(\w+)", chunk, re.I)
                    found.append(AmountParams(quantity=name, per=per.group(1) if per else None))
        return found


# ---------------------------------------------------------------------------------- ranking


_LIST_LINE = re.compile(r"^\s*(?:#+\s*)?(?:\d+[.)]|[-*+•]|\|)\s*")


def entities_in_order(text: str, names: list[str]) -> list[str]:
    """The ``names`` that ``text`` lists, in the order it lists them (first mention of each).

    When at least two list lines (numbered, bulleted or table rows) name entities, only those
    lines count, so an introduction or a closing remark cannot reorder the list."""
    def scan(body: str) -> list[str]:
        spots = [(m.start(), n) for n in names for m in [_name_pattern(n).search(body)] if m]
        return [n for _, n in sorted(spots)]

    listed = "\n".join(line for line in text.splitlines() if _LIST_LINE.match(line))
    in_lists = scan(listed)
    return in_lists if len(in_lists) >= 2 else scan(text)


class RankParams(_Params):
    """How the instruction words the ranking; the entities come from ``item["expected"]``:
    ``order`` (the correct order) and ``exclude`` (entities that must not be listed)."""

    by: str = Field(min_length=1)
    descending: bool = True
    top: int | None = Field(default=None, ge=1)
    noun: str = "items"


def _expected(item: dict[str, Any] | None) -> dict[str, Any]:
    expected = (item or {}).get("expected")
    return expected if isinstance(expected, dict) else {}


@register_constraint
class RankedOrder(Constraint):
    """Ranking: the reply lists ``item["expected"]["order"]`` in that order, extra prose allowed."""

    id = "api:ranked_order"
    Params = RankParams
    phrasings = 2

    def check(self, response: str, params: RankParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        expected = _expected(item)
        order, exclude = expected.get("order"), expected.get("exclude") or []
        if not isinstance(order, list) or not order:
            return False, "the item has no expected.order to check against"
        found = entities_in_order(response, list(order) + list(exclude))
        missing = [n for n in order if n not in found]
        if missing:
            return False, f"leaves out {_join(missing)}"
        extra = [n for n in exclude if n in found]
        if extra:
            return False, f"lists {_join(extra)}, which should be left out"
        listed = [n for n in found if n in order]
        for n, (got, want) in enumerate(zip(listed, order), 1):
            if got != want:
                return False, f"position {n} is {got}, expected {want} (order given: {' > '.join(listed)})"
        return True, f"{len(order)} {params.noun} in the right order"

    def describe(self, params: RankParams, phrasing: int = 0) -> str:
        first = "highest" if params.descending else "lowest"
        top = f", and list only the first {params.top}" if params.top else ""
        if phrasing % 2 == 0:
            return f"Sort the {params.noun} by {params.by}, {first} first{top}."
        direction = "descending" if params.descending else "ascending"
        top = f" (only the first {params.top})" if params.top else ""
        return f"List the {params.noun} in {direction} order of {params.by}{top}."

    def detect(self, text: str) -> list[RankParams]:
        match = re.search(r"\b(?:sort|order|rank|list)\w*\s+(?:(?:the\s+)?([\w ]{1,30}?)\s+)?(?:by|in\s+"
                          r"(?:ascending|descending)\s+order\s+of)\s+(?:their\s+|its\s+)?([\w ]{2,30}?)"
                          r"(?:,|\.|\(| and |$)", text, re.I | re.M)
        if not match:
            return []
        window = text[match.start():match.start() + 200]
        descending = not re.search(r"\b(?:lowest|smallest|least|fewest|cheapest|ascending)\b", window, re.I)
        top = re.search(r"\b(?:top|first)\s+(\d+)\b", window, re.I)
        return [RankParams(by=match.group(2).strip(), descending=descending, top=int(top.group(1)) if top else None,
                           noun=(match.group(1) or "items").strip())]


# ---------------------------------------------------------------------------- overconfidence


_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}


def _normalized(text: str) -> str:
    """Casefolded, curly quotes straightened, whitespace collapsed, wrapping quotes and
    trailing ``.``/``!`` removed: what "exactly" tolerates."""
    for curly, straight in _QUOTES.items():
        text = text.replace(curly, straight)
    text = " ".join(text.split()).casefold()
    previous = None
    while text != previous:
        previous = text
        text = text.strip().rstrip(".!").strip()
        for q in ('"', "'", "`", "*"):
            if len(text) > 1 and text.startswith(q) and text.endswith(q):
                text = text[1:-1]
    return text


def _contains_answer(response: str, answer: str) -> bool:
    def norm(s: str) -> str:
        for curly, straight in _QUOTES.items():
            s = s.replace(curly, straight)
        return " ".join(re.sub(r"(?<=\d),(?=\d{3})", "", s).split()).casefold()

    body = norm(answer)
    return re.search(r"(?<!\w)" + re.escape(body) + r"(?!\w)", norm(response)) is not None


class FallbackParams(_Params):
    """``fallback``, the exact reply when the answer is absent; ``source`` only words the
    instruction (``the FAQ below``). Per item: ``item["expected"]`` has ``answerable`` and,
    when answerable, ``answer`` (a string or a list of accepted strings)."""

    fallback: str = Field(min_length=1)
    source: str = "the information provided"


@register_constraint
class FallbackIfUnknown(Constraint):
    """Overconfidence: the exact fallback when the answer is absent, the answer when present."""

    id = "api:fallback_if_unknown"
    Params = FallbackParams
    phrasings = 2

    def check(self, response: str, params: FallbackParams, item: dict[str, Any] | None = None) -> tuple[bool, str]:
        expected = _expected(item)
        answerable = expected.get("answerable")
        if not isinstance(answerable, bool):
            return False, "the item has no expected.answerable to check against"
        fallback = _normalized(params.fallback)
        if not answerable:
            if _normalized(response) == fallback:
                return True, "gave exactly the fallback (the answer is not in the data)"
            if fallback in _normalized(response):
                return False, "added text around the fallback; it must be the whole reply"
            return False, "the answer is not in the data, but the reply is not the fallback"
        if fallback in _normalized(response):
            return False, "gave the fallback although the answer is in the data"
        answers = expected.get("answer")
        answers = [answers] if isinstance(answers, str) else list(answers or [])
        if not answers:
            return False, "the item has no expected.answer to check against"
        if not any(_contains_answer(response, a) for a in answers):
            return False, f"does not contain the answer ({_join([repr(a) for a in answers], 'or')})"
        return True, "answered from the data"

    def describe(self, params: FallbackParams, phrasing: int = 0) -> str:
        if phrasing % 2 == 0:
            return f'If the answer is not in {params.source}, reply exactly: "{params.fallback}" and nothing else.'
        return (f"Only answer from {params.source}. When it does not contain the answer, your entire reply "
                f'must be exactly "{params.fallback}".')

    def detect(self, text: str) -> list[FallbackParams]:
        match = re.search(r"\b(?:reply|respond|answer|say|be)\s+(?:with\s+)?exactly(?:\s+this)?\s*:?\s*"
                          r"[\"\u201c](.+?)[\"\u201d]", text, re.I)
        if not match:
            return []
        source = re.search(r"\b(?:not in|only answer from|does not contain)\s+(the [\w ]{2,40}?)[,.]", text, re.I)
        return [FallbackParams(fallback=match.group(1), **({"source": source.group(1)} if source else {}))]
