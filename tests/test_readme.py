"""The README as a newcomer reads it: what the tool is in one line, the two commands that work
(under headings saying what they do and how long they take), a tour, then reference tables that
match the code, and no path that is not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
RUN_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -q -e . && "
               ".venv/bin/celery-postmortem analyze samples/worker-sigkill")
TEST_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -q"


def _sections(level: str) -> list[str]:
    return re.findall(rf"^{level} (.+)$", README, re.M)


def _section(title: str) -> str:
    start = README.index(f"\n### {title}\n")
    end = README.find("\n#", start + 1)
    return README[start:end if end != -1 else None]


def test_a_one_line_description_then_the_two_commands_first() -> None:
    lines = README.splitlines()
    assert lines[0] == "# celery-postmortem"
    description = README.split("\n\n")[1]
    assert "\n" not in description and len(description) <= 120 and "Celery" in description
    assert not description.startswith(("#", "`", "|"))
    blocks = re.findall(r"^## (.+)\n\n```sh\n(.+)\n```", README, re.M)
    assert [cmd for _, cmd in blocks[:2]] == [RUN_COMMAND, TEST_COMMAND]
    assert _sections("##")[:2] == [h for h, _ in blocks[:2]]
    for heading, _ in blocks[:2]:  # says what it does and how long it takes
        assert re.search(r"\((?:about|install)[^)]*(second|minute)", heading), heading


def test_ci_runs_the_readme_test_command_exactly() -> None:
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_tour_comes_before_the_reference() -> None:
    tour = ["1. Analyse a sample", "2. Read the report", "3. Open the notebook", "4. Use it in CI"]
    headings = _sections("###")
    assert headings[:4] == tour
    assert _sections("##").index("A short tour") < _sections("##").index("Reference")
    ci = _section("4. Use it in CI")
    assert "uses: ./" in ci and "path:" in ci and "fail-on:" in ci


@pytest.mark.parametrize("title", ["Exit codes", "Verdicts", "Output formats", "Categories"])
def test_reference_parts_are_tables(title: str) -> None:
    assert re.search(r"^\| .+ \|\n\| --- \|", _section(title), re.M), title


def test_the_tables_match_the_code() -> None:
    from analyzer.categories import CATEGORIES
    from analyzer.renderers import registry

    categories = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", _section("Categories")))
    assert categories == set(CATEGORIES)
    formats = set(re.findall(r"^\| `([a-z]+)` \|", _section("Output formats"), re.M))
    assert formats == set(registry())
    codes = re.findall(r"^\| `(\d)` \|", _section("Exit codes"), re.M)
    assert codes == ["0", "1", "2"]
    verdicts = re.findall(r"^\| `([A-Z ]+)` \|", _section("Verdicts"), re.M)
    assert verdicts == ["ROOT CAUSE", "HEALTHY", "INCONCLUSIVE"]


def test_every_path_it_names_is_in_the_repository() -> None:
    # the one exception: the action another change adds, named as `uses: ./`
    named = set(re.findall(r"(?<![\w/.])((?:analyzer|samples|tests|notebooks|docs|rules|\.ci)/[\w./-]*\w)", README))
    named |= set(re.findall(r"`([\w-]+\.(?:md|toml|py|ipynb))`", README))
    missing = sorted(p for p in named if not (ROOT / p).exists() and "<" not in p and "NAME" not in p)
    assert named and missing == []
    assert "DESIGN.md" not in README
