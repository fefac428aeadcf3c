"""What the container parsers share: one `containers` row per container state, the runtime's times
and the Kubernetes quantities of memory limits.

The field names are those of the APIs the tools print: Kubernetes `ContainerStatus`
(`state`/`lastState` each with one of `running {startedAt}`, `waiting {reason, message}`,
`terminated {exitCode, signal, reason, message, startedAt, finishedAt}`; `restartCount`) and
Docker's `ContainerJSON` (`State {Status, OOMKilled, ExitCode, Error, StartedAt, FinishedAt}`,
`RestartCount`, `HostConfig.Memory`). `kubectl describe pod` prints the same status in words
(`Last State:  Terminated` / `Reason:  OOMKilled` / `Exit Code:  137`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import polars as pl

from analyzer import schema
from analyzer.clip import clip

SCHEMA = schema.CONTAINERS
# a message or text longer than this is clipped: a runtime message can quote a whole log
MAX_TEXT = 2000


@dataclass
class Row:
    source: str
    line: int
    tool: str
    which: str
    state: str | None = None
    pod: str | None = None
    namespace: str | None = None
    node: str | None = None
    container: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool | None = None
    restart_count: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    memory_limit_text: str | None = None
    message: str | None = None

    def finish(self) -> dict[str, object]:
        """The row as the frame holds it: derived columns filled, long strings clipped."""
        if self.signal is None and self.exit_code is not None and 128 < self.exit_code < 160:
            self.signal = self.exit_code - 128  # the shell's and runtimes' 128+N for death by signal N
        if self.oom_killed is None and self.reason is not None:
            self.oom_killed = self.reason == "OOMKilled"
        row: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        row["message"] = clip(self.message, MAX_TEXT) if self.message else None
        row["memory_limit"] = quantity_bytes(self.memory_limit_text)
        row["ts"] = self.started_at
        # killed by SIGKILL (137): the run ended with the kill. Otherwise FinishedAt is a later stop (docker sets
        # OOMKilled for a pool child's kill too, and pid 1 lives on), so the span stays at the start.
        row["ts_end"] = self.finished_at if self.signal == 9 else None
        row["text"] = clip(self.describe(), MAX_TEXT)
        return row

    def describe(self) -> str:
        """`last_state terminated OOMKilled exit 137 (signal 9), container worker of pod w-1`."""
        words = [self.which, self.state or "?"]
        if self.reason:
            words.append(self.reason)
        if self.exit_code is not None:
            words.append(f"exit {self.exit_code}" + (f" (signal {self.signal})" if self.signal else ""))
        if self.oom_killed and self.reason != "OOMKilled":
            words.append("OOMKilled")
        where = ", ".join(f"{k} {v}" for k, v in (("container", self.container), ("pod", self.pod)) if v)
        text = " ".join(words) + (f", {where}" if where else "")
        return text + (f": {self.message}" if self.message else "")


def frame(rows: list[Row]) -> pl.DataFrame:
    if not rows:
        return schema.empty(SCHEMA)
    return schema.conform(pl.DataFrame([r.finish() for r in rows], schema=dict(SCHEMA)), SCHEMA)


# Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity): binary Ki..Ei, decimal
# k..E, milli `m`, or an exponent (`1e9`). `50Mi`, `300Mi`, `10G`, `6656M`.
QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)(?:[eE](\d+))?\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?\s*$")
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
         "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
MAX_INT64 = 2**63 - 1


def quantity_bytes(text: str | None) -> int | None:
    """Bytes of a memory quantity (`50Mi` → 52428800); None when absent, unreadable or too big."""
    if not text:
        return None
    m = QUANTITY_RE.match(text)
    if m is None or len(text) > 64:
        return None
    number, exponent, unit = m.groups()
    if exponent and len(exponent) > 2:  # 1e100 bytes is no limit anyone set
        return None
    value = float(number) * 10 ** int(exponent or 0)
    value = value / 1000 if unit == "m" else value * UNITS.get(unit or "", 1)
    return int(value) if 0 < value <= MAX_INT64 else None


# RFC 3339 as the APIs write it: `2017-10-10T17:41:58Z`, Docker's nanoseconds
# `2023-05-08T08:03:05.553904873Z`, or an offset `+01:00`
RFC3339_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
# `kubectl describe`: RFC 1123 with a numeric zone, `Tue, 07 Jul 2015 12:54:41 -0700`
RFC1123_FORMAT = "%a, %d %b %Y %H:%M:%S %z"


def _utc_naive(t: datetime) -> datetime | None:
    t = t.astimezone(UTC).replace(tzinfo=None)
    return None if t.year < 1000 else t  # Docker's zero time `0001-01-01T00:00:00Z`: never


def api_time(value: object) -> datetime | None:
    """A JSON time of the Kubernetes or Docker API as naive UTC; None when absent or unreadable."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    m = RFC3339_RE.match(value.strip())
    if m is None:
        return None
    base, frac, zone = m.groups()
    text = base + (f".{frac[:6]}" if frac else "") + ("+00:00" if zone == "Z" else zone)
    try:
        return _utc_naive(datetime.fromisoformat(text))
    except ValueError:
        return None


def describe_time(value: str) -> datetime | None:
    """A `kubectl describe` time (`Wed, 27 Mar 2019 01:53:04 +0100`) as naive UTC."""
    try:
        return _utc_naive(datetime.strptime(value.strip(), RFC1123_FORMAT))
    except ValueError:
        return None


def as_int(value: object) -> int | None:
    """An integer field of the API (exit codes, restart counts); None for anything else or out of range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_INT64 <= value <= MAX_INT64 else None
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value)
    return None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
