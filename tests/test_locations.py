"""Bundle files named by their path from the working directory (what SARIF and GitHub resolve)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from analyzer.bundle import read_bundle
from analyzer.locations import artifact_paths
from tests.conftest import SAMPLES


def test_files_under_the_working_directory_get_their_relative_path() -> None:
    members = read_bundle([SAMPLES / "worker-sigkill"]).members
    paths = dict(artifact_paths(members, cwd=SAMPLES.parent))
    assert paths["worker.log"] == "samples/worker-sigkill/worker.log"
    assert set(paths) == {m.name for m in members}


def test_a_file_given_alone_by_a_relative_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLES.parent)
    members = read_bundle([Path("samples/worker-sigkill/worker.log")]).members
    assert artifact_paths(members) == (("worker.log", "samples/worker-sigkill/worker.log"),)


def test_files_outside_it_and_archive_members_keep_their_bundle_names(tmp_path: Path) -> None:
    assert artifact_paths(read_bundle([SAMPLES / "worker-sigkill"]).members, cwd=tmp_path) == ()
    assert read_bundle([SAMPLES / "worker-sigkill"]).members  # (the sample has files)
    archive = tmp_path / "incident.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SAMPLES / "worker-sigkill" / "worker.log", arcname="worker.log")
    assert artifact_paths(read_bundle([archive]).members, cwd=tmp_path) == ()
