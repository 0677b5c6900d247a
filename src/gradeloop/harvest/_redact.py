"""Redaction of personal data and secrets before a harvested record is stored.

Each finding is replaced by a typed placeholder (``<EMAIL_1>``, ``<API_KEY_2>``) that stays
the same for the same value within one record (one conversation), so a redacted conversation
still reads coherently ("write to <EMAIL_1> … confirm <EMAIL_1>") and evals built from it keep
their structure. Every string of the record is redacted with one mapping: messages, the answer,
params, the raw bodies, error and metadata.

What is found, and by what (docs/harvest.md, "Redaction", has the measured recall and precision):

- ``API_KEY``: vendor keys through Yelp's detect-secrets plugins (AWS, GitHub, GitLab, Slack,
  Stripe, OpenAI, SendGrid, Twilio, PyPI, …) plus ``sk-``/``pk-``/``rk-`` style keys, Stripe test
  keys, Google ``AIza`` keys and Hugging Face ``hf_`` tokens;
- ``BEARER_TOKEN``: the token after ``Bearer`` / ``Authorization: Basic``;
- ``SECRET``: private key blocks, passwords in basic-auth URLs, JSON Web Tokens and values
  assigned to secret-named keys (``password = "…"``), through detect-secrets;
- ``EMAIL``: addresses with sub-addressing, subdomains and IDN or punycode domains (a domain
  needs a dot: ``root@localhost`` stays, and so do ``git@github.com:org/repo`` remotes and
  ``icon@2x.png`` file names);
- ``IBAN``: candidates checked with python-stdnum (mod-97 and the country's format);
- ``CARD``: 14–19 digits (spaces or dashes allowed) with a card issuer's prefix and length and
  a valid Luhn check digit (python-stdnum);
- ``IP``: v4 and v6 addresses validated by ``ipaddress``; loopback and unspecified addresses
  (127.0.0.1, 0.0.0.0, ::1) and version strings (``version 1.2.3.4``, ``v1.2.3.4``) are kept;
- ``PHONE``: phonenumbers' matcher at ``Leniency.VALID`` (a valid number for its region),
  international numbers (``+44 …``, ``0044 …``) and national ones of the default region;
- ``CUSTOM``: the user's regular expressions.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..errors import InputError
from ._record import Record

__all__ = ["KINDS", "Redactor", "Finder", "make_redactor", "regex_finder"]

# a finder returns (start, end) spans of one kind of finding in a text
Finder = Callable[[str], Iterable[tuple[int, int]]]

# the built-in kinds, most specific first: where findings overlap, their union is redacted
# under the kind that comes first here
KINDS = ("API_KEY", "BEARER_TOKEN", "SECRET", "EMAIL", "IBAN", "CARD", "IP", "PHONE")
# what a Redactor remembers across records: texts up to this long, this many (at most ~32 MB)
KNOWN_TEXT_CHARS, KNOWN_TEXTS = 8192, 4096


def regex_finder(pattern: str | re.Pattern[str], group: int = 0) -> Finder:
    """A finder from a regular expression (the span of ``group`` of each match)."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern

    def find(text: str) -> Iterable[tuple[int, int]]:
        return [m.span(group) for m in compiled.finditer(text) if m.group(group)]

    return find


# ---- e-mail -------------------------------------------------------------------------------

# local part: letters (any script), digits and . _ % + -; domain: labels joined by dots and a
# top-level domain of letters (any script) or punycode (xn--…)
_EMAIL_RE = re.compile(r"(?<![\w.%+-])[\w%+-](?:[\w.%+-]*[\w%+-])?@((?:[^\W_](?:[\w-]*[^\W_])?\.)+"
                       r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{2,59}))(?![\w-])", re.IGNORECASE)
_RETINA = re.compile(r"\d+x\.")  # icon@2x.png is a file name, not an address
_SCP_PATH = re.compile(r":[^\d\s/]")  # git@github.com:org/repo.git is a login for a path


def _find_emails(text: str) -> list[tuple[int, int]]:
    if "@" not in text:
        return []
    return [m.span() for m in _EMAIL_RE.finditer(text)
            if not _RETINA.match(m.group(1)) and not _SCP_PATH.match(text, m.end())]


# ---- secrets --------------------------------------------------------------------------------

_BEARER = regex_finder(r"(?i)\b(?:bearer|authorization:\s*basic)\s+([A-Za-z0-9._~+/=-]{16,})", 1)
_OWN_KEYS = re.compile(r"(?<![\w-])(?:(?:sk|pk|rk)-(?:[A-Za-z0-9_]+-)*[A-Za-z0-9_-]{16,}"
                       r"|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
                       r"|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{50,})")
# a quoted value given to a secret-named key; detect-secrets' keyword plugin passes over some
# (a value that starts with "#")
_ASSIGNED = re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api_?key)\w*[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']")
_PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?"
                          r"(?:-----END \1-----|(?=\n\s*\n)|$)", re.DOTALL)
# detect-secrets plugins by what their findings are; IPs are ours, Artifactory's password
# pattern takes ordinary capitalised words (APEXCONFIG…), and the high-entropy plugins flag
# commit hashes and UUIDs, so those stay out
_KEY_PLUGINS = ("AWSKeyDetector", "AzureStorageKeyDetector", "CloudantDetector", "DiscordBotTokenDetector",
                "GitHubTokenDetector", "GitLabTokenDetector", "IbmCloudIamDetector", "IbmCosHmacDetector",
                "MailchimpDetector", "NpmDetector", "OpenAIDetector", "PypiTokenDetector", "SendGridDetector",
                "SlackDetector", "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector",
                "TelegramBotTokenDetector", "TwilioKeyDetector")
_SECRET_PLUGINS = ("BasicAuthDetector", "JwtTokenDetector", "KeywordDetector")


@functools.cache
def _plugin_classes() -> dict[str, type]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}


def _plugins(names: Sequence[str]) -> list[Any]:
    return [_plugin_classes()[name]() for name in names if name in _plugin_classes()]


_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-.+/=]*")


def _regex_plugin_spans(plugin: Any, text: str) -> Iterable[tuple[int, int]]:
    """Where a regex plugin's patterns match: the secret group when the pattern has one (a
    password after ``user:``, a quoted AWS secret), else the whole match carried on to the end
    of the token (the JWT pattern stops before the signature)."""
    for pattern in plugin.denylist:
        for m in pattern.finditer(text):
            group = max(range(1, (m.re.groups or 0) + 1), key=lambda g: len(m.group(g) or ""), default=0)
            if group and len(m.group(group) or "") >= 8:
                yield m.span(group)
                continue
            end = _TOKEN_TAIL.match(text, m.end()).end()
            valid = getattr(plugin, "is_formally_valid", None)
            if valid is None or valid(text[m.start():end]):
                yield m.start(), end


def _keyword_spans(plugin: Any, text: str) -> Iterable[tuple[int, int]]:
    """Where the values that the keyword plugin reports occur as whole tokens. The plugin
    reads one line and reports its first assignment, so it gets each line that names a secret."""
    from detect_secrets.plugins.keyword import DENYLIST

    named = re.compile("|".join(DENYLIST), re.IGNORECASE)
    values = {v for line in text.splitlines() if named.search(line) for v in plugin.analyze_string(line)}
    for value in values:
        if len(value) >= 4:
            token = re.compile(r"(?<![A-Za-z0-9])" + re.escape(value) + r"(?![A-Za-z0-9])")
            yield from (m.span() for m in token.finditer(text))


# what a text must contain for a plugin to find anything in it (a cheap test first: most texts
# of a chat have no secret); every vendor key pattern needs a long run of token characters
_LONG_TOKEN = re.compile(r"[\w+/=-]{16}")
_HINTS = {"BasicAuthDetector": re.compile("://"), "JwtTokenDetector": re.compile("eyJ"),
          "KeywordDetector": re.compile(r"(?i)pass|pwd|key|secret|contrase")}


def _plugin_finder(names: Sequence[str], extra: Callable[[str], Iterable[tuple[int, int]]]) -> Finder:
    """Spans of what the named detect-secrets plugins find, and of ``extra``."""
    from detect_secrets.plugins.base import RegexBasedDetector

    plugins = [(_HINTS.get(type(p).__name__, _LONG_TOKEN), p,
                _regex_plugin_spans if isinstance(p, RegexBasedDetector) else _keyword_spans)
               for p in _plugins(names)]

    def find(text: str) -> list[tuple[int, int]]:
        spans = list(extra(text))
        for hint, plugin, spans_of in plugins:
            if hint.search(text):
                spans += spans_of(plugin, text)
        return spans

    return find


def _key_finder() -> Finder:
    return _plugin_finder(_KEY_PLUGINS, lambda text: (m.span() for m in _OWN_KEYS.finditer(text)))


def _secret_finder() -> Finder:
    def extra(text: str) -> Iterable[tuple[int, int]]:
        yield from (m.span() for m in _PRIVATE_KEY.finditer(text))
        yield from (m.span(1) for m in _ASSIGNED.finditer(text))

    return _plugin_finder(_SECRET_PLUGINS, extra)


# ---- numbers checked by python-stdnum ----------------------------------------------------------

# runs of digit groups joined by one space or dash, each of 3 digits at least but the last
# (nobody groups a card number by ones or twos: "1 2 3 4 …" tables stay cheap); a card is a
# contiguous part of a run
_DIGIT_RUN = re.compile(r"(?<![\w.,/-])\d{3,}(?:[ -]\d{3,})*(?:[ -]\d{1,2})?(?![\w/]|[.,]\d)")
# issuer identification: Visa (16 or 19 digits; 13-digit Visa cards are long gone and EAN-13
# barcodes look like them), Mastercard (51-55, 2221-2720), Amex, Diners, JCB, Discover, UnionPay
# and Maestro, with the lengths they issue
_CARD_IIN = re.compile(r"4\d{15}(?:\d{3})?|3[47]\d{13}|(?:5[1-5]|2[2-7])\d{14}|3[0689]\d{12,17}"
                       r"|35\d{14,17}|6\d{15,18}|5[06-8]\d{10,17}")


def _groups(offset: int, value: str) -> list[tuple[int, int]]:
    """Spans (in the text) of the word-character groups of ``value``, found at ``offset``."""
    return [(offset + m.start(), offset + m.end()) for m in re.finditer(r"\w+", value)]


def _longest_valid(text: str, groups: list[tuple[int, int]], first: int, valid: Callable[[str], bool],
                   lengths: tuple[int, int]) -> int:
    """How many groups from ``first`` on form the longest valid value, trying only values whose
    length lies within ``lengths`` (0: none)."""
    total, counts = 0, []
    for n, (start, end) in enumerate(groups[first:], 1):
        total += end - start
        if total > lengths[1]:
            break
        if total >= lengths[0]:
            counts.append(n)
    for n in reversed(counts):
        if valid("".join(text[s:e] for s, e in groups[first:first + n])):
            return n
    return 0


def _is_card(digits: str) -> bool:
    from stdnum import luhn

    return _CARD_IIN.fullmatch(digits) is not None and luhn.is_valid(digits)


def _find_cards(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for run in _DIGIT_RUN.finditer(text):
        groups, i = _groups(run.start(), run.group()), 0
        while i < len(groups):
            n = _longest_valid(text, groups, i, _is_card, (14, 19))
            if n:
                spans.append((groups[i][0], groups[i + n - 1][1]))
            i += n or 1
    return spans


# every place an IBAN may start, with the groups that follow (overlapping: the next IBAN may
# start inside the run of the one before); groups of four as printed, or the national groups
# some countries write (FR76 30006 00001 12345678901 89)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])"
                         r"(?=([A-Za-z]{2}\d{2}[A-Za-z0-9]*(?: [A-Za-z0-9]{1,12}(?![A-Za-z0-9])){0,9}))")


def _is_iban(value: str) -> bool:
    from stdnum import iban

    return iban.is_valid(value)


def _find_ibans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for start in _IBAN_START.finditer(text):
        if spans and start.start() < spans[-1][1]:
            continue
        groups = _groups(start.start(), start.group(1))
        if n := _longest_valid(text, groups, 0, _is_iban, (15, 34)):
            spans.append((groups[0][0], groups[n - 1][1]))
    return spans


# ---- IP addresses -------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f]*:)(?=[0-9A-Fa-f:.]*\d)"
                   r"[0-9A-Fa-f:]{2,39}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?i)\b(?:version|release|build|ver\.?|v)\s*[:=]?\s*$")


def _is_address(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def _find_ips(text: str) -> list[tuple[int, int]]:
    spans = []
    if "." in text:
        spans += [m.span() for m in _IPV4.finditer(text)
                  if _is_address(m.group()) and not _VERSION_BEFORE.search(text[max(0, m.start() - 12):m.start()])]
    if "::" in text or text.count(":") >= 3:
        spans += [m.span() for m in _IPV6.finditer(text) if _is_address(m.group())]
    return spans


# ---- phone numbers ---------------------------------------------------------------------------

_PHONE_HINT = re.compile(r"\d(?:[\s().+/-]{0,3}\d){6}")
_IDD_00 = re.compile(r"(?<![^\s(:])00(?=[1-9])")


def _glued(text: str, start: int, end: int) -> bool:
    """Whether a number is part of a longer token (ORD-2024-406579, SKU_4155552671a)."""
    before, after = text[start - 1:start], text[end:end + 2]
    return bool(re.match(r"[\w/-]", before) or re.match(r"\w|[-_/]\w", after))


def _phone_finder(region: str) -> Finder:
    """phonenumbers' matcher; ``00`` written as the international prefix (``0049 30 …``, the
    usual form in Europe) is read as ``+``, keeping every position the same."""
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r}: use an ISO 3166 code such as US, GB, DE")

    def find(text: str) -> list[tuple[int, int]]:
        if not _PHONE_HINT.search(text):
            return []
        plus = _IDD_00.sub(" +", text)
        matcher = phonenumbers.PhoneNumberMatcher(plus, region, leniency=phonenumbers.Leniency.VALID)
        spans = [(m.start - (plus[m.start] != text[m.start]), m.end) for m in matcher]
        return [(start, end) for start, end in spans if not _glued(text, start, end)]

    return find


# the package each kind needs (all three are in the `harvest` extra)
_NEEDS = {"API_KEY": "detect_secrets", "SECRET": "detect_secrets", "IBAN": "stdnum", "CARD": "stdnum",
          "PHONE": "phonenumbers"}


def _finder(kind: str, region: str) -> Finder:
    if kind in _NEEDS:
        try:
            importlib.import_module(_NEEDS[kind])
        except ImportError:
            raise InputError(f"redacting {kind} needs {_NEEDS[kind]}: pip install 'gradeloop[harvest]'") from None
    return {"API_KEY": _key_finder, "BEARER_TOKEN": lambda: _BEARER, "SECRET": _secret_finder,
            "EMAIL": lambda: _find_emails, "IBAN": lambda: _find_ibans, "CARD": lambda: _find_cards,
            "IP": lambda: _find_ips, "PHONE": lambda: _phone_finder(region)}[kind]()


class Redactor:
    """Finds personal data and secrets and replaces them with typed placeholders.

    ``patterns`` are extra regular expressions (each finding becomes ``<CUSTOM_n>``); ``kinds``
    selects the built-in finders (default: all of :data:`KINDS`); ``region`` is the phone
    numbering region assumed for numbers written without ``+`` (ISO 3166 code, default ``US``).
    """

    def __init__(self, patterns: Sequence[str] = (), *, kinds: Sequence[str] | None = None,
                 region: str = "US") -> None:
        unknown = set(kinds or ()) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.region = region.upper()
        chosen = [k for k in KINDS if kinds is None or k in kinds]
        self.finders: list[tuple[str, Finder]] = [(k, _finder(k, self.region)) for k in chosen]
        self.finders += [("CUSTOM", regex_finder(p)) for p in patterns]
        self._known: OrderedDict[str, list[tuple[int, int, str]]] = OrderedDict()

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Non-overlapping ``(start, end, kind)`` findings in ``text``, in order. Overlapping
        findings are merged into one span (so nothing found is left half visible), named by
        the earliest finder in the list (the more specific kind)."""
        found = sorted((start, end, rank) for rank, (_, find) in enumerate(self.finders)
                       for start, end in find(text) if start < end)
        merged: list[list[int]] = []
        for start, end, rank in found:
            if merged and start < merged[-1][1]:
                last = merged[-1]
                last[1], last[2] = max(last[1], end), min(last[2], rank)
            else:
                merged.append([start, end, rank])
        return [(start, end, self.finders[rank][0]) for start, end, rank in merged]

    def _known_spans(self, text: str) -> list[tuple[int, int, str]]:
        """:meth:`spans`, remembered across records for texts up to ``KNOWN_TEXT_CHARS`` long
        (a system prompt, role and model names, finish reasons recur in every record of an
        app: each is searched once), the ``KNOWN_TEXTS`` most recent of them."""
        found = self._known.get(text)
        if found is not None:
            self._known.move_to_end(text)
            return found
        found = self.spans(text)
        if len(text) <= KNOWN_TEXT_CHARS:
            self._known[text] = found
            if len(self._known) > KNOWN_TEXTS:
                self._known.popitem(last=False)
        return found

    def redact_text(self, text: str, mapping: dict[tuple[str, str], str] | None = None,
                    cache: dict[str, list[tuple[int, int, str]]] | None = None) -> str:
        """``text`` with every finding replaced; ``mapping`` (value → placeholder, per kind)
        carries the numbering across the texts of one conversation; ``cache`` (text → spans)
        spares searching again a long text that the conversation repeats (messages and raw
        bodies); short texts are remembered across records anyway."""
        mapping = {} if mapping is None else mapping
        if cache is None or text not in cache:
            found = self._known_spans(text)
            if cache is not None and len(text) > KNOWN_TEXT_CHARS:
                cache[text] = found
        else:
            found = cache[text]
        out, last = [], 0
        for start, end, kind in found:
            value = text[start:end]
            if (kind, value) not in mapping:
                count = sum(1 for k, _ in mapping if k == kind)
                mapping[(kind, value)] = f"<{kind}_{count + 1}>"
            out += [text[last:start], mapping[(kind, value)]]
            last = end
        out.append(text[last:])
        return "".join(out)

    def redact_value(self, value: Any, mapping: dict[tuple[str, str], str],
                     cache: dict[str, list[tuple[int, int, str]]] | None = None) -> Any:
        """Every string inside a JSON-like value redacted (dict keys are kept)."""
        if isinstance(value, str):
            return self.redact_text(value, mapping, cache)
        if isinstance(value, list):
            return [self.redact_value(v, mapping, cache) for v in value]
        if isinstance(value, dict):
            return {k: self.redact_value(v, mapping, cache) for k, v in value.items()}
        return value

    def redact_record(self, record: Record) -> Record:
        """A copy of ``record`` with every text redacted, one placeholder numbering for all of it."""
        mapping: dict[tuple[str, str], str] = {}
        cache: dict[str, list[tuple[int, int, str]]] = {}
        fields = ("messages", "output", "params", "request", "response", "error", "metadata")
        return replace(record, **{name: self.redact_value(getattr(record, name), mapping, cache) for name in fields})


def make_redactor(enabled: bool = True, patterns: Sequence[str] = (), region: str | None = None) -> Redactor | None:
    """The redactor that ``--no-redact`` / ``--redact-pattern`` / ``--redact-region`` ask for:
    None when redaction is off, else a :class:`Redactor` with the user's patterns and phone
    region (default ``US``). Prints nothing; a pattern that is not a valid regular expression or
    an unknown region raises :class:`InputError` naming the flag (exit code 2)."""
    if not enabled:
        return None
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(f"{pattern!r} is not a valid regular expression: {exc}",
                             field="--redact-pattern") from None
    try:
        return Redactor(patterns, region=region or "US")
    except ValueError as exc:
        raise InputError(str(exc), field="--redact-region") from None
