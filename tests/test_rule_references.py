"""Rule references are shown to operators (`rules show`, SARIF helpUri, HTML, terminal), so each one
must be something an operator can open: an upstream https URL, optionally followed by a short
description. Internal material (the FORMATS.md design notes, the sample bundles, which rules already
list in `samples`) is not shipped and must not be cited."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from analyzer.engine.catalogue import load_catalogue
from analyzer.engine.rule import Rule

RULES, ERRORS = load_catalogue()

# A GitHub link must name a file at a branch, tag or commit, not a bare repository path.
GITHUB_FILE = re.compile(r"^https://github\.com/[^/]+/[^/]+/blob/[^/]+/.+[^/]$")


def _url(reference: str) -> str:
    """The link an operator opens: everything before the first whitespace."""
    return reference.split(maxsplit=1)[0]


def test_catalogue_loads() -> None:
    assert not ERRORS, "\n".join(str(e) for e in ERRORS)
    assert len(RULES) >= 40


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_reference_is_an_upstream_url(rule: Rule) -> None:
    assert rule.references, f"{rule.id} has no reference an operator can open"
    for ref in rule.references:
        assert ref.startswith("https://"), f"{rule.id}: not a URL: {ref!r}"
        assert "FORMATS.md" not in ref, f"{rule.id}: cites the internal FORMATS.md: {ref!r}"
        assert "samples/" not in ref, f"{rule.id}: cites a sample bundle (use `samples`): {ref!r}"
        url = _url(ref)
        parts = urlsplit(url)
        assert parts.netloc and "." in parts.netloc, f"{rule.id}: no host in {url!r}"
        if parts.netloc == "github.com":
            assert GITHUB_FILE.match(url), f"{rule.id}: GitHub link is not a file at a ref: {url!r}"


def test_no_rule_repeats_a_link() -> None:
    for rule in RULES:
        urls = [_url(r) for r in rule.references]
        dupes = {u for u in urls if urls.count(u) > 1}
        assert not dupes, f"{rule.id} lists {sorted(dupes)} more than once"
