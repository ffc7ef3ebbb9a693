"""The `pkdn serve` page in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

A new user's path: open the page, pick a face or a photo, wait for the result, see it at 8x beside its
bicubic "before", download link ready; errors, notes and hints that belong to one result only. Screenshots
are saved in each test's folder, and to ``$PKDN_SERVE_SCREENSHOT`` / ``$PKDN_SERVE_SCREENSHOT_WHOLE`` when
set: that is how docs/images/serve.png and serve_whole.png are made. Without the browser the tests are
skipped locally but fail under CI.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageChops

from _serve import Server, faceless_photo, group_photo, scene_photo, server  # noqa: F401 - server is a fixture
from pkdn.checkpoint import upright_only
from pkdn.data.degrade import hr_from_image, lr_from_hr, upsample
from pkdn.serve.engine import whole_photo_class

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WHOLE = whole_photo_class() is not None
needs_whole = pytest.mark.skipif(not WHOLE, reason="whole-photo mode (pkdn.faces) is not installed")
PHOTO_WAIT = 240  # s: a whole photo takes seconds to tens of seconds on a busy CPU


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        msg = "headless Chromium missing: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1100,760",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    yield driver
    driver.quit()


def _by():
    from selenium.webdriver.common.by import By

    return By


def _wait(browser, seconds: float = 60, poll: float = 0.1):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, poll_frequency=poll)


def _open(browser, server: Server) -> dict:
    """Load the page until the model list (from /api/info) is in; the server's /api/info."""
    browser.get_log("browser")  # drain: each test judges its own page's log
    browser.get(server.url)
    _wait(browser).until(lambda d: d.find_elements(_by().CSS_SELECTOR, "#model option"))
    return server.get("api/info").json()


def _text(browser, element_id: str) -> str:
    return browser.find_element(_by().ID, element_id).text


def _shown(browser, element_id: str) -> bool:
    return browser.find_element(_by().ID, element_id).is_displayed()


def _wait_for_result(browser, seconds: float = 60) -> None:
    """Until the result image is ready or the error line shows; then there must be no error."""
    _wait(browser, seconds).until(
        lambda d: d.find_element(_by().ID, "after").get_attribute("data-ready") == "1" or _shown(d, "error")
    )
    assert not _shown(browser, "error"), _text(browser, "error")


def _natural_size(browser, element_id: str) -> list[int]:
    el = browser.find_element(_by().ID, element_id)
    return browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", el)


def _pixels(browser, element_id: str) -> Image.Image:
    """The pixels the page shows in an <img>, read back through a canvas (the CSP allows no fetch of blob:)."""
    url = browser.execute_script(
        """
        const img = document.getElementById(arguments[0]);
        const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext("2d").drawImage(img, 0, 0);
        return c.toDataURL("image/png");
        """,
        element_id,
    )
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def _lr_face(celeba: Path, index: int, hr_size: int = 128) -> Image.Image:
    """A real test face shrunk x8 as the models were trained (16 x 16 from 128 px)."""
    with Image.open(sorted((celeba / "test").glob("*.jpg"))[index]) as im:
        return lr_from_hr(hr_from_image(im.convert("RGB"), hr_size))


def _pick_mode(browser, value: str) -> None:
    browser.find_element(_by().CSS_SELECTOR, f'input[name="mode"][value="{value}"]').click()


def _save_shot(browser, tmp_path: Path, name: str, env: str) -> None:
    """Screenshot the page; with ``$env`` set, also the docs copy: cut to the page's content, 256 dithered colours.

    The palette is fitted to the screenshot itself and Floyd-Steinberg dithered, so the faces show no
    banding (about 40 dB PSNR against the full screenshot) while the file stays under 150 KB.
    """
    shot = tmp_path / name
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as im:
        assert im.size[0] >= 800
        page = im.convert("RGB")
    if os.environ.get(env):
        backdrop = Image.new("RGB", page.size, page.getpixel((page.width - 1, page.height - 1)))
        right = ImageChops.difference(page, backdrop).getbbox()[2]
        page = page.crop((0, 0, min(page.width, right + 28), page.height))
        docs = page.quantize(palette=page.quantize(256, kmeans=2), dither=Image.Dither.FLOYDSTEINBERG)
        tmp = Path(os.environ[env]).with_suffix(".tmp.png")
        docs.save(tmp, optimize=True)
        assert tmp.stat().st_size < 150_000, tmp.stat().st_size
        tmp.replace(os.environ[env])


def _no_severe_logs(browser) -> None:
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe  # no failed loads (nothing external), no script errors


def test_page_super_resolves_an_uploaded_face(browser, server, celeba, tmp_path):
    by = _by()
    lr = _lr_face(celeba, 3)
    face = tmp_path / "face_16px.png"
    lr.save(face)

    info = _open(browser, server)
    assert "pkdn" in browser.title
    # the models and their defaults come from the server: "default" first, then every shipped name
    options = browser.find_elements(by.CSS_SELECTOR, "#model option")
    assert [o.get_attribute("value") for o in options] == ["", *info["models"]]
    assert [o.text for o in options[1:]] == info["models"]
    defaults = info["default_models"]
    crop, whole = defaults["crop"], defaults["whole"]
    assert options[0].text == (f"default ({crop})" if crop == whole else f"default ({crop} / {whole})")
    checked = browser.find_element(by.CSS_SELECTOR, 'input[name="mode"]:checked')  # the default mode: auto
    assert checked.get_attribute("value") == "auto"
    assert checked.find_element(by.XPATH, "..").text == "Auto: photo or face crop"

    browser.find_element(by.ID, "file").send_keys(str(face))  # choosing a file starts the work
    _wait_for_result(browser)
    assert _natural_size(browser, "after") == [lr.width * 8, lr.height * 8] == [128, 128]
    # "before" is PIL bicubic x8 (the baseline of every table), computed by the server, not blocky pixels
    assert _shown(browser, "before") and _natural_size(browser, "before") == [128, 128]
    bicubic = np.asarray(upsample(lr))
    assert np.array_equal(np.asarray(_pixels(browser, "before")), bicubic)
    assert np.abs(np.asarray(_pixels(browser, "after"), dtype=int) - bicubic).max() > 8  # the model's own pixels
    captions = [c.text for c in browser.find_elements(by.CSS_SELECTOR, "figcaption")]
    assert captions == ["after: pkdn x8", "before: bicubic x8"]
    # auto mode says what it chose (pkdn.kind.input_kind: 16 px is a face crop) and the model the server used
    assert _text(browser, "used") == f"Auto chose: Face crop, model {defaults['crop']}"
    assert not _shown(browser, "hint") and not _shown(browser, "notes")
    assert _text(browser, "faces-count") == ""
    link = browser.find_element(by.ID, "download")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download") == "face_16px_x8.png"
    assert "Done in" in _text(browser, "status")
    assert "16 x 16 px" in _text(browser, "sizes")
    _save_shot(browser, tmp_path, "serve.png", "PKDN_SERVE_SCREENSHOT")  # the page as a new user first sees it

    # more views (the self-ensemble) re-run the face: a new result arrives
    from selenium.webdriver.support.ui import Select

    first = link.get_attribute("href")
    Select(browser.find_element(by.ID, "ensemble")).select_by_value("8")
    _wait(browser).until(
        lambda d: d.find_element(by.ID, "download").get_attribute("href") != first and "Done in" in _text(d, "status")
    )
    assert not _shown(browser, "error")

    # a model trained on upright faces only: with 8 views the page says why 2 serve it better
    upright = [m for m in info["models"] if upright_only(m)]
    if upright:
        second = browser.find_element(by.ID, "download").get_attribute("href")
        Select(browser.find_element(by.ID, "model")).select_by_value(upright[0])  # a new model re-runs the face
        _wait(browser).until(lambda d: d.find_element(by.ID, "download").get_attribute("href") != second)
        _wait(browser).until(lambda d: _shown(d, "notes"))
        assert "upright faces only" in _text(browser, "notes")
        assert _text(browser, "used") == f"Auto chose: Face crop, model {upright[0]}"

    # the side-by-side view shows both images next to each other
    browser.find_element(by.CSS_SELECTOR, 'input[name="view"][value="side"]').click()
    b, a = (browser.find_element(by.ID, i).rect for i in ("before", "after"))
    assert b["x"] + b["width"] <= a["x"] and abs(b["width"] - a["width"]) < 2
    browser.find_element(by.CSS_SELECTOR, 'input[name="view"][value="slider"]').click()
    _no_severe_logs(browser)


def test_notes_belong_to_one_result(browser, server, celeba, tmp_path):
    """A grayscale upload's note shows with its result and is gone the moment the next run starts."""
    gray = tmp_path / "gray_face.png"
    _lr_face(celeba, 4).convert("L").save(gray)
    _open(browser, server)
    browser.find_element(_by().ID, "file").send_keys(str(gray))
    _wait_for_result(browser)
    assert _shown(browser, "notes") and "grayscale" in _text(browser, "notes")
    # another run (2 views) starts: read the page in the same turn of its event loop, before any answer
    during = browser.execute_script(
        """
        const sel = document.getElementById("ensemble");
        sel.value = "2";
        sel.dispatchEvent(new Event("change"));
        return [document.getElementById("notes").hidden, document.getElementById("status").textContent];
        """
    )
    assert during[0] is True and during[1].startswith("Working..."), during
    _wait(browser).until(lambda d: "Done in" in _text(d, "status"))
    assert _shown(browser, "notes") and "grayscale" in _text(browser, "notes")  # the new result's own note


def test_an_error_clears_the_previous_result(browser, server, celeba, tmp_path):
    by = _by()
    face = tmp_path / "face.png"
    _lr_face(celeba, 6).save(face)
    bad = tmp_path / "not_an_image.png"
    bad.write_text("this is text, not a picture\n")
    _open(browser, server)
    browser.find_element(by.ID, "file").send_keys(str(face))
    _wait_for_result(browser)
    assert _shown(browser, "download") and _shown(browser, "after")

    browser.find_element(by.ID, "file").send_keys(str(bad))
    _wait(browser).until(lambda d: _shown(d, "error"))
    text = _text(browser, "error")
    assert text.startswith("not an image") and "\n" not in text
    # nothing of the earlier face is left to mistake for this file's result, least of all its Download link
    assert not _shown(browser, "result") and not _shown(browser, "download")
    assert not _shown(browser, "after") and not _shown(browser, "before")
    link = browser.find_element(by.ID, "download")
    assert link.get_attribute("href") is None
    assert browser.find_element(by.ID, "after").get_attribute("src") in (None, "")
    assert _text(browser, "status") == ""


@needs_whole
def test_a_photo_in_crop_mode_gets_a_hint(browser, server, celeba, tmp_path):
    """Crop mode is obeyed on a photo, with a one-line hint; the hint's button runs Whole photo instead."""
    by = _by()
    photo = group_photo(celeba, n=1)  # one real face on a wall: 76 x 84 px, a photo for pkdn.kind.input_kind
    path = tmp_path / "one_face.png"
    photo.save(path)
    info = _open(browser, server)
    _pick_mode(browser, "crop")
    assert browser.find_element(by.CSS_SELECTOR, "#model option").text == f"default ({info['default_models']['crop']})"
    browser.find_element(by.ID, "file").send_keys(str(path))
    _wait_for_result(browser, PHOTO_WAIT)
    assert _natural_size(browser, "after") == [photo.width * 8, photo.height * 8]  # done as asked: one big crop
    assert _text(browser, "used") == f"Face crop, model {info['default_models']['crop']}"
    assert _shown(browser, "hint")
    assert (
        _text(browser, "hint") == f"This looks like a photo ({photo.width} x {photo.height} px): try Whole photo mode."
    )
    assert browser.find_elements(by.CSS_SELECTOR, "#faces rect") == []

    browser.find_element(by.CSS_SELECTOR, "#hint button").click()  # take the hint
    assert not _shown(browser, "hint")  # gone as soon as the new run starts
    _wait(browser, PHOTO_WAIT).until(lambda d: "Done in" in _text(d, "status") or _shown(d, "error"))
    assert not _shown(browser, "error"), _text(browser, "error")
    assert browser.find_element(by.CSS_SELECTOR, 'input[name="mode"]:checked').get_attribute("value") == "whole"
    whole_default = info["default_models"]["whole"]
    assert browser.find_element(by.CSS_SELECTOR, "#model option").text == f"default ({whole_default})"
    assert _text(browser, "used") == f"Whole photo, model {whole_default}"
    assert _text(browser, "faces-count") == "1 face found (outlined)"
    assert len(browser.find_elements(by.CSS_SELECTOR, "#faces rect.face")) == 1
    assert not _shown(browser, "hint")


@needs_whole
def test_auto_mode_handles_a_photo_as_a_photo(browser, server, celeba, tmp_path):
    by = _by()
    photo = scene_photo(celeba)  # 200 x 142: three real faces on a brick wall
    path = tmp_path / "scene.png"
    photo.save(path)
    info = _open(browser, server)
    browser.find_element(by.ID, "file").send_keys(str(path))  # the default mode: auto
    # progress shows while the server works (seconds for a photo: the detector runs on an upscaled pyramid)
    _wait(browser, 10, 0.05).until(lambda d: "Working..." in _text(d, "status"))
    assert "busy" in browser.find_element(by.ID, "status").get_attribute("class")
    _wait_for_result(browser, PHOTO_WAIT)
    out = [photo.width * 8, photo.height * 8]
    assert _natural_size(browser, "after") == out and _natural_size(browser, "before") == out
    assert _text(browser, "used") == f"Auto chose: Whole photo, model {info['default_models']['whole']}"
    assert not _shown(browser, "hint")
    rects = browser.find_elements(by.CSS_SELECTOR, "#faces rect.face")
    assert len(rects) == 3 and all(r.is_displayed() for r in rects)
    box = browser.find_element(by.ID, "after").rect
    for r in rects:  # each outline lies inside the displayed result
        q = r.rect
        assert box["x"] <= q["x"] and q["x"] + q["width"] <= box["x"] + box["width"] + 1
    assert _text(browser, "faces-count") == "3 faces found (outlined)"
    _save_shot(browser, tmp_path, "serve_whole.png", "PKDN_SERVE_SCREENSHOT_WHOLE")
    _no_severe_logs(browser)


@needs_whole
def test_a_photo_without_faces_says_so(browser, server, tmp_path):
    path = tmp_path / "coffee.png"
    faceless_photo().save(path)
    _open(browser, server)
    browser.find_element(_by().ID, "file").send_keys(str(path))
    _wait_for_result(browser, PHOTO_WAIT)
    assert _text(browser, "used").startswith("Auto chose: Whole photo")
    assert _text(browser, "faces-count") == "No faces found"  # not "0 faces found (outlined)"
    assert browser.find_elements(_by().CSS_SELECTOR, "#faces rect") == []


def test_dropping_a_file_on_the_page_works(browser, server, celeba):
    """Drag and drop, the way most people will hand over a picture (a real DragEvent with the file)."""
    lr = lr_from_hr(hr_from_image(Image.open(sorted((celeba / "test").glob("*.jpg"))[5]).convert("RGB"), 96))
    buf = io.BytesIO()
    lr.save(buf, format="PNG")  # 12 x 12
    _open(browser, server)
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    """,
        base64.b64encode(buf.getvalue()).decode(),
    )
    _wait_for_result(browser)
    assert _natural_size(browser, "after") == [96, 96]
    assert browser.find_element(_by().ID, "download").get_attribute("download") == "dropped_x8.png"
