"""A small HTTP file server on 127.0.0.1 for download tests, with faults on demand.

It serves a fixed set of files (address path → local file), answers ``Range: bytes=A-`` and
``bytes=A-B`` requests with 206 (or 416 past the end), sends Google Cloud Storage's
``x-goog-hash`` headers, and can be told to ignore ranges, announce a wrong MD5, or drop the
connection after a number of body bytes.  Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    raw_path: str  # as sent, still URL-quoted
    path: str  # unquoted
    headers: dict[str, str]
    status: int = 0

    @property
    def range(self) -> str | None:
        """The Range header sent, if any."""
        return self.headers.get("range")


@dataclass
class Faults:
    """What the server does wrong, changeable while it runs."""

    cut_after: int | None = None  # drop the connection after this many body bytes...
    cuts: int | None = None  # ...for this many responses (None: every response)
    ignore_range: bool = False  # answer range requests with the whole file (200)
    md5: dict[str, bytes] = field(default_factory=dict)  # path → MD5 digest to announce instead
    send_hash: bool = True  # send x-goog-hash at all


class FileServer:
    """Serves `files` (address path such as ``/sketchrnn/cat.npz`` → local file) on 127.0.0.1."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = {path: Path(local) for path, local in files.items()}
        self.faults = Faults()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The server's root address."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def requests_for(self, path: str) -> list[Seen]:
        """The GET requests seen for address path `path` (unquoted)."""
        return [s for s in self.seen if s.path == path and s.method == "GET"]

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _take_cut(self) -> int | None:
        """How many body bytes the next response may send before the connection drops (None: all)."""
        with self._lock:
            faults = self.faults
            if faults.cut_after is None or faults.cuts == 0:
                return None
            if faults.cuts is not None:
                faults.cuts -= 1
            return faults.cut_after

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            """Answers GET and HEAD from the server's files."""

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                raw = urllib.parse.urlsplit(self.path).path
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = Seen(self.command, raw, urllib.parse.unquote(raw), headers)
                server.seen.append(seen)
                local = server.files.get(seen.path)
                if local is None:
                    seen.status = 404
                    self.send_error(404, "Not Found")
                    return
                data = local.read_bytes()
                start, end, status = 0, len(data), 200
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", seen.range or "")
                if match and not server.faults.ignore_range:
                    start = int(match[1])
                    end = min(len(data), int(match[2]) + 1) if match[2] else len(data)
                    if start >= len(data) or start >= end:
                        seen.status = 416
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                seen.status = status
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                if server.faults.send_hash:
                    digest = server.faults.md5.get(seen.path, hashlib.md5(data).digest())
                    self.send_header("x-goog-hash", "crc32c=AAAAAA==")  # not checked by the client
                    self.send_header("x-goog-hash", "md5=" + base64.b64encode(digest).decode())
                self.end_headers()
                if not body:
                    return
                cut = server._take_cut()
                payload = data[start:end]
                if cut is not None and cut < len(payload):
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        return Handler
