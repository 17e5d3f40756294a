"""Headless Debian Chromium driven by Selenium: the one launcher for browser tests and benches.

Top level, neither in tests/ nor in bench/, so both may import it (bench must not import tests).
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromedriver")  # Debian's
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--enable-unsafe-swiftshader", "--window-size=1400,1000",
)


def launch_chromium(*, timeout: float = 60, console: bool = False):
    """Headless Debian Chromium driven by Selenium, WebGL through SwiftShader (tests and benches).

    ``console``: keep the browser console, for messages on failure.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # /usr/bin/chromium is a shell wrapper
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(timeout)
    return driver
