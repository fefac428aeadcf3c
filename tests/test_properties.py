"""Properties of every parser, the sniffer and the bundle reader on hostile input (issue 16).

Inputs are real samples' lines mutated by hypothesis (`tests.mutations`: truncation, splicing,
byte flips, repeated lines, inserted `{` `(` and unterminated quotes, runs of one token). Example
counts are modest (the file runs in well under a minute); `tests/fuzz/fuzz_all.py` runs the same
strategies at high counts.

- No exception escapes a parser called directly (`parse_member` would catch it, but a parser
  that raises loses its whole file), the sniffer, or `read_bundle` (only `BundleError`).
- Coverage adds up: parsed + unrecognised == lines, none negative.
- Time is linear: a generated worst case ten times the size takes at most SLACK times as long.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from analyzer.bundle import BundleError, Member, read_bundle
from analyzer.sniff import KINDS, sniff
from analyzer.sources import PARSERS, Options, SourceResult, parse_members
from tests.mutations import mutated, repeated_unit
from tests.timing import best_cpu, watchdog
from tests.worst_cases import CASES, member, parse

KINDS_PARSED = sorted(k for k in PARSERS if k != "core")  # `core` runs gdb: tests/test_bundle and item 1's own
SLACK = 25
FLOOR_S = 0.005  # below this a time is noise: compare against the floor instead
HANG_S = 5.0  # one parse of a small mutated sample taking this long is a hang
# no example database: a failure is reported with its input, not replayed from a directory in the tree
FAST = settings(max_examples=10, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _run(kind: str, data: bytes) -> SourceResult:
    return PARSERS[kind](Member(name="prop/artifact.txt", data=data), Options())


def _accounted(result: SourceResult) -> None:
    for cov in result.coverage:
        assert min(cov.lines, cov.parsed, cov.unrecognized) >= 0, cov
        assert cov.parsed + cov.unrecognized == cov.lines, cov


@pytest.mark.parametrize("kind", KINDS_PARSED)
def test_parser_never_raises_nor_hangs_and_its_coverage_adds_up(kind):
    @settings(FAST, phases=[Phase.explicit, Phase.generate])  # no shrinking: a hang would cost HANG_S per try
    @given(data=mutated(kind))
    def check(data: bytes) -> None:
        t0 = time.monotonic()
        with watchdog(HANG_S):  # a parser that catches Exception may swallow the Hang: the time still tells
            result = _run(kind, data)
        assert time.monotonic() - t0 < HANG_S, f"{kind}: a hang on {data[:200]!r}"
        _accounted(result)

    check()


@settings(FAST, max_examples=100)
@given(data=mutated("any"))
def test_sniff_names_a_known_kind(data):
    assert sniff(data[:4096]) in KINDS


@settings(FAST, max_examples=8)
@given(files=st.lists(st.tuples(st.sampled_from(["worker.log", "a/worker.stdout", "gdb-bt.txt", "i.json",
                                                 "deep/er/p.json", "x"]), mutated("any", max_ops=3)),
                      min_size=1, max_size=4, unique_by=lambda f: f[0]))
def test_bundle_of_mutated_files_is_read_and_parsed_whole(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    for name, data in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    contents = read_bundle([root])
    assert sorted(m.name for m in contents.members) == sorted(name for name, _ in files)
    kinds = [(m, sniff(m.head())) for m in contents.members]
    results = parse_members(kinds, Options())
    assert len(results) == len(kinds)
    for result in results:
        assert not result.problems, result.problems  # a parser that raised
        _accounted(result)


def _archive(files: list[tuple[str, bytes]], form: str) -> bytes:
    buf = io.BytesIO()
    if form == "zip":
        with zipfile.ZipFile(buf, "w") as z:
            for name, data in files:
                z.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if form == "tgz" else "w") as t:
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@settings(FAST, max_examples=25)
@given(files=st.lists(st.tuples(st.sampled_from(["worker.log", "a/b.txt", "../up.log", "/abs.log", "x"]),
                                mutated("any", max_ops=2)), min_size=1, max_size=3, unique_by=lambda f: f[0]),
       form=st.sampled_from(["tar", "tgz", "zip"]), cut=st.one_of(st.none(), st.integers(0, 1 << 18)),
       flip=st.one_of(st.none(), st.integers(0, 1 << 18)))
def test_damaged_archives_give_members_or_problems_never_an_exception(files, form, cut, flip, tmp_path_factory):
    data = _archive(files, form)
    if flip is not None:
        i = flip % len(data)
        data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = tmp_path_factory.mktemp("arch") / f"bundle.{form}"
    path.write_bytes(data)
    try:
        contents = read_bundle([path])
    except BundleError:
        return
    for m in contents.members:  # refused names never become members
        assert not m.name.startswith("/") and ".." not in m.name.split(":")[-1].split("/")


def _ratio_ok(t1: float, t10: float) -> bool:
    return t10 <= SLACK * max(t1, FLOOR_S)


@settings(FAST, max_examples=20, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(KINDS_PARSED), data=st.data())
def test_generated_worst_case_ten_times_bigger_takes_at_most_slack_times_longer(kind, data):
    head, unit, one_line = data.draw(repeated_unit(kind))
    n = max(1, 4000 // len(unit))  # about 4 KB of repeated unit, then about 40 KB

    def build(k: int) -> bytes:
        return head + unit * k + (b"\n" if one_line else b"")

    small, big = build(n), build(10 * n)
    _run(kind, small)  # warm-up
    t1, t10 = best_cpu(lambda: _run(kind, small), 2), best_cpu(lambda: _run(kind, big), 2)
    assert _ratio_ok(t1, t10), f"{kind}: {t1:.4f}s at {len(small)} bytes, {t10:.4f}s at {len(big)} bytes"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_crafted_worst_case_ten_times_bigger_takes_at_most_slack_times_longer(case):
    n = max(1, case.n // 4)
    small, big = member(case, n), member(case, 10 * n)
    parse(case, small)  # warm-up
    t1, t10 = best_cpu(lambda: parse(case, small), 2), best_cpu(lambda: parse(case, big), 1)
    assert _ratio_ok(t1, t10), f"{case.name}: {t1:.4f}s → {t10:.4f}s"


def test_worst_cases_cover_every_parser():
    assert set(KINDS_PARSED) <= {c.kind for c in CASES}
