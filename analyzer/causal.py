"""The causal model (`causal_model.toml`): which category can explain which, how, and where.

Data, not code, beside the taxonomy: diagnosis asks `links_between(cause, effect)` and checks the
place and time each link demands; the mechanism is what the report shows as the link's reason.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from analyzer.categories import CATEGORIES

PLACES = ("host", "consumer")
TIMES = ("before", "outage")


@dataclass(frozen=True)
class Link:
    """`cause` can explain `effect` by `mechanism`, when `place` and `time` agree (see the TOML)."""

    cause: str
    effect: str
    mechanism: str
    place: str = "host"
    time: str = "before"
    rule: str = ""  # set when a rule's `explains` list declared it rather than the model


class ModelError(ValueError):
    """The causal model names an unknown category, place or time (a packaging or editing mistake)."""


def _names(value: object, where: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{where}: a category or a list of categories")
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        raise ModelError(f"{where}: unknown categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}")
    return names


def parse_model(text: str) -> tuple[Link, ...]:
    """Links of a causal-model document, one per (cause, effect) pair, in file order."""
    data = tomllib.loads(text)
    links: list[Link] = []
    for i, entry in enumerate(data.get("link", []), 1):
        where = f"causal model link {i}"
        place, time = entry.get("place", "host"), entry.get("time", "before")
        if place not in PLACES or time not in TIMES:
            raise ModelError(f"{where}: place must be one of {PLACES}, time one of {TIMES}")
        mechanism = entry.get("mechanism")
        if not isinstance(mechanism, str) or not mechanism:
            raise ModelError(f"{where}: no mechanism")
        links += [Link(c, e, mechanism, place, time)
                   for c in _names(entry.get("cause"), where) for e in _names(entry.get("effect"), where)]
    return tuple(links)


@cache
def model() -> tuple[Link, ...]:
    """The shipped causal model."""
    return parse_model(resources.files("analyzer").joinpath("causal_model.toml").read_text(encoding="utf-8"))


@cache
def _index() -> dict[tuple[str, str], tuple[Link, ...]]:
    out: dict[tuple[str, str], list[Link]] = {}
    for link in model():
        out.setdefault((link.cause, link.effect), []).append(link)
    return {k: tuple(v) for k, v in out.items()}


def links_between(cause: str, effect: str) -> tuple[Link, ...]:
    """The model's links from category `cause` to category `effect` (usually none or one)."""
    return _index().get((cause, effect), ())


def declared(rule: str, cause: str, effect: str) -> Link:
    """A link a rule's own `explains` list declares (user rules; the shipped ones moved to the model)."""
    return Link(cause, effect, f"declared by rule {rule} (`explains`)", "host", "before", rule)
