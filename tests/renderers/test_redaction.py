# ruff: noqa: E501  (the corpus is real-format log lines, kept whole)
"""Redaction: no secret survives in any renderer's output; masks are consistent and idempotent.

The corpus is made of real Celery log lines from `samples/` (same headers, same messages) in
which Celery's own `**` mask was replaced by a password, as an application that logs its own
connection URL or settings would print it, plus the other secret shapes `analyzer.redact`
knows (key=value, JSON / dict, Authorization headers, py-spy `--locals` lines).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.api import open_bundle
from analyzer.bundle import Problem
from analyzer.cli import app
from analyzer.findings import Evidence
from analyzer.redact import Redactor, redact_report, redact_text
from analyzer.renderers import RenderOptions, registry
from analyzer.report import Report
from tests.conftest import SAMPLES
from tests.renderers import finding, make_report

SECRETS = {
    "amqp": "Gu3st-Pa55w0rd",
    "redis": "R3d1s-S3cret!",
    "rediss": "tls-redis-pw-9",
    "amqps": "amqps-pw-77",
    "sqla": "pg_pw_2024",
    "kv_password": "hunter2-kv",
    "kv_token": "tok_live_51H8xYz",
    "kv_secret": "s3cr3t-value",
    "kv_api_key": "AKIAIOSFODNN7EXAMPLE",
    "kv_passwd": "passwd-value-1",
    "json_password": "json pass phrase",
    "dict_token": "dict-token-abc",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "basic": "dXNlcjpzM2NyM3Q=",
    "local_password": "local-pw-xyz",
    "local_secret_key": "django-insecure-k3y",
}
S = SECRETS
LOG = f"""\
[2026-11-28 19:01:04,581: ERROR/MainProcess] consumer: Cannot connect to amqp://guest:{S['amqp']}@127.0.0.1:56745//: [Errno 111] Connection refused.
Trying again in 2.00 seconds... (1/100)
[2026-11-28 19:01:05,100: INFO/MainProcess] Connected to redis://:{S['redis']}@127.0.0.1:46049/0
[2026-11-28 19:01:05,200: WARNING/MainProcess] result backend rediss://:{S['rediss']}@cache.internal:6380/1?ssl_cert_reqs=required is slow
[2026-11-28 19:01:05,300: ERROR/MainProcess] consumer: Cannot connect to amqps://app:{S['amqps']}@mq.internal:5671//: [Errno 111] Connection refused.
[2026-11-28 19:01:05,400: ERROR/MainProcess] Database backend sqla+postgresql://celery:{S['sqla']}@db.internal/results refused the connection
[2026-11-28 19:01:06,000: INFO/ForkPoolWorker-1] proj.login[f8f2b680-08b0-42f7-85c7-014c211a2f9b]: calling api with password={S['kv_password']}&token={S['kv_token']}
[2026-11-28 19:01:06,100: INFO/ForkPoolWorker-1] proj.login[f8f2b680-08b0-42f7-85c7-014c211a2f9b]: settings secret={S['kv_secret']} api_key={S['kv_api_key']} passwd={S['kv_passwd']}
[2026-11-28 19:01:06,200: ERROR/ForkPoolWorker-1] Task proj.login[f8f2b680-08b0-42f7-85c7-014c211a2f9b] raised unexpected: ValueError('bad payload {{"user": "bob", "password": "{S['json_password']}"}}')
Traceback (most recent call last):
  File "/tmp/proj.py", line 16, in login
    raise ValueError(payload)
ValueError: bad payload {{"user": "bob", "password": "{S['json_password']}"}}
[2026-11-28 19:01:06,300: WARNING/ForkPoolWorker-2] proj.call[90ee8804-c258-4cbb-9a7c-5ffe0adc89ac]: retrying {{'token': '{S['dict_token']}', 'user': 'bob'}}
[2026-11-28 19:01:06,400: ERROR/ForkPoolWorker-2] proj.call[90ee8804-c258-4cbb-9a7c-5ffe0adc89ac]: 401 from api, sent headers {{'Authorization': 'Bearer {S['bearer']}'}}
[2026-11-28 19:01:06,500: ERROR/ForkPoolWorker-2] proj.call[90ee8804-c258-4cbb-9a7c-5ffe0adc89ac]: proxy said 407 to Proxy-Authorization: Basic {S['basic']}
[2026-11-28 19:01:06,700: INFO/MainProcess] Connected to redis://:**@127.0.0.1:46049/0
"""
# A settings dump printed to the log: a continuation line of the record before it.
STRAY = f"BROKER_URL=amqp://guest:{S['amqp']}@127.0.0.1:56745// token={S['kv_token']}\n"



def pyspy_locals_with_secrets() -> str:
    """The first `Locals:` block of a real `py-spy dump --locals` (samples/hang-socket-read) with
    two locals named like secrets added in its own format."""
    lines = (SAMPLES / "hang-socket-read" / "pyspy-locals.txt").read_text(encoding="utf-8").splitlines()
    i = next(n for n, line in enumerate(lines) if line.strip() == "Locals:")
    block = lines[max(0, i - 1): i + 3]
    return "\n".join([*block, f"            password: '{S['local_password']}'",
                      f"            SECRET_KEY: '{S['local_secret_key']}'"])


RULE = '''
id = "X-R001"
category = "task.exception"
severity = "error"
title = "Every record (redaction test)"
what = "Every record, so every line reaches the evidence and the summaries."
why = "Redaction test."
on = "events"
when = 'message ~ "."'
group_by = ["line"]
message = "{message}"
remediation = ["none"]
'''


@pytest.fixture(scope="module")
def secret_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    root = tmp_path_factory.mktemp("secrets")
    (root / "bundle").mkdir()
    (root / "bundle" / "worker.log").write_text(LOG + STRAY, encoding="utf-8")
    (root / "rules").mkdir()
    (root / "rules" / "X-R001.toml").write_text(RULE, encoding="utf-8")
    rep = open_bundle([root / "bundle"]).report(rule_dirs=[root / "rules"], builtin_rules=False)
    rep.findings.append(finding(rule="X-R002", id=f"f{len(rep.findings) + 1}", evidence=[
        Evidence("pyspy-locals.txt", 1, pyspy_locals_with_secrets())]))
    rep.problems.append(Problem("worker.log", f"could not read amqp://guest:{S['amqp']}@host//"))
    rep.rule_errors.append(f"rules/x.toml:1:1: token={S['kv_token']}")
    return rep


def all_text(rep: Report) -> str:
    return repr(rep)


def test_the_corpus_reaches_the_report_unredacted(secret_report: Report) -> None:
    text = all_text(secret_report)
    missing = [k for k, v in SECRETS.items() if v not in text]
    assert not missing, f"corpus lines not in the report (test would prove nothing): {missing}"


@pytest.mark.parametrize("fmt", sorted(registry()))
def test_no_secret_survives_in_any_renderer(secret_report: Report, fmt: str) -> None:
    out = registry()[fmt](secret_report, RenderOptions())
    leaked = [k for k, v in SECRETS.items() if v in out]
    assert not leaked, f"{fmt} leaks {leaked}"
    # partial leaks: a long enough fragment of a secret
    for v in SECRETS.values():
        assert v[: max(6, len(v) // 2)] not in out or len(v) < 8, (fmt, v)
    assert "***1***" in out or (fmt == "github" and "***" in out)


@pytest.mark.parametrize("fmt", sorted(registry()))
def test_no_redact_shows_the_secrets(secret_report: Report, fmt: str) -> None:
    out = registry()[fmt](secret_report, RenderOptions(redact=False))
    if fmt != "github":  # github shows only summaries; the first record's URL is there
        assert S["amqp"] in out or fmt == "terminal"


def test_redacted_copy_leaves_the_original_alone(secret_report: Report) -> None:
    red = redact_report(secret_report)
    text = all_text(red)
    assert not [k for k, v in SECRETS.items() if v in text]
    assert S["amqp"] in all_text(secret_report)


def test_same_secret_gets_the_same_placeholder_everywhere(secret_report: Report) -> None:
    red = redact_report(secret_report)
    first = red.findings[0] if "amqp://" in red.findings[0].summary else next(
        f for f in red.findings if "amqp://guest:" in f.summary)
    (mark,) = re.findall(r"amqp://guest:(\*\*\*\d+\*\*\*)@", first.summary)
    elsewhere = [e.text for f in red.findings for e in f.evidence if "BROKER_URL=" in e.text]
    assert elsewhere and f"BROKER_URL=amqp://guest:{mark}@" in elsewhere[0]
    assert f"amqp://guest:{mark}@" in red.problems[-1].message


def test_celery_masks_are_left_alone(secret_report: Report) -> None:
    red = redact_report(secret_report)
    assert "Connected to redis://:**@127.0.0.1:46049/0" in all_text(red)


def test_redaction_is_idempotent() -> None:
    once = redact_text(LOG)
    assert redact_text(once) == once


@pytest.mark.parametrize(("text", "expected"), [
    ("amqp://guest:pw1234@h//", "amqp://guest:***1***@h//"),
    ("redis://:pw1234@h:6379/0", "redis://:***1***@h:6379/0"),
    ("sqla+postgresql://u:pw1234@db/x", "sqla+postgresql://u:***1***@db/x"),
    ("redis://:**@h:6379/0", "redis://:**@h:6379/0"),
    ("redis://h:6379/0 user@example.com", "redis://h:6379/0 user@example.com"),
    ('{"password": "a b c", "user": "x"}', '{"password": "***1***", "user": "x"}'),
    ("{'api_key': 'k-1'}", "{'api_key': '***1***'}"),
    ("DB_PASSWORD=abc123 next", "DB_PASSWORD=***1*** next"),
    ("password = None", "password = None"),
    ("Authorization: Bearer abcdefgh123", "Authorization: Bearer ***1***"),
    ("Authorization: Basic dXNlcjpw", "Authorization: Basic ***1***"),
    ("            password: 'hunter2'", "            password: '***1***'"),
    ("invalid username-password pair or user is disabled.", "invalid username-password pair or user is disabled."),
    ("a=pw1234 b=pw1234 pw1234", "a=pw1234 b=pw1234 pw1234"),
])
def test_shapes(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_a_known_secret_is_masked_where_it_appears_bare() -> None:
    r = Redactor()
    r.scan("amqp://guest:pw123456@h//")
    assert r.redact("the password was pw123456.") == "the password was ***1***."


def test_hand_made_report_findings_are_redacted() -> None:
    rep = make_report([finding(summary="token=abcdef123", remediation=["use amqp://u:pass1234@h"])])
    red = redact_report(rep)
    assert red.findings[0].summary == "token=***1***"
    assert red.findings[0].remediation == ["use amqp://u:***2***@h"]


def test_cli_redacts_by_default_and_no_redact_opts_out(tmp_path: Path) -> None:
    (tmp_path / "worker.log").write_text(LOG, encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(app, ["analyze", str(tmp_path), "-f", "json"])
    assert out.exit_code == 0, out.output
    assert "unrecognized" in out.stdout and not [k for k, v in SECRETS.items() if v in out.stdout]
    raw = runner.invoke(app, ["analyze", str(tmp_path), "-f", "markdown", "--no-redact"])
    assert raw.exit_code == 0, raw.output


def test_each_pattern_matches_only_text_holding_one_of_its_cues() -> None:
    """The cue pre-filter never skips a match: on every line of the corpus (and each line with
    its case swapped) a pattern that matches holds one of its cue literals."""
    import polars as pl

    from analyzer.redact import PATTERNS

    lines = [*LOG.splitlines(), STRAY, *pyspy_locals_with_secrets().splitlines()]
    matched = 0
    for line in [*lines, *(ln.swapcase() for ln in lines)]:
        for pattern in PATTERNS:
            if pl.Series([line]).str.contains(pattern.regex).item():
                matched += 1
                assert any(c in line.lower() for c in pattern.cues), (pattern.id, line)
    assert matched >= 15


# Letters a case-insensitive pattern equates with an ASCII letter of a cue although
# `str.lower()` does not turn them into it: long s, dotless i, dotted capital I, Kelvin sign.
UNICODE_CASE = {"s": "\u017f", "i": "\u0131", "I": "\u0130", "k": "\u212a"}


@pytest.mark.parametrize(("ascii_letter", "other"), UNICODE_CASE.items())
def test_the_cue_pre_filter_skips_no_case_insensitive_match(
        ascii_letter: str, other: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each corpus line with a letter swapped for one the case-insensitive patterns equate with
    it is redacted exactly as running every pattern on it would."""
    import analyzer.redact as redact_module

    lines = [*LOG.splitlines(), STRAY, *pyspy_locals_with_secrets().splitlines()]
    variants = [ln.replace(ascii_letter, other) for ln in lines]
    fast = [Redactor().redact(ln) for ln in variants]
    monkeypatch.setattr(redact_module, "_cued", lambda lowered, pattern: list(range(lowered.len())))
    every = [Redactor().redact(ln) for ln in variants]
    assert sum(a != b for a, b in zip(variants, every, strict=True)) >= 5  # the variants do hold secrets
    assert fast == every
