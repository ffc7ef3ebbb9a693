"""The Starlette app: the page, ``GET /api/health``, ``GET /api/info``, ``POST /api/sr`` and ``POST /api/bicubic``.

Every error a client can cause answers 4xx with ``{"error": "<one line>"}``.
Uploads are read through a byte-counting ``receive`` so an oversized body
is refused while it streams in, not after it has filled memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive

from pkdn.data.degrade import upsample
from pkdn.kind import MAX_CROP_SIDE
from pkdn.serve.engine import AUTO, MODES, Engine, Result, ServeConfig, encode_png
from pkdn.serve.upload import UploadError

STATIC = Path(__file__).parent / "static"
#: multipart overhead allowed above the image limit (boundaries, headers, the small text fields).
FORM_SLACK = 64 * 1024
# Only this origin's own files: the page cannot load anything from elsewhere, by construction.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _TooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    """Wrap ``receive`` so a body over ``limit`` bytes stops being read."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        msg = await receive()
        if msg["type"] == "http.request":
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return msg

    return wrapped


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Retry-After": "2"} if status == 503 else None)


def create_app(config: ServeConfig | None = None) -> Starlette:
    """Build the app around one :class:`Engine` (models load on first use and stay loaded)."""
    engine = Engine(config or ServeConfig())
    cfg = engine.config
    body_limit = cfg.max_bytes + FORM_SLACK
    too_large = f"file too large (the limit is {cfg.max_bytes / 1e6:.0f} MB)"

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "in_flight": engine.in_flight})

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "models": engine.models(),
                "default_models": {mode: engine.default_model(mode) for mode in MODES},
                "modes": engine.modes(),
                "max_bytes": cfg.max_bytes,
                "max_side": cfg.max_side,
                "max_photo_side": cfg.max_photo_side,
                "max_crop_side": MAX_CROP_SIDE,
            }
        )

    def bicubic_x8(mode: str, model: str | None, data: bytes, notes: list[str], ensemble: int) -> Result:
        """The page's "before": PIL bicubic x8 (``pkdn.data.degrade.upsample``, the baseline every table uses).

        Drawn by the browser, a small input would be blocky (nearest) or browser-smoothed; either would make
        the comparison depend on the browser. Same form and limits as ``/api/sr``; model and views are unused.
        """
        img, used, kind = engine.decode(mode, data, notes)
        out = upsample(img)
        return Result(encode_png(out), img.size, out.size, mode=used, model="bicubic", kind=kind)

    async def sr(request: Request) -> Response:
        return await answer(request, engine.process, "pkdn_x8.png")

    async def bicubic(request: Request) -> Response:
        return await answer(request, bicubic_x8, "bicubic_x8.png")

    async def answer(request: Request, work: Callable[..., Result], filename: str) -> Response:
        """Read the form (``image``, ``mode``, ``model``, ``ensemble``), run ``work`` on a worker, answer the PNG."""
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            return _error("bad Content-Length header", 400)
        if declared > body_limit:
            return _error(too_large, 413)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return _error("send the image as multipart/form-data with a field named 'image'", 415)
        try:
            with engine.admit():
                limited = Request(request.scope, _limited(request.receive, body_limit))
                async with limited.form(max_files=1, max_fields=8) as form:
                    mode = str(form.get("mode") or AUTO)
                    model = str(form.get("model") or "") or None  # none: the default of the mode used
                    ensemble = engine.check(mode, model, str(form.get("ensemble") or "1"))
                    upload = form.get("image")
                    if not isinstance(upload, UploadFile):
                        raise UploadError("no image: send the file in a multipart field named 'image'")
                    data = await upload.read(cfg.max_bytes + 1)
                notes: list[str] = []
                result = await engine.run(work, mode, model, data, notes, ensemble)
        except UploadError as e:
            return _error(str(e), e.status)
        except _TooLarge:
            return _error(too_large, 413)
        except HTTPException as e:  # Starlette's answer to a malformed multipart body
            return _error(f"malformed upload ({' '.join(str(e.detail).split())})", 400)
        headers = {
            "X-Pkdn-Input-Size": f"{result.size[0]}x{result.size[1]}",
            "X-Pkdn-Output-Size": f"{result.out_size[0]}x{result.out_size[1]}",
            "X-Pkdn-Faces": json.dumps(result.faces, separators=(",", ":")),
            "X-Pkdn-Notes": json.dumps(notes, ensure_ascii=True),
            "X-Pkdn-Mode": result.mode,
            "X-Pkdn-Model": result.model,
            "X-Pkdn-Kind": result.kind,
            "Content-Disposition": f'inline; filename="{filename}"',
        }
        return Response(result.png, media_type="image/png", headers=headers)

    routes = [
        Route("/", index),
        Route("/api/health", health),
        Route("/api/info", info),
        Route("/api/sr", sr, methods=["POST"]),
        Route("/api/bicubic", bicubic, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engine.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(f"no such page: {request.url.path}", 404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(f"{request.method} is not allowed on {request.url.path}", 405)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_allowed})
    app.state.engine = engine
    return app
