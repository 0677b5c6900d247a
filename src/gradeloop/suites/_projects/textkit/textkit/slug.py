"""URL-safe anchors for heading text."""

import re
import unicodedata

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 60) -> str:
    """Lower-case ASCII words of ``text`` joined by hyphens, at most ``max_length`` characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_WORD.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def unique_slug(text: str, taken: set) -> str:
    """A slug for ``text`` not in ``taken`` (adding -2, -3, …), which is added to ``taken``."""
    base = slugify(text) or "section"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug
