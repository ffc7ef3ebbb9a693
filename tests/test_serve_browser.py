"""The `pkdn serve` page in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

A new user's path: open the page, pick a face, wait for the result, see it
at 8x, download link ready. The screenshot is saved in the test's folder (and
to ``$PKDN_SERVE_SCREENSHOT`` when set: that is how docs/images/serve.png is
made). Without the browser the test is skipped locally but fails under CI.
"""

from __future__ import annotations

import os
import shutil

import pytest
from PIL import Image

from _serve import group_photo, server  # noqa: F401 - server is a fixture
from pkdn.checkpoint import DEFAULT_MODEL
from pkdn.serve.engine import whole_photo_class

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


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


def _wait_for_result(browser, wait) -> None:
    """Until the result image is ready or the error line shows; then there must be no error."""
    from selenium.webdriver.common.by import By

    wait.until(
        lambda d: (
            d.find_element(By.ID, "after").get_attribute("data-ready") == "1"
            or d.find_element(By.ID, "error").is_displayed()
        )
    )
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(By.ID, "error").text


def test_page_super_resolves_an_uploaded_face(browser, server, celeba, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from pkdn.data.degrade import hr_from_image, lr_from_hr

    with Image.open(sorted((celeba / "test").glob("*.jpg"))[3]) as im:
        lr = lr_from_hr(hr_from_image(im.convert("RGB"), 128))
    face = tmp_path / "face_16px.png"
    lr.save(face)

    browser.get(server.url)
    assert "pkdn" in browser.title
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))  # models listed from the server
    assert [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#model option")] == server.get("api/info").json()[
        "models"
    ]
    browser.find_element(By.ID, "file").send_keys(str(face))  # choosing a file starts the work
    _wait_for_result(browser, wait)
    after = browser.find_element(By.ID, "after")
    assert after.is_displayed()
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after)
    assert size == [lr.width * 8, lr.height * 8] == [128, 128]
    assert browser.find_element(By.ID, "before").is_displayed()
    link = browser.find_element(By.ID, "download")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download") == "face_16px_x8.png"
    assert "Done in" in browser.find_element(By.ID, "status").text
    assert "16 x 16 px" in browser.find_element(By.ID, "sizes").text

    # more views (the self-ensemble) re-run the face: a new result arrives
    from selenium.webdriver.support.ui import Select

    first = link.get_attribute("href")
    Select(browser.find_element(By.ID, "ensemble")).select_by_value("8")
    wait.until(
        lambda d: (
            d.find_element(By.ID, "download").get_attribute("href") != first
            and "Done in" in d.find_element(By.ID, "status").text
        )
    )
    assert not browser.find_element(By.ID, "error").is_displayed()
    # the default learned from upright faces only: with 8 views the page says why 2 serve it better
    wait.until(lambda d: d.find_element(By.ID, "notes").is_displayed())
    assert "upright faces only" in browser.find_element(By.ID, "notes").text

    # `lite` learned quarter turns: a new model re-runs the face, and it has nothing to say
    second = browser.find_element(By.ID, "download").get_attribute("href")
    Select(browser.find_element(By.ID, "model")).select_by_value("lite")
    wait.until(lambda d: d.find_element(By.ID, "download").get_attribute("href") != second)
    wait.until(lambda d: not d.find_element(By.ID, "notes").is_displayed())

    # the side-by-side view shows both images next to each other
    browser.find_element(By.CSS_SELECTOR, 'input[name="view"][value="side"]').click()
    b, a = (browser.find_element(By.ID, i).rect for i in ("before", "after"))
    assert b["x"] + b["width"] <= a["x"] and abs(b["width"] - a["width"]) < 2
    browser.find_element(By.CSS_SELECTOR, 'input[name="view"][value="slider"]').click()

    shot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(shot))
    with Image.open(shot) as im:
        assert im.size[0] >= 800
    if os.environ.get("PKDN_SERVE_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["PKDN_SERVE_SCREENSHOT"])
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe  # no failed loads (nothing external), no script errors


@pytest.mark.skipif(whole_photo_class() is None, reason="whole-photo mode (pkdn.faces) is not installed")
def test_page_outlines_faces_in_a_whole_photo(browser, server, celeba, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = group_photo(celeba)
    path = tmp_path / "group.png"
    photo.save(path)
    browser.get(server.url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    assert browser.find_element(By.ID, "model").get_attribute("value") == DEFAULT_MODEL
    browser.find_element(By.CSS_SELECTOR, 'input[name="mode"][value="whole"]').click()
    # one default model in every mode
    assert browser.find_element(By.ID, "model").get_attribute("value") == DEFAULT_MODEL
    browser.find_element(By.ID, "file").send_keys(str(path))
    # progress shows while the server works (seconds for a photo: the detector runs on an upscaled pyramid)
    WebDriverWait(browser, 10, poll_frequency=0.05).until(
        lambda d: "Working..." in d.find_element(By.ID, "status").text
    )
    assert "busy" in browser.find_element(By.ID, "status").get_attribute("class")
    _wait_for_result(browser, wait)
    after = browser.find_element(By.ID, "after")
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after)
    assert size == [photo.width * 8, photo.height * 8]
    rects = browser.find_elements(By.CSS_SELECTOR, "#faces rect.face")
    assert len(rects) == 3 and all(r.is_displayed() for r in rects)
    box = after.rect
    for r in rects:  # each outline lies inside the displayed result
        q = r.rect
        assert box["x"] <= q["x"] and q["x"] + q["width"] <= box["x"] + box["width"] + 1
    assert "3 faces found" in browser.find_element(By.ID, "faces-count").text
    shot = tmp_path / "serve_whole.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get("PKDN_SERVE_SCREENSHOT_WHOLE"):
        shutil.copyfile(shot, os.environ["PKDN_SERVE_SCREENSHOT_WHOLE"])


def test_dropping_a_file_on_the_page_works(browser, server, celeba):
    """Drag and drop, the way most people will hand over a picture (a real DragEvent with the file)."""
    import base64
    import io

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from pkdn.data.degrade import hr_from_image, lr_from_hr

    with Image.open(sorted((celeba / "test").glob("*.jpg"))[5]) as im:
        lr = lr_from_hr(hr_from_image(im.convert("RGB"), 96))  # 12 x 12
    buf = io.BytesIO()
    lr.save(buf, format="PNG")
    browser.get(server.url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    """,
        base64.b64encode(buf.getvalue()).decode(),
    )
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "after").get_attribute("data-ready") == "1")
    after = browser.find_element(By.ID, "after")
    assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", after) == [96, 96]
    assert browser.find_element(By.ID, "download").get_attribute("download") == "dropped_x8.png"


def test_page_shows_a_server_error_in_one_line(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "not_an_image.png"
    bad.write_text("this is text, not a picture\n")
    browser.get(server.url)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    text = browser.find_element(By.ID, "error").text
    assert text.startswith("not an image") and "\n" not in text
