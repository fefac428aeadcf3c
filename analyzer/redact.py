"""Redaction of secrets in a report: applied once, to every string, before any renderer draws it.

What counts as a secret is `PATTERNS`, a table of shapes, each with the tool and format that
prints it (or the catalogue it comes from) and a real sample:

- the password of a URL's user-info (`amqp://user:PASS@host`, `redis://:PASS@host`, any scheme,
  also JSON-escaped `amqp:\\/\\/u:PASS@h` and passwords holding a raw `/` or `@`);
- the value of a key that names a secret (`password`, `pass`, `secret`, `token`, `api_key`,
  `private_key`, `signature`, `credential`, ... also inside longer names such as `db_password`
  or `X-Amz-Signature`) written `key=value`, `key: value`, `"key": "value"`, `'key': b'value'`;
- `Authorization:` and `Cookie:` / `Set-Cookie:` header values, a bare `bearer <token>`;
- the password in SQL (`ALTER ROLE ... PASSWORD '...'`, `IDENTIFIED BY '...'`), argv lists
  (`['--password', 'x']`, `--token x`), credential tuples (`auth=('u', 'pw')`, py-spy's
  `auth: ("u", "pw")`);
- tokens recognisable on their own (GitHub, GitLab, Slack, AWS key ids, Stripe, Google API keys,
  npm, PyPI, JWTs, PEM private keys, Slack webhook paths), taken as data from gitleaks' rule set
  (`GITLEAKS`, each with its rule id).

Every pattern is run by polars' regex engine (Rust `regex`: finite automata, linear in the text
whatever the pattern; Python's `re` backtracks), never by `re`: a hostile line of `a.a.a.` after
a cue word costs what any other line of its length costs.

Each distinct secret gets one placeholder, `***1***`, `***2***`, … numbered in order of first
appearance, and every later literal occurrence of a secret already found (a password that shows
up again outside its URL) is replaced by the same placeholder.  Masks that are already there —
Celery's and kombu's `**` (`redis://:**@host`), a row of asterisks, a placeholder — are left
alone, so redacting twice changes nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl

from analyzer.report import Report

T = TypeVar("T")


@dataclass(frozen=True)
class SecretPattern:
    """One shape of secret: a Rust-syntax regex with the groups `head` (kept), `secret` (replaced)
    and optionally `tail` (kept), which together are the whole match."""

    id: str
    regex: str
    cues: tuple[str, ...]  # lower-case literals every match holds (case-insensitively): a pre-filter
    source: str  # who prints this shape, or the catalogue it was taken from
    sample: str  # a real line holding it


GITLEAKS = "https://github.com/gitleaks/gitleaks/blob/09242ce9c8a60d9b051fc2d166f9e849b88c7ac0/config/gitleaks.toml"

# A quoted or bare value: "..." / '...' / b'...' / JSON-escaped \"...\" (an unterminated quote, as
# a clipped line leaves it, runs to the end of the line), else a run up to a separator.
_VALUE = (r"""b?"(?:[^"\\\n]|\\.)*"?|b?'(?:[^'\\\n]|\\.)*'?|\\"(?:[^"\\\n]|\\[^"\n])*(?:\\")?"""
          r"""|[^\s,;&(){}\[\]<>'"\\][^\s,;&)}\]<>'"\\]*""")
# Names that hold a secret wherever they appear in a longer name (`db_password`, `SECRET_KEY`).
_WORDS = (r"passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|account[_-]?key"
          r"|auth[_-]?key|session[_-]?key|credential")
# Short names that hold one only as the whole name or its last part (`pass`, `db_pass`, not `bypass`).
_SHORT = r"pass|pw|sig|auth"
# A signature only as a query parameter or the last part of a longer name (`&Signature=`,
# `X-Amz-Signature=`): the analyzer's own stack `signature=` is none.
_KEY = (rf"(?:[\w.-]*(?:{_WORDS})[\w.-]*|(?:^|[^\w.-])(?:[\w.-]*[_.-])?(?:{_SHORT})"
        r"|[\w.-]*[_.-]signature|[?&;]signature)")
_HEADER_VALUE = r"""[^\s"'\\][^"'\r\n\\]*"""  # a header's value: to the closing quote or the end of the line

PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "url-password",
        r"""(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*:(?://|\\/\\/)[^:/@\s\\'"<>]*:)(?P<secret>[^\s'"<>]+)(?P<tail>@)""",
        ("://", ":\\/\\/"),
        "kombu / redis-py / SQLAlchemy connection URLs as applications log them; the password runs to the "
        "last `@` (kombu's own mask leaves `redis://:**@ss/w0rd@h` of a password holding `@`)",
        "consumer: Cannot connect to amqp://guest:s3cret@127.0.0.1:5672//: [Errno 111] Connection refused."),
    SecretPattern(
        "authorization-header",
        r"""(?i)(?P<head>(?:\\[rn]|\b)(?:proxy-)?authorization\\?["']?\s*[:=]\s*(?:b?\\?["'])?"""
        r"""(?:(?:bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256|hmac-sha256|apikey|sso-key)\s+)?)"""
        rf"""(?P<secret>{_HEADER_VALUE})""",
        ("authorization",),
        "HTTP request headers as requests / urllib3 / botocore debug logs print them "
        "(`'Authorization': b'AWS4-HMAC-SHA256 Credential=..., Signature=...'`)",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIA.../20240101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=fe5f80f7"),
    SecretPattern(
        "cookie-header",
        rf"""(?i)(?P<head>(?:\\[rn]|\b)(?:set-)?cookie2?\\?["']?\s*[:=]\s*(?:b?\\?["'])?)(?P<secret>{_HEADER_VALUE})""",
        ("cookie",),
        "HTTP `Cookie:` / `Set-Cookie:` headers in requests / Django / gunicorn debug logs",
        "Set-Cookie: sessionid=abc123; expires=Thu, 01 Jan 2026 00:00:00 GMT; HttpOnly; Path=/"),
    SecretPattern(
        "bearer",
        r"(?i)(?P<head>\bbearer\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
        ("bearer",),
        "OAuth 2 bearer tokens (RFC 6750) outside a header, any case",
        "401 from api: bearer eyJhbGciOiJIUzI1NiJ9.e30.abc rejected"),
    SecretPattern(
        "private-key",
        r"(?i)(?P<head>-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)(?P<secret>(?:[A-Za-z0-9+/=:\s-]|\\n)+)",
        ("-----begin",),
        f"gitleaks rule `private-key` ({GITLEAKS}); the body runs to the first character a PEM body "
        "cannot hold, so a key whose `-----END` line was cut off is still masked",
        "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA..."),
    SecretPattern(
        "sql-password",
        r"(?i)(?P<head>\b(?:password|identified\s+(?:with\s+\w+\s+)?by(?:\s+password)?)\s+)"
        r"(?P<secret>'(?:[^'\n]|'')*'?)",
        ("password", "identified"),
        "PostgreSQL `ALTER ROLE ... PASSWORD '...'` / MariaDB `IDENTIFIED BY '...'` as a server log "
        "echoes the statement (`STATEMENT:` / `statement:` lines)",
        "STATEMENT:  ALTER ROLE app WITH PASSWORD 'hunter2'"),
    SecretPattern(
        "argv-flag",
        rf"""(?i)(?P<head>["']--?[\w-]*(?:{_WORDS}|pass)["'],\s*)(?P<secret>"[^"\n]*"?|'[^'\n]*'?)""",
        ("pass", "pwd", "secret", "token", "key", "signature", "credential"),
        "argv lists as Python prints them (`sys.argv`, subprocess's `CalledProcessError`, ps -o args in a "
        "repr): `['celery', '--password', 'x']`",
        "Command '['redis-cli', '--password', 'x']' returned non-zero exit status 1."),
    SecretPattern(
        "argv-flag-spaced",
        rf"""(?i)(?P<head>(?:^|\s)--?[\w-]*(?:{_WORDS}|pass)\s+)(?P<secret>[^\s'"-][^\s'"]*)""",
        ("pass", "pwd", "secret", "token", "key", "signature", "credential"),
        "command lines (`ps -o args`, /proc/PID/cmdline, shell traces): `--password x`",
        "root 1 0 celery worker --broker-password hunter2"),
    SecretPattern(
        "credential-tuple",
        rf"""(?i)(?P<head>(?:^|[^\w.-])[\w.-]*(?:auth|cred|login|{_WORDS})[\w.-]*\\?["']?\s*[:=]\s*[(\[]\s*"""
        r"""(?:b?"[^"\n]*"|b?'[^'\n]*'|[\w.]+)\s*,\s*)(?P<secret>b?"[^"\n]*"?|b?'[^'\n]*'?)""",
        ("auth", "cred", "login", "pass", "pwd", "secret", "token", "key", "signature"),
        "requests' `auth=('user', 'pw')` in a repr, py-spy `--locals`' `auth: (\"user\", \"pw\")`, JSON list "
        "`[\"user\", \"pw\"]`",
        'auth: ("app", "hunter2")'),
    SecretPattern(
        "key-value",
        rf"""(?i)(?P<head>\\?["']?{_KEY}\\?["']?\s*(?:=>|[=:])\s*)(?P<secret>{_VALUE})""",
        ("pass", "pw", "secret", "token", "key", "sig", "credential", "auth"),
        "settings, query strings, dict / JSON reprs and py-spy `--locals` (`password: \"hunter2\"`); "
        "signed URLs' `X-Amz-Signature=` / `X-Amz-Credential=` / `sig=` in requests' `for url:` messages",
        "403 Client Error: Forbidden for url: https://b.s3.amazonaws.com/k?X-Amz-Signature=fe5f80f7"),
    # gitleaks rules (ids as there), taken as data; `secret` is the whole token.  Adapted where
    # marked: a `.` escaped, a `{n}` made `{n,}` so a longer token is masked whole.
    SecretPattern("aws-access-token", r"(?P<head>)(?P<secret>\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b)",
                  ("a3t", "akia", "asia", "abia", "acca"), GITLEAKS, "AKIAIOSFODNN7EXAMPLE"),
    SecretPattern("github-pat", r"(?P<head>)(?P<secret>ghp_[0-9a-zA-Z]{36,})", ("ghp_",),
                  GITLEAKS + " (adapted: {36,})", "ghp_" + "0" * 36),
    SecretPattern("github-fine-grained-pat", r"(?P<head>)(?P<secret>github_pat_[0-9A-Za-z_]{82,})", ("github_pat_",),
                  GITLEAKS + " (adapted: {82,}, ASCII \\w)", "github_pat_" + "0" * 82),
    SecretPattern("github-oauth", r"(?P<head>)(?P<secret>gho_[0-9a-zA-Z]{36,})", ("gho_",),
                  GITLEAKS + " (adapted: {36,})", "gho_" + "0" * 36),
    SecretPattern("github-app-token", r"(?P<head>)(?P<secret>(?:ghu|ghs)_[0-9a-zA-Z]{36,})", ("ghu_", "ghs_"),
                  GITLEAKS + " (adapted: {36,})", "ghs_" + "0" * 36),
    SecretPattern("github-refresh-token", r"(?P<head>)(?P<secret>ghr_[0-9a-zA-Z]{36,})", ("ghr_",),
                  GITLEAKS + " (adapted: {36,})", "ghr_" + "0" * 36),
    SecretPattern("gitlab-pat", r"(?P<head>)(?P<secret>glpat-[0-9A-Za-z_-]{20,})", ("glpat-",),
                  GITLEAKS + " (adapted: {20,}, ASCII \\w)", "glpat-" + "0" * 20),
    SecretPattern("slack-webhook-url",
                  r"(?P<head>hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<secret>[A-Za-z0-9+/]{20,})",
                  ("hooks.slack.com",), GITLEAKS + " (adapted: `.` escaped, the path is the secret, {20,})",
                  "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    SecretPattern("slack-bot-token", r"(?P<head>)(?P<secret>xoxb-[0-9]{10,13}-[0-9]{10,13}[a-zA-Z0-9-]*)",
                  ("xoxb",), GITLEAKS, "xoxb-1234567890-1234567890123-abcdef"),
    SecretPattern("slack-user-token", r"(?P<head>)(?P<secret>xox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9-]{28,34})",
                  ("xoxp-", "xoxe-"), GITLEAKS, "xoxp-1234567890-1234567890-1234567890-" + "a" * 32),
    SecretPattern("slack-app-token", r"(?P<head>)(?P<secret>(?i)xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)", ("xapp",),
                  GITLEAKS, "xapp-1-A0123456789-1234567890123-" + "a" * 64),
    SecretPattern("stripe-access-token", r"(?P<head>)(?P<secret>\b(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99})",
                  ("sk_test", "sk_live", "sk_prod", "rk_test", "rk_live", "rk_prod"), GITLEAKS,
                  "sk_live_" + "a" * 24),
    SecretPattern("gcp-api-key", r"(?P<head>)(?P<secret>\bAIza[0-9A-Za-z_-]{35})", ("aiza",),
                  GITLEAKS + " (adapted: ASCII \\w)", "AIza" + "a" * 35),
    SecretPattern("npm-access-token", r"(?P<head>)(?P<secret>(?i)\bnpm_[a-z0-9]{36})", ("npm_",), GITLEAKS,
                  "npm_" + "a" * 36),
    SecretPattern("pypi-upload-token", r"(?P<head>)(?P<secret>pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_-]{50,})",
                  ("pypi-ageichlwas5vcmc",), GITLEAKS + " (adapted: {50,}, ASCII \\w)",
                  "pypi-AgEIcHlwaS5vcmc" + "a" * 50),
    SecretPattern("jwt",
                  r"(?P<head>)(?P<secret>\bey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9/\\_-]{17,}\.(?:[a-zA-Z0-9/\\_-]{10,}={0,2})?)",
                  ("ey",), GITLEAKS,
                  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"),
)

PLACEHOLDER = re.compile(r"\*\*\*\d+\*\*\*")
# Values that are not secrets: masks already applied, empty or null values, the placeholders of
# documentation (`--pass PASS`, `$REDIS_PASSWORD`, `<token>`) (whole-value tests; every
# repetition is a single run, linear).
_NOT_SECRET = re.compile(r"\**|\*\*\*\d+\*\*\*|None|null|nil|true|false|True|False|\?|<redacted>|xxx+|XXX+"
                         r"|PASS(?:WORD)?|PASSWD|SECRET|TOKEN|KEY|\$\{?\w+\}?|<[\w-]+>|\{\w*\}|\.\.\.|…")
MIN_LITERAL = 4  # shorter secrets are not searched for as bare text (too many false hits)
MAX_LITERAL = 256  # longer ones are searched for in pieces (an Aho-Corasick build grows faster than its keys)
_QUOTE_OPEN = ("\\\"", "b\"", "b'", "\"", "'")


def _strip_quotes(value: str) -> tuple[str, str, str]:
    """(opening quote, inner value, closing quote) of a captured value; quotes may be unbalanced."""
    for q in _QUOTE_OPEN:
        if value.startswith(q):
            close = q[-1] if q[0] == "b" else q
            inner = value[len(q):]
            if inner.endswith(close) and len(inner) >= len(close):
                return q, inner[: -len(close)], close
            return q, inner, ""
    return "", value, ""


def _cue_regex(cues: Iterable[str]) -> str:
    return "(?i)" + "|".join(re.escape(c) for c in cues)


# Rust-regex form of every pattern's cues: `(?i)` folds long s and the Kelvin sign as the patterns do.
_CUES = _cue_regex(c for p in PATTERNS for c in p.cues)


Span = tuple[int, int, str]  # (start, end, secret) of a secret's value inside a string, quotes left out


# `(?i)` equates long s with s and dotless i with i, which `str.lower()` keeps apart (the Kelvin
# sign and dotted capital I do lower to k and i)
_FOLD = str.maketrans({"\u017f": "s", "\u0131": "i"})


def _cued(lowered: pl.Series, pattern: SecretPattern) -> list[int]:
    """Indices of the (lowered, folded) texts holding one of `pattern`'s cues: most strings hold
    none, and a substring test (Aho-Corasick) spares them a regex pass."""
    hits = lowered.str.contains_any(list(pattern.cues))
    return hits.arg_true().to_list()


def _spans(texts: Sequence[str], pattern: SecretPattern, which: Sequence[int]) -> dict[int, list[Span]]:
    """Where `pattern` finds a secret in each of `texts[i]` for `i` in `which` (leftmost-first,
    non-overlapping).

    polars gives matches, not offsets: each match is also taken with the text before it, so
    those chunks tile the text and add up to the offsets; the groups split the match alone.
    """
    out: dict[int, list[Span]] = {}
    if not which:
        return out
    df = pl.DataFrame({"i": pl.Series(which, dtype=pl.Int64),
                       "t": pl.Series([texts[i] for i in which], dtype=pl.String)})
    found = (df.select("i", pl.col("t").str.extract_all(pattern.regex).alias("m"),
                       pl.col("t").str.extract_all(f"(?s:.*?)(?:{pattern.regex})").alias("c"))
             .explode("m", "c").drop_nulls("m"))
    if found.is_empty():
        return out
    groups = found.get_column("m").str.extract_groups(pattern.regex).struct.unnest()
    empty = pl.Series([None] * groups.height, dtype=pl.String)
    rows = zip(found.get_column("i"), found.get_column("m"), found.get_column("c"), groups.get_column("head"),
               groups.get_column("secret"), groups.get_column("tail") if "tail" in groups.columns else empty,
               strict=True)
    offset: dict[int, int] = {}
    for i, match, chunk, head, secret, tail in rows:
        at = offset.get(i, 0)
        offset[i] = at + len(chunk or "")
        head, secret, tail = head or "", secret or "", tail or ""
        if not (chunk or "").endswith(match):  # cannot happen (same matches, in order): mask the chunk
            head, secret, tail, match = "", chunk or "", "", chunk or ""
        if head + secret + tail != match:  # the match alone splits otherwise than in its text: mask it all
            head, secret = "", match
        open_q, value, _ = _strip_quotes(secret)
        start = at + len(chunk or "") - len(match) + len(head) + len(open_q)
        out.setdefault(i, []).append((start, start + len(value), value))
    return out


def _splice(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, placeholder) span replaced; overlapping spans are masked as
    one, under the placeholder of the one that starts first (the longest of those)."""
    out, pos = [], 0
    for start, end, mark in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start < pos:
            pos = max(pos, end)
            continue
        out += [text[pos:start], mark]
        pos = end
    out.append(text[pos:])
    return "".join(out)


class Redactor:
    """Finds secrets and replaces them with stable placeholders (one numbering per instance).

    `learn` many strings at once, then `apply` to many: a few polars passes whatever the number
    of strings.  `scan` / `redact` are the one-string forms.
    """

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # secret → placeholder

    def _placeholder(self, secret: str) -> str:
        if secret not in self.secrets:
            self.secrets[secret] = f"***{len(self.secrets) + 1}***"
        return self.secrets[secret]

    def _found(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """(start, end, placeholder) of every secret in each of `texts`, learning new ones in order
        of text, then pattern, then position."""
        lowered = pl.Series([t.lower().translate(_FOLD) for t in texts], dtype=pl.String)
        per_pattern = [_spans(texts, p, _cued(lowered, p)) for p in PATTERNS]
        out: list[list[tuple[int, int, str]]] = []
        for i in range(len(texts)):
            out.append([(start, end, self._placeholder(value)) for found in per_pattern
                        for start, end, value in found.get(i, ()) if not _NOT_SECRET.fullmatch(value)])
        return out

    def learn(self, texts: Sequence[str]) -> None:
        """Learn the secrets in `texts` (so later literal occurrences anywhere get masked)."""
        if texts:
            self._found(texts)

    def literals(self) -> dict[str, str]:
        """Bare text → replacement: every learnt secret of at least `MIN_LITERAL` characters (one of
        over `MAX_LITERAL` as pieces of that size, the first giving the placeholder, which keeps
        the Aho-Corasick automaton small), and the placeholders themselves (kept: a secret is
        never replaced inside one)."""
        out: dict[str, str] = {}
        for secret, mark in self.secrets.items():
            if len(secret) < MIN_LITERAL:
                continue
            for k in range(0, len(secret), MAX_LITERAL):
                piece = secret[k:k + MAX_LITERAL]
                if len(piece) >= MIN_LITERAL:
                    out.setdefault(piece, mark if k == 0 or len(piece) < MAX_LITERAL else "")
        out.update({f"***{n}***": f"***{n}***" for n in range(1, len(self.secrets) + 1)})
        return out

    def literal_expr(self, expr: pl.Expr) -> pl.Expr:
        """`expr` (strings) with every learnt secret replaced where it appears as bare text: one
        Aho-Corasick pass, the leftmost and then longest literal first."""
        table = self.literals()
        if not table:
            return expr
        keys = sorted(table, key=lambda k: (-len(k), k))
        return expr.str.replace_many(keys, [table[k] for k in keys], leftmost=True)

    def apply(self, texts: Sequence[str]) -> list[str]:
        """`texts` with their secrets replaced: those the patterns find in them, then every
        learnt one where it appears bare."""
        if not texts:
            return []
        spliced = [_splice(t, spans) if spans else t for t, spans in zip(texts, self._found(texts), strict=True)]
        if not self.secrets:
            return spliced
        df = pl.DataFrame({"t": pl.Series(spliced, dtype=pl.String)})
        return df.select(self.literal_expr(pl.col("t"))).get_column("t").to_list()

    def scan(self, text: str) -> None:
        """Learn the secrets in `text`."""
        self.learn([text])

    def redact(self, text: str) -> str:
        return self.apply([text])[0] if text else text


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


def _strings(value: object) -> list[str]:
    """Every distinct string inside `value`, in the order `_walk` visits them."""
    seen: dict[str, None] = {}

    def note(text: str) -> str:
        seen[text] = None
        return text

    _walk(value, note)
    return list(seen)


def redact_text(text: str) -> str:
    """One string on its own (placeholders numbered within it)."""
    return Redactor().redact(text)


def scan_report(report: Report, redactor: Redactor) -> None:
    """Learn every secret of `report` in the order `redact_report` numbers them."""
    redactor.learn(_strings(report))


def redact_report(report: Report, redactor: Redactor | None = None) -> Report:
    """A redacted copy of `report`: every string of it (findings, evidence, coverage samples and
    notes, problems, summary, input names) with secrets replaced; the original is untouched.

    Two passes: the first learns every secret the patterns see anywhere in the report, the
    second replaces them, so a secret's placeholder is the same everywhere in the report.
    """
    r = redactor or Redactor()
    texts = _strings(report)
    r.learn(texts)
    redacted = dict(zip(texts, r.apply(texts), strict=True))
    return _walk(report, redacted.__getitem__)


def _string_columns(df: pl.DataFrame) -> list[tuple[str, bool]]:
    """(name, is a list) of the columns that hold text."""
    return [(name, isinstance(dtype, pl.List)) for name, dtype in df.schema.items()
            if dtype == pl.String or (isinstance(dtype, pl.List) and dtype.inner == pl.String)]


def _candidates(df: pl.DataFrame, name: str, is_list: bool) -> list[str]:
    """Distinct values of a column that hold a pattern's cue, in order of first appearance."""
    col = pl.col(name).explode() if is_list else pl.col(name)
    values = df.select(col.filter(col.str.contains(_CUES)).unique(maintain_order=True))
    return [v for v in values.to_series().to_list() if v]


def redact_frames(frames: Mapping[str, pl.DataFrame], redactor: Redactor | None = None) -> dict[str, pl.DataFrame]:
    """Copies of `frames` with every string (and list-of-string) cell redacted as `Redactor.redact` would.

    Vectorised for frames of millions of rows: the patterns only run on the distinct values that
    hold one of their cues (few); every other cell can only hold a secret as bare text, which one
    `str.replace_many` per column replaces.  Like `redact_report` it learns first and replaces
    after, so a secret has one placeholder in every frame; new secrets are numbered after those `redactor` already knows
    (pass one that has scanned the report to share its numbering), frame by frame, column by
    column, in order of first appearance.
    """
    r = redactor or Redactor()
    columns = {name: _string_columns(df) for name, df in frames.items()}
    distinct = {(name, col): _candidates(frames[name], col, is_list)
                for name, cols in columns.items() for col, is_list in cols}
    every = list(dict.fromkeys(v for values in distinct.values() for v in values))
    r.learn(every)
    if not r.secrets:
        return dict(frames)
    redacted = dict(zip(every, r.apply(every), strict=True))
    out = {}
    for name, df in frames.items():
        exprs = []
        for col, is_list in columns[name]:
            changed = [(v, redacted[v]) for v in distinct[(name, col)] if redacted[v] != v]
            cell = pl.element() if is_list else pl.col(col)
            expr = r.literal_expr(cell)
            if changed:
                olds, news = zip(*changed, strict=True)
                expr = pl.when(cell.is_in(list(olds))).then(cell.replace(list(olds), list(news))).otherwise(expr)
            exprs.append(pl.col(col).list.eval(expr) if is_list else expr.alias(col))
        out[name] = df.with_columns(exprs) if exprs else df
    return out
