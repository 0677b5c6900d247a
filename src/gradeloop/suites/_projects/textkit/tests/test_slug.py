from textkit import slugify
from textkit.slug import unique_slug


def test_slugify_basic():
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  Spaces   and -- dashes ") == "spaces-and-dashes"


def test_slugify_accents_and_digits():
    assert slugify("Café 2024 Menü") == "cafe-2024-menu"


def test_slugify_max_length_does_not_end_in_hyphen():
    assert slugify("abc def ghi", max_length=4) == "abc"
    assert len(slugify("word " * 40)) <= 60


def test_unique_slug_counts_up():
    taken = set()
    assert unique_slug("Intro", taken) == "intro"
    assert unique_slug("Intro", taken) == "intro-2"
    assert unique_slug("Intro", taken) == "intro-3"
    assert unique_slug("!!!", taken) == "section"
