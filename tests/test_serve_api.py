"""`pkdn serve`'s HTTP API on a real server (loopback, free port): real faces, bad input, load."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from PIL import Image
from urllib3 import encode_multipart_formdata

from _serve import SRC, Server, group_photo, server, start_server  # noqa: F401 - server is a fixture
from pkdn import metrics
from pkdn.checkpoint import DEFAULT_MODEL, SHIPPED_MODELS
from pkdn.data.degrade import MAX_PIXELS, hr_from_image, lr_from_hr, upsample
from pkdn.imageio import to_float_tensor
from pkdn.inference import load, super_resolve
from pkdn.kind import MAX_CROP_SIDE
from pkdn.restore import EnsembleWarning, Restorer
from pkdn.serve.engine import whole_photo_class

WHOLE = whole_photo_class() is not None  # whole-photo mode installed (pkdn.faces)


def whole_refusal(status: int, words: str) -> tuple[int, str]:
    """What a whole-mode request must get: its own refusal, or 'not installed' without pkdn.faces."""
    return (status, words) if WHOLE else (400, "whole-photo mode is not installed")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def faces(celeba) -> list[tuple[Image.Image, Image.Image]]:
    """(LR 16 x 16, HR 128 x 128) pairs of real test faces, degraded as the model was trained."""
    files = sorted((celeba / "test").glob("*.jpg"))[:20]
    out = []
    for f in files:
        with Image.open(f) as im:
            hr = hr_from_image(im.convert("RGB"), 128)
        out.append((lr_from_hr(hr), hr))
    return out


def test_health_info_and_page(server: Server):
    r = server.get("api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    info = server.get("api/info").json()
    assert info["models"] == list(SHIPPED_MODELS)
    assert info["default_models"] == {"crop": DEFAULT_MODEL, "whole": DEFAULT_MODEL}
    assert info["modes"] == {"auto": True, "crop": True, "whole": WHOLE}
    assert info["max_crop_side"] == MAX_CROP_SIDE  # the page's help text names pkdn.kind's limit, not its own
    page = server.get("")
    assert page.status_code == 200 and 'id="file"' in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    # the page and its assets name no other host: nothing is fetched from a CDN
    for asset in ["", "static/app.js", "static/style.css"]:
        text = server.get(asset).text.replace("http://www.w3.org/2000/svg", "")  # a namespace name, not a fetch
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, asset


def test_crop_mode_beats_bicubic_on_real_faces(server: Server, faces):
    model = load("lite")
    sr_psnr, bic_psnr = [], []
    for lr, hr in faces[:6]:
        r = server.sr(png(lr), mode="crop", model="lite")
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "image/png"
        out = Image.open(io.BytesIO(r.content))
        assert out.size == (128, 128) and out.mode == "RGB"
        assert r.headers["X-Pkdn-Input-Size"] == "16x16" and r.headers["X-Pkdn-Output-Size"] == "128x128"
        # the same answer as the Python API (up to one 8-bit level: thread counts may differ)
        ref = np.asarray(super_resolve(model, lr, precision="auto"), dtype=np.int16)
        assert np.abs(np.asarray(out, dtype=np.int16) - ref).max() <= 1
        t = lambda im: to_float_tensor(im)[None]  # noqa: E731
        sr_psnr.append(metrics.psnr_y(t(out), t(hr)).item())
        bic_psnr.append(metrics.psnr_y(t(upsample(lr)), t(hr)).item())
    assert np.mean(sr_psnr) > np.mean(bic_psnr) + 1.0, (sr_psnr, bic_psnr)


def test_ensemble_field_matches_the_python_api(server: Server, faces):
    """ensemble=8 answers what Restorer(ensemble=8) answers, and differs from one view."""
    lr = faces[0][0]
    one, eight = (server.sr(png(lr), model="robust", ensemble=n) for n in ("1", "8"))
    assert one.status_code == eight.status_code == 200, (one.text, eight.text)
    # the shipped robust learned from upright faces only: the 8-view answer carries one note saying so
    assert json.loads(one.headers["X-Pkdn-Notes"]) == []
    notes = json.loads(eight.headers["X-Pkdn-Notes"])
    assert len(notes) == 1 and "upright faces only" in notes[0], notes
    with pytest.warns(EnsembleWarning, match="upright faces only"):
        ref = np.asarray(Restorer("robust", ensemble=8).image(lr), dtype=np.int16)
    got = np.asarray(Image.open(io.BytesIO(eight.content)), dtype=np.int16)
    assert np.abs(got - ref).max() <= 1  # up to one 8-bit level: thread counts may differ
    assert np.abs(got - np.asarray(Image.open(io.BytesIO(one.content)), dtype=np.int16)).max() > 1


def test_defaults_and_conversions(server: Server, faces):
    lr = faces[0][0]
    r = server.sr(png(lr))  # no mode, no model: auto takes a 16 px face as a crop, with crop mode's default model
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (128, 128)
    assert (r.headers["X-Pkdn-Mode"], r.headers["X-Pkdn-Model"]) == ("crop", DEFAULT_MODEL)
    for img, word in [(lr.convert("L"), "grayscale"), (lr.convert("RGBA"), "alpha"), (lr.resize((15, 11)), None)]:
        r = server.sr(png(img))
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (img.width * 8, img.height * 8)
        notes = json.loads(r.headers["X-Pkdn-Notes"])
        assert (word is None and notes == []) or any(word in n for n in notes), notes
    buf = io.BytesIO()
    lr.save(buf, format="JPEG", quality=95)
    assert server.sr(buf.getvalue(), filename="../../etc/passwd").status_code == 200  # a name is never a path


def _error(r) -> str:
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    msg = r.json()["error"]
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def test_bad_inputs_get_one_line_4xx(server: Server, faces):
    good = png(faces[0][0])
    full = png(Image.new("RGB", (64, 64), (200, 120, 90)))
    huge_px = png(Image.new("1", (8001, 8001)))  # 64 Mpx in a few kB: a decompression bomb
    assert len(huge_px) < 1_000_000 and 8001 * 8001 > MAX_PIXELS
    cases = [
        (server.sr(b"hello, I am a text file\n", filename="notes.txt"), 415, "not an image"),
        (server.sr(b"%PDF-1.4 " * 300_000, filename="big.pdf"), 415, "not an image"),  # 2.7 MB: spooled by the parser
        (server.sr(full[: len(full) // 2]), 422, "truncated or corrupt"),
        (server.sr(b""), 400, "empty"),
        (server.sr(b"\x00" * 20_000_001), 413, "too large"),
        (server.sr(huge_px), 413, "image too large (8001 x 8001 px = 64.0 Mpx; the limit is 64 Mpx)"),
        (server.sr(png(Image.new("RGB", (513, 40))), mode="crop"), 413, "at most 512 px"),
        (server.sr(png(Image.new("RGB", (1025, 40))), mode="whole"), *whole_refusal(413, "at most 1024 px")),
        (server.sr(png(Image.new("RGB", (1025, 40)))), 413, "at most 1024 px" if WHOLE else "at most 512 px"),
        (server.sr(good, mode="tiles"), 400, "unknown mode 'tiles'; use one of: auto, crop, whole"),
        (server.sr(good, model="../../weights/x.safetensors"), 400, "unknown model"),
        (server.sr(good, model="/etc/passwd"), 400, "unknown model"),
        (server.sr(good, ensemble="3"), 400, "unknown ensemble '3'"),
        (server.sr(None, mode="crop"), 400, "field named 'image'"),
    ]
    for r, status, words in cases:
        assert r.status_code == status, (words, r.status_code, r.text)
        assert words in _error(r), (words, r.text)
    # the bicubic "before" checks its input the same way
    r = server.sr(b"hello, I am a text file\n", endpoint="api/bicubic")
    assert r.status_code == 415 and _error(r).startswith("not an image")
    # no Content-Length (chunked): the body is cut off while it streams in, not after it filled memory
    body, ctype = encode_multipart_formdata({"image": ("big.png", b"\x00" * 21_000_000, "image/png")})
    r = requests_post_raw(server, (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)), ctype)
    assert r.status_code == 413 and "too large" in _error(r)
    r = requests_post_raw(server, b"not multipart", "text/plain")
    assert r.status_code == 415 and "multipart" in _error(r)
    r = requests_post_raw(server, b"--x\r\nbroken", "multipart/form-data; boundary=x")
    assert 400 <= r.status_code < 500 and _error(r)
    assert server.get("no/such/page").status_code == 404
    assert server.get("api/sr").status_code == 405
    assert server.get("api/health").status_code == 200  # still serving
    assert list(server.tmpdir.iterdir()) == []  # no temporary file, even for the spooled upload
    open_files = [os.readlink(p) for p in (server.proc_dir / "fd").iterdir()]  # nor an anonymous one left open
    assert not [f for f in open_files if "(deleted)" in f or f.startswith(str(server.tmpdir))], open_files


def test_pixel_bombs_get_a_plain_413(server: Server):
    """Past Pillow's own limit the message still names the size and the limit, not Pillow's warning text."""
    for side, words in [
        (10_000, "image too large (10000 x 10000 px = 100.0 Mpx; the limit is 64 Mpx)"),  # Pillow warns past 89 Mpx
        (20_000, "image too large (400 Mpx; the limit is 64 Mpx)"),  # Pillow refuses past 179 Mpx, size unread
    ]:
        bomb = png(Image.new("1", (side, side)))
        assert len(bomb) < 100_000  # a few kB that would decode to hundreds of MB
        for endpoint in ("api/sr", "api/bicubic"):
            r = server.sr(bomb, endpoint=endpoint)
            assert r.status_code == 413 and _error(r) == words, (side, endpoint, r.text)
            assert "bomb" not in r.text and "DOS" not in r.text


def requests_post_raw(server: Server, body, content_type: str) -> requests.Response:
    return requests.post(server.url + "api/sr", data=body, headers={"Content-Type": content_type}, timeout=60)


def test_whole_mode(server: Server, celeba):
    """Whole-photo mode finds the three faces of a small group photo; without pkdn.faces, the one-line refusal."""
    photo = group_photo(celeba)
    r = server.sr(png(photo), mode="whole")
    if not WHOLE:
        assert r.status_code == 400 and "whole-photo mode is not installed" in _error(r)
        assert server.get("api/info").json()["modes"]["whole"] is False
        return
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (photo.width * 8, photo.height * 8)
    boxes = sorted(f["box"] for f in json.loads(r.headers["X-Pkdn-Faces"]))
    assert len(boxes) == 3, boxes
    for i, (x0, y0, x1, y1) in enumerate(boxes):  # each box lies on its pasted face (44 px at x = 16 + 60 i, y = 20)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert abs(cx - (16 + 60 * i + 22)) < 12 and abs(cy - 42) < 12, boxes
    assert list(server.tmpdir.iterdir()) == []  # nothing on disk: no onnxruntime telemetry session file either


def test_auto_mode_asks_input_kind(server: Server, faces, celeba):
    """No mode (or mode=auto): pkdn.kind.input_kind decides after decoding; the answer says what was used."""
    lr = faces[1][0]
    auto, crop = server.sr(png(lr)), server.sr(png(lr), mode="crop")
    assert auto.status_code == crop.status_code == 200, (auto.text, crop.text)
    assert auto.content == crop.content  # a 16 px face is a crop: the very same answer
    for r in (auto, crop):
        assert [r.headers[f"X-Pkdn-{k}"] for k in ("Mode", "Kind", "Model")] == ["crop", "crop", DEFAULT_MODEL]
        assert json.loads(r.headers["X-Pkdn-Faces"]) == []

    photo = group_photo(celeba, n=1)  # 76 x 84: one real face on a wall, a photo by input_kind
    assert max(photo.size) > MAX_CROP_SIDE
    r = server.sr(png(photo), mode="crop")  # asked for a crop: done as asked, and the answer says it looks like a photo
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (photo.width * 8, photo.height * 8)
    assert [r.headers[f"X-Pkdn-{k}"] for k in ("Mode", "Kind", "Model")] == ["crop", "photo", DEFAULT_MODEL]

    r = server.sr(png(photo), mode="auto")
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (photo.width * 8, photo.height * 8)
    if not WHOLE:  # no face finder installed: one crop, and a note saying why
        assert [r.headers[f"X-Pkdn-{k}"] for k in ("Mode", "Kind", "Model")] == ["crop", "photo", DEFAULT_MODEL]
        assert any("whole-photo mode is not installed" in n for n in json.loads(r.headers["X-Pkdn-Notes"]))
        return
    assert [r.headers[f"X-Pkdn-{k}"] for k in ("Mode", "Kind", "Model")] == ["whole", "photo", DEFAULT_MODEL]
    (face,) = json.loads(r.headers["X-Pkdn-Faces"])
    x0, y0, x1, y1 = face["box"]  # on the pasted 44 px face at (16, 20)
    assert abs((x0 + x1) / 2 - 38) < 12 and abs((y0 + y1) / 2 - 42) < 12, face


def test_bicubic_is_the_pages_before(server: Server, faces, celeba):
    """POST /api/bicubic: PIL bicubic x8 of the upload (pkdn.data.degrade.upsample), for crops and photos alike."""
    for img in (faces[2][0], group_photo(celeba, n=1)):
        r = server.sr(png(img), endpoint="api/bicubic")
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png", r.text
        got = np.asarray(Image.open(io.BytesIO(r.content)))
        assert np.array_equal(got, np.asarray(upsample(img)))
        assert r.headers["X-Pkdn-Output-Size"] == f"{img.width * 8}x{img.height * 8}"
        assert r.headers["X-Pkdn-Model"] == "bicubic"


def test_20_concurrent_uploads_while_health_answers(server: Server, faces):
    model = load(None)
    refs = [np.asarray(super_resolve(model, lr, precision="auto"), dtype=np.int16) for lr, _ in faces]
    rss_before = server.rss_mb()
    health_times: list[float] = []
    stop = threading.Event()

    def poll_health():
        while not stop.is_set():
            t0 = time.monotonic()
            r = server.get("api/health", timeout=10)
            assert r.status_code == 200
            health_times.append(time.monotonic() - t0)
            time.sleep(0.05)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda lr: server.sr(png(lr)), [lr for lr, _ in faces]))
        load_s = time.monotonic() - t0
    finally:
        stop.set()
        poller.join()
    assert len(answers) == 20
    for r, ref in zip(answers, refs):
        assert r.status_code == 200, r.text
        out = np.asarray(Image.open(io.BytesIO(r.content)), dtype=np.int16)
        assert out.shape == ref.shape and np.abs(out - ref).max() <= 1
    # health is never queued behind the work: each answer takes a small part of the 20 uploads' time
    # (relative, so a busy shared machine does not fail it; idle, health answers in milliseconds)
    assert len(health_times) >= 3 and max(health_times) < 0.5 * load_s, (load_s, health_times)
    assert server.rss_mb() - rss_before < 300, (rss_before, server.rss_mb())
    assert server.get("api/health").json()["in_flight"] == 0
    assert list(server.tmpdir.iterdir()) == []  # uploads never touch the disk


def test_full_queue_answers_503_and_recovers(tmp_path, faces):
    """Two uploads still streaming in fill a queue of 2: a third is refused at once, the two then finish."""
    s = start_server(tmp_path / "tmp", "--max-queue", "2", "--workers", "1")
    try:
        body, ctype = encode_multipart_formdata({"image": ("face.png", png(faces[0][0]), "image/png")})
        release = threading.Event()

        def slow_body():
            yield body[:100]
            release.wait(30)
            yield body[100:]

        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = [
                pool.submit(
                    requests.post, s.url + "api/sr", data=slow_body(), headers={"Content-Type": ctype}, timeout=60
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 30
            while s.get("api/health").json()["in_flight"] < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            busy = s.sr(png(faces[1][0]))
            release.set()
            answers = [f.result() for f in slow]
        assert busy.status_code == 503 and "server busy" in _error(busy) and busy.headers["Retry-After"]
        assert [r.status_code for r in answers] == [200, 200]
        assert s.sr(png(faces[0][0])).status_code == 200
    finally:
        rc, err = s.stop()
    assert rc == 0, err
    assert list((tmp_path / "tmp").iterdir()) == []


def test_port_in_use_is_one_line(server: Server):
    """The server binds loopback and prints its URL (see start_server); a taken port is one clear line."""
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    r = subprocess.run(
        [sys.executable, "-m", "pkdn.cli", "serve", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"pkdn serve: error: 127.0.0.1:{port} is already in use; choose another with --port"
    ], r.stderr
    assert server.get("api/health").status_code == 200
