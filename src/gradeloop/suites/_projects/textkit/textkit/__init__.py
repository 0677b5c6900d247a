"""Helpers for Markdown documents: slugs, headings and a table of contents."""

from .headings import Heading, headings
from .slug import slugify
from .toc import table_of_contents

__all__ = ["Heading", "headings", "slugify", "table_of_contents"]
