"""A real browser opens the reports from disk and shows their titles and figures.

Needs Debian's chromium (``.ci/run`` installs it). Without it the test is skipped locally and fails
under CI, so a CI run can never pass without the check.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # headless Chromium on the sample's published pages

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
ARTIFACTS = ROOT / "reports" / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run must install Debian's chromium", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def _coloured_share(png) -> float:
    """Share of pixels that are clearly coloured (not white, grey or black): drawn bars and lines."""
    pixels = image.imread(png)[..., :3]
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float((spread > 0.25).mean())


@pytest.mark.parametrize("page", ["index.html", "overview.html"])
def test_the_page_renders_its_title(sample_run, tmp_path, page):
    _, folder, _ = sample_run
    dom = _chromium(tmp_path, "--dump-dom", (folder / page).as_uri()).stdout
    title = "userops reports: sample" if page == "index.html" else "Data overview and headline KPIs"
    assert f"<title>{title}</title>" in dom
    if page == "overview.html":
        assert dom.count("<img") >= 4


def test_the_report_shows_its_figures_in_a_screenshot(sample_run, tmp_path):
    _, folder, _ = sample_run
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "overview.png"
    shot.unlink(missing_ok=True)
    _chromium(tmp_path, "--window-size=1100,3000", f"--screenshot={shot}", (folder / "overview.html").as_uri())
    assert shot.is_file()
    height, width = image.imread(shot).shape[:2]
    assert (width, height) == (1100, 3000)
    # Charts draw in the palette's colours; a page whose images failed to load is text on white.
    assert _coloured_share(shot) > 0.02
    index = ARTIFACTS / "index.png"
    _chromium(tmp_path, "--window-size=1100,800", f"--screenshot={index}", (folder / "index.html").as_uri())
    assert index.is_file() and np.asarray(image.imread(index)).std() > 0.01


PROBE = """<script>
document.fonts.ready.then(() => {
  const cjk = /[\\u2e80-\\u9fff\\uff00-\\uffef]/;
  const shown = [...document.querySelectorAll('h1,h2,li,.label,.note,.value,th,td,footer')]
    .filter(e => cjk.test(e.textContent));
  const widths = shown.map(e => { const r = document.createRange(); r.selectNodeContents(e);
                                 return r.getBoundingClientRect().width; });
  const family = e => getComputedStyle(e).fontFamily.split(',')[0].replace(/["']/g, '').trim();
  const faces = [...document.fonts].map(f => f.family.replace(/["']/g, '') + ':' + f.status);
  document.title = 'PROBE' + JSON.stringify({lang: document.documentElement.lang, elements: shown.length,
    narrowest: Math.min(...widths), faces: faces, families: [...new Set(shown.map(family))],
    covered: shown.every(e => document.fonts.check("16px '" + family(e) + "'", e.textContent)),
    first_family: family(document.body)});
});
</script>"""


def _probed(tmp_path, path) -> dict:
    """What PROBE saw in ``path`` (a page with PROBE before its end)."""
    import json
    import re

    dom = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", path.as_uri()).stdout
    return json.loads(re.search(r"<title>PROBE(.*?)</title>", dom).group(1).replace("&quot;", '"'))


def test_a_chinese_page_lays_out_its_cjk_text_in_the_embedded_font(tmp_path):

    from tests.conftest import DATA
    from userops_lib import i18n, narrative, render
    from userops_lib.analyses import overview
    from userops_lib.data import load_dataset

    result = overview.run(load_dataset(DATA / "sample"), overview.Params())
    with i18n.language("zh"):
        heading, cards = result.kpi_cards()
        body = (
            f"<h1>{narrative.escape(i18n.t('overview.title'))}</h1>"
            + narrative.headlines_html(result.headlines)
            + narrative.cards_html(cards, heading=heading)
            + narrative.findings_html(result.findings)
        )
    page = render.page("概览", body, language="zh")
    path = tmp_path / "zh.html"
    path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    probe = _probed(tmp_path, path)
    assert probe["lang"] == "zh-CN"
    assert probe["elements"] >= 15 and probe["narrowest"] > 10
    assert "userops CJK:loaded" in probe["faces"] and probe["covered"]
    assert probe["first_family"] == "userops CJK"


PHONE = """<script>
window.addEventListener('load', () => {
  const root = document.documentElement;
  const tiles = [...document.querySelectorAll('.userops-tile')].map(e => Math.round(e.getBoundingClientRect().top));
  const findings = document.querySelector('.userops-findings');
  const wide = [...document.querySelectorAll('table')].filter(t => t.scrollWidth > t.clientWidth + 1);
  parent.postMessage('PHONE' + JSON.stringify({
    scroll: root.scrollWidth, width: window.innerWidth, tiles: tiles,
    findings: findings ? Math.round(findings.getBoundingClientRect().top) : -1,
    height: window.innerHeight,
    scrolling: wide.map(t => getComputedStyle(t).overflowX)}), '*');
});
</script>"""
# A desktop browser's window is at least 500 px wide: the page is measured in a 390 x 844 frame, and
# reports what it saw to the frame's host.
HOST = """<!DOCTYPE html><html><head><title>waiting</title></head><body style='margin:0'>
<iframe src='{page}' width='390' height='844' style='border:0'></iframe>
<script>window.addEventListener('message', e => {{ document.title = e.data; }});</script></body></html>"""


def _phone(tmp_path, page) -> dict:
    import json
    import re

    probe = tmp_path / f"phone-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PHONE + "</body>"), encoding="utf-8")
    host = tmp_path / f"host-{page.name}"
    host.write_text(HOST.format(page=probe.name), encoding="utf-8")
    dom = _chromium(tmp_path, "--window-size=800,1000", "--virtual-time-budget=8000", "--dump-dom", host.as_uri())
    return json.loads(re.search(r"<title>PHONE(.*?)</title>", dom.stdout).group(1).replace("&quot;", '"'))


def test_every_page_reads_on_a_390_pixel_phone(sample_run, sample_run_zh, tmp_path):
    """At 390 px (an iPhone 12-15), in English and Chinese: the page never scrolls sideways (wide tables
    scroll inside themselves), tiles sit two to a row, and the findings start within two screens."""
    pages = sorted(sample_run[1].glob("*.html")) + sorted(sample_run_zh[1].glob("*.html"))
    for page in pages:
        seen = _phone(tmp_path, page)
        assert seen["width"] == 390 and seen["scroll"] <= seen["width"], (page.name, seen)
        assert all(overflow == "auto" for overflow in seen["scrolling"]), (page.name, seen)
        if page.name == "index.html":
            continue
        tiles = seen["tiles"]
        assert len(tiles) >= 2 and tiles[0] == tiles[1], (page.name, tiles)  # two to a row
        assert 0 < seen["findings"] < 2 * seen["height"], (page.name, seen)


def test_a_chinese_notebook_reads_in_jupyterlab_without_cjk_fonts(tmp_path):
    """An analyst's JupyterLab on a machine without CJK fonts: the overview notebook executed in Chinese
    (nbclient, through papermill, as in JupyterLab: defaults, working directory notebooks/) writes no
    stderr (no findfont warning above every chart), and its HTML outputs alone, opened in Chromium, carry
    their own style and font: every CJK text has width and the embedded face covers it."""

    import nbformat
    import papermill

    executed = tmp_path / "overview.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "overview.ipynb"),
        str(executed),
        parameters={"language": "zh"},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    outputs = [o for cell in nbformat.read(executed, as_version=4).cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    # the analyst's last cell says where the result's tables and the data are
    workspace = "".join(outputs[-1]["data"]["text/markdown"])
    assert 'result.tables()["kpis"]' in workspace and 'ds.table("events")' in workspace and "行" in workspace
    html = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) >= 4 and all("userops-style" in h for h in html if "userops-output" in h)
    page = tmp_path / "outputs.html"
    page.write_text(
        "<!DOCTYPE html><html lang='zh-CN'><head><meta charset='utf-8'></head><body>"
        + "".join(html)
        + PROBE
        + "</body></html>",
        encoding="utf-8",
    )
    probe = _probed(tmp_path, page)
    assert probe["elements"] >= 15 and probe["narrowest"] > 10
    assert all(f.startswith("userops CJK ") for f in probe["families"]) and len(probe["families"]) >= 3
    assert all(face.endswith(":loaded") for face in probe["faces"]) and probe["covered"]


def test_a_printed_page_is_a4(sample_run, tmp_path):
    """Printed (or saved as PDF), a report is A4 (595 x 842 points), not US Letter, and its charts are
    never split across pages (break-inside: avoid on figures, tables and tiles)."""
    import re

    _, folder, _ = sample_run
    pdf = tmp_path / "overview.pdf"
    _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", (folder / "overview.html").as_uri())
    data = pdf.read_bytes()
    boxes = {
        tuple(round(float(v)) for v in box) for box in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)", data)
    }
    assert boxes == {(595, 842)}
    page = (folder / "overview.html").read_text(encoding="utf-8")
    assert (
        "@page{size:A4" in page and ".userops-figure,img,table,.userops-tile,.userops-card{break-inside:avoid" in page
    )
