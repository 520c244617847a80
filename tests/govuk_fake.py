"""A local stand-in for GOV.UK's Content API and asset host, for fetch tests.

Serves canned replies on 127.0.0.1 only (ephemeral port) from a thread and counts
every request per path, so tests can prove what was (not) downloaded.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One canned response.

    ``content_length``: None sends the true length, -1 sends no header (the
    body then ends when the connection closes), any other value is sent as is
    (larger than the body imitates a truncated download). ``trickle`` sends the
    body one byte at a time with that many seconds between bytes.
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_length: int | None = None
    delay: float = 0.0
    trickle: float = 0.0


def pdf_bytes(label: str, size: int = 0) -> bytes:
    """Small bytes that start like a PDF; padded to ``size`` when given."""
    body = b"%PDF-1.4\n% " + label.encode() + b"\n1 0 obj << >> endobj\n"
    if size > len(body) + 6:
        body += b"0" * (size - len(body) - 6)
    return body + b"%%EOF\n"


@dataclass
class FakeGovUK:
    """Routes (decoded path -> replies, the last one repeating) and request counts."""

    routes: dict[str, list[Reply]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- set-up -------------------------------------------------------------

    def add(self, path: str, *replies: Reply) -> None:
        """Serve ``replies`` in turn at ``path`` (the last one for every later hit)."""
        self.routes[path] = list(replies) or [Reply(404)]

    def add_json(self, path: str, obj: Any) -> None:
        self.add(path, Reply(200, json.dumps(obj).encode(), (("Content-Type", "application/json"),)))

    def add_pdf(self, path: str, body: bytes) -> None:
        self.add(path, Reply(200, body, (("Content-Type", "application/pdf"),)))

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.origin + "/api/content"

    def url(self, path: str) -> str:
        return self.origin + path

    def count(self, prefix: str) -> int:
        """Requests made to paths starting with ``prefix``."""
        with self._lock:
            return sum(n for path, n in self.hits.items() if path.startswith(prefix))

    # -- serving ------------------------------------------------------------

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            self.hits[path] += 1
            replies = self.routes.get(path)
            if not replies:
                return Reply(404, b"not found")
            index = min(self.hits[path], len(replies)) - 1
            return replies[index]

    def start(self) -> FakeGovUK:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                reply = fake._next_reply(path)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                if reply.content_length is None:
                    self.send_header("Content-Length", str(len(reply.body)))
                elif reply.content_length >= 0:
                    self.send_header("Content-Length", str(reply.content_length))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if reply.trickle:
                        for i in range(len(reply.body)):
                            self.wfile.write(reply.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(reply.body)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # the parameter name http.server uses
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGovUK:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
