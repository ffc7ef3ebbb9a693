"""Start a real `pkdn serve` process on a free loopback port for the web tests.

The server runs as the user would run it (`python -m pkdn.cli serve --port 0`),
with its own empty TMPDIR so tests can prove nothing is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageOps

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    tmpdir: Path

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path.lstrip("/"), timeout=kw.pop("timeout", 60), **kw)

    def sr(
        self,
        data: bytes | None,
        filename: str = "face.png",
        timeout: float = 120,
        endpoint: str = "api/sr",
        **fields: str,
    ) -> requests.Response:
        """POST a multipart form as the page does: ``image`` (unless None) plus text ``fields``."""
        files: dict = {k: (None, v) for k, v in fields.items()}
        if data is not None:
            files["image"] = (filename, data, "application/octet-stream")
        return requests.post(self.url + endpoint, files=files, timeout=timeout)

    @property
    def proc_dir(self) -> Path:
        return Path(f"/proc/{self.proc.pid}")

    def rss_mb(self) -> float:
        status = (self.proc_dir / "status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a person would; returns (exit status, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def start_server(tmpdir: Path, *args: str, timeout: float = 90) -> Server:
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(tmpdir),
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pkdn.cli", "serve", "--port", "0", "--threads", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    m = re.match(r"pkdn serve: (http://127\.0\.0\.1:\d+/)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"pkdn serve did not print its URL: {line!r} {proc.stderr.read()}")
    server = Server(proc, m.group(1), tmpdir)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if server.get("api/health", timeout=5).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            server.stop()
            raise RuntimeError("pkdn serve did not answer /api/health")
        time.sleep(0.1)


def group_photo(celeba: Path, n: int = 3, side: int = 44) -> Image.Image:
    """A small 'whole photo': ``n`` real test faces (``side`` px crops) on a plain wall, 16 px apart."""
    from pkdn.data.degrade import hr_from_image

    files = sorted((celeba / "test").glob("*.jpg"))[10 : 10 + n]
    photo = Image.new("RGB", (n * (side + 16) + 16, side + 40), (96, 110, 124))
    for i, f in enumerate(files):
        with Image.open(f) as im:
            photo.paste(hr_from_image(im.convert("RGB"), side), (16 + i * (side + 16), 20))
    return photo


def scene_photo(celeba: Path, size: tuple[int, int] = (200, 142), n: int = 3, side: int = 44) -> Image.Image:
    """A small photo: ``n`` real test faces (``side`` px crops) in a row on scikit-image's brick wall, tinted."""
    from skimage import data

    from pkdn.data.degrade import hr_from_image

    wall = Image.fromarray(data.brick()).resize(size, Image.LANCZOS)  # a file inside scikit-image: no download
    photo = ImageOps.colorize(wall, black="#3b2a22", white="#d9b99b")
    step = size[0] // n
    for i, f in enumerate(sorted((celeba / "test").glob("*.jpg"))[10 : 10 + n]):
        with Image.open(f) as im:
            photo.paste(hr_from_image(im.convert("RGB"), side), (i * step + (step - side) // 2, (size[1] - side) // 2))
    return photo


def faceless_photo(size: tuple[int, int] = (120, 80)) -> Image.Image:
    """A real photo with no face in it: scikit-image's cup of coffee, shrunk."""
    from skimage import data

    return Image.fromarray(data.coffee()).resize(size, Image.LANCZOS)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real server for the API and browser tests (each start costs seconds of torch import)."""
    s = start_server(tmp_path_factory.mktemp("serve_tmp"))
    yield s
    rc, err = s.stop()
    assert rc == 0 and "pkdn serve: stopped" in err, err  # Ctrl-C stops it cleanly
    assert "Traceback" not in err, err
