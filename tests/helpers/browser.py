"""A real browser on the web page: uvicorn on 127.0.0.1 in a thread, headless Chromium via selenium.

Used by ``tests/apps/test_web_page.py`` and by ``docs/make_screenshot.py``.  Chromium and its
driver come from Debian (``apt-get install chromium chromium-driver``); selenium is told their
paths, so it never tries to download a browser.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Debian's names first, then the names other systems use.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def find_chromium() -> tuple[str, str] | None:
    """``(browser, driver)`` executables, or None when either is not installed."""
    browser = next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)
    driver = next((p for p in map(shutil.which, DRIVER_NAMES) if p), None)
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def running_app(app: Any, *, start_timeout: float = 30.0) -> Iterator[str]:
    """Run the ASGI ``app`` with uvicorn on a free port of 127.0.0.1; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium_driver(browser: str, driver: str, *, width: int = 1200, height: int = 900) -> Any:
    """A headless Chromium session of ``width`` x ``height`` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox",  # CI runs as root, where the sandbox cannot start
                     "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                     "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def choose_photos(session: Any, paths: Sequence[Path]) -> None:
    """Pick ``paths`` in the page's file input, as a person choosing files would."""
    from selenium.webdriver.common.by import By

    session.find_element(By.ID, "photos").send_keys("\n".join(str(p.resolve()) for p in paths))


def wait_for(session: Any, css: str, timeout: float) -> None:
    """Wait until an element matching ``css`` is shown, or the page's error box is."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def settled(s: Any) -> bool:
        if s.find_element(By.ID, "error").is_displayed():
            return True
        return any(e.is_displayed() for e in s.find_elements(By.CSS_SELECTOR, css))

    WebDriverWait(session, timeout, poll_frequency=0.2).until(settled)


def error_text(session: Any) -> str:
    """The page's error box, or "" when it is hidden."""
    from selenium.webdriver.common.by import By

    box = session.find_element(By.ID, "error")
    return box.text if box.is_displayed() else ""
