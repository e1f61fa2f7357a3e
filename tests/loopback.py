"""A static HTTP server on 127.0.0.1 (no outside network) with Range support, for download tests."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support; can cut a response short to simulate a dropped connection."""

    sent: list[tuple[str, int]] = []
    cut_after: int | None = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_after is not None and len(body) > type(self).cut_after:
            body = body[: type(self).cut_after]
            type(self).cut_after = None
            self.close_connection = True
        type(self).sent.append((self.path, len(body)))  # before writing: the client may check as soon as it has read
        self.wfile.write(body)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve `root` at the yielded base URL (ending in '/') until the block ends."""
    RangeHandler.sent, RangeHandler.cut_after = [], None
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
