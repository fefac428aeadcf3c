"""Kernel logs (`dmesg`, `dmesg -T`, `journalctl -k`, `kern.log`) → `events` rows and a `kernel` frame.

Every line is a record (`events`), so message rules (CP-W020, CP-W021) read them as they read any log;
the lines that say which process the kernel killed or saw crash are also `kernel` rows with the pid,
the process name, its memory and the memory cgroup, so the pid can be joined with the pool child
billiard saw die (`analyses.oom`).

The texts come from the kernel's own format strings (observed on 6.18, `samples/worker-cgroup-oom`):

- mm/oom_kill.c `__oom_kill_process`: `Memory cgroup out of memory: Killed process 8572 (celery)
  total-vm:259256kB, anon-rss:238672kB, file-rss:5172kB, …` (`Out of memory: Killed process …` when the
  host ran out); before 5.x it first chose the victim, `Out of memory: Kill process N (comm) score S or
  sacrifice child` (event `oom_select`), then logged `Killed process N (comm) total-vm:…` (`oom_kill`).
- mm/oom_kill.c `dump_oom_summary` (4.19+): `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),…,
  oom_memcg=/cpm-oom-x,task_memcg=/cpm-oom-x,task=celery,pid=8572,uid=0`.
- mm/oom_kill.c `oom_reap_task_mm`: `oom_reaper: reaped process N (comm), now anon-rss:0kB, …`.
- arch/x86/mm/fault.c `show_signal_msg`: `python3[8741]: segfault at 0 ip … sp … error 4 in libc.so.6[…]`.

Times: plain `dmesg` writes seconds since boot (`[  327.364661]`), kept as `uptime_s`; `ts` (wall
clock) is set only from what the file itself anchors: `dmesg -T` (`[Tue Dec  8 01:13:52 2026]`) or a
journald short-iso prefix. Without one the records have no `ts` and the coverage says so.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analyzer.schema import EVENTS, KERNEL, conform
from analyzer.sources.celery_log import Coverage
from analyzer.sources.lines import Lines, read_lines

HOST = "kernel"  # `logger` of kernel records
# `[  327.364661] ` (printk time, seconds since boot) or `[Tue Dec  8 01:13:52 2026] ` (dmesg -T)
UPTIME_RE = r"^\[\s*(\d{1,10}\.\d{1,9})\] ?"
CTIME_RE = r"^\[([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d \d{4})\] ?"
KILLED_RE = (r"^(?:(Memory cgroup out of memory|Out of memory(?: \(oom_kill_allocating_task\))?): )?"
             r"Kill(?:ed)? process (\d+) \((.{0,64}?)\)(?: total-vm:(\d+)kB, anon-rss:(\d+)kB)?")
SUMMARY_RE = r"^oom-kill:constraint=(\w+),.*?(?:,task_memcg=([^,]*))?,task=(.{0,64}?),pid=(\d+),"
REAPED_RE = r"^oom_reaper: reaped process (\d+) \((.{0,64}?)\)"
SEGFAULT_RE = r"^(.{1,64}?)\[(\d+)\]: segfault at [0-9a-f]+ ip [0-9a-f]+ sp [0-9a-f]+ error [0-9a-f]+(?: in (\S+?)\[)?"
INVOKED_RE = r"^(.{1,64}?) invoked oom-killer: "


def _fields() -> list[pl.Expr]:
    text = pl.col("text")
    uptime = text.str.extract(UPTIME_RE, 1).cast(pl.Float64, strict=False)
    ctime = text.str.extract(CTIME_RE, 1).str.replace_all(r"\s+", " ")
    wall = ctime.str.strptime(pl.Datetime("ms"), "%a %b %d %H:%M:%S %Y", strict=False)
    message = text.str.replace(UPTIME_RE, "").str.replace(CTIME_RE, "")
    return [uptime.alias("uptime_s"), wall.alias("_wall"), message.alias("message")]


def _prefix_time() -> pl.Expr:
    """The journald short-iso time `read_lines` kept (`prefix_ts`), when the file had that prefix."""
    return pl.col("prefix_ts").str.replace("T", " ", literal=True).str.strptime(
        pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False)


def kernel_rows(records: pl.DataFrame, source: str | None = None) -> pl.DataFrame:
    """`kernel` rows of the records (`line`, `text`, `message`, `ts`, `uptime_s`, `stream`) that name a
    killed or crashed process; the memcg and constraint of an OOM summary go onto its kill."""
    msg = pl.col("message")
    killed = msg.str.extract_groups(KILLED_RE)
    summary = msg.str.extract_groups(SUMMARY_RE)
    reaped = msg.str.extract_groups(REAPED_RE)
    seg = msg.str.extract_groups(SEGFAULT_RE)
    is_kill, is_sum = msg.str.contains(KILLED_RE), msg.str.contains(SUMMARY_RE)
    is_reap, is_seg = msg.str.contains(REAPED_RE), msg.str.contains(SEGFAULT_RE)
    rows = records.filter(is_kill | is_sum | is_reap | is_seg).with_columns(
        pl.when(is_kill & msg.str.contains("Killed process ", literal=True)).then(pl.lit("oom_kill"))
        .when(is_kill).then(pl.lit("oom_select")).when(is_sum).then(pl.lit("oom_summary"))
        .when(is_reap).then(pl.lit("oom_reaped")).otherwise(pl.lit("segfault")).alias("event"),
        pl.coalesce(killed.struct.field("2"), summary.struct.field("4"), reaped.struct.field("1"),
                    seg.struct.field("2")).cast(pl.Int64, strict=False).alias("pid"),
        pl.coalesce(killed.struct.field("3"), summary.struct.field("3"), reaped.struct.field("2"),
                    seg.struct.field("1")).alias("comm"),
        killed.struct.field("5").cast(pl.Int64, strict=False).alias("anon_rss_kb"),
        killed.struct.field("4").cast(pl.Int64, strict=False).alias("total_vm_kb"),
        summary.struct.field("1").alias("constraint"),
        summary.struct.field("2").alias("memcg"),
        killed.struct.field("1").alias("_scope"),
        seg.struct.field("3").alias("library"),
    )
    # the summary line (4.19+) comes just before its kill: its constraint and memcg go onto the kill
    notes = rows.filter(pl.col("event") == "oom_summary").select(
        "pid", pl.col("constraint").alias("_c"), pl.col("memcg").alias("_m")).unique("pid", keep="last",
                                                                                      maintain_order=True)
    rows = rows.join(notes, on="pid", how="left").with_columns(
        pl.coalesce("constraint", "_c", pl.when(pl.col("_scope") == "Memory cgroup out of memory")
                    .then(pl.lit("CONSTRAINT_MEMCG"))
                    .when(pl.col("_scope").str.starts_with("Out of memory")).then(pl.lit("CONSTRAINT_NONE")))
        .alias("constraint"),
        pl.coalesce("memcg", "_m").alias("memcg"),
        (pl.lit(source) if source is not None else pl.col("source")).alias("source"),
        pl.col("stream").alias("host"),
    ).sort("line")
    return conform(rows, KERNEL).select(KERNEL.keys())


# a line of a record that may be the kernel's (`folded_rows`)
KERNEL_WORDS = r"Kill(?:ed)? process \d+ \(|\]: segfault at |oom-kill:constraint=|oom_reaper: reaped process"


def folded_rows(events: pl.DataFrame) -> pl.DataFrame:
    """`kernel` rows of kernel lines inside other inputs' records: a machine's whole journal (`journalctl
    --since …`) puts the kernel's lines between the worker's, where they read as continuation lines of a
    worker record, and a pasted text file holds them as records of layout unknown. Each line of such a
    record is its own line of the file (`line` + its index in `text`); its time is the one it writes (dmesg
    -T), else the record's: when the rules saw it, a lower bound of when the kernel wrote it."""
    found = events.filter((pl.col("logger").fill_null("") != HOST) & pl.col("text").str.contains(KERNEL_WORDS))
    if found.is_empty():
        return conform(pl.DataFrame(), KERNEL).select(KERNEL.keys())
    lines = found.select("source", pl.col("line").alias("_first"), "end_line", pl.col("ts").alias("_record_ts"),
                         pl.col("text").str.split("\n").alias("text")).with_columns(
        pl.int_ranges(0, pl.col("text").list.len()).alias("_i")).explode("text", "_i").with_columns(
        (pl.col("_first") + pl.col("_i")).alias("line")).filter(
        pl.col("text").str.contains(KERNEL_WORDS) & (pl.col("line") <= pl.col("end_line").fill_null(pl.col("line"))))
    lines = lines.with_columns(_fields()).with_columns(pl.coalesce("_wall", "_record_ts").alias("ts"),
                                                       pl.lit(None, dtype=pl.String).alias("stream"))
    return kernel_rows(lines)


def parse_lines(lines: Lines, *, source: str) -> tuple[dict[str, pl.DataFrame], Coverage]:
    """Every non-blank line a record; the kernel rows of those that name a process."""
    df = lines.frame
    if "prefix_ts" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("prefix_ts"))
    recs = df.filter(pl.col("text").str.strip_chars() != "").with_columns(_fields()).with_columns(
        pl.coalesce("_wall", _prefix_time()).alias("ts"))
    events = recs.with_columns(
        pl.col("message").alias("text"),  # like every source's records: the message, its prefix removed
        pl.col("line").alias("end_line"),
        pl.lit(source).alias("source"),
        pl.lit(HOST).alias("logger"),
        pl.lit(None, dtype=pl.String).alias("host"),
    )
    kernel = kernel_rows(recs, source)
    cov = Coverage.of(source, "kernel_log", df, df.head(0), lines.invalid_utf8)
    cov.layout = "kernel"
    relative = recs.filter(pl.col("uptime_s").is_not_null() & pl.col("ts").is_null()).height
    if relative:
        cov.notes.append(f"{relative} record(s) timed in seconds since boot (plain dmesg); nothing in this file "
                         "anchors them to the wall clock (dmesg -T, a journald time), so they keep no time")
    if kernel.height:
        counts = kernel.group_by("event").len().sort("event").rows()
        cov.notes.append("kernel: " + ", ".join(f"{n} {e}" for e, n in counts))
    return {"events": conform(events, EVENTS).select(EVENTS.keys()), "kernel": kernel}, cov


def parse(data: bytes | Path, *, source: str) -> tuple[dict[str, pl.DataFrame], Coverage]:
    return parse_lines(read_lines(data), source=source)
