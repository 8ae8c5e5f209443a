"""A real browser for the HTML report's tests and benchmark: Debian's headless Chromium driven by its
chromedriver through Selenium (no browser or driver is downloaded; ``.ci/run`` installs both)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where browser tests keep their screenshots (a CI job uploads this directory).
ARTIFACTS = Path(os.environ.get("HUMANEVAL_TEST_ARTIFACTS") or REPO_ROOT / ".artifacts")


def browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def require_browser() -> tuple[str, str]:
    """The Chromium and chromedriver binaries; skip without them, or fail under CI."""
    from docker_support import running_in_ci

    found = browser_paths()
    missing = None
    if found is None:
        missing = "chromium or chromedriver not on PATH (apt-get install chromium chromium-driver)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            missing = "selenium is not installed (pip install -e '.[test]')"
    if missing is None:
        assert found is not None
        return found
    if running_in_ci():
        pytest.fail(f"a browser is required under CI but unavailable: {missing}", pytrace=False)
    pytest.skip(f"no browser: {missing}")


@contextmanager
def chromium(*, javascript: bool = True, width: int = 1280, height: int = 1600) -> Iterator[Any]:
    """A headless Chromium session (Selenium WebDriver); JavaScript can be switched off."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


def full_page_screenshot(browser: Any, path: Path, width: int = 1280) -> Path:
    """A PNG of the whole page (the window grown to the document's height)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(int(height) + 40, 12_000))
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))
    return path
