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
from typing import Any, TypeVar

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


def redact_report(report: Report, redactor: Redactor | None = None) -> Report:
    """A redacted copy of `report`: every string of it (findings, evidence, coverage samples and
    notes, problems, summary, input names) with secrets replaced; the original is untouched.

    Two passes: the first learns every secret the patterns see anywhere in the report, the
    second replaces them, so a secret's placeholder is the same everywhere in the report.
    """
    r = redactor or Redactor()
    def learn(text: str) -> str:
        r.scan(text)
        return text

    _walk(report, learn)
    return _walk(report, r.redact)
