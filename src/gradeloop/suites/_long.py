"""What the long-context suites share: token lengths (``8k``, ``1M``), the published length bins,
reading published records (JSONL or Parquet), and writing an eval folder.

Bins are OpenAI-MRCR's: ``(4096, 8192]``, ``(8192, 16384]``, … ``(524288, 1048576]`` tokens,
each named by its upper edge (8192 … 1048576).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["BIN_EDGES", "NATIVE", "length_bin", "parse_tokens", "parse_list", "read_records", "write_eval",
           "variants"]

BIN_EDGES = (4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
MAX_TOKENS = 2 * 1048576
NATIVE = "native"  # a suite's published prompt form, as a layout name


def length_bin(tokens: int) -> int:
    """The upper edge of the published bin ``tokens`` falls in: 8192 for (4096, 8192], … 1048576 for
    (524288, 1048576]; 4096 at or below 4096, and the next power of two above 1M. An integer, like
    the needles suite's ``length_bin``, so ``eval show`` orders bins and finds the effective length."""
    if tokens <= BIN_EDGES[0]:
        return BIN_EDGES[0]
    edge = BIN_EDGES[0]
    while edge < tokens:
        edge *= 2
    return edge


def variants(layouts: list[str] | None, placements: list[str] | None,
             default_placement: str) -> list[tuple[str, str]]:
    """The ``(layout, placement)`` pairs to write for a suite with a published form: ``native``
    once (placement ``native``: the published prompt has its own), each document layout once
    per placement (``default_placement`` when none is given). Raises InputError when placements
    are given but only ``native`` is asked for (they would change nothing)."""
    from ._layout import LAYOUTS, PLACEMENTS

    layouts = layouts or [NATIVE]
    for name in layouts:
        if name not in (NATIVE, *LAYOUTS):
            raise InputError(f"unknown layout '{name}' (known: {', '.join((NATIVE, *LAYOUTS))})", field="layout")
    for name in placements or []:
        if name not in PLACEMENTS:
            raise InputError(f"unknown placement '{name}' (known: {', '.join(PLACEMENTS)})", field="placement")
    if placements and layouts == [NATIVE]:
        raise InputError("placement applies to the document layouts (xml, pipe, json); the native layout keeps "
                         "the published prompt", field="placement")
    return [(layout, NATIVE if layout == NATIVE else placement) for layout in layouts
            for placement in ([NATIVE] if layout == NATIVE else placements or [default_placement])]


def parse_tokens(text: str, field: str = "tokens") -> list[int]:
    """``"8k,32k,1M"`` → ``[8192, 32768, 1048576]`` (k = 1024, M = 1024²; plain numbers are tokens).
    Raises InputError naming ``field`` on a bad size."""
    sizes = []
    for part in text.split(","):
        match = _SIZE.match(part)
        if not match:
            raise InputError(f"{part.strip()!r} is not a length (e.g. 8k, 128k, 1M or 5000)", field=field)
        scale = {"": 1, "k": 1024, "m": 1048576}[match.group(2).lower()]
        value = int(float(match.group(1)) * scale)
        if not 1024 <= value <= MAX_TOKENS:
            raise InputError(f"{part.strip()} is out of range (1k to 2M tokens)", field=field)
        sizes.append(value)
    return list(dict.fromkeys(sizes))


def parse_list(text: str, allowed: tuple[str, ...], field: str) -> list[str]:
    """A comma-separated list of names from ``allowed``; raises InputError naming ``field``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        if name not in allowed:
            raise InputError(f"unknown value {name!r} (one of: {', '.join(allowed)})", field=field)
    if not names:
        raise InputError(f"give at least one of: {', '.join(allowed)}", field=field)
    return list(dict.fromkeys(names))


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line or row number, record)`` from a JSONL or Parquet file (by its ``.parquet`` suffix or
    magic bytes). Raises InputError naming the file and line on unreadable input."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path))
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if path.suffix == ".parquet" or magic == b"PAR1":
        yield from _parquet_records(path)
        return
    from ..spec import read_jsonl

    for line, value in read_jsonl(path):
        if not isinstance(value, dict):
            raise InputError("each line must be a JSON object (one published record)", file=str(path), line=line)
        yield line, value


def _parquet_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install pyarrow", file=str(path)) from None
    try:
        table = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"not a readable Parquet file ({exc.__class__.__name__})", file=str(path)) from None
    row = 0
    for batch in table.iter_batches(batch_size=64):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def write_eval(out_dir: str | Path, definition: dict[str, Any], items: Iterator[dict[str, Any]] | list,
               header: str, rows_name: str = "rows.jsonl") -> dict[str, Any]:
    """Write ``eval.yaml`` and ``rows.jsonl`` (or ``rows_name``; one ``{"item": ...}`` line per item,
    written as they come so a long suite never sits in memory twice, under a temporary name until
    the last one); returns ``{"eval", "rows", "items"}``."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path, eval_path = out / rows_name, out / "eval.yaml"
    count, partial = 0, out / f"{rows_name}.partial"
    try:
        with open(partial, "w", encoding="utf-8", newline="\n") as handle:
            for item in items:
                handle.write(json.dumps({"item": item}, ensure_ascii=False) + "\n")
                count += 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(rows_path)
    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)
    eval_path.write_text(header + text, encoding="utf-8", newline="\n")
    return {"eval": str(eval_path), "rows": str(rows_path), "items": count}
