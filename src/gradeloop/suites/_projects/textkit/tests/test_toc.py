from textkit import headings, table_of_contents

DOC = """# Guide

Some text.

## Install ##

```
# not a heading
```

### From source
## Use
#### Too deep
"""


def test_headings_skip_code_fences_and_closing_hashes():
    found = headings(DOC)
    assert [(h.level, h.text, h.line) for h in found] == [
        (1, "Guide", 1), (2, "Install", 5), (3, "From source", 11), (2, "Use", 12), (4, "Too deep", 13)]


def test_table_of_contents_nests_from_the_top_level():
    assert table_of_contents(DOC) == (
        "- [Guide](#guide)\n"
        "  - [Install](#install)\n"
        "    - [From source](#from-source)\n"
        "  - [Use](#use)\n")


def test_table_of_contents_max_level_and_duplicates():
    doc = "## A\n## A\n### B\n"
    assert table_of_contents(doc, max_level=2) == "- [A](#a)\n- [A](#a-2)\n"


def test_no_headings():
    assert table_of_contents("plain text\n") == ""
