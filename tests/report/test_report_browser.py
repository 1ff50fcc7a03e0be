"""report.html and cohort.html in a real headless browser (Debian's chromium + chromedriver, driven by Selenium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'lumbarkit[dev]')")
    found = _chromium()
    if found is None:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.common.exceptions import WebDriverException

    try:
        driver = webdriver.Chrome(service=Service(found[1]), options=opts)
    except WebDriverException as exc:  # installed but cannot start here (e.g. a sandbox without a display stack)
        pytest.skip(f"chromium is installed but did not start headless: {str(exc).splitlines()[0]}")
    driver.set_window_size(1280, 800)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run([*CLI, "demo", "-o", str(out / "demo")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out / "demo" / "analysis"


def _open(driver, path: Path, width: int = 1280) -> None:
    driver.set_window_size(width, 800)
    driver.get(path.as_uri())
    driver.get_log("browser")  # start from an empty log for this page
    for _ in range(100):
        if driver.execute_script("return document.readyState") == "complete" and (
                "report.html" not in path.name or driver.execute_script("return document.body.dataset.rendered")):
            return
        time.sleep(0.05)


def _errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _canvas_pixels(driver) -> list:
    """(coloured pixels, checksum) of the viewer canvas: a pixel is coloured when its channels differ."""
    return driver.execute_script("""
      const c = document.getElementById('lk-canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let coloured = 0, sum = 0;
      for (let i = 0; i < d.length; i += 4) { if (Math.abs(d[i] - d[i+1]) > 12 || Math.abs(d[i+1] - d[i+2]) > 12) coloured++; sum = (sum * 31 + d[i]) % 1000000007; }
      return [coloured, sum];""")


def _wait_render(driver, before: str) -> None:
    for _ in range(100):
        if driver.execute_script("return document.body.dataset.rendered") != before:
            return
        time.sleep(0.03)


@pytest.mark.slow
def test_report_opens_without_errors_and_never_scrolls_sideways(browser, demo_report):
    size = (demo_report / "report.html").stat().st_size
    assert size < 3_000_000  # slices embedded as JPEG/PNG, not raw arrays
    for width in (1280, 1920):
        t = time.perf_counter()
        _open(browser, demo_report / "report.html", width)
        assert time.perf_counter() - t < 5.0
        assert _errors(browser) == []
        scroll, inner = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert scroll <= inner, f"horizontal scroll at {width} px: {scroll} > {inner}"


@pytest.mark.slow
def test_slider_wheel_and_keys_change_the_slice(browser, demo_report):
    from selenium.webdriver.common.keys import Keys

    _open(browser, demo_report / "report.html")
    k0 = int(browser.execute_script("return document.body.dataset.slice"))
    pixels0 = _canvas_pixels(browser)
    slider = browser.find_element("id", "lk-slice")
    before = browser.execute_script("return document.body.dataset.rendered")
    slider.send_keys(Keys.ARROW_RIGHT)
    _wait_render(browser, before)
    k1 = int(browser.execute_script("return document.body.dataset.slice"))
    assert k1 == k0 + 1 and browser.find_element("id", "lk-slice-out").text.startswith(f"{k1 + 1} /")
    assert _canvas_pixels(browser)[1] != pixels0[1]  # another image is shown
    before = browser.execute_script("return document.body.dataset.rendered")
    browser.execute_script("document.getElementById('lk-canvas').dispatchEvent(new WheelEvent('wheel', {deltaY: 100, bubbles: true, cancelable: true}))")
    _wait_render(browser, before)
    assert int(browser.execute_script("return document.body.dataset.slice")) == k1 + 1


@pytest.mark.slow
def test_clicking_a_disc_row_shows_its_crop_probabilities_and_slice(browser, demo_report):
    result = json.loads((demo_report / "result.json").read_text())
    _open(browser, demo_report / "report.html")
    rows = browser.find_elements("css selector", "tr[data-disc]")
    assert len(rows) == len(result["levels"])
    row = next(r for r in rows if r.find_element("css selector", "td").text == "L4/L5")
    before = browser.execute_script("return document.body.dataset.rendered")
    row.click()
    _wait_render(browser, before)
    detail = browser.find_element("id", "lk-detail")
    assert "Disc L4/L5" in detail.text
    crops = detail.find_elements("css selector", "img.crop")
    assert crops and crops[0].get_attribute("src").startswith("data:image/png;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", crops[0]) > 50
    level = next(lv for lv in result["levels"] if lv["level"] == "L4/L5")
    shown = [float(e.text) for e in detail.find_elements("css selector", ".bars[data-task='pfirrmann'] em")]
    assert shown == pytest.approx([round(p, 2) for p in level["grades"]["pfirrmann"]["probabilities"]], abs=0.006)
    assert detail.find_elements("css selector", ".hot img")  # its evidence maps
    assert "selected" in row.get_attribute("class")
    assert int(browser.execute_script("return document.body.dataset.slice")) == browser.execute_script(
        "return JSON.parse(document.getElementById('lk-data').textContent).discs.find(d => d.level === 'L4/L5').slice")


@pytest.mark.slow
def test_the_overlay_toggle_hides_the_labels(browser, demo_report):
    _open(browser, demo_report / "report.html")
    on = _canvas_pixels(browser)[0]
    before = browser.execute_script("return document.body.dataset.rendered")
    browser.find_element("id", "lk-overlay").click()
    _wait_render(browser, before)
    assert browser.execute_script("return document.body.dataset.overlay") == "off"
    assert on > 1000 and _canvas_pixels(browser)[0] == 0  # grey image only


@pytest.mark.slow
def test_cohort_page_links_resolve_and_filters_work(browser, tmp_path, phantom):
    from lumbarkit.io.volume import write_nifti

    inputs = tmp_path / "in"
    inputs.mkdir()
    write_nifti(phantom.scan.array, phantom.scan.affine, inputs / "a.nii.gz")
    (inputs / "broken.nii.gz").write_bytes(b"not a scan")
    proc = subprocess.run([*CLI, "batch", str(inputs), "-o", str(tmp_path / "out"), "--workers", "1", "--no-hotspots"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr  # one series failed
    page = tmp_path / "out" / "cohort.html"
    _open(browser, page)
    assert _errors(browser) == []
    scroll, inner = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= inner
    links = [a.get_attribute("href") for a in browser.find_elements("css selector", "a")]
    assert links and all(Path(h.removeprefix("file://")).is_file() for h in links)
    assert "error" in browser.find_element("css selector", "table.problems").text
    from selenium.webdriver.support.ui import Select

    levels = [o.text for o in Select(browser.find_element("id", "f-level")).options][1:]
    Select(browser.find_element("id", "f-level")).select_by_visible_text(levels[0])
    shown = [r for r in browser.find_elements("css selector", "#disc-rows tr") if r.is_displayed()]
    assert shown and all(r.get_attribute("data-level") == levels[0] for r in shown)
    browser.find_element("css selector", "#disc-rows a").click()
    assert browser.title == "lumbarkit report"
