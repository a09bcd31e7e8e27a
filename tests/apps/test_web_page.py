"""The web page of ``facepipe serve`` in a real browser (headless Chromium) against a real server.

The server is uvicorn on a free port of 127.0.0.1 with the default offline pipeline (dlib + Dlib,
the offline age / gender / emotion analyzers); the photos are chosen through the page's own file
input, as a person would.  The screenshot goes to pytest's tmp_path only: it shows the dataset
photos, which never enter the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.browser import chromium_driver, choose_photos, error_text, find_chromium, running_app, wait_for
from tests.helpers.extras import need

need("fastapi", "service")
need("uvicorn", "service")
need("selenium", "test")
need("dlib")

from selenium.webdriver.common.by import By  # noqa: E402

from facepipe.apps.service import create_app  # noqa: E402
from facepipe.testing import synthetic_face_image  # noqa: E402
from tests.helpers.synthetic_faces import write_png  # noqa: E402

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium and its driver: apt-get install chromium chromium-driver")

#: The default pipeline's analyzers (facepipe.pipeline.config.OFFLINE_DEFAULTS).
DEFAULT_ACTIONS = {"age", "gender", "emotion"}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running_app(create_app()) as url:  # no config: the offline defaults
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM is not None
    session = chromium_driver(*CHROMIUM)
    try:
        yield session
    finally:
        session.quit()


def test_page_is_served_with_its_files(browser: Any, base_url: str) -> None:
    browser.get(base_url + "/")
    assert browser.title == "facepipe"
    # The script ran (it fills nothing in yet, but it must not have failed) and the stylesheet applied.
    assert browser.find_element(By.ID, "compare").get_attribute("disabled") is not None
    assert browser.execute_script("return getComputedStyle(document.getElementById('drop')).borderStyle") == "dashed"
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert problems == []


def test_two_photos_of_one_person_say_same_person(browser: Any, base_url: str, dataset: Path,
                                                  tmp_path: Path) -> None:
    browser.get(base_url + "/")
    choose_photos(browser, [dataset / "img1.jpg", dataset / "img2.jpg"])
    wait_for(browser, "#verdict", timeout=180)
    assert error_text(browser) == ""
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.find_element(By.CLASS_NAME, "verdict-text").text.lower() == "same person"
    fields = {e.get_attribute("data-field"): e.text for e in verdict.find_elements(By.CSS_SELECTOR, "dd")}
    assert fields["model"] == "Dlib" and fields["detector"] == "dlib" and fields["metric"] == "cosine"
    assert float(fields["distance"]) <= float(fields["threshold"])
    assert float(fields["confidence"].rstrip(" %")) > 50
    # Both photos are drawn, each with its compared face outlined (the canvas differs from the photo).
    canvases = browser.find_elements(By.CSS_SELECTOR, "#figures canvas")
    assert len(canvases) == 2
    assert all("1 face outlined" in c.get_attribute("aria-label") for c in canvases)
    assert all(_box_colour_drawn(browser, c) for c in canvases)
    browser.save_screenshot(str(tmp_path / "verify.png"))


def test_photos_of_two_people_say_different_people(browser: Any, base_url: str, dataset: Path) -> None:
    browser.get(base_url + "/")
    choose_photos(browser, [dataset / "img1.jpg", dataset / "img3.jpg"])
    wait_for(browser, "#verdict", timeout=180)
    assert error_text(browser) == ""
    assert browser.find_element(By.CSS_SELECTOR, "#verdict .verdict-text").text.lower() == "different people"


def test_one_photo_gets_attribute_labels(browser: Any, base_url: str, dataset: Path, tmp_path: Path) -> None:
    browser.get(base_url + "/")
    choose_photos(browser, [dataset / "img1.jpg"])
    wait_for(browser, "#figures .faces", timeout=180)
    assert error_text(browser) == ""
    assert not browser.find_element(By.ID, "verdict").is_displayed()
    faces = browser.find_elements(By.CSS_SELECTOR, "#figures .faces > li")
    assert len(faces) >= 1
    labels = {e.get_attribute("data-attribute"): e.text for e in faces[0].find_elements(By.CLASS_NAME, "attr")}
    assert DEFAULT_ACTIONS <= set(labels), labels
    assert 1 <= int(labels["age"].removeprefix("age: ")) <= 100
    assert labels["gender"].split(": ")[1].split(" ")[0] in {"Man", "Woman"}
    browser.save_screenshot(str(tmp_path / "analyze.png"))


def test_a_wrong_token_shows_the_servers_detail(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    photo = write_png(tmp_path / "synthetic.png", synthetic_face_image())
    with running_app(create_app(token="right-token")) as url:
        session = chromium_driver(*CHROMIUM)
        try:
            session.get(url + "/")
            session.find_element(By.TAG_NAME, "summary").click()
            session.find_element(By.ID, "token").send_keys("wrong-token")
            choose_photos(session, [photo])
            wait_for(session, "#figures .faces", timeout=60)
            message = error_text(session)
        finally:
            session.quit()
    # The page's own hint, then the server's detail and status.
    assert "needs an access token" in message, message
    assert "bearer token" in message and "HTTP 401" in message, message


def _box_colour_drawn(browser: Any, canvas: Any) -> bool:
    """Whether the canvas holds pixels of the verdict's box colour (green: #1a7f37)."""
    script = """
        const ctx = arguments[0].getContext('2d');
        const data = ctx.getImageData(0, 0, arguments[0].width, arguments[0].height).data;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i] === 0x1a && data[i + 1] === 0x7f && data[i + 2] === 0x37) return true;
        }
        return false;
    """
    return bool(browser.execute_script(script, canvas))
