"""Write redaction_labelled.jsonl: synthetic chat texts with every personal datum and secret
labelled by character span, and hard negatives (order numbers, dates, prices, versions, UUIDs,
colours, ISBNs, tracking numbers, numbers that fail the Luhn or IBAN check, ...) left unlabelled.

    python tests/data/harvest/make_redaction_set.py      # rewrites the file next to this script

Seeded, so the file is the same on every run. Nothing here is real: card numbers use card
networks' published test prefixes and get a Luhn check digit computed here; IBANs get their
mod-97 check digits computed here (not by the library under test); phone numbers are drawn from
each country's numbering plan; keys and tokens are random characters in each vendor's format.
Each line: {"id", "scenario", "region" (the phone region to redact with), "text",
"spans": [{"start", "end", "kind"}]}.
"""

from __future__ import annotations

import json
import random
import re
import string
import uuid
from pathlib import Path

OUT = Path(__file__).with_name("redaction_labelled.jsonl")
rng = random.Random(20261207)

FIRST = ["anna", "bob", "chen", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jonas", "kofi", "lena",
         "maria", "noah", "olga", "priya", "quinn", "rahul", "sofia", "tomas", "ursula", "victor", "wei", "yara"]
LAST = ["smith", "garcia", "mueller", "rossi", "kowalski", "tanaka", "okafor", "dubois", "silva", "novak",
        "johansson", "patel", "kim", "nguyen", "haddad", "oconnor"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "mail.acme-corp.com", "eu.shop.example.org",
           "company.io", "uni-heidelberg.de", "posteo.de", "icloud.com", "students.univ.edu", "web.de"]
IDN_EMAILS = ["jürgen@müller-bau.de", "josé.garcía@correo.es", "info@xn--mller-kva.de",
              "почта@пример.рф",
              "user@xn--80ak6aa92e.com", "zoë+orders@café.fr"]


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def chars(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# ---- labelled values ---------------------------------------------------------------------------

def email() -> str:
    if rng.random() < 0.12:
        return rng.choice(IDN_EMAILS)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}", f"{first}_{last}",
                        f"{first}+{rng.choice(['shop', 'news', 'orders', 'x'])}", f"{last}.{first}-work"])
    address = f"{local}@{rng.choice(DOMAINS)}"
    return address.title() if rng.random() < 0.1 else address


def _nanp() -> tuple[str, str, str]:
    area = rng.choice(["212", "312", "415", "617", "206", "303", "512", "702", "305", "404", "646", "818", "416",
                       "604"])
    exchange = str(rng.randint(2, 9)) + digits(2)
    while exchange[1:] == "11":
        exchange = str(rng.randint(2, 9)) + digits(2)
    return area, exchange, digits(4)


def phone() -> str:
    if rng.random() < 0.45:
        a, e, n = _nanp()
        form = rng.choice(["{a}{e}{n}", "tel:+1{a}{e}{n}", "+1 {a} {e} {n} ext. 204", "({a}) {e}-{n}", "{a}-{e}-{n}",
                           "{a}.{e}.{n}", "{a} {e} {n}", "+1 {a} {e} {n}",
                           "+1-{a}-{e}-{n}", "1 ({a}) {e}-{n}", "+1{a}{e}{n}", "1-{a}-{e}-{n}", "+1 ({a}) {e}-{n}"])
        return form.format(a=a, e=e, n=n)
    return rng.choice([
        lambda: f"+44 20 7{digits(3)} {digits(4)}", lambda: f"+44 7{rng.choice('45789')}{digits(2)} {digits(6)}",
        lambda: f"0044 161 {rng.randint(2, 9)}{digits(2)} {digits(4)}", lambda: f"+44 (0)20 7{digits(3)} {digits(4)}",
        lambda: f"+49 30 {rng.randint(2, 9)}{digits(7)}", lambda: f"+49 151 {digits(8)}",
        lambda: f"0049 89 {rng.randint(2, 9)}{digits(6)}",
        lambda: f"+33 6 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda: f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda: f"+91 9{digits(4)} {digits(5)}", lambda: f"+61 4{digits(2)} {digits(3)} {digits(3)}",
        lambda: f"+81 3-{digits(4)}-{digits(4)}", lambda: f"+81 90-{digits(4)}-{digits(4)}",
        lambda: f"+55 11 9{digits(4)}-{digits(4)}", lambda: f"+34 6{digits(2)} {digits(3)} {digits(3)}",
        lambda: f"+39 3{rng.randint(2, 4)}{digits(1)} {digits(3)} {digits(4)}",
        lambda: f"+52 55 {rng.randint(2, 9)}{digits(3)} {digits(4)}",
        lambda: f"+31 6 {rng.randint(1, 5)}{digits(7)}",
        lambda: f"+48 {rng.choice('5678')}{digits(2)} {digits(3)} {digits(3)}",
    ])()


def luhn_complete(partial: str) -> str:
    total = 0
    for i, d in enumerate(reversed(partial)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return partial + str((10 - total % 10) % 10)


# published test prefixes of the card networks (Visa 4111/4242/4000, Mastercard 5555/5105/2223,
# Amex 3782/3714, Discover 6011, JCB 3530/3566, Diners 3056/3852)
CARD_PREFIXES = [("411111", 16), ("424242", 16), ("400005", 16), ("555555", 16), ("510510", 16), ("222300", 16),
                 ("378282", 15), ("371449", 15), ("601111", 16), ("601100", 16), ("353011", 16), ("356600", 16),
                 ("305693", 14), ("385200", 14), ("411111", 19)]


def card_digits() -> str:
    prefix, length = rng.choice(CARD_PREFIXES)
    return luhn_complete(prefix + digits(length - len(prefix) - 1))


def card() -> str:
    number = card_digits()
    if len(number) == 15:
        parts = [number[:4], number[4:10], number[10:]]
    else:
        parts = [number[i:i + 4] for i in range(0, len(number), 4)]
    return rng.choice(["", " ", " ", "-"]).join(parts)


# BBAN layouts (n digits, a upper letters, c alphanumerics) of countries with no national check
IBAN_LAYOUTS = {"DE": "18n", "GB": "4a14n", "NL": "4a10n", "CH": "5n12c", "AT": "16n", "PL": "24n",
                "IE": "4a14n", "DK": "14n", "FR": "10n11c2n", "IT": "1a10n12c", "LU": "3n13c", "SE": "20n"}


def _bban(layout: str) -> str:
    pools = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    return "".join(chars(int(n), pools[k]) for n, k in re.findall(r"(\d+)([nac])", layout))


def iban_compact(country: str | None = None, good: bool = True) -> str:
    country = country or rng.choice(sorted(IBAN_LAYOUTS))
    bban = _bban(IBAN_LAYOUTS[country])
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not good:
        check = (check + rng.randint(1, 90)) % 97 + 2
    return f"{country}{check:02d}{bban}"


def iban() -> str:
    number = iban_compact()
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4)) if rng.random() < 0.6 else number


def ip() -> str:
    r = rng.random()
    if r < 0.35:
        first = rng.choice([23, 45, 81, 93, 104, 151, 185, 203, 198])
        return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if r < 0.6:
        return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])
    groups = [f"{rng.randint(0, 65535):x}" for _ in range(8)]
    if r < 0.8:
        return "2001:db8:" + ":".join(groups[2:])
    return rng.choice([f"2001:db8::{groups[0]}:{groups[1]}", f"fe80::{groups[0]}:{groups[1]}:{groups[2]}",
                       f"2a02:{groups[0]}:{groups[1]}::{groups[2]}", f"::ffff:192.0.2.{rng.randint(1, 254)}"])


KEY_COUNT = [0]


def api_key() -> str:
    """Keys in each vendor's format, taken in turn so that every format appears."""
    lower = string.ascii_lowercase + string.digits
    KEY_COUNT[0] += 1
    formats = [
        lambda: "AKIA" + chars(16, string.ascii_uppercase + string.digits),
        lambda: rng.choice(["ghp_", "gho_", "ghs_"]) + chars(36),
        lambda: "glpat-" + chars(20, string.ascii_letters + string.digits + "_-"),
        lambda: f"xoxb-{digits(12)}-{digits(13)}-{chars(24)}",
        lambda: "sk_live_" + chars(24), lambda: "sk_test_" + chars(24), lambda: "rk_live_" + chars(24),
        lambda: "sk-proj-" + chars(48, string.ascii_letters + string.digits + "_-"),
        lambda: "sk-" + chars(48), lambda: "sk-ant-api03-" + chars(40, string.ascii_letters + string.digits + "_-"),
        lambda: "AIza" + chars(35, string.ascii_letters + string.digits + "_-"),
        lambda: "hf_" + chars(34), lambda: "github_pat_" + chars(22) + "_" + chars(59),
        lambda: f"xoxp-{digits(11)}-{digits(11)}-{digits(13)}-{chars(32, lower)}",
        lambda: f"SG.{chars(22)}.{chars(43)}", lambda: "SK" + chars(32, lower),
        lambda: f"{digits(9)}:{chars(35)}",  # Telegram bot token
    ]
    return formats[KEY_COUNT[0] % len(formats)]()


def bearer() -> str:
    return chars(rng.randint(24, 64), string.ascii_letters + string.digits + "._-")


def basic_credentials() -> str:
    import base64

    return base64.b64encode(f"{rng.choice(FIRST)}:{password()}".encode()).decode()


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt() -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": digits(8), "name": rng.choice(FIRST), "iat": 1700000000 + rng.randint(0, 10**7)}
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(bytes(rng.randrange(256) for _ in range(32)))}"


def password() -> str:
    return chars(rng.randint(10, 20), string.ascii_letters + string.digits + "!#%*-_.")


def url_password() -> str:
    """A password as it stands in a URL (reserved characters would be percent-encoded)."""
    return chars(rng.randint(10, 20), string.ascii_letters + string.digits + "-_.~")


def ipv4() -> str:
    """An address that a port may follow (an IPv6 one would need brackets there)."""
    address = ip()
    return address if "." in address and ":" not in address else f"203.0.113.{rng.randint(1, 254)}"


def private_key() -> str:
    body = "\n".join(chars(64, string.ascii_letters + string.digits + "+/") for _ in range(4))
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"])
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


NATIONAL = {
    "GB": lambda: rng.choice([f"020 7{digits(3)} {digits(4)}", f"07{rng.choice('45789')}{digits(2)} {digits(6)}",
                              f"0161 {rng.randint(2, 9)}{digits(2)} {digits(4)}"]),
    "DE": lambda: rng.choice([f"030 {rng.randint(2, 9)}{digits(7)}", f"0151 {digits(8)}",
                              f"(089) {rng.randint(2, 9)}{digits(6)}"]),
    "FR": lambda: rng.choice([f"06 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
                              f"01.{digits(2)}.{digits(2)}.{digits(2)}.{digits(2)}"]),
}
REGION = "US"  # the region of the row being rendered (national phone formats follow it)


def national_phone() -> str:
    return NATIONAL[REGION]()


LABELLED = {"LOCALPHONE": national_phone, "EMAIL": email, "PHONE": phone, "CARD": card, "IBAN": iban, "IP": ip,
            "API_KEY": api_key, "BEARER_TOKEN": bearer, "JWT": jwt, "PASSWORD": password, "URLPASS": url_password,
            "BASIC": basic_credentials,
            "PRIVATE_KEY": private_key, "IPV4": ipv4}
# the kinds a slot is labelled as (JWTs, passwords and private keys are all SECRET)
KIND_OF = {"LOCALPHONE": "PHONE", "BASIC": "BEARER_TOKEN", "JWT": "SECRET", "PASSWORD": "SECRET", "URLPASS": "SECRET",
           "PRIVATE_KEY": "SECRET", "IPV4": "IP"}


# ---- hard negatives (left unlabelled) ----------------------------------------------------------

def _isbn13() -> str:
    body = "978" + digits(9)
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:7]}-{body[7:12]}-{check}"


def _ean13() -> str:
    body = rng.choice(["400", "401", "590", "871", "500"]) + digits(9)
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    return f"{body}{check}"


def _bad_card() -> str:
    number = card_digits()
    number = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))


NEGATIVES = {
    "order": lambda: rng.choice([f"#{digits(6)}", f"ORD-2024-{digits(6)}", f"#A{digits(5)}", f"no. {digits(9)}",
                                 f"{rng.randint(100000, 999999)}"]),
    "date": lambda: rng.choice([
        f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/2024",
        f"March {rng.randint(1, 28)}, 2025",
        f"2025-01-{rng.randint(10, 28)}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"]),
    "price": lambda: rng.choice([f"${rng.randint(1, 2000)}.{digits(2)}", f"€{rng.randint(1, 999)},{digits(2)}",
                                 f"${rng.randint(1, 99)},{digits(3)}.00", f"{rng.randint(1, 500)} USD"]),
    "version": lambda: rng.choice([
        f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}",
        f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        f"Python 3.{rng.randint(8, 13)}.{rng.randint(0, 9)}",
        f"build {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(100, 999)}"]),
    "uuid": lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "colour": lambda: "#" + chars(6, "0123456789abcdef"),
    "isbn": _isbn13,
    "tracking": lambda: rng.choice([f"1Z{chars(6, string.ascii_uppercase + string.digits)}{digits(10)}",
                                    f"9400 {digits(4)} {digits(4)} {digits(4)} {digits(4)} {digits(2)}",
                                    f"JD{digits(18)}"]),
    "badcard": _bad_card,
    "badiban": lambda: iban_compact(good=False),
    "sha": lambda: chars(40, "0123456789abcdef"),
    "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
    "localip": lambda: rng.choice(["127.0.0.1", "0.0.0.0", "localhost", "[::1]"]),
    "qty": lambda: str(rng.randint(1, 40)),
    "invoice": lambda: rng.choice([f"INV-{digits(8)}", f"{digits(8)}-{digits(4)}",
                                   f"invoice no. {rng.randint(1, 9)}{digits(9)}"]),
    "ean": lambda: _ean13(),
    "section": lambda: f"section {rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}",
    "gitssh": lambda: f"git@github.com:{rng.choice(LAST)}/shop.git",
    "mention": lambda: "@" + rng.choice(FIRST) + rng.choice(["", "_dev", "42"]),
    "mac": lambda: ":".join(chars(2, "0123456789ABCDEF") for _ in range(6)),
    "zip": lambda: rng.choice([digits(5), f"{digits(5)}-{digits(4)}", "SW1A 1AA", "10115"]),
    "user": lambda: rng.choice(FIRST).capitalize(),
    "filename": lambda: rng.choice(["logo@2x.png", "icon@3x.webp", "lodash@4.17.21", "root@localhost", "@types/node"]),
}

SCENARIOS = {
    "support": [
        "Hi, I'm {user}. I can't log in since {date}. My account e-mail is {EMAIL}, you can call me on {PHONE}.",
        "Order {order} never arrived (tracking {tracking}). Please reach me at {EMAIL} or {PHONE} before {date}.",
        "Please update my contact details: new phone {PHONE}, old one was {PHONE}. E-mail stays {EMAIL}.",
        "Our admin {user} ({EMAIL}) sees errors from {IP} since {version}. Request id {uuid}.",
        "The refund of {price} for order {order} should go to {IBAN}, account holder {user}.",
        "I paid {price} twice with card {CARD} on {date}; order {order}. Can you refund one?",
        "Change my payout account from {IBAN} to {IBAN}, please. Reference {order}.",
        "Hello, the invoice for {price} lists the wrong IBAN. Correct one: {IBAN}. Thanks, {user}",
        "Login attempts from {IP} and {IP} at {time}; my e-mail is {EMAIL}. Is my account safe?",
        "I typed the wrong number {badcard} first, then {CARD}. Only the second should be charged ({price}).",
        "Why was {badiban} rejected? My colleague's {IBAN} worked fine on {date}.",
        "Ping me on WhatsApp {PHONE} or email {EMAIL}; I'm away till {date}. Ticket {order}.",
        "Shipping to {zip}, {qty} items, total {price}. Contact: {PHONE}, {EMAIL}.",
        "The book with ISBN {isbn} arrived damaged. Order {order}, tracking {tracking}. Call {PHONE}.",
        "Thanks {mention}! {invoice} is paid; barcode {ean} on the box. Questions to <{EMAIL}> or {PHONE}.",
        "See section 3 of the terms ({section}). Your agent {user} wrote from mailto:{EMAIL} on {date}.",
        "Device MAC {mac} shows {IP} in the router page; I'm on {version}. Call back {PHONE}.",
    ],
    "checkout": [
        "Checkout fails with card {CARD} (exp 12/27). Order {order}, total {price}, placed {date}.",
        "Can I pay {price} by bank transfer to {IBAN} instead of card {CARD}?",
        "Your page shows {colour} buttons and a total of {price}; my card {CARD} was declined at {time}.",
        "Billing: {user}, {EMAIL}, {PHONE}, card {CARD}, zip {zip}. Quantity {qty}.",
        "Apple Pay failed so I used {CARD}; the receipt went to {EMAIL}. Order {order}.",
        "Direct debit mandate for {IBAN}, amount {price}, first collection on {date}.",
        "Gift card {order} plus card {CARD} for the rest ({price}). Deliver to {zip}.",
        "My card {badcard} is rejected but {CARD} works. Same price {price} on {date}.",
    ],
    "code": [
        "Why does this fail?\n```python\nclient = OpenAI(api_key=\"{API_KEY}\")\n"
        "resp = client.chat.completions.create(model=\"gpt-4.1\")\n```\nI'm on {version}.",
        "curl -H \"Authorization: Bearer {BEARER_TOKEN}\" https://api.example.com/v1/orders/{order}",
        "export AWS_ACCESS_KEY_ID={API_KEY}\nexport REGION=eu-west-1\n# commit {sha}",
        "My config:\n```yaml\ndatabase:\n  host: {IP}\n  password: \"{PASSWORD}\"\n  pool: {qty}\n```",
        "DATABASE_URL=postgres://app:{URLPASS}@{IPV4}:5432/shop\nREDIS_URL=redis://{localip}:6379",
        "headers = {{\"Authorization\": \"Bearer {BEARER_TOKEN}\", \"X-Request-Id\": \"{uuid}\"}}",
        "This token keeps expiring: {JWT}\nServer time {time}, app {version}.",
        "I pasted my key by mistake:\n{PRIVATE_KEY}\nplease ignore it. Build {sha}",
        "stripe.api_key = \"{API_KEY}\"  # set on {date}\nprint(total)  # {price}",
        "git remote add origin https://{user}:{URLPASS}@git.example.com/team/app.git",
        "requests.get(url, headers={{\"x-api-key\": \"{API_KEY}\"}})  # fails since {version}",
        "Logs: {time} connect {IP} -> {IP} refused; retry in 5s ({uuid})",
        "In my .env I have SLACK_TOKEN={API_KEY} and GITHUB_TOKEN={API_KEY}; CI run {order}.",
        "nginx listens on {localip}:8080 but clients come from {IP}; colour {colour}, asset {filename}",
        "`pip install gradeloop=={version}` fails; my HF token is {API_KEY}",
        "Send alerts to {EMAIL} and the pager {PHONE}; webhook secret in config is password=\"{PASSWORD}\"",
        "const token = \"{JWT}\"; // from /auth on {date}\nconsole.log({qty});",
        "git clone {gitssh} fails; `curl -H 'Authorization: Basic {BASIC}' {localip}` works.",
        "{{\"model\": \"gpt-4.1\", \"user\": \"{EMAIL}\", "
        "\"metadata\": {{\"ip\": \"{IP}\", \"order\": \"{invoice}\"}}}}",
        "Fine-grained token {API_KEY} in the Action, repo {gitssh}, barcode {ean}.",
    ],
}


def render(template: str) -> tuple[str, list[dict]]:
    text, spans, last = "", [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        text += template[last:m.start()].replace("{{", "{").replace("}}", "}")
        slot = m.group(1)
        value = LABELLED[slot]() if slot in LABELLED else NEGATIVES[slot]()
        if slot in LABELLED:
            spans.append({"start": len(text), "end": len(text) + len(value), "kind": KIND_OF.get(slot, slot)})
        text += value
        last = m.end()
    text += template[last:].replace("{{", "{").replace("}}", "}")
    return text, spans


# texts from users of one country, national phone formats: redacted with that region
REGIONAL = [
    "Hi, please ring me on {LOCALPHONE} after 6pm, or on my mobile {LOCALPHONE}. Order {order}, {price}.",
    "Delivery on {date} failed; call {LOCALPHONE} ({user}) or write to {EMAIL}. Postcode {zip}.",
    "My new number is {LOCALPHONE}; refunds to {IBAN} please. Ticket {invoice}.",
]


def main() -> None:
    global REGION
    rows = []
    for scenario, templates in SCENARIOS.items():
        for i in range(90 if scenario == "code" else 70):
            text, spans = render(templates[i % len(templates)])
            rows.append({"id": f"{scenario}-{i:03d}", "scenario": scenario, "region": "US", "text": text,
                         "spans": spans})
    for i in range(36):
        REGION = sorted(NATIONAL)[i % len(NATIONAL)]
        text, spans = render(REGIONAL[i % len(REGIONAL)])
        rows.append({"id": f"regional-{i:03d}", "scenario": "regional", "region": REGION, "text": text, "spans": spans})
    with OUT.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        for span in row["spans"]:
            counts[span["kind"]] = counts.get(span["kind"], 0) + 1
    print(f"{len(rows)} texts, {sum(counts.values())} spans: {counts}")


if __name__ == "__main__":
    main()
