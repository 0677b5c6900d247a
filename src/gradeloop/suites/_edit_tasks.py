"""The task table of the code-edits suite: what to change in the projects under ``_projects/``.

Each task is a list of exact text edits on a project's pristine tree. For a ``bugfix`` the edits
put the bug in (the start tree is the pristine tree with them applied, the reference is the
pristine tree); for every other kind they make the change (start = pristine, reference = edited,
its tests included). A ``rename`` is a whole-word replacement in every file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TaskSpec", "TASKS"]


@dataclass(frozen=True)
class TaskSpec:
    """One task: ``edits`` are ``(path, old, new)`` on the pristine tree (``new`` may create a file
    when ``old`` is empty); ``rename`` is ``(old identifier, new identifier)``; ``context`` the files
    shown to the model."""

    task_id: str
    kind: str
    instruction: str
    context: tuple[str, ...]
    edits: tuple[tuple[str, str, str], ...] = ()
    rename: tuple[str, str] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def project(self) -> str:
        """The project's name: the task id up to its first hyphen."""
        return self.task_id.split("-", 1)[0]


def _bug(task_id: str, instruction: str, context: tuple[str, ...], *edits: tuple[str, str, str]) -> TaskSpec:
    return TaskSpec(task_id, "bugfix", instruction, context, tuple(edits))


def _change(task_id: str, kind: str, instruction: str, context: tuple[str, ...],
            *edits: tuple[str, str, str]) -> TaskSpec:
    return TaskSpec(task_id, kind, instruction, context, tuple(edits))


def _rename(task_id: str, old: str, new: str, context: tuple[str, ...], what: str) -> TaskSpec:
    instruction = (f"Rename the {what} `{old}` to `{new}` everywhere in the project: its definition, every "
                   f"import and call site, the package exports and the tests. Do not keep the old name as an "
                   f"alias and do not change behaviour.")
    return TaskSpec(task_id, "rename", instruction, context, rename=(old, new))


_INV = ("inventory/stock.py", "inventory/models.py")
_PRICE = ("inventory/pricing.py", "inventory/stock.py")
_TOC = ("textkit/toc.py", "textkit/headings.py", "textkit/slug.py")
_CONF = ("confparse/parser.py", "confparse/cli.py")
_IV = ("intervals/interval.py", "intervals/merge.py")

INVENTORY = [
    _bug("inventory-bugfix-1", "`Stock.low_stock()` leaves out items whose quantity equals their reorder level. "
         "An item at or below its reorder level must be listed.", _INV,
         ("inventory/stock.py", "self._levels[sku] <= item.reorder_level", "self._levels[sku] < item.reorder_level")),
    _bug("inventory-bugfix-2", "Removing every unit of an item raises `OutOfStock`. Taking out exactly the "
         "quantity on hand must work and leave 0.", _INV,
         ("inventory/stock.py", "if units > self._levels[sku]:", "if units >= self._levels[sku]:")),
    _bug("inventory-bugfix-3", "`unit_price` rounds the discount down instead of the discounted price: a 199-cent "
         "item at 15% off costs 170 cents but must cost 169 (the discounted price, rounded down).", _PRICE,
         ("inventory/pricing.py", "return price * (100 - discount_percent) // 100",
          "return price - price * discount_percent // 100")),
    _bug("inventory-bugfix-4", "Registering a second item with an SKU that is already in the catalogue silently "
         "replaces the first and resets its stock to 0. `Stock.register` must raise `ValueError` instead.", _INV,
         ("inventory/stock.py", '        if item.sku in self._items:\n            raise ValueError(f"duplicate SKU '
          '{item.sku}")\n', "")),
    _bug("inventory-bugfix-5", "`unit_price` accepts negative discounts, which raise the price. Any discount outside "
         "0 to 100 must raise `ValueError`.", _PRICE,
         ("inventory/pricing.py", "if not 0 <= discount_percent <= 100:", "if discount_percent > 100:")),
    _change("inventory-feature-1", "feature",
            "Give `Item` a `category` field (a string, default \"general\", after `reorder_level`) and add "
            "`Stock.skus_in(category)`, which returns the sorted SKUs of the registered items in that category "
            "(an empty list when there are none).", _INV,
            ("inventory/models.py", "    reorder_level: int = 5\n",
             '    reorder_level: int = 5\n    category: str = "general"\n'),
            ("inventory/stock.py", '    def skus(self) -> list[str]:',
             '    def skus_in(self, category: str) -> list[str]:\n        """The SKUs of the items in '
             '``category``, sorted."""\n        return sorted(sku for sku, item in self._items.items() if '
             'item.category == category)\n\n    def skus(self) -> list[str]:'),
            ("tests/test_stock.py", "def test_item_validation():",
             'def test_skus_in_category():\n    stock = make_stock()\n    stock.register(Item("C3", "washer", 2, '
             'category="hardware"))\n    stock.register(Item("D4", "glue", 300, category="hardware"))\n    assert '
             'stock.skus_in("hardware") == ["C3", "D4"]\n    assert stock.skus_in("general") == ["A1", "B2"]\n    '
             'assert stock.skus_in("paint") == []\n\n\ndef test_item_validation():')),
    _change("inventory-feature-2", "feature",
            "Add `order_price(stock, sku, units)` to `inventory/pricing.py`: the price in cents of `units` units of "
            "`sku`, where orders of 100 units or more get 10% off each unit (the unit price rounded down as "
            "`unit_price` does). `units` must be positive (else `ValueError`). Export it from the `inventory` "
            "package.", ("inventory/pricing.py", "inventory/__init__.py"),
            ("inventory/pricing.py", "def stock_value(stock: Stock) -> int:",
             'def order_price(stock: Stock, sku: str, units: int) -> int:\n    """The price in cents of ``units`` '
             'units of ``sku``, 10% off each unit from 100 units."""\n    if units <= 0:\n        raise '
             'ValueError("units must be positive")\n    return unit_price(stock, sku, 10 if units >= 100 else 0) * '
             'units\n\n\ndef stock_value(stock: Stock) -> int:'),
            ("inventory/__init__.py", "from .pricing import stock_value, unit_price",
             "from .pricing import order_price, stock_value, unit_price"),
            ("inventory/__init__.py", '__all__ = ["Item", "Stock", "stock_value", "unit_price"]',
             '__all__ = ["Item", "Stock", "order_price", "stock_value", "unit_price"]'),
            ("tests/test_pricing.py", "from inventory import Item, Stock, stock_value, unit_price",
             "from inventory import Item, Stock, order_price, stock_value, unit_price"),
            ("tests/test_pricing.py", "def test_empty_stock_is_worth_nothing():",
             'def test_order_price_bulk_discount():\n    stock = make_stock()\n    assert order_price(stock, "B2", 99) '
             '== 99 * 199\n    assert order_price(stock, "B2", 100) == 100 * 179\n    with pytest.raises(ValueError):'
             '\n        order_price(stock, "A1", 0)\n\n\ndef test_empty_stock_is_worth_nothing():')),
    _change("inventory-api_change-1", "api_change",
            "Change `unit_price` to take the item itself instead of a stock and an SKU: "
            "`unit_price(item: Item, discount_percent: int = 0) -> int`. Update `stock_value` and the tests "
            "to the new signature; the package keeps exporting `unit_price`.",
            ("inventory/pricing.py", "tests/test_pricing.py"),
            ("inventory/pricing.py", "from .stock import Stock\n", "from .models import Item\nfrom .stock import Stock\n"),
            ("inventory/pricing.py", "def unit_price(stock: Stock, sku: str, discount_percent: int = 0) -> int:\n"
             '    """The price of one unit of ``sku`` in cents',
             'def unit_price(item: Item, discount_percent: int = 0) -> int:\n    """The price of one unit of ``item`` '
             "in cents"),
            ("inventory/pricing.py", "price = stock.item(sku).price_cents", "price = item.price_cents"),
            ("inventory/pricing.py", "unit_price(stock, sku) * stock.quantity(sku)",
             "unit_price(stock.item(sku)) * stock.quantity(sku)"),
            ("tests/test_pricing.py", 'assert unit_price(stock, "A1") == 25\n    assert unit_price(stock, "B2", '
             'discount_percent=15) == 169\n    assert unit_price(stock, "A1", discount_percent=100) == 0',
             'assert unit_price(stock.item("A1")) == 25\n    assert unit_price(stock.item("B2"), discount_percent=15) '
             '== 169\n    assert unit_price(stock.item("A1"), discount_percent=100) == 0'),
            ("tests/test_pricing.py", 'unit_price(stock, "A1", discount_percent=101)',
             'unit_price(stock.item("A1"), discount_percent=101)'),
            ("tests/test_pricing.py", 'unit_price(stock, "A1", discount_percent=-5)',
             'unit_price(stock.item("A1"), discount_percent=-5)')),
    _change("inventory-api_change-2", "api_change",
            "Make `Stock.low_stock()` return a dict mapping each SKU at or below its reorder level to its quantity "
            "on hand (keys in SKU order) instead of a list of SKUs, and update the tests.",
            ("inventory/stock.py", "tests/test_stock.py"),
            ("inventory/stock.py", '    def low_stock(self) -> list[str]:\n        """SKUs at or below their '
             'reorder level, sorted."""\n        return sorted(sku for sku, item in self._items.items() if '
             'self._levels[sku] <= item.reorder_level)',
             '    def low_stock(self) -> dict[str, int]:\n        """SKU → quantity for the items at or below '
             'their reorder level, in SKU order."""\n        return {sku: self._levels[sku] for sku in self.skus()\n'
             '                if self._levels[sku] <= self._items[sku].reorder_level}'),
            ("tests/test_stock.py", 'assert stock.low_stock() == ["A1"]', 'assert stock.low_stock() == {"A1": 10}'),
            ("tests/test_stock.py", 'assert stock.low_stock() == ["A1", "B2"]',
             'assert stock.low_stock() == {"A1": 10, "B2": 5}')),
    _rename("inventory-rename-1", "low_stock", "needs_reorder", _INV + ("tests/test_stock.py",), "method"),
    _rename("inventory-rename-2", "stock_value", "inventory_value",
            ("inventory/pricing.py", "inventory/__init__.py", "tests/test_pricing.py"), "function"),
]

TEXTKIT = [
    _bug("textkit-bugfix-1", "`headings()` misses every heading after the first fenced code block: the closing "
         "```` ``` ```` fence does not end the block.", ("textkit/headings.py", "textkit/toc.py"),
         ("textkit/headings.py", "in_fence = not in_fence", "in_fence = True")),
    _bug("textkit-bugfix-2", "`slugify` can return a slug that ends in a hyphen when it cuts the text at "
         "`max_length` (\"abc def\" with max_length=4 gives \"abc-\"). Slugs must never end in a hyphen.",
         ("textkit/slug.py", "textkit/toc.py"),
         ("textkit/slug.py", 'return slug[:max_length].rstrip("-")', "return slug[:max_length]")),
    _bug("textkit-bugfix-3", "`unique_slug` numbers the first duplicate `-1`; the numbering must go intro, "
         "intro-2, intro-3.", ("textkit/slug.py", "textkit/toc.py"),
         ("textkit/slug.py", "slug, n = base, 1", "slug, n = base, 0")),
    _bug("textkit-bugfix-4", "`table_of_contents` indents from level 1 even when the shallowest heading shown is "
         "deeper, so a document of `##` headings comes out indented. Nest relative to the shallowest heading "
         "in the table.", _TOC,
         ("textkit/toc.py", 'indent = "  " * (heading.level - top)', 'indent = "  " * (heading.level - 1)')),
    _bug("textkit-bugfix-5", "Headings written with closing hashes keep them: `## Install ##` gives the text "
         "\"Install ##\". The optional closing sequence of `#` must be dropped from the text.",
         ("textkit/headings.py", "textkit/toc.py"),
         ("textkit/headings.py", r'_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")',
          r'_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*$")')),
    _change("textkit-feature-1", "feature",
            "Give `table_of_contents` a `min_level` parameter (default 1, after `max_level`): headings shallower "
            "than it are left out of the table, and nesting starts from the shallowest heading that remains.",
            _TOC,
            ("textkit/toc.py", "def table_of_contents(markdown: str, max_level: int = 3) -> str:\n"
             '    """A nested bullet list linking every heading up to ``max_level``; empty when there is none."""',
             "def table_of_contents(markdown: str, max_level: int = 3, min_level: int = 1) -> str:\n"
             '    """A nested bullet list linking every heading from ``min_level`` to ``max_level``; empty when '
             'there is none."""'),
            ("textkit/toc.py", "if h.level <= max_level]", "if min_level <= h.level <= max_level]"),
            ("tests/test_toc.py", "def test_no_headings():",
             'def test_table_of_contents_min_level():\n    assert table_of_contents(DOC, min_level=2) == (\n'
             '        "- [Install](#install)\\n"\n        "  - [From source](#from-source)\\n"\n'
             '        "- [Use](#use)\\n")\n\n\ndef test_no_headings():')),
    _change("textkit-feature-2", "feature",
            "Add `demote(markdown, by=1)` to `textkit/headings.py`: the document with every ATX heading made `by` "
            "levels deeper (capped at level 6, a closing hash sequence dropped), lines inside fenced code blocks "
            "and all other lines unchanged. Export it from the `textkit` package.",
            ("textkit/headings.py", "textkit/__init__.py"),
            ("textkit/headings.py", "        if match:\n            found.append(Heading(len(match.group(1)), "
             "match.group(2), number))\n    return found\n",
             "        if match:\n            found.append(Heading(len(match.group(1)), match.group(2), number))\n"
             "    return found\n\n\ndef demote(markdown: str, by: int = 1) -> str:\n"
             '    """``markdown`` with every heading ``by`` levels deeper (at most 6); code blocks untouched."""\n'
             "    lines = markdown.splitlines(keepends=True)\n    for heading in headings(markdown):\n"
             "        level = min(6, heading.level + by)\n"
             '        ending = "\\n" if lines[heading.line - 1].endswith("\\n") else ""\n'
             '        lines[heading.line - 1] = "#" * level + " " + heading.text + ending\n'
             '    return "".join(lines)\n'),
            ("textkit/__init__.py", "from .headings import Heading, headings",
             "from .headings import Heading, demote, headings"),
            ("textkit/__init__.py", '__all__ = ["Heading", "headings",',
             '__all__ = ["Heading", "demote", "headings",'),
            ("tests/test_toc.py", "from textkit import headings, table_of_contents",
             "from textkit import demote, headings, table_of_contents"),
            ("tests/test_toc.py", "def test_no_headings():",
             'def test_demote():\n    assert demote("# A\\ntext\\n```\\n# code\\n```\\n##### B ##\\n###### C", by=2) '
             '== (\n        "### A\\ntext\\n```\\n# code\\n```\\n###### B\\n###### C")\n\n\ndef test_no_headings():')),
    _change("textkit-api_change-1", "api_change",
            "Give `headings()` a `max_level` parameter (default 6) that leaves out deeper headings, and make "
            "`table_of_contents` use it instead of filtering the headings itself. Update the tests to cover it.",
            ("textkit/headings.py", "textkit/toc.py", "tests/test_toc.py"),
            ("textkit/headings.py", "def headings(markdown: str) -> list[Heading]:\n"
             '    """The headings of ``markdown`` in order, skipping',
             "def headings(markdown: str, max_level: int = 6) -> list[Heading]:\n"
             '    """The headings of ``markdown`` up to ``max_level`` in order, skipping'),
            ("textkit/headings.py", "        if match:\n", "        if match and len(match.group(1)) <= max_level:\n"),
            ("textkit/toc.py", "entries = [h for h in headings(markdown) if h.level <= max_level]",
             "entries = headings(markdown, max_level)"),
            ("tests/test_toc.py", "def test_table_of_contents_nests_from_the_top_level():",
             'def test_headings_max_level():\n    assert [h.text for h in headings(DOC, max_level=2)] == '
             '["Guide", "Install", "Use"]\n\n\ndef test_table_of_contents_nests_from_the_top_level():')),
    _rename("textkit-rename-1", "table_of_contents", "toc",
            ("textkit/toc.py", "textkit/__init__.py", "tests/test_toc.py"), "function"),
    _rename("textkit-rename-2", "unique_slug", "claim_slug",
            ("textkit/slug.py", "textkit/toc.py", "tests/test_slug.py"), "function"),
]

CONFPARSE = [
    _bug("confparse-bugfix-1", "`parse_config` rejects comment lines that start with `;`; like `#` lines they "
         "must be ignored.", _CONF, ("confparse/parser.py", 'line[0] in "#;"', 'line[0] == "#"')),
    _bug("confparse-bugfix-2", "A value that contains `=` is split at the last `=`: `url = a=b` gives the key "
         "\"url = a\". Split at the first `=`.", _CONF,
         ("confparse/parser.py", 'key, sep, value = line.partition("=")',
          'key, sep, value = line.rpartition("=")')),
    _bug("confparse-bugfix-3", "Spaces inside section brackets end up in the section name: `[ web ]` gives the "
         "section \" web \" instead of \"web\".", _CONF,
         ("confparse/parser.py", "section = line[1:-1].strip()", "section = line[1:-1]")),
    _bug("confparse-bugfix-4", "`to_bool` only understands lower-case words: \"Yes\" and \"OFF\" raise "
         "`ValueError`. Accept the words in any case.", ("confparse/coerce.py", "confparse/cli.py"),
         ("confparse/coerce.py", "word = value.strip().lower()", "word = value.strip()")),
    _bug("confparse-bugfix-5", "`apply_overrides` changes the sections of the config passed in; it must "
         "leave it untouched and return a changed copy.", ("confparse/cli.py", "confparse/parser.py"),
         ("confparse/cli.py", "result = {section: dict(values) for section, values in config.items()}",
          "result = dict(config)")),
    _change("confparse-feature-1", "feature",
            "Let `apply_overrides` also accept the one-argument form `--set=NAME=VALUE` (as well as `--set "
            "NAME=VALUE`), applied in the same left-to-right order.", ("confparse/cli.py", "confparse/parser.py"),
            ("confparse/cli.py", '        if arg == "--set":\n            section, key, value = '
             'parse_override(next(args, ""))\n            result.setdefault(section, {})[key] = value\n',
             '        if arg == "--set":\n            section, key, value = parse_override(next(args, ""))\n'
             '        elif arg.startswith("--set="):\n            section, key, value = '
             'parse_override(arg[len("--set="):])\n        else:\n            continue\n'
             '        result.setdefault(section, {})[key] = value\n'),
            ("tests/test_coerce_cli.py", "    assert config[\"db\"][\"port\"] == \"5432\"\n",
             '    assert config["db"]["port"] == "5432"\n\n\ndef test_apply_overrides_one_argument_form():\n'
             '    result = apply_overrides({"default": {}}, ["--set=db.port=1", "--set", "db.port=2", '
             '"--set=name=x"])\n    assert result == {"default": {"name": "x"}, "db": {"port": "2"}}\n')),
    _change("confparse-feature-2", "feature",
            "Add `to_duration(value)` to `confparse/coerce.py`: a duration in whole seconds from \"30s\", \"5m\", "
            "\"2h\", \"1d\" or a plain number of seconds (\"45\"), spaces around allowed; anything else raises "
            "`ValueError`. Export it from the `confparse` package.",
            ("confparse/coerce.py", "confparse/__init__.py"),
            ("confparse/coerce.py", "def to_list(value: str, separator: str = \",\") -> list:",
             '_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}\n\n\ndef to_duration(value: str) -> int:\n'
             '    """Seconds from ``30s``, ``5m``, ``2h``, ``1d`` or a plain number of seconds."""\n'
             "    text = value.strip().lower()\n    unit = _UNITS.get(text[-1:], None)\n"
             "    number = text[:-1] if unit else text\n    if not number.isdigit():\n"
             '        raise ValueError(f"not a duration: {value!r}")\n    return int(number) * (unit or 1)\n\n\n'
             'def to_list(value: str, separator: str = ",") -> list:'),
            ("confparse/__init__.py", "from .coerce import to_bool, to_int, to_list",
             "from .coerce import to_bool, to_duration, to_int, to_list"),
            ("confparse/__init__.py", '"parse_config", "to_bool", "to_int"',
             '"parse_config", "to_bool", "to_duration", "to_int"'),
            ("tests/test_coerce_cli.py", "from confparse import apply_overrides, to_bool, to_int, to_list",
             "from confparse import apply_overrides, to_bool, to_duration, to_int, to_list"),
            ("tests/test_coerce_cli.py", "def test_parse_override():",
             'def test_to_duration():\n    assert [to_duration(v) for v in ("30s", " 5m", "2h ", "1d", "45")] == '
             '[30, 300, 7200, 86400, 45]\n    for bad in ("", "m", "1.5h", "3w", "-2s"):\n'
             "        with pytest.raises(ValueError):\n            to_duration(bad)\n\n\n"
             "def test_parse_override():")),
    _change("confparse-api_change-1", "api_change",
            "`ConfigError` should say where the text came from: give it a `source` argument and attribute "
            "(after `line`, default \"<string>\") and make its message `SOURCE:LINE: MESSAGE`; "
            "`parse_config(text, source=\"<string>\")` passes its source on, and a bad command-line override "
            "raises it with the source \"<command line>\" and line 0. Update the tests.",
            ("confparse/parser.py", "confparse/cli.py", "tests/test_parser.py"),
            ("confparse/parser.py", '    def __init__(self, message: str, line: int):\n        super().__init__('
             'f"line {line}: {message}")\n        self.line = line\n',
             '    def __init__(self, message: str, line: int, source: str = "<string>"):\n        super().__init__('
             'f"{source}:{line}: {message}")\n        self.line = line\n        self.source = source\n'),
            ("confparse/parser.py", "def parse_config(text: str) -> dict:",
             'def parse_config(text: str, source: str = "<string>") -> dict:'),
            ("confparse/parser.py", 'raise ConfigError(f"bad section header {line!r}", number)',
             'raise ConfigError(f"bad section header {line!r}", number, source)'),
            ("confparse/parser.py", 'raise ConfigError(f"expected key = value, got {line!r}", number)',
             'raise ConfigError(f"expected key = value, got {line!r}", number, source)'),
            ("confparse/cli.py", 'raise ConfigError(f"override must be name=value, got {text!r}", 0)',
             'raise ConfigError(f"override must be name=value, got {text!r}", 0, "<command line>")'),
            ("tests/test_parser.py", "        parse_config(\"[db]\\nhost localhost\\n\")\n"
             "    assert info.value.line == 2\n",
             '        parse_config("[db]\\nhost localhost\\n", source="app.ini")\n    assert info.value.line == 2\n'
             '    assert info.value.source == "app.ini"\n    assert str(info.value).startswith("app.ini:2: ")\n')),
    _rename("confparse-rename-1", "apply_overrides", "merge_overrides",
            ("confparse/cli.py", "confparse/__init__.py", "tests/test_coerce_cli.py"), "function"),
    _rename("confparse-rename-2", "to_list", "to_strings",
            ("confparse/coerce.py", "confparse/__init__.py", "tests/test_coerce_cli.py"), "function"),
]

INTERVALS = [
    _bug("intervals-bugfix-1", "`Interval.days()` is one short: an interval from a day to the same day covers "
         "1 day, not 0 (both ends are included).", _IV,
         ("intervals/interval.py", "return (self.end - self.start).days + 1", "return (self.end - self.start).days")),
    _bug("intervals-bugfix-2", "`merge` leaves apart intervals that touch (one ends the day before the next "
         "starts); they must be merged into one, as the docstring says.", _IV,
         ("intervals/merge.py", "if merged and merged[-1].touches(current):",
          "if merged and merged[-1].overlaps(current):")),
    _bug("intervals-bugfix-3", "`merge` can shrink an interval: merging 1–9 March with 2–3 March gives 1–3 March. "
         "The merged interval must keep the later of the two ends.", _IV,
         ("intervals/merge.py", "Interval(last.start, max(last.end, current.end))",
          "Interval(last.start, current.end)")),
    _bug("intervals-bugfix-4", "`parse_interval` fails on a single day such as \"2026-03-07\"; it must return "
         "the one-day interval.", ("intervals/parse.py", "intervals/interval.py"),
         ("intervals/parse.py", "return Interval(first, parse_date(end) if sep else first)",
          "return Interval(first, parse_date(end))")),
    _bug("intervals-bugfix-5", "`Interval.contains` says the last day of an interval is not in it; both ends "
         "are included.", _IV,
         ("intervals/interval.py", "return self.start <= day <= self.end", "return self.start <= day < self.end")),
    _change("intervals-feature-1", "feature",
            "Add `Interval.intersection(other)`: the interval of the days both share, or `None` when they do not "
            "overlap.", ("intervals/interval.py", "intervals/merge.py"),
            ("intervals/interval.py", '    def touches(self, other: "Interval") -> bool:',
             '    def intersection(self, other: "Interval") -> "Interval | None":\n'
             '        """The days both intervals share, or None when they do not overlap."""\n'
             "        if not self.overlaps(other):\n            return None\n"
             "        return Interval(max(self.start, other.start), min(self.end, other.end))\n\n"
             '    def touches(self, other: "Interval") -> bool:'),
            ("tests/test_interval.py", "def test_overlaps_and_touches():",
             "def test_intersection():\n    a = Interval(d(1), d(5))\n    assert a.intersection(Interval(d(4), d(9)))"
             " == Interval(d(4), d(5))\n    assert Interval(d(2), d(3)).intersection(a) == Interval(d(2), d(3))\n"
             "    assert a.intersection(Interval(d(6), d(7))) is None\n\n\ndef test_overlaps_and_touches():")),
    _change("intervals-feature-2", "feature",
            "Add `gaps(intervals)` to `intervals/merge.py`: the intervals of days not covered between the "
            "merged intervals, in order (an empty list for fewer than two merged intervals). Export it from the "
            "`intervals` package.", ("intervals/merge.py", "intervals/__init__.py", "intervals/interval.py"),
            ("intervals/merge.py", "from .interval import Interval\n",
             "from datetime import timedelta\nfrom itertools import pairwise\n\nfrom .interval import Interval\n"),
            ("intervals/merge.py", "def total_days(intervals: list) -> int:",
             'def gaps(intervals: list) -> list:\n    """The uncovered days between the merged ``intervals``, as '
             'intervals in order."""\n    merged, one_day = merge(intervals), timedelta(days=1)\n'
             "    return [Interval(a.end + one_day, b.start - one_day) for a, b in pairwise(merged)]\n\n\n"
             "def total_days(intervals: list) -> int:"),
            ("intervals/__init__.py", "from .merge import merge, total_days", "from .merge import gaps, merge, total_days"),
            ("intervals/__init__.py", '__all__ = ["Interval", "merge",', '__all__ = ["Interval", "gaps", "merge",'),
            ("tests/test_merge_parse.py", "from intervals import Interval, merge, parse_interval, total_days",
             "from intervals import Interval, gaps, merge, parse_interval, total_days"),
            ("tests/test_merge_parse.py", "def test_total_days_counts_shared_days_once():",
             "def test_gaps():\n    parts = [Interval(d(10), d(12)), Interval(d(1), d(3)), Interval(d(4), d(5)), "
             "Interval(d(20), d(21))]\n    assert gaps(parts) == [Interval(d(6), d(9)), Interval(d(13), d(19))]\n"
             "    assert gaps([Interval(d(1), d(2))]) == [] and gaps([]) == []\n\n\n"
             "def test_total_days_counts_shared_days_once():")),
    _change("intervals-api_change-1", "api_change",
            "Replace the method `Interval.days()` with a read-only property `length` (the same count of days) and "
            "update every caller and the tests.",
            ("intervals/interval.py", "intervals/merge.py", "tests/test_interval.py"),
            ("intervals/interval.py", "    def days(self) -> int:", "    @property\n    def length(self) -> int:"),
            ("intervals/merge.py", "interval.days() for interval", "interval.length for interval"),
            ("tests/test_interval.py", "assert Interval(d(1), d(1)).days() == 1\n    assert Interval(d(1), "
             "d(10)).days() == 10", "assert Interval(d(1), d(1)).length == 1\n    assert Interval(d(1), "
             "d(10)).length == 10")),
    _rename("intervals-rename-1", "total_days", "union_days",
            ("intervals/merge.py", "intervals/__init__.py", "tests/test_merge_parse.py"), "function"),
    _rename("intervals-rename-2", "parse_interval", "read_interval",
            ("intervals/parse.py", "intervals/__init__.py", "tests/test_merge_parse.py"), "function"),
]

TASKS: tuple[TaskSpec, ...] = tuple(INVENTORY + TEXTKIT + CONFPARSE + INTERVALS)
