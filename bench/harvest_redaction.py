"""Redaction throughput: records per second through ``Redactor.redact_record``.

    PYTHONPATH=src .venv/bin/python bench/harvest_redaction.py [--records 1000]

Builds chat records (a system prompt, the user turn from the labelled redaction set, an
assistant answer, and the raw request and response bodies, as the proxy and the importers
store them), redacts each once with every kind on, and prints records/s and the share of time
each finder takes. Single process, one core.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from gradeloop.harvest import Redactor, from_chat

SET = Path(__file__).parents[1] / "tests" / "data" / "harvest" / "redaction_labelled.jsonl"
SYSTEM = ("You are the support assistant of an online shop. Answer in two or three sentences, in the "
          "customer's language. Never promise refunds above 200 EUR; hand those to a human agent. "
          "Orders ship within 3 working days; returns are accepted for 30 days. Do not ask for full "
          "card numbers. Reply in plain text, no markdown, and end with the ticket number.")


def records(n: int) -> list:
    texts = [json.loads(line)["text"] for line in SET.read_text(encoding="utf-8").splitlines()]
    out = []
    for i in range(n):
        text = texts[i % len(texts)]
        request = {"model": "gpt-4.1-mini", "messages": [{"role": "system", "content": SYSTEM},
                                                         {"role": "user", "content": text}]}
        answer = (f"Thanks for writing. I have noted your message ({text[:80]}) and a colleague will reply "
                  f"today. Ticket {i}.")
        response = {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "gpt-4.1-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}}
        out.append(from_chat(request, response))
    return out


def finder_shares(redactor: Redactor, sample: list) -> Counter:
    """Seconds spent in each finder over every string of ``sample``."""
    strings = [s for r in sample for s in _strings([r.messages, r.output, r.request, r.response])]
    spent: Counter = Counter()
    for kind, find in redactor.finders:
        start = time.perf_counter()
        for s in strings:
            find(s)
        spent[kind] += time.perf_counter() - start
    return spent


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [s for v in value for s in _strings(v)] if isinstance(value, list) else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    batch = records(args.records)
    redactor = Redactor()
    redactor.redact_record(batch[0])  # warm: plugin classes and phone metadata load on first use
    start = time.perf_counter()
    for record in batch:
        redactor.redact_record(record)
    elapsed = time.perf_counter() - start
    chars = sum(len(s) for r in batch for s in _strings([r.messages, r.output, r.request, r.response]))
    print(f"{args.records} records, {chars / args.records:,.0f} characters each: {elapsed:.2f} s, "
          f"{args.records / elapsed:,.0f} records/s")
    shares = finder_shares(redactor, batch[:200])
    total = sum(shares.values())
    print("finder        share of time")
    for kind, seconds in shares.most_common():
        print(f"{kind:<13} {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
