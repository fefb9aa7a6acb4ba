"""The report of the primary run, laid out by a real browser (headless Chromium).

A copy of ``report.html`` gets a small script that measures the page as laid out in a
1400 x 900 window and writes the figures into the DOM, which ``chromium --dump-dom`` prints:

* the summary of findings is the first table and starts within the first screen (top < 900);
* with every ``<details>`` opened, no table is wider than its box (the ``scrollWidth`` of its
  container is at most the container's ``clientWidth``) and the page has no horizontal scroll.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing); without it
the tests are skipped with the reason, which fails under ``BAYESMTOR_STRICT_SKIPS=1``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1400, 900

_MEASURE = """
<script>
(function () {
  var out = {viewport: [window.innerWidth, window.innerHeight]};
  var first = document.querySelector("table");
  out.first_table = first ? first.id : null;
  var sof = document.getElementById("summary-of-findings");
  out.summary_top = sof ? sof.getBoundingClientRect().top + window.scrollY : null;
  out.summary_rows = sof ? sof.querySelectorAll("tbody tr:not(.group)").length : 0;
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  out.tables = Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
    var box = t.parentElement;
    return {id: t.id, scroll: box.scrollWidth, client: box.clientWidth,
            width: t.getBoundingClientRect().width};
  });
  out.page_scroll = document.documentElement.scrollWidth;
  var pre = document.createElement("pre");
  pre.id = "measurements";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")


def _flags(profile) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
    ]


@pytest.fixture(scope="module")
def layout(primary, tmp_path_factory):
    browser = _chromium()
    out, _ = primary
    work = tmp_path_factory.mktemp("browser")
    page = work / "report.html"
    text = (out / "report.html").read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [browser, *_flags(work / "profile"), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="measurements">(.*?)</pre>', done.stdout, re.S)
    assert found, (
        f"chromium printed no measurements (exit {done.returncode}): {done.stderr[-2000:]}"
    )
    return json.loads(html.unescape(found.group(1)))


def test_window_is_the_size_asked_for(layout):
    assert layout["viewport"][0] == WIDTH


def test_summary_of_findings_is_the_first_table_on_the_first_screen(layout):
    assert layout["first_table"] == "summary-of-findings"
    first_screen = min(HEIGHT, layout["viewport"][1])  # the window less the browser's frame
    assert layout["summary_top"] < first_screen
    assert layout["summary_rows"] == 31  # one row per fitted analysis of the primary plan


def test_no_table_is_wider_than_its_box(layout):
    assert len(layout["tables"]) > 30
    too_wide = [t for t in layout["tables"] if t["scroll"] > t["client"]]
    assert not too_wide, too_wide
    assert layout["page_scroll"] <= WIDTH
