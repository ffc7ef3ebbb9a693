"""``pkdn serve``: a local web page and HTTP API over the super-resolution code.

Thin on purpose: requests are validated (:mod:`pkdn.serve.upload`), queued
to a bounded pool of workers that keep each model loaded once
(:mod:`pkdn.serve.engine`), and answered by a small Starlette app
(:mod:`pkdn.serve.app`) whose page is plain HTML/JS shipped in the package,
so nothing is fetched from the network at run time. Starlette and uvicorn
come with the core install.
"""

from __future__ import annotations

from pkdn.serve.engine import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve"]


def create_app(config: ServeConfig | None = None):
    """The ASGI app (imported lazily so ``import pkdn.serve`` stays cheap)."""
    from pkdn.serve.app import create_app as _create

    return _create(config)


def serve(host: str = "127.0.0.1", port: int = 7860, config: ServeConfig | None = None, **kw) -> int:
    """Run the server until Ctrl-C; see :func:`pkdn.serve.server.serve`."""
    from pkdn.serve.server import serve as _serve

    return _serve(host, port, config, **kw)
