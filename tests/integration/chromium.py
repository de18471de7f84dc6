"""Debian's headless Chromium under Selenium, for the browser tests (skipped, or failed in CI, when missing)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(profile_dir: Path) -> webdriver.Chrome:
    """A 1400 by 1100 headless Chromium with its profile in `profile_dir`."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            missing = f"{binary} is not installed (make test installs Debian's chromium and chromium-driver)"
            if os.environ.get("LOMAS_REQUIRE_INTEGRATION"):
                pytest.fail(missing, pytrace=False)
            pytest.skip(missing)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The flags that keep Chromium quiet on a machine without network beyond localhost.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile_dir}", "--window-size=1400,1100"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER, log_output=subprocess.DEVNULL))
    driver.implicitly_wait(5)
    return driver
