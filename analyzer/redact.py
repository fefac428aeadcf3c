"""Redaction of secrets in a report: applied once, to every string, before any renderer draws it.

What counts as a secret (patterns below, each with a real shape in its comment):

- the password of a URL's user-info: `amqp://user:PASS@host`, `redis://:PASS@host`, `rediss://`,
  `amqps://`, `sqla+postgresql://user:PASS@host/db` (any scheme);
- the value of a key that names a secret (`password`, `passwd`, `pwd`, `secret`, `token`,
  `api_key` / `apikey`, also inside longer names such as `db_password` or `SECRET_KEY`) written
  `key=value`, `key = 'value'`, `key: value` (py-spy `--locals`: `password: 'hunter2'`) or JSON /
  Python-dict style `"password": "value"` / `'password': 'value'`;
- the credentials of an `Authorization:` header (`Bearer …`, `Basic …`, `Token …`), and a bare
  `Bearer <token>` anywhere.

Each distinct secret gets one placeholder, `***1***`, `***2***`, … numbered in order of first
appearance in the report, and every later literal occurrence of a secret already found (a
password that shows up again outside its URL) is replaced by the same placeholder. Masks that
are already there — Celery's and kombu's `**` (`redis://:**@host`), a row of asterisks, a
placeholder — are left alone, so redacting twice changes nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import polars as pl

from analyzer.report import Report

T = TypeVar("T")

# amqp://guest:s3cret@127.0.0.1:5672//   redis://:s3cret@127.0.0.1:6379/0   sqla+postgresql://u:pw@db/x
URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)(?P<tail>@)")

_KEY = r"[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key)[\w.-]*"
# password=hunter2   token = 'abc'   "password": "hunter2"   'api_key': 'k-123'   password: 'x' (py-spy)
KEY_VALUE = re.compile(
    r"(?P<head>(?P<q>[\"']?)\b" + _KEY + r"(?P=q)\s*[=:]\s*)"
    r"(?P<secret>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|[^\s,;&)}\]'\"]+)",
    re.IGNORECASE,
)
# Authorization: Bearer eyJhbGciOi...   Proxy-Authorization: Basic dXNlcjpwYXNz
AUTH_HEADER = re.compile(
    r"(?P<head>\b(?:Proxy-)?Authorization[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic|Token|Digest)\s+)?)"
    r"(?P<secret>[^\s\"',;]+)",
    re.IGNORECASE,
)
# Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc (outside a header)
BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")

PATTERNS: tuple[re.Pattern[str], ...] = (URL_USERINFO, AUTH_HEADER, BEARER, KEY_VALUE)
# Literals (lower case) of which each pattern needs one: a report holds thousands of strings and
# most hold none, so a substring test spares them four regex passes.
TRIGGERS: tuple[tuple[str, ...], ...] = (("://",), ("authorization",), ("bearer",),
                                         ("passw", "pwd", "secret", "token", "api"))

# `re.IGNORECASE` equates long s with s and dotless i with i, which `str.lower()` keeps apart
# (the Kelvin sign and dotted capital I do lower to k and i)
_FOLD = str.maketrans({"\u017f": "s", "\u0131": "i"})

PLACEHOLDER = re.compile(r"\*\*\*\d+\*\*\*")
# Values that are not secrets: masks already applied, empty or null values.
_NOT_SECRET = re.compile(r"\**|\*\*\*\d+\*\*\*|None|null|nil|true|false|True|False|\?|<redacted>|xxx+|XXX+")
MIN_LITERAL = 4  # shorter secrets are not searched for as bare text (too many false hits)


def _strip_quotes(value: str) -> tuple[str, str, str]:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0], value[1:-1], value[0]
    return "", value, ""


class Redactor:
    """Finds secrets and replaces them with stable placeholders (one numbering per instance)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # secret → placeholder

    def _placeholder(self, secret: str) -> str:
        if secret not in self.secrets:
            self.secrets[secret] = f"***{len(self.secrets) + 1}***"
        return self.secrets[secret]

    def _sub(self, m: re.Match[str]) -> str:
        open_q, value, close_q = _strip_quotes(m.group("secret"))
        if _NOT_SECRET.fullmatch(value):
            return m.group(0)
        tail = m.group("tail") if "tail" in m.re.groupindex else ""
        return f"{m.group('head')}{open_q}{self._placeholder(value)}{close_q}{tail}"

    def scan(self, text: str) -> None:
        """Learn the secrets in `text` (so later literal occurrences anywhere get masked)."""
        self.redact(text)

    def redact(self, text: str) -> str:
        if not text:
            return text
        low = text.lower().translate(_FOLD)
        for pattern, triggers in zip(PATTERNS, TRIGGERS, strict=True):
            if any(t in low for t in triggers):
                text = pattern.sub(self._sub, text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= MIN_LITERAL and secret in text:
                text = self._replace_literal(text, secret, self.secrets[secret])
        return text

    @staticmethod
    def _replace_literal(text: str, secret: str, placeholder: str) -> str:
        # keep placeholders intact: split around them, replace in the rest
        parts = PLACEHOLDER.split(text)
        marks = PLACEHOLDER.findall(text)
        out = [parts[0].replace(secret, placeholder)]
        for mark, part in zip(marks, parts[1:], strict=True):
            out.append(mark)
            out.append(part.replace(secret, placeholder))
        return "".join(out)


def _walk(value: T, fn: Any) -> T:
    """A copy of `value` with `fn` applied to every string inside dataclasses, lists, tuples, dicts."""
    if isinstance(value, str):
        return fn(value)  # type: ignore[no-any-return]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _walk(getattr(value, f.name), fn) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(_walk(v, fn) for v in value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {_walk(k, fn): _walk(v, fn) for k, v in value.items()}  # type: ignore[return-value]
    return value


def redact_text(text: str) -> str:
    """One string on its own (placeholders numbered within it)."""
    r = Redactor()
    r.scan(text)
    return r.redact(text)


def scan_report(report: Report, redactor: Redactor) -> None:
    """Learn every secret of `report` in the order `redact_report` numbers them."""
    def learn(text: str) -> str:
        redactor.scan(text)
        return text

    _walk(report, learn)


def redact_report(report: Report, redactor: Redactor | None = None) -> Report:
    """A redacted copy of `report`: every string of it (findings, evidence, coverage samples and
    notes, problems, summary, input names) with secrets replaced; the original is untouched.

    Two passes: the first learns every secret the patterns see anywhere in the report, the
    second replaces them, so a secret's placeholder is the same everywhere in the report.
    """
    r = redactor or Redactor()
    scan_report(report, r)
    return _walk(report, r.redact)


# Rust-regex form of TRIGGERS: `(?i)` folds long s and the Kelvin sign as Python's IGNORECASE does.
_CUES = "(?i)" + "|".join(re.escape(t) for ts in TRIGGERS for t in ts)


def _cued(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(_CUES)


def _string_columns(df: pl.DataFrame) -> list[tuple[str, bool]]:
    """(name, is a list) of the columns that hold text."""
    return [(name, isinstance(dtype, pl.List)) for name, dtype in df.schema.items()
            if dtype == pl.String or (isinstance(dtype, pl.List) and dtype.inner == pl.String)]


def _candidates(df: pl.DataFrame, name: str, is_list: bool) -> list[str]:
    """Distinct values of a column that hold a pattern's cue, in order of first appearance."""
    col = pl.col(name).explode() if is_list else pl.col(name)
    values = df.select(col.filter(_cued(col)).unique(maintain_order=True))
    return [v for v in values.to_series().to_list() if v]


def redact_frames(frames: Mapping[str, pl.DataFrame], redactor: Redactor | None = None) -> dict[str, pl.DataFrame]:
    """Copies of `frames` with every string (and list-of-string) cell redacted as `Redactor.redact` would.

    Vectorised for frames of millions of rows: the patterns only run, in Python, on the distinct
    values that hold one of their cues (few); every other cell can only hold a secret as bare
    text, which one `str.replace_many` per column replaces.  Like `redact_report` it learns first
    and replaces after, so a secret has one placeholder in every frame; new secrets are numbered
    after those `redactor` already knows (pass one that has scanned the report to share its
    numbering), frame by frame, column by column, in order of first appearance.
    """
    r = redactor or Redactor()
    columns = {name: _string_columns(df) for name, df in frames.items()}
    distinct = {(name, col): _candidates(frames[name], col, is_list)
                for name, cols in columns.items() for col, is_list in cols}
    for values in distinct.values():
        for value in values:
            r.scan(value)
    literal = sorted((s for s in r.secrets if len(s) >= MIN_LITERAL), key=len, reverse=True)
    placeholders = [r.secrets[s] for s in literal]
    out = {}
    for name, df in frames.items():
        exprs = []
        for col, is_list in columns[name]:
            values = distinct[(name, col)]
            redacted = [r.redact(v) for v in values]
            changed = [(old, new) for old, new in zip(values, redacted, strict=True) if old != new]
            if not changed and not literal:
                continue
            cell = pl.element() if is_list else pl.col(col)
            expr = cell.str.replace_many(literal, placeholders) if literal else cell
            if changed:
                olds, news = zip(*changed, strict=True)
                expr = pl.when(cell.is_in(list(olds))).then(cell.replace(list(olds), list(news))).otherwise(expr)
            exprs.append(pl.col(col).list.eval(expr) if is_list else expr.alias(col))
        out[name] = df.with_columns(exprs) if exprs else df
    return out
