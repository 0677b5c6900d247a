"""The cost of constrained decoding: ``local/smollm2`` with and without a ``json_schema``
response_format, through the continuous-batching engine.

Workload: ``--prompts`` ticket-triage style prompts sent at once, greedy, up to ``--new-tokens``
tokens. Columns: requests, completion tokens, wall seconds, tokens/s, how many answers parse
as JSON, and how many match the schema (checked with jsonschema). The schema is an object with
a label (enum), a priority (integer 1–5), a boolean and a short list of tags; the model is told
the schema in both rows, so the only difference is the token mask.

    .venv/bin/python bench/structured_output.py
    .venv/bin/python bench/structured_output.py --prompts 64 --new-tokens 96
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

TICKETS = ["My card was charged twice for one order.", "The app crashes when I open settings.",
           "I can't log in after resetting my password.", "My parcel has been stuck in transit for a week.",
           "How do I change the email on my account?", "The invoice shows the wrong VAT number.",
           "Exports time out for large projects.", "The courier left my package at the wrong address."]
SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["billing", "technical", "account", "shipping"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "needs_human": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["label", "priority", "needs_human", "tags"],
    "additionalProperties": False,
}
INSTRUCTION = ("Triage the support ticket. Answer with a JSON object only, matching this schema: "
               + json.dumps(SCHEMA))


async def run(provider, n: int, new_tokens: int, constrained: bool) -> dict:
    from gradeloop import GenerateRequest

    params = {"temperature": 0, "max_completion_tokens": new_tokens}
    if constrained:
        params["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "triage", "strict": True, "schema": SCHEMA}}
    requests = [GenerateRequest(messages=[{"role": "system", "content": INSTRUCTION},
                                          {"role": "user", "content": TICKETS[i % len(TICKETS)] + f" (#{i})"}],
                                params=params) for i in range(n)]
    start = time.perf_counter()
    results = await asyncio.gather(*(provider.generate(r) for r in requests))
    wall = time.perf_counter() - start
    import jsonschema

    parsed = valid = 0
    for r in results:
        try:
            data = json.loads(r.output_text)
        except ValueError:
            continue
        parsed += 1
        try:
            jsonschema.validate(data, SCHEMA)
            valid += 1
        except jsonschema.ValidationError:
            pass
    tokens = sum(r.usage.completion_tokens for r in results)
    return {"n": n, "tokens": tokens, "wall": wall, "parsed": parsed, "valid": valid}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=96)
    args = parser.parse_args()
    from gradeloop import get_provider

    provider = get_provider("local/smollm2")

    async def both():
        await run(provider, 2, 8, True)  # load the model and build the grammar tokenizer before timing
        return [(label, await run(provider, args.prompts, args.new_tokens, constrained))
                for label, constrained in (("plain (instruction only)", False), ("json_schema, constrained", True))]

    rows = asyncio.run(both())
    print(f"local/smollm2, {args.prompts} prompts at once, greedy, up to {args.new_tokens} tokens")
    print(f"{'decoding':<26}{'tokens':>8}{'wall s':>9}{'tokens/s':>10}{'parse':>8}{'schema':>8}")
    for label, r in rows:
        print(f"{label:<26}{r['tokens']:>8}{r['wall']:>9.1f}{r['tokens'] / r['wall']:>10.1f}"
              f"{r['parsed']:>5}/{r['n']:<2}{r['valid']:>5}/{r['n']:<2}")


if __name__ == "__main__":
    main()
