"""A Markdown table of contents built from a document's headings."""

from .headings import headings
from .slug import unique_slug


def table_of_contents(markdown: str, max_level: int = 3) -> str:
    """A nested bullet list linking every heading up to ``max_level``; empty when there is none."""
    lines, taken = [], set()
    entries = [h for h in headings(markdown) if h.level <= max_level]
    if not entries:
        return ""
    top = min(h.level for h in entries)
    for heading in entries:
        indent = "  " * (heading.level - top)
        lines.append(f"{indent}- [{heading.text}](#{unique_slug(heading.text, taken)})")
    return "\n".join(lines) + "\n"
