"""Start-up and stop: bind the socket here (clear error if taken), print the URL, stop on Ctrl-C.

Binding before uvicorn starts lets ``--port 0`` pick a free port and print
it, which is how the tests start real servers.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

from pkdn.serve.engine import ServeConfig


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``OSError`` with a one-line reason otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        reason = "is already in use; choose another with --port" if e.errno == 98 else f"cannot be bound ({e.strerror})"
        raise OSError(f"{host}:{port} {reason}") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    config: ServeConfig | None = None,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Serve until Ctrl-C (SIGINT) or SIGTERM; returns 0 after a clean stop.

    ``announce(url)`` is called once the socket listens (default: print it).
    """
    import uvicorn

    from pkdn.serve.app import create_app

    sock = bind(host, port)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    (announce or (lambda u: print(f"pkdn serve: {u}  (Ctrl-C to stop)", flush=True)))(url_of(sock))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after its clean shutdown
        pass
    finally:
        sock.close()
    print("pkdn serve: stopped", file=sys.stderr, flush=True)
    return 0
