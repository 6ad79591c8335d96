"""A real uvicorn server for an ASGI app in a background thread, on a socket bound before it starts
(tests, benchmarks, the review page): `with AppThread(app, bind("127.0.0.1", 0)) as url:`."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from ..errors import SchemagenError


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so a busy port is a one-line error before anything starts (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise SchemagenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class AppThread:
    """Serve `app` on `sock` from a daemon thread; `start` waits until uvicorn is up, `stop` joins it."""

    def __init__(self, app: Any, sock: socket.socket, *, name: str = "schemagen-http") -> None:
        import uvicorn

        self.sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self.name = name
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
