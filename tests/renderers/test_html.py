"""HTML: one self-contained page, escaped everywhere, checked in headless Chromium.

The hostile bundle is `samples/app-exception/worker.log` with the task argument text
`adding 1 + 2` (a real line the task logs) replaced by
`adding <script>document.title='pwned'</script> + <img src=x onerror=alert(1)>`, copied under a
file name that is itself markup; a test rule makes that line a finding so it is quoted in the
summary and the evidence.
"""

from __future__ import annotations

import html
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer.api import open_bundle
from analyzer.findings import Evidence
from analyzer.renderers import RenderOptions
from analyzer.renderers.html import render
from analyzer.report import Report
from tests.conftest import SAMPLES, require
from tests.renderers import (
    GOLDEN_RULES,
    broken_rules_report,
    custom_layout_report,
    finding,
    frozen_options,
    make_report,
    sample_report,
)

PAYLOAD = "<script>document.title='pwned'</script> + <img src=x onerror=alert(1)>"
HOSTILE_NAME = "<svg onload=alert(3)>.log"
RULE = '''
id = "X-H001"
category = "task.exception"
severity = "warning"
title = "Task argument <b>quoted</b>"
what = "The adding line."
why = "HTML test."
on = "events"
when = 'message contains "adding"'
message = "{message}"
remediation = ["<i>nothing</i> to do", "run `<script>x</script> --now` then"]
'''


class Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(page: str) -> Tags:
    t = Tags()
    t.feed(page)
    return t


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    root = tmp_path_factory.mktemp("hostile")
    log = (SAMPLES / "app-exception" / "worker.log").read_text(encoding="utf-8")
    assert "adding 1 + 2" in log
    (root / "bundle").mkdir()
    (root / "bundle" / HOSTILE_NAME).write_text(log.replace("adding 1 + 2", "adding " + PAYLOAD), encoding="utf-8")
    (root / "rules").mkdir()
    (root / "rules" / "X-H001.toml").write_text(RULE, encoding="utf-8")
    rep = open_bundle([root / "bundle"]).report(rule_dirs=[root / "rules", GOLDEN_RULES], builtin_rules=False)
    assert any(PAYLOAD in f.summary for f in rep.findings)
    assert any(e.source == HOSTILE_NAME for f in rep.findings for e in f.evidence)
    return rep


def test_page_is_self_contained_and_phone_ready() -> None:
    page = render(sample_report("worker-sigkill"), frozen_options())
    tags = parse(page)
    names = [t for t, _ in tags.tags]
    assert "script" not in names and "link" not in names and "iframe" not in names
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in tags.tags
    assert "<style>" in page and "@media" in page
    for tag, attrs in tags.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            # nothing is fetched: only a reference is a link out, followed when clicked
            allowed = ("#", "data:", "https://", "http://") if tag == "a" and key == "href" else ("#", "data:")
            assert not value or value.startswith(allowed), value


def test_hostile_log_text_file_names_and_rule_text_are_escaped(hostile_report: Report) -> None:
    page = render(hostile_report, RenderOptions())
    tags = parse(page)
    assert [t for t, _ in tags.tags].count("script") == 0
    assert not any(t in ("svg", "b", "i") or "onerror" in a or "onload" in a for t, a in tags.tags)
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "&lt;svg onload=alert(3)&gt;.log" in page
    assert "Task argument &lt;b&gt;quoted&lt;/b&gt;" in page and "&lt;i&gt;nothing&lt;/i&gt; to do" in page
    # a remediation's `code span` is <code>, its content still text
    assert "<li>run <code>&lt;script&gt;x&lt;/script&gt; --now</code> then</li>" in page
    # the hostile rule's finding starts first (the logger line before the failure), so it leads the
    # task.exception incident and the page title: as text, never as markup
    assert tags.title.startswith("celery-postmortem: ROOT CAUSE: Task argument <b>quoted</b> [task.exception]")
    assert "<title>celery-postmortem: ROOT CAUSE: Task argument &lt;b&gt;quoted&lt;/b&gt;" in page


def test_root_cause_first_with_chain_evidence_and_coverage() -> None:
    page = render(sample_report("worker-sigkill"), frozen_options())
    assert page.index("ROOT CAUSE: A pool child") < page.index("<h2>Root cause") < page.index("<h2>Findings")
    assert "Causal chain" in page and '<a href="#f2">f2</a>' in page
    assert "<code>worker.log</code>" in page and "<code>worker.log:10</code>" in page
    assert page.index("<h2>Findings") < page.index("<h2>Coverage")


def test_plots_are_embedded_as_data_uris() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    page = render(make_report([finding()]), RenderOptions(plots=(("Timeline <of> tasks", png),)))
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in page
    assert "Timeline &lt;of&gt; tasks" in page


def test_evidence_keeps_line_breaks_in_pre() -> None:
    page = render(make_report([finding(evidence=[Evidence("w.log", 2, "a\n  b")])]), RenderOptions())
    assert "<pre>a\n  b</pre>" in page


def test_headless_chromium_runs_no_script_from_the_log(hostile_report: Report, tmp_path: Path) -> None:
    require("chromium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium
    page = tmp_path / "report.html"
    page.write_text(render(hostile_report, RenderOptions()), encoding="utf-8")
    expected_title = parse(page.read_text(encoding="utf-8")).title
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000"]
    shot = tmp_path / "phone.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=412,915", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    tags = parse(dom)
    assert tags.title == expected_title and "pwned" not in tags.title
    assert not any(t == "script" for t, _ in tags.tags)
    assert not any("onerror" in a or "onload" in a for _, a in tags.tags)
    assert "document.title='pwned'" in dom.replace("&#x27;", "'").replace("&#39;", "'")  # shown as text


def test_inconclusive_verdict_lists_its_reasons_escaped() -> None:
    page = render(custom_layout_report(), frozen_options())
    assert '<p class="verdict unknown">INCONCLUSIVE: nothing in the input could be analysed</p>' in page
    assert ("<li>worker.log: text in no known layout, read as records and nothing found in them; if it is a "
            "worker log in a custom layout, give that layout with --log-format "
            "&#x27;&lt;worker_log_format&gt;&#x27;</li>") in page
    assert "<li><code>worker.log</code>: layout unknown:" in page  # the coverage note
    assert parse(page).title == "celery-postmortem: INCONCLUSIVE: nothing in the input could be analysed"


def test_rule_errors_and_overrides_are_listed(tmp_path: Path) -> None:
    assert "<h2>Rule errors</h2>" not in render(sample_report("broker-refused"), frozen_options())
    page = render(broken_rules_report(tmp_path), frozen_options())
    errors = page[page.index("<h2>Rule errors</h2>"):]
    assert f"<li>{tmp_path / 'broken-rules' / 'G-U010.toml'}: invalid TOML" in errors
    assert "invalid regex &#x27;(unclosed&#x27;" in errors
    shipped = next((SAMPLES.parent / "rules").rglob("CP-B011*.toml"))
    ours = tmp_path / "ours" / "CP-B011.toml"
    ours.parent.mkdir()
    ours.write_text(shipped.read_text())
    page = render(open_bundle([SAMPLES / "broker-tls"]).report(rule_dirs=[ours.parent]), RenderOptions())
    assert (f"<h2>Rule overrides</h2><ul>\n<li>CP-B011 from {ours} replaces the built-in rule CP-B011 "
            f"({shipped.relative_to(SAMPLES.parent).as_posix()})</li>") in page


# Injected into a copy of the page (its CSP, which forbids scripts, removed) for the measurement
# only: every table cell's characters, by rendered position; a line that starts between two
# non-space characters is a word broken inside a cell ("i d", "coun t", "warni ng") — unless the
# first of them is a hyphen ("re-" / "established"), where the word is already divided. It also
# lists tables that do not fit the page (their columns squeezed behind a sideways scroll).
WORD_BREAK_PROBE = """
<script>
window.addEventListener('load', () => {
  const broken = [];
  for (const cell of document.querySelectorAll('th, td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let prev = null;  // [character, top of its box]
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const box = range.getClientRects()[0];
        if (!box) continue;
        const ch = node.data[i];
        if (prev && box.top > prev[1] + box.height / 2 && !/[\\s-]/.test(prev[0]) && !/\\s/.test(ch))
          broken.push(cell.textContent.trim());
        prev = [ch, box.top];
      }
    }
  }
  const out = document.createElement('pre');
  out.id = 'word-breaks';
  const wide = [...document.querySelectorAll('.scroll')].filter(d => d.scrollWidth > d.clientWidth + 1)
    .map(d => d.querySelector('th').textContent);
  out.textContent = JSON.stringify({cells: document.querySelectorAll('td').length, broken: broken, wide: wide});
  document.body.appendChild(out);
});
</script>
"""


def _chromium_word_breaks(page: str, width: int, tmp_path: Path) -> dict[str, object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    probe = probe.replace("</body>", WORD_BREAK_PROBE + "</body>")
    path = tmp_path / f"probe-{width}.html"
    path.write_text(probe, encoding="utf-8")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-dev-shm-usage",
                          f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2000",
                          "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="word-breaks">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found[1]))


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("sample", ["heartbeat-stall-hang", "deadlock-lock", "redis-oom"])
def test_no_table_cell_breaks_a_word_in_chromium(sample: str, width: int, tmp_path: Path) -> None:
    require("chromium")
    result = _chromium_word_breaks(render(sample_report(sample, frozen_rules=False), RenderOptions()),
                                   width, tmp_path)
    assert result["cells"], "no table measured"
    assert result["broken"] == [], result["broken"]
    assert result["wide"] == [], f"tables wider than the page (scrolled sideways): {result['wide']}"


def test_plot_captions_come_before_their_figure_and_references_are_links() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    report = make_report([finding(references=["https://docs.celeryq.dev/en/stable/userguide/workers.html",
                                              "RabbitMQ docs <heartbeats>"])])
    page = render(report, RenderOptions(plots=(("Timeline", png),)))
    figure = page[page.index("<figure>"):page.index("</figure>")]
    assert figure.index("<figcaption>Timeline</figcaption>") < figure.index("<img")
    assert ('References: <a href="https://docs.celeryq.dev/en/stable/userguide/workers.html">'
            "https://docs.celeryq.dev/en/stable/userguide/workers.html</a>; RabbitMQ docs &lt;heartbeats&gt;") in page


def test_the_causal_chain_nests_each_finding_once_inside_its_parents_item() -> None:
    cats = ("broker.connection_refused", "backend.error", "task.exception", "worker.lost")
    report = make_report([finding(category=c, title=f"finding {c}") for c in cats])
    f1, f2, f3, f4 = (next(f for f in report.findings if f.category == c) for c in cats)
    f1.explains, f2.explains = [f2.id, f3.id, f4.id], [f3.id]
    report.root_causes[:] = [f1.id]
    page = render(report, RenderOptions())
    chain = page[page.index("<strong>Causal chain</strong>"):page.index("<strong>What to do</strong>")]
    items = re.findall(r'<(ul) class="chain">|<li><a href="#(f\d)">|</(ul|li)>', chain)
    flat = "".join(f"<{u}>" if u else f"<{i}>" if i else f"</{c}>" for u, i, c in items)
    assert flat == (f"<ul><{f1.id}><ul><{f2.id}><ul><{f3.id}></li></ul></li><{f4.id}></li></ul></li></ul>")
