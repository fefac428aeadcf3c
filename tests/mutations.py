"""Hypothesis strategies of hostile artifacts: real sample files' lines, mutated.

Used by `tests/test_properties.py` (modest example counts) and `tests/fuzz/fuzz_all.py` (high
counts). Seeds are the committed samples, grouped by the kind `analyzer.sniff` gives them, plus a
few built here for kinds no sample has (GDB/MI, the inspect text form, a bare faulthandler dump).
Mutations are the shapes that break parsers: truncation anywhere, lines spliced from another
artifact, flipped bytes, a line repeated many times, an inserted `{`, `(`, `[` or unterminated
quote, NUL / CR / ANSI / invalid UTF-8 bytes, and long runs of one token.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from analyzer.sniff import sniff

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MAX_SEED = 64 << 10  # bytes of a seed file kept (the rest is cut: examples stay fast)

TOKENS = [b"{", b"}", b"(", b")", b"[", b"]", b'"', b"'", b"\\", b"\x00", b"\r", b"\x1b[31m", b"\xff\xfe",
          b"\t", b" ", b"@", b":", b"#0  ", b"Thread 1 (LWP 5):", b"  File \"", b"->  ", b"    * {", b"~\"",
          b"^done,", b"\xe2\x80\xae", b"1e20", b"-1", b"99999999999999999999999", b"NaN", b"null"]

_GDB_MI = (b'=thread-group-added,id="i1"\n~"Reading symbols from /usr/bin/python3...\\n"\n'
           b'^done,threads=[{id="1",target-id="Thread 0x7f (LWP 5)",name="python3",frame={level="0",'
           b'addr="0x00007f",func="futex_wait",args=[{name="private",value="0"}],file="futex.c",line="57"},'
           b'state="stopped",core="1"}],current-thread-id="1"\n'
           b'^done,stack=[frame={level="0",addr="0x1",func="pthread_mutex_lock",file="m.c",line="9"},'
           b'frame={level="1",addr="0x2",func="main",file="dl.c",line="6"}]\n(gdb) \n')


@cache
def _sample_files() -> dict[str, list[bytes]]:
    """Seed contents by kind (`analyzer.sniff`), plus ``any``: every seed."""
    by_kind: dict[str, list[bytes]] = {}
    for path in sorted(SAMPLES.glob("*/*")):
        if not path.is_file() or path.stat().st_size == 0:
            continue
        data = path.read_bytes()[:MAX_SEED]
        by_kind.setdefault(sniff(data[:4096]), []).append(data)
        if b"(most recent call first):" in data:
            cut = data.find(b"Fatal Python error") if b"Fatal Python error" in data else data.find(b"Thread 0x")
            if cut >= 0:
                by_kind.setdefault("faulthandler", []).append(data[cut:])
    by_kind.setdefault("gdb_mi", []).append(_GDB_MI)
    by_kind.setdefault("inspect_text", []).extend(_inspect_text(d) for d in by_kind.get("inspect_json", [])[:6])
    by_kind["any"] = [d for kind, ds in sorted(by_kind.items()) for d in ds]
    return by_kind


def _inspect_text(data: bytes) -> bytes:
    """The text form (`->  node: OK` / `    * {repr}`) of an inspect JSON sample."""
    try:
        reply = json.loads(data)
    except ValueError:
        return b"->  w1@x: OK\n    - empty -\n"
    out = []
    for node, value in reply.items() if isinstance(reply, dict) else []:
        out.append(f"->  {node}: OK")
        if isinstance(value, list):
            out.extend(f"    * {item!r}" for item in value)
        else:
            out.extend("    " + ln for ln in json.dumps(value, sort_keys=True, indent=4).splitlines())
    out.append(f"{len(out)} nodes online.")
    return "\n".join(out).encode() + b"\n"


def seeds(kind: str) -> list[bytes]:
    files = _sample_files()
    return files.get(kind) or files["any"]


def _apply(lines: list[bytes], op: tuple[str, int, int, bytes], other: list[bytes]) -> list[bytes]:
    name, a, b, token = op
    if not lines:
        return [token]
    i = a % len(lines)
    line = lines[i]
    if name == "truncate":
        return [*lines[:i], line[: b % (len(line) + 1)]]
    if name == "splice" and other:
        j = b % len(other)
        return [*lines[:i], *other[j:j + 1 + a % 20], *lines[i:]]
    if name == "flip" and line:
        k = b % len(line)
        return [*lines[:i], line[:k] + bytes([a % 256]) + line[k + 1:], *lines[i + 1:]]
    if name == "repeat":
        return [*lines[:i], *[line] * (2 + b % 200), *lines[i + 1:]]
    if name == "insert":
        k = b % (len(line) + 1)
        return [*lines[:i], line[:k] + token + line[k:], *lines[i + 1:]]
    if name == "delete":
        return [*lines[:i], *lines[i + 1:]]
    if name == "run":
        return [*lines[:i], token * (1 + b % 2000), *lines[i:]]
    return lines


OPS = st.tuples(st.sampled_from(["truncate", "splice", "flip", "repeat", "insert", "delete", "run"]),
                st.integers(0, 1 << 16), st.integers(0, 1 << 16), st.sampled_from(TOKENS))


@st.composite
def mutated(draw: st.DrawFn, kind: str = "any", max_ops: int = 6) -> bytes:
    """A seed of `kind` (any seed when none is of that kind), with up to `max_ops` mutations."""
    pool = seeds(kind)
    data = draw(st.sampled_from(pool))
    other = draw(st.sampled_from(_sample_files()["any"])).split(b"\n")
    lines = data.split(b"\n")
    start = draw(st.integers(0, max(0, len(lines) - 1)))
    lines = lines[start:] if draw(st.booleans()) else lines  # sometimes begin mid-file
    for op in draw(st.lists(OPS, max_size=max_ops)):
        lines = _apply(lines, op, other)
    return b"\n".join(lines)


# A unit repeated to build a worst case: a mutated sample line, or hostile tokens, as lines or inline
@st.composite
def repeated_unit(draw: st.DrawFn, kind: str = "any") -> tuple[bytes, bytes, bool]:
    """(head, unit, one_line): the input is `head + unit * n` (+ a newline when `one_line`)."""
    head_lines = draw(mutated(kind, max_ops=2)).split(b"\n")[:20]
    head = b"\n".join(head_lines) + b"\n"
    pick = draw(st.sampled_from(seeds(kind))).split(b"\n")
    line = pick[draw(st.integers(0, len(pick) - 1))][:200]
    unit = draw(st.sampled_from([line, line + b"\n", b"".join(draw(st.lists(st.sampled_from(TOKENS), min_size=1,
                                                                             max_size=4)))]))
    return head, unit or b"{", draw(st.booleans())
