"""`kubectl describe pod` output → `containers` rows: each container's State and Last State, and the
pod's own status when the kubelet evicted it.

What kubectl prints (pkg/describe `describeContainerState`), a pod at a time, keys at column 0 and
each container's under `Containers:` (lines from tests/data/containers: ApeRAG #375, then the state
of starburst-terraform #1):

    Name:         celeryworker-944bc665b-qjb9k
    Namespace:    kubechat
    Node:         gke-yjtest-default-pool-6d3fb2d6-1qvj/10.128.0.41
    Status:       Running
    Containers:
      kubechat-celeryworker:
        State:          Terminated
          Reason:       OOMKilled
          Exit Code:    137
          Started:      Mon, 13 Dec 2021 18:02:32 -0800
          Finished:     Mon, 13 Dec 2021 18:02:42 -0800
        Ready:          False
        Restart Count:  5
        Limits:
          memory:  300Mi

An evicted pod says so at column 0: `Status:  Failed`, `Reason:  Evicted`, `Message:  The node was
low on resource: memory. …`; a crash-looping container `State:  Waiting` / `Reason:  CrashLoopBackOff`.

Kubernetes 1.0 printed tabs between key and value and `Last Termination State:`. People paste
fragments (`kubectl describe pod | grep -A4 'Last State:'`): a state block is read wherever it
stands, with no pod or container name when the paste has none.

States (one pass, line by line): `pod` (keys at column 0: Name, Namespace, Node, Status, Reason,
Message; a new `Name:` starts another pod), `container` (an indented `name:` under `Containers:`),
`block` (after `State:` / `Last State:`: Reason, Exit Code, Signal, Started, Finished, Message
indented deeper; a key at the block's own depth ends it), `limits` (after `Limits:`: `memory:`).
Lines that are no `key: value` and not indented (a shell prompt, Markdown fences) are unrecognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.container_rows import Row, as_int, describe_time, frame
from analyzer.sources.lines import Lines

TOOL = "kubectl-describe"
# `    Restart Count:  5` / `Node:\t\t\t\tkubernetes-minion-tf0f/10.240.216.66` / `  simmemleak:`
# (the value is taken whole and stripped in code: a lazy value before `[ \t]*$` backtracks on long runs of blanks)
KEY_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<key>[A-Za-z][A-Za-z0-9 ()./_-]{0,40}?):(?:[ \t]+(?P<value>.*))?$")
# `    Last State:     Terminated`
STATE_KEYS = {"State": "state", "Last State": "last_state", "Last Termination State": "last_state"}
STATES = ("Running", "Waiting", "Terminated")
BLOCK_KEYS = ("Reason", "Exit Code", "Signal", "Started", "Finished", "Message")
CONTAINER_SECTIONS = ("containers", "init containers", "ephemeral containers")


@dataclass
class _Pod:
    name: str | None = None
    namespace: str | None = None
    node: str | None = None
    status: str | None = None
    reason: str | None = None
    reason_line: int = 0
    message: str | None = None


@dataclass
class _Slot:
    """One container's section (or, in a fragment, one run of State lines): what applies to all its rows."""

    pod: _Pod
    name: str | None = None
    restart_count: int | None = None
    memory: str | None = None
    states: int = 0
    rows: list[Row] = field(default_factory=list)


@dataclass
class _Block:
    row: Row
    indent: int


def _indent(raw: str) -> int:
    return len(raw) - len(raw.lstrip(" \t"))


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pod = _Pod()
        self.pods = [self.pod]
        self.slot = _Slot(self.pod)
        self.slots = [self.slot]
        self.section: str | None = None
        self.block: _Block | None = None
        self.limits: int | None = None  # indent of `Limits:` while its lines are read

    def new_slot(self, name: str | None) -> None:
        self.slot = _Slot(self.pod, name)
        self.slots.append(self.slot)

    def top(self, key: str, value: str, line: int) -> None:
        """A key at column 0: the pod's own fields, or a section header."""
        self.section = key.lower() if not value else None
        if key == "Name" and value:
            if self.pod.name is not None or self.slot.rows:
                self.pod = _Pod()
                self.pods.append(self.pod)
            self.pod.name = value
            self.new_slot(None)
        elif key == "Namespace":
            self.pod.namespace = value or None
        elif key == "Node":
            node = value.split("/", 1)[0]
            self.pod.node = node if node and node != "<none>" else None
        elif key == "Status":
            self.pod.status = value or None
        elif key == "Reason" and value:
            self.pod.reason, self.pod.reason_line = value, line
        elif key == "Message" and value:
            self.pod.message = value

    def fill(self, row: Row, key: str, value: str, line: int) -> None:
        if key == "Reason":
            row.reason, row.line = value or None, line
        elif key == "Exit Code":
            row.exit_code = as_int(value)
        elif key == "Signal":
            row.signal = as_int(value)
        elif key == "Started":
            row.started_at = describe_time(value)
        elif key == "Finished":
            row.finished_at = describe_time(value)
        elif key == "Message":
            row.message = value or None

    def indented(self, indent: int, key: str, value: str, line: int) -> None:
        if self.block is not None:
            if indent > self.block.indent and key in BLOCK_KEYS:
                self.fill(self.block.row, key, value, line)
                return
            self.block = None
        if self.limits is not None and indent <= self.limits:
            self.limits = None
        first = value.split()[0] if value else ""
        if key in STATE_KEYS and first in STATES:
            which = STATE_KEYS[key]
            if which == "state" and self.slot.states:  # a fragment's next container
                self.new_slot(None)
            if which == "state":
                self.slot.states += 1
            row = Row(self.source, line, TOOL, which, state=first.lower())
            self.slot.rows.append(row)
            self.block = _Block(row, indent)
        elif key == "Restart Count":
            self.slot.restart_count = as_int(value)
        elif key == "Limits" and not value:
            self.limits = indent
        elif self.limits is not None and key == "memory":
            self.slot.memory = value or None
        elif not value and self.section in CONTAINER_SECTIONS and indent <= 2:
            self.new_slot(key)

    def rows(self) -> list[Row]:
        out: list[Row] = []
        for pod in self.pods:
            if pod.reason:  # `Status: Failed` / `Reason: Evicted`: the kubelet's word on the whole pod
                out.append(Row(self.source, pod.reason_line, TOOL, "pod", state=(pod.status or "").lower() or None,
                               reason=pod.reason, message=pod.message))
        for slot in self.slots:
            for row in slot.rows:
                row.pod, row.namespace, row.node = slot.pod.name, slot.pod.namespace, slot.pod.node
                row.container, row.restart_count, row.memory_limit_text = slot.name, slot.restart_count, slot.memory
                out.append(row)
        for pod_row in out:
            if pod_row.which == "pod":
                pod = next(p for p in self.pods if p.reason_line == pod_row.line)
                pod_row.pod, pod_row.namespace, pod_row.node = pod.name, pod.namespace, pod.node
        return sorted(out, key=lambda r: r.line)


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    reader = _Reader(source)
    unrecognised: list[tuple[int, str]] = []
    for line, raw in lines.frame.select("line", "text").iter_rows():
        if not raw.strip():
            continue
        m = KEY_RE.match(raw)
        indent = _indent(raw)
        if m is None:
            if indent == 0:  # indented non-key lines are event rows and wrapped values
                unrecognised.append((line, raw))
            continue
        key, value = m["key"], (m["value"] or "").strip()
        if indent == 0:
            reader.block = reader.limits = None
            reader.top(key, value, line)
        else:
            reader.indented(indent, key, value, line)
    unrec = pl.DataFrame(unrecognised, schema={"line": pl.Int64, "text": pl.String}, orient="row")
    return frame(reader.rows()), Coverage.of(source, "kubectl_describe", lines.frame, unrec,
                                             invalid_utf8=lines.invalid_utf8)
