"""Issue 16 item 7: terminal escape injection. Text from a bundle (log lines, file names, a py-spy
thread name, a user rule's title and message) carries OSC 8 links, OSC 52 clipboard writes, DCS,
the C1 CSI, 8-bit C1 controls, the alternate screen, BEL, backspace, CR overwrites, DEL and bidi
overrides; no output of any format may carry one of them, only the renderer's own SGR styling
when the terminal report is in colour. They are shown escaped (`\\x1b]52;…`), not dropped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from analyzer.cli import FORMATS, app
from analyzer.printable import printable

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

SEQUENCES = {
    "osc8 link": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "osc52 clipboard": "\x1b]52;c;ZWNobyBvd25lZA==\x07",
    "dcs": "\x1bP+q544e\x1b\\",
    "c1 csi": "\x9b2J",
    "8-bit c1": "\x9d0;title\x9c\x90q\x9c",
    "alternate screen": "\x1b[?1049h",
    "bel and backspace": "ok\x07\x08\x08no",
    "cr overwrite": "shown\rhidden",
    "del": "a\x7fb",
    "bidi": "\u202eresu\u202c \u2066admin\u2069 \u202a\u202b\u202d\u202c",
}
PAYLOAD = "".join(SEQUENCES.values())
# in a file name: no `/`; in a py-spy
# text thread name: no line break (CR, NEL)
NAME_PAYLOAD = "\x1b]8;;https:evil.example\x07\x1bP1$r\x1b\\\u202e\x9b2J\x08\x7f\r"
THREAD_PAYLOAD = "\x1b]52;c;QUFB\x07\x1bP1$r\x1b\\\x9b6n\u2066"
# what a reader must never get from a bundle: C0 but tab and LF, DEL, C1, bidi controls, surrogates
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
SGR = re.compile(r"\x1b\[[0-9;]*m")

USER_RULE = r'''id = "CP-U900"
category = "task.exception"
severity = "error"
confidence = 0.9
title = "Hostile \u001b]52;c;QUFB\u0007 title \u202e"
what = "A rule whose documentation carries \u001b[?1049h escapes."
why = "Rules come from strangers too \u009b2J."
on = "events"
when = 'message ~ "holds"'
message = "{host}: {count} holds \u001bP1$r\u001b\\ since {first_seen}"
remediation = ["Do not click \u001b]8;;https://evil.example/\u001b\\here\u001b]8;;\u001b\\."]
group_by = ["host"]

[[example]]
match = """
[2026-11-28 19:02:54,296: INFO/ForkPoolWorker-1] ???[???]: ledger-writer (tid 12504) holds <lock>
"""
'''


def _hostile_bundle(root: Path) -> Path:
    """deadlock-lock with every sequence in its log lines, file names and thread names."""
    bundle = root / "bundle"
    shutil.copytree(SAMPLES / "deadlock-lock", bundle)
    for extra in ("README.md", "expected.json", "produced.json"):
        (bundle / extra).unlink()
    log = bundle / "worker.log"
    lines = log.read_text().splitlines()
    # quoted records (the task's start, the lock lines) end with the payload; an unrecognised line
    # (a coverage sample) is the payload
    lines = [f"garbage {PAYLOAD}"] + [line + " " + PAYLOAD if i >= 5 else line for i, line in enumerate(lines)]
    log.write_text("\n".join(lines) + "\n")
    for name in ("pyspy-12466.txt", "pyspy-locals.txt"):
        p = bundle / name
        p.write_text(p.read_text().replace('"ledger-writer"', f'"ledger{THREAD_PAYLOAD}writer"'))
    doc = bundle / "pyspy.json"
    escaped = json.dumps(f"ledger{THREAD_PAYLOAD}writer")  # JSON escapes, which the parser decodes
    doc.write_text(doc.read_text().replace('"ledger-writer"', escaped))
    (bundle / "gdb-bt.txt").rename(bundle / f"gdb-bt{NAME_PAYLOAD}.txt")
    (bundle / "pyspy-12466.txt").rename(bundle / f"pyspy{NAME_PAYLOAD}.txt")
    (bundle / f"link{NAME_PAYLOAD}").symlink_to("worker.log")  # refused: a problem naming it
    return bundle


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    rules = root / "rules"
    rules.mkdir()
    (rules / "CP-U900.toml").write_text(USER_RULE)
    return _hostile_bundle(root), rules


def _analyze(hostile: tuple[Path, Path], *args: str) -> tuple[int, str, str]:
    bundle, rules = hostile
    r = CliRunner().invoke(app, ["analyze", str(bundle), "--rules", str(rules), *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def _forbidden(text: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in FORBIDDEN.findall(text)})


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_control_character_from_the_bundle_reaches_any_format(hostile: tuple[Path, Path], fmt: str) -> None:
    code, out, err = _analyze(hostile, "-f", fmt, "--no-color")
    assert code == 0, err
    assert _forbidden(out) == [] and _forbidden(err) == []
    # the hostile text did reach this output: a file name, a thread name or the user rule's title
    # (`QUFB`), and (but in the annotations, which quote no line) a log line
    assert "evil.example" in out and "QUFB" in out
    assert fmt == "github" or "ZWNobyBvd25lZA==" in out


def test_bundle_text_is_shown_escaped_not_dropped(hostile: tuple[Path, Path]) -> None:
    _, out, _ = _analyze(hostile, "-f", "json")
    report = json.loads(out)
    inputs = {c["path"] for c in report["inputs"]}
    assert printable(f"gdb-bt{NAME_PAYLOAD}.txt") in inputs and printable(f"pyspy{NAME_PAYLOAD}.txt") in inputs
    assert {"source": printable(f"link{NAME_PAYLOAD}"), "message": "refused: symbolic link (not followed)"} \
        in report["problems"]
    (log,) = [c for c in report["inputs"] if c["path"] == "worker.log"]
    assert log["unrecognized_samples"][0]["text"] == printable(f"garbage {PAYLOAD}")
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert f'"{printable(f"ledger{THREAD_PAYLOAD}writer")}" (tid ' in by_rule["CP-X010"]["summary"]
    user = by_rule["CP-U900"]
    assert user["title"] == "Hostile \\x1b]52;c;QUFB\\x07 title \\u202e"
    assert user["summary"].startswith("w1@sample: 2 holds \\x1bP1$r\\x1b\\ since")
    assert all(e["text"].endswith(printable(PAYLOAD)) for e in user["evidence"])


def test_colour_terminal_output_holds_only_its_own_sgr_styling(hostile: tuple[Path, Path]) -> None:
    code, out, err = _analyze(hostile, "--color")
    assert code == 0, err
    assert SGR.search(out), "the colour report styles its text"
    plain = SGR.sub("", out)
    assert _forbidden(plain) == [] and "ZWNobyBvd25lZA==" in plain and "QUFB" in plain


def test_printable_escapes_every_control_character_and_keeps_tabs() -> None:
    shown = {name: printable(seq) for name, seq in SEQUENCES.items()}
    assert shown["osc52 clipboard"] == "\\x1b]52;c;ZWNobyBvd25lZA==\\x07"
    assert shown["c1 csi"] == "\\x9b2J"
    assert shown["cr overwrite"] == "shown\\x0dhidden"
    assert shown["bel and backspace"] == "ok\\x07\\x08\\x08no"
    assert shown["del"] == "a\\x7fb"
    assert shown["bidi"] == "\\u202eresu\\u202c \\u2066admin\\u2069 \\u202a\\u202b\\u202d\\u202c"
    assert all(_forbidden(text) == [] for text in shown.values())
    assert printable("a\tb\nc") == "a\tb\\x0ac"  # one line: a line feed would start a forged one
    assert printable("a\tb\nc\rd", lines=True) == "a\tb\nc\\x0dd"
    assert printable("caf\udce9") == "caf\\xe9"  # a byte that was not UTF-8 (surrogateescape)
    assert printable("plain → text · ✓") == "plain → text · ✓"


def test_printable_is_linear() -> None:
    import time

    def took(n: int) -> float:
        text = ("\x1b]52;c;" + "a\x07" * 4) * n + "x" * (20 * n)
        start = time.perf_counter()
        printable(text)
        return time.perf_counter() - start

    small, big = min(took(2_000) for _ in range(3)), min(took(20_000) for _ in range(3))
    assert big <= 25 * max(small, 1e-4)


def test_cli_messages_are_printable(tmp_path: Path) -> None:
    missing = tmp_path / f"no{NAME_PAYLOAD}such"
    r = CliRunner().invoke(app, ["analyze", str(missing)])
    assert r.exit_code == 2
    assert _forbidden(r.stderr) == [] and printable(str(missing)) in r.stderr


@pytest.mark.parametrize("name", ["w[1].log", "w*.log", "w\x1b[?1049h.log"])
def test_a_bracket_in_a_file_name_is_not_a_glob(tmp_path: Path, name: str) -> None:
    shutil.copy(SAMPLES / "healthy" / "worker.log", tmp_path / name)
    r = CliRunner().invoke(app, ["analyze", str(tmp_path), "-f", "json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["inputs"][0]["lines"] > 0


def test_rules_commands_show_a_user_rules_text_escaped(hostile: tuple[Path, Path]) -> None:
    _, rules = hostile
    listed = CliRunner().invoke(app, ["rules", "list", "--rules", str(rules)])
    assert listed.exit_code == 0, listed.stderr
    assert "Hostile \\x1b]52;c;QUFB\\x07 title \\u202e" in listed.stdout
    shown = CliRunner().invoke(app, ["rules", "show", "CP-U900", "--rules", str(rules)])
    assert shown.exit_code == 0, shown.stderr
    assert "\\x1b[?1049h" in shown.stdout and "\\x9b2J" in shown.stdout
    assert all(_forbidden(text) == [] for text in (listed.stdout, listed.stderr, shown.stdout))


def test_the_progress_bar_names_members_escaped(hostile: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.progress import Progress, TaskID

    from analyzer import cli
    from analyzer.api import open_bundle

    labels: list[str] = []
    update = Progress.update

    def recording(self: Progress, task_id: TaskID, **fields: Any) -> None:
        if isinstance(fields.get("description"), str):
            labels.append(str(fields["description"]))
        update(self, task_id, **fields)

    monkeypatch.setattr(Progress, "update", recording)
    cli._parse_with_progress(open_bundle(hostile[0]))
    assert any("gdb-bt\\x1b]8;;https:evil.example" in label for label in labels)
    assert all(_forbidden(label) == [] for label in labels)


def test_plot_labels_show_control_characters_as_escapes() -> None:
    from analyzer.plots import _labels, keep

    assert _labels(keep, ["w1\x1b]52;c;eA==\x07@host", None], 80) == ["w1\\x1b]52;c;eA==\\x07@host", ""]
