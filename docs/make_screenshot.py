"""Make ``docs/images/web-page.png``: the web page of ``facepipe serve`` after comparing two photos.

The screenshot must not show anybody's photo, so the server runs facepipe's hermetic test plugins
(``facepipe.testing.hermetic_registry()``: a bright-blob detector and a grey-grid recognizer) on
generated images (``facepipe.testing.synthetic_face_image()``); the page itself is the real one.

Needs the ``service`` and ``test`` extras and Debian's ``chromium`` + ``chromium-driver``.  Run it
from the repository root::

    python docs/make_screenshot.py            # writes docs/images/web-page.png
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # for tests.helpers.browser, shared with the browser test

from facepipe.apps.service import create_app  # noqa: E402
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry, synthetic_face_image  # noqa: E402
from tests.helpers.browser import (  # noqa: E402
    chromium_driver, choose_photos, error_text, find_chromium, running_app, wait_for,
)

OUTPUT = REPO / "docs" / "images" / "web-page.png"
WIDTH = 1000  # CSS pixels: two photos side by side, as on a laptop


def write_photos(folder: Path) -> list[Path]:
    """Two generated "photos" of the same synthetic person: the face moved, resized and re-noised."""
    shots = [
        synthetic_face_image([(3, 60, 40, 150)], size=(240, 320), noise=6, seed=1),
        synthetic_face_image([(3, 120, 60, 130)], size=(240, 320), noise=6, seed=2),
    ]
    paths = []
    for k, bgr in enumerate(shots, start=1):
        path = folder / f"person-{k}.png"
        Image.fromarray(bgr[:, :, ::-1].copy()).save(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    found = find_chromium()
    if found is None:
        sys.exit("needs chromium and chromedriver: apt-get install chromium chromium-driver")
    app = create_app(HERMETIC_CONFIG, registry=hermetic_registry())
    with tempfile.TemporaryDirectory() as tmp, running_app(app) as base:
        photos = write_photos(Path(tmp))
        session = chromium_driver(*found, width=WIDTH, height=760)
        try:
            session.get(base + "/")
            choose_photos(session, photos)
            wait_for(session, "#verdict", timeout=60)
            if error_text(session):
                sys.exit(f"the page showed an error: {error_text(session)}")
            # Fit the window to the page, so the screenshot holds all of it and nothing more.
            height = session.execute_script("return document.documentElement.scrollHeight")
            session.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": WIDTH, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
            args.output.parent.mkdir(parents=True, exist_ok=True)
            png = session.get_screenshot_as_png()
        finally:
            session.quit()
    # A palette of 128 colours keeps the page sharp and the file small (the photos' noise is most of it).
    shot = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    shot.save(args.output, optimize=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
