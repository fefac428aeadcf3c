"""The catalogue: which `--select` / `--ignore` patterns name nothing, and which user rules replace a
built-in one (deliberate, and reported)."""

from __future__ import annotations

from pathlib import Path

from analyzer.engine.catalogue import default_rule_dir, load_catalogue, overrides, shipped_rule_files, unmatched


def test_unmatched_patterns_are_those_naming_no_rule_id_prefix_category_or_area() -> None:
    rules, errors = load_catalogue()
    assert not errors
    patterns = ["CP-B001", "CP-B", "broker.tls", "broker", "broker.", "CP-NOPE", "broker.nope", "nope", "cp-b001"]
    assert unmatched(patterns, rules) == ["CP-NOPE", "broker.nope", "nope", "cp-b001"]
    assert unmatched(["CP-B001"], []) == ["CP-B001"]


def test_shipped_rule_files_map_every_loaded_rule_to_its_file() -> None:
    rules, _ = load_catalogue()
    files = shipped_rule_files()
    assert {r.id: Path(r.path) for r in rules if r.path} == files
    assert all(f.is_relative_to(default_rule_dir()) for f in files.values())


def test_a_user_rule_with_a_built_in_id_replaces_it_and_is_listed_as_an_override(tmp_path: Path) -> None:
    shipped = shipped_rule_files()["CP-B001"]
    ours = tmp_path / "CP-B001.toml"
    ours.write_text(shipped.read_text().replace('title = "', 'title = "Ours: ', 1))
    (tmp_path / "CP-U001.toml").write_text(shipped.read_text().replace('"CP-B001"', '"CP-U001"', 1))
    rules, errors = load_catalogue([tmp_path])
    assert not errors
    by_id = {r.id: r for r in rules}
    assert by_id["CP-B001"].title.startswith("Ours: ") and by_id["CP-B001"].path == str(ours)
    assert [(r.id, r.path, f) for r, f in overrides(rules)] == [("CP-B001", str(ours), shipped)]


def test_the_shipped_directory_given_again_overrides_nothing() -> None:
    rules, _ = load_catalogue([default_rule_dir() / "broker"])
    assert overrides(rules) == []
