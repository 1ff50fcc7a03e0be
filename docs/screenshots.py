"""The README's screenshots of report.html and cohort.html, from the demo phantom (no patient data).

    python docs/screenshots.py     # needs chromium + chromium-driver and selenium; writes docs/report.png, docs/cohort.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_window_size(1280, 800)
    return driver


def main() -> None:
    from lumbarkit.io.volume import write_nifti
    from lumbarkit.phantom import make_phantom

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([*CLI, "demo", "-o", str(tmp / "demo")], check=True, capture_output=True)
        (tmp / "in").mkdir()
        for seed in range(3):
            p = make_phantom(seed=seed, lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320), sequence="T2" if seed else "T1")
            write_nifti(p.scan.array, p.scan.affine, tmp / "in" / f"phantom{seed}.nii.gz")
        subprocess.run([*CLI, "batch", str(tmp / "in"), "-o", str(tmp / "cohort"), "--no-hotspots"], capture_output=True)
        driver = _driver()
        try:
            driver.get((tmp / "demo" / "analysis" / "report.html").as_uri())
            time.sleep(1.0)
            row = next(r for r in driver.find_elements("css selector", "tr[data-disc]") if r.text.startswith("L4/L5"))
            row.click()
            time.sleep(0.5)
            driver.save_screenshot(str(HERE / "report.png"))
            driver.get((tmp / "cohort" / "cohort.html").as_uri())
            time.sleep(0.5)
            driver.save_screenshot(str(HERE / "cohort.png"))
        finally:
            driver.quit()
    print(f"wrote {HERE / 'report.png'} and {HERE / 'cohort.png'}")


if __name__ == "__main__":
    main()
