"""ATX headings (``# Title``) found in a Markdown document."""

import re
from dataclasses import dataclass

_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass
class Heading:
    """One heading: its level (1-6), its text and the 1-based line it is on."""

    level: int
    text: str
    line: int


def headings(markdown: str) -> list[Heading]:
    """The headings of ``markdown`` in order, skipping lines inside fenced code blocks."""
    found, in_fence = [], False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = None if in_fence else _ATX.match(line)
        if match:
            found.append(Heading(len(match.group(1)), match.group(2), number))
    return found
