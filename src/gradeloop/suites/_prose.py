"""A seeded writer for MRCR's haystack: requests ("write a poem about tapirs") and assistant
answers of varied length and shape, with no model and no network.

Answers are built from sentence patterns filled in bulk from small word lists, so a million
tokens of text take a fraction of a second, and two answers to the same request differ.
"""

from __future__ import annotations

import random

__all__ = ["FORMS", "TOPICS", "request", "answer"]

FORMS = ("poem", "short story", "riddle", "blog post", "email", "social media post", "short essay",
         "speech", "product description", "diary entry", "letter", "news article")

TOPICS = tuple(t.strip() for t in """tapirs, rocks, lighthouses, glaciers, bicycles, libraries, volcanoes,
owls, sourdough bread, thunderstorms, chess, coral reefs, deserts, the moon, trains, honeybees, octopuses,
autumn leaves, jazz, mountains, rivers, umbrellas, clocks, penguins, old maps, subway stations, tea gardens,
kites, lanterns, whales, fireflies, violins, snow, typewriters, sunflowers, bridges, harbors, foxes,
telescopes, waterfalls, meadows, cacti, bakeries, ferries, puzzles, candles, origami, hummingbirds, canyons,
islands, mushrooms, windmills, rain, lemons, salt marshes, caves, comets, markets, orchards, radios, castles,
beetles, wolves, dragonflies, fog, ravens, hedgehogs, pottery, quilts, tides, ants, glassblowing, sand dunes,
compasses, elephants, giraffes, pianos, ballet, basketball, gardens, robots, skyscrapers, nightingales,
tulips, pebbles, icebergs, mangroves, otters, museums, postcards, stamps, kettles, sailboats, marathons,
bonfires, pine forests, cobblestones, pelicans, canals, geysers, fountains, tortoises, sparrows, rainbows,
theaters, lighthouse keepers, beekeepers, blacksmiths, astronauts, cartographers, shepherds, bookbinders,
gondolas, hot air balloons""".split(","))

_NOUNS = """morning river window garden shadow voice road letter harbor mountain stone song
field light city forest season table door silence memory journey story friend village
market ocean evening cloud bridge path heart street winter summer promise answer question
moment idea lantern candle wind feather rhythm corner signal engine pocket ladder compass
kitchen season meadow echo horizon thread mirror island border orchard station""".split()
_ADJS = """quiet bright ancient gentle restless golden hidden narrow patient silver steady
curious distant humble wild careful tender bold simple crooked shining weathered hollow
soft early late warm cold clever faithful fragile endless sudden familiar""".split()
_VERBS = \
    ["carries", "remembers", "follows", "shapes", "gathers", "finds", "holds", "keeps", "crosses", "wakes",
     "answers", "lifts", "guides", "watches", "teaches", "builds", "breaks", "turns", "opens", "measures",
     "hides", "shows", "waits for", "travels through", "leans toward", "returns to", "listens to",
     "drifts past", "circles", "outlasts"]
_PREPS = ["over", "under", "beside", "beyond", "across", "within", "along", "near", "around", "after"]
_ADVS = ["slowly", "quietly", "always", "often", "never", "still", "again", "softly", "carefully", "suddenly"]
_NAMES = ["Alex", "Maya", "Jordan", "Priya", "Tomas", "Lena", "Sam", "Noor", "Ivan", "Chloe", "Kenji", "Ada"]
_OPENERS = {
    "blog post": ["Today I want to talk about {t}.", "If you have ever wondered about {t}, this post is for you."],
    "email": ["I hope this message finds you well.", "I am writing to share a few thoughts about {t}."],
    "speech": ["Friends and colleagues, thank you for being here.", "Good evening, everyone."],
    "news article": ["Residents gathered on Tuesday to discuss {t}.", "New findings about {t} surprised experts."],
    "product description": ["Meet the only guide to {t} you will ever need.", "Designed for lovers of {t}."],
    "diary entry": ["Dear diary, today was all about {t}.", "I could not stop thinking about {t} today."],
    "letter": ["My dear friend,", "Dear reader,"],
}


def request(form: str, topic: str) -> str:
    """The user turn that asks for a piece of writing, in the published shape."""
    article = "an" if form[0] in "aeiou" else "a"
    return f"write {article} {form} about {topic}"


def _sentences(rng: random.Random, topic: str, count: int) -> list[str]:
    """``count`` sentences from six patterns, every slot drawn in bulk."""
    n1, n2 = rng.choices(_NOUNS, k=count), rng.choices(_NOUNS, k=count)
    adj, verb = rng.choices(_ADJS, k=count), rng.choices(_VERBS, k=count)
    prep, adv = rng.choices(_PREPS, k=count), rng.choices(_ADVS, k=count)
    shape = rng.choices(range(6), k=count)
    out = []
    for i in range(count):
        s = shape[i]
        if s == 0:
            out.append(f"The {adj[i]} {n1[i]} {verb[i]} the {n2[i]} {prep[i]} {topic}.")
        elif s == 1:
            out.append(f"{adv[i].capitalize()}, {topic} {verb[i]} a {adj[i]} {n1[i]}.")
        elif s == 2:
            out.append(f"Every {n1[i]} {verb[i]} the {n2[i]}, and {topic} {adv[i]} follow.")
        elif s == 3:
            out.append(f"There is a {adj[i]} {n1[i]} {prep[i]} the {n2[i]} where {topic} wait.")
        elif s == 4:
            out.append(f"We {adv[i]} forget how the {n1[i]} {verb[i]} the {adj[i]} {n2[i]}.")
        else:
            out.append(f"{topic.capitalize()} and the {n1[i]} share a {adj[i]} {n2[i]}.")
    return out


def _lines(rng: random.Random, topic: str, count: int) -> list[str]:
    """Poem lines: sentence patterns cut short, without the final stop."""
    return [s.rstrip(".").replace(",", "") for s in _sentences(rng, topic, count)]


def _paragraphs(rng: random.Random, sentences: list[str]) -> str:
    paras, i = [], 0
    while i < len(sentences):
        size = rng.randint(2, 6)
        paras.append(" ".join(sentences[i:i + size]))
        i += size
    return "\n\n".join(paras)


def answer(rng: random.Random, form: str, topic: str, words: int) -> str:
    """An assistant answer of about ``words`` words: a ``form`` about ``topic``."""
    count = max(2, words // 9)
    title = f"{rng.choice(_ADJS).capitalize()} {topic.title()}"
    if form == "poem":
        lines = _lines(rng, topic, count)
        stanzas = ["\n".join(lines[i:i + 4]) for i in range(0, len(lines), 4)]
        return f"**{title}**\n\n" + "\n\n".join(stanzas)
    if form == "riddle":
        lines = _lines(rng, topic, min(count, 8))
        return "\n".join(lines) + f"\nWhat am I?\n\nAnswer: {topic}"
    if form == "social media post":
        body = " ".join(_sentences(rng, topic, min(count, 6)))
        return f"{body} #{topic.replace(' ', '')} #{rng.choice(_NOUNS)}"
    opener = rng.choice(_OPENERS.get(form, ["{T} deserve more attention than they get."]))
    body = _paragraphs(rng, [opener.format(t=topic, T=topic.capitalize())] + _sentences(rng, topic, count))
    name = rng.choice(_NAMES)
    if form == "email":
        return f"Subject: About {topic}\n\nHi {rng.choice(_NAMES)},\n\n{body}\n\nBest regards,\n{name}"
    if form == "letter":
        return f"{body}\n\nWith warm wishes,\n{name}"
    if form in ("blog post", "news article", "short essay"):
        return f"# {title}\n\n{body}"
    return body
