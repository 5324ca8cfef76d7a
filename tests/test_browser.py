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

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
ARTIFACTS = ROOT / "reports" / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run must install Debian's chromium", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


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
