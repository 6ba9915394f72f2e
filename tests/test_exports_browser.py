"""The HTML report in a real headless browser (Chromium), offline: the table and the
charts must be in the rendered page and on screen. Skipped when Chromium is absent
(``.ci/run`` installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cnnprof.api import profile
from cnnprof.render.formats import RenderOptions, render

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

#: MACs bars in the chart (render/plot.py), as 8-bit RGB
MACS_BLUE = (0x4C, 0x72, 0xB0)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile_dir = tmp_path / "chromium-profile"  # fresh: no state from earlier runs
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--disable-extensions",
        # offline: any request the page made would go to a proxy that does not exist
        "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile_dir}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "resnet18.html"
    path.write_text(render(profile("resnet18"), "html", RenderOptions()), encoding="utf-8")
    return path


def test_dom_has_table_and_charts(page: Path, tmp_path: Path) -> None:
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert dom.count("<table") == 1 and dom.count("<svg") == 1
    # one body row per module below the root (67 for resnet18) and per residual add (8),
    # plus header and footer
    assert dom.count("<tr") == 67 + 8 + 2
    for text in ("layer4", "BasicBlock", "1x512x7x7", "11.7 M", "MACs", "Parameters", "Memory"):
        assert text in dom, text


def test_screenshot_shows_the_charts(page: Path, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    done = chromium(tmp_path, "--hide-scrollbars", "--window-size=1400,1400",
                    f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = (imread(str(shot))[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (1400, 1400)
    # the MACs bars were drawn: thousands of pixels of their blue (resnet18 has 14 rows,
    # ten with MACs, bars ~10 px high and up to ~300 px long)
    blue = np.all(np.abs(pixels - np.array(MACS_BLUE)) <= 3, axis=-1).sum()
    assert blue > 3000, blue
    # and the page is not blank: dark text on the white background
    assert (pixels.sum(axis=-1) < 200).sum() > 2000
