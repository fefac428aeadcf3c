"""The redaction corpus (tests/data/secrets/corpus.txt): every secret, planted where real tools
print it, is absent from every report format, every export target and the plots; and redaction
stays linear on hostile lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analyzer.api import open_bundle
from analyzer.cli import app
from analyzer.export import FORMATS, export
from analyzer.redact import PATTERNS, Redactor, SecretPattern, redact_text
from analyzer.renderers import RenderOptions, registry
from analyzer.report import Report

CORPUS = Path(__file__).parent / "data" / "secrets" / "corpus.txt"
OPEN, CLOSE = "«", "»"


def _cases() -> list[tuple[str, str, list[str]]]:
    """(where, text without markers, secrets) of each case line of the corpus."""
    out = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        where, _, marked = line.partition("|")
        secrets = [part.split(CLOSE, 1)[0] for part in marked.split(OPEN)[1:]]
        out.append((where, marked.replace(OPEN, "").replace(CLOSE, ""), secrets))
    return out


CASES = _cases()
SECRETS = sorted({s for _, _, ss in CASES for s in ss})

RULE = '''
id = "X-R001"
category = "task.exception"
severity = "error"
title = "Every record (redaction corpus)"
what = "Every record, so every line reaches the evidence and the summaries."
why = "Redaction test."
on = "events"
when = 'message ~ "."'
group_by = ["line"]
message = "{message}"
remediation = ["none"]
'''

PYSPY_HEAD = """\
Process 15096: /usr/bin/python3 /usr/bin/celery -A proj worker -P prefork -c 2 --loglevel=INFO -n w1@sample
Python v3.11.7 (/usr/bin/python3.11)

Thread 15096 (idle): "MainThread"
    fetch_rates (proj.py:37)
        Arguments:
            port: 44681
        Locals:
"""


def _record(n: int, text: str) -> str:
    return f"[2026-11-28 19:05:{n % 60:02d},{n:03d}: ERROR/MainProcess] {text}\n"


def build_bundle(root: Path) -> tuple[Path, Path]:
    """A bundle holding every case where its `where` says, and a rule directory whose rule quotes
    every log record in a finding."""
    bundle, rules = root / "bundle", root / "rules"
    bundle.mkdir()
    rules.mkdir()
    (rules / "X-R001.toml").write_text(RULE, encoding="utf-8")
    by = {w: [t for where, t, _ in CASES if where == w] for w in ("log", "inspect", "pyspy", "postgres", "name")}
    (bundle / "worker.log").write_text("".join(_record(n, t) for n, t in enumerate(by["log"])), encoding="utf-8")
    for n, name in enumerate(by["name"]):  # a folder of its own: no other file names its node
        (bundle / f"w{n}").mkdir()
        (bundle / f"w{n}" / f"worker-{name}.log").write_text(_record(n, "consumer: Connected to redis://127.0.0.1:6379/0")
                                                   + _record(n + 1, "mingle: all alone"), encoding="utf-8")
    args: list[object] = []
    for t in by["inspect"]:
        args.append(json.loads(t) if t.startswith("{") else t)
    active = {"w1@sample": [{"id": "0d0b48f4-8c79-4c6d-ba88-83d1f0f289ab", "name": "proj.fetch", "args": args,
                             "kwargs": {}, "type": "proj.fetch", "hostname": "w1@sample",
                             "time_start": 1795892690.45, "acknowledged": True,
                             "delivery_info": {"exchange": "", "routing_key": "celery", "priority": 0,
                                               "redelivered": False}, "worker_pid": 15096}]}
    (bundle / "inspect-active.json").write_text(json.dumps(active), encoding="utf-8")
    (bundle / "pyspy-locals.txt").write_text(PYSPY_HEAD + "".join(f"            {t}\n" for t in by["pyspy"]),
                                             encoding="utf-8")
    (bundle / "postgresql.log").write_text("".join(f"{t}\n" for t in by["postgres"]), encoding="utf-8")
    return bundle, rules


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_bundle(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def report(planted: tuple[Path, Path]) -> Report:
    bundle, rules = planted
    return open_bundle([bundle]).report(rule_dirs=[rules])


def _leaks(data: str | bytes, secrets: list[str] = SECRETS) -> list[str]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return [s for s in secrets if s.encode("utf-8") in raw]


def _export_text(path: Path, fmt: str) -> str:
    """Every string cell of an exported file (parquet is compressed: its bytes prove nothing)."""
    if fmt != "parquet":
        return path.read_text(encoding="utf-8")
    df = pl.read_parquet(path)
    return repr(df.rows()) + " ".join(str(v) for c in df.columns for v in df.get_column(c).to_list())


def test_the_corpus_cites_a_source_for_every_case() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            comment = [ln for ln in lines[:i] if ln.startswith("#")]
            assert (comment and "http" in "".join(comment[-4:])) or line.startswith("name|"), line
    assert len(CASES) >= 30 and all(ss for where, text, ss in CASES if text != "--password")


def test_every_planted_secret_reaches_an_output_when_not_redacted(planted: tuple[Path, Path], report: Report,
                                                                  tmp_path: Path) -> None:
    """Precondition: without redaction each secret is in some report or export (else the
    test below would prove nothing for it)."""
    bundle, _ = planted
    shown = registry()["json"](report, RenderOptions(redact=False))
    export(open_bundle([bundle]), tmp_path, to="ndjson", redact=False)
    exported = " ".join(p.read_text(encoding="utf-8") for p in sorted(tmp_path.iterdir()))
    missing = [s for s in SECRETS if s not in shown and s not in exported and json.dumps(s)[1:-1] not in exported]
    assert not missing


@pytest.mark.parametrize("fmt", sorted(registry()))
def test_no_planted_secret_in_any_report_format(report: Report, fmt: str) -> None:
    out = registry()[fmt](report, RenderOptions())  # HTML with its plots: the CLI test below
    assert not _leaks(out), fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_planted_secret_in_any_export(planted: tuple[Path, Path], fmt: str, tmp_path: Path) -> None:
    bundle, _ = planted
    written = export(open_bundle([bundle]), tmp_path, to=fmt)
    leaks = {p.name: _leaks(_export_text(p, fmt)) for p in written}
    assert not any(leaks.values()), leaks


def test_no_planted_secret_in_the_cli_outputs_and_plots(planted: tuple[Path, Path], tmp_path: Path) -> None:
    """The public path: `analyze -f html --plots DIR` (SVG text, embedded PNGs) and `export`."""
    bundle, rules = planted
    result = CliRunner().invoke(app, ["analyze", str(bundle), "--rules", str(rules), "-f", "html",
                                      "-o", str(tmp_path / "r.html"), "--plots", str(tmp_path / "plots")])
    assert result.exit_code in (0, 1), result.output
    svgs = sorted((tmp_path / "plots").glob("*.svg"))
    assert svgs
    for path in [tmp_path / "r.html", *svgs]:
        assert not _leaks(path.read_bytes()), path.name
    result = CliRunner().invoke(app, ["export", str(bundle), str(tmp_path / "x"), "--to", "csv"])
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "x").iterdir():
        assert not _leaks(path.read_bytes()), path.name


def test_plot_labels_are_redacted_before_drawing(planted: tuple[Path, Path], report: Report) -> None:
    """A PNG cannot be searched for text: the labels handed to matplotlib are checked instead."""
    from analyzer import plots

    (token,) = [ss[0] for where, _, ss in CASES if where == "name"]
    host = f"worker-{token}"
    assert plots.labeller(report)([host]) != [host]
    assert token not in plots.labeller(report)([host])[0]
    fig = plots.timeline(open_bundle([planted[0]]), label=plots.labeller(report))
    texts = [t.get_text() for ax in fig.axes for t in [*ax.get_yticklabels(), ax.yaxis.label]]
    assert any("worker-" in t for t in texts) and not _leaks(" ".join(texts))
    assert host in plots.keep([host])


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.id)
def test_every_pattern_masks_its_own_sample(pattern: SecretPattern) -> None:
    sample = pattern.sample
    assert redact_text(sample) != sample and "***1***" in redact_text(sample)


# -- time ----------------------------------------------------------------------------------------


def worst_lines(n: int) -> list[str]:
    """Lines of about `n` characters that make backtracking patterns quadratic: cue words
    followed by long `a.a.a.` runs, and long runs of the characters each pattern accepts."""
    run, word = "a." * (n // 2), "a" * n
    return [
        f"password {run}", f"x password={run}", f"amqp://{run}:{run}", f"amqp://u:{word}", f"amqp://u:{'@' * n}",
        f"Authorization: {run}", f"Cookie: {run}", f"bearer {word}", f"'--password', '{run}",
        f"--password {run}", f"auth=('{run}', '{run}", "-----BEGIN PRIVATE KEY-----" + "A" * n,
        "ghp_" + word, "ey" + word + ".ey" + word, "password " * (n // 9), "PASSWORD '" + "''" * (n // 2),
        "AKIA" * (n // 4), "xoxb-1234567890-" * (n // 16), "hooks.slack.com/services/" + word,
        "tok:" * (n // 4), ("password=" + "a" * 10 + " ") * (n // 20), "a=" * (n // 2), "'" * n, '"' * n,
    ]


def _seconds(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def test_redaction_is_linear_on_worst_case_lines() -> None:
    small, big = worst_lines(2_000), worst_lines(20_000)
    t_small = _seconds(lambda: Redactor().apply(small))
    t_big = _seconds(lambda: Redactor().apply(big))
    assert t_big < 2.0 and t_big <= 25 * max(t_small, 0.01), (t_small, t_big)


def test_a_large_hostile_log_redacts_in_seconds(tmp_path: Path) -> None:
    """1.4 MB of worst-case records through `analyze -f json`: redaction adds seconds at most."""
    lines = [t for t in worst_lines(1_000) for _ in range(2)] * 30
    (tmp_path / "worker.log").write_text("".join(_record(n, t) for n, t in enumerate(lines)), encoding="utf-8")
    assert (tmp_path / "worker.log").stat().st_size > 1_400_000

    def run(*extra: str) -> None:
        result = CliRunner().invoke(app, ["analyze", str(tmp_path), "-f", "json", *extra])
        assert result.exit_code in (0, 1, 2), result.output

    t = time.perf_counter()
    run("--no-redact")
    plain = time.perf_counter() - t
    t = time.perf_counter()
    run()
    redacted = time.perf_counter() - t
    assert redacted < plain + 3.0, (plain, redacted)
