"""``asd-se live --serve PORT``: a page on 127.0.0.1 showing the stream as it is decided — ``/`` the page
(``assets/live.html``), ``/video.mjpg`` the annotated frames (MJPEG: boxes, labels, heatmaps as render draws
them), ``/events`` every decision and event line (server-sent events). Each client is served by its own thread
from the latest frame and lines; a client that goes away is counted and forgotten, the run goes on.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from asd_se.core.errors import OutputError

log = logging.getLogger(__name__)

RECENT_LINES = 200  # lines kept for a client that falls behind (older ones it skips)
WAIT_S = 0.5


class LiveServer:
    """Serve the page on ``host:port`` (port 0: any free one, see ``port``); ``publish`` each frame's JPEG and
    line (thread-safe), ``close`` at the end (clients see the stream end)."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self._changed = threading.Condition()
        self._jpeg: bytes | None = None
        self._frame_seq = 0
        self._lines: deque[tuple[int, str]] = deque(maxlen=RECENT_LINES)
        self._line_seq = 0
        self.closed = False
        self.disconnects = 0
        self._streaming = 0  # clients being sent a stream now
        self.page = resources.files("asd_se.live").joinpath("assets", "live.html").read_bytes()
        try:
            self._http = ThreadingHTTPServer((host, port), self._handler())
        except OSError as err:
            reason = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be served ({err.strerror})"
            raise OutputError(f"{host}:{port}: {reason}; choose another --serve port") from err
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="asd-se-live-serve", daemon=True)
        self._thread.start()

    @property
    def watched(self) -> bool:
        """Whether a client is connected (frames are JPEG-encoded only then)."""
        return self._streaming > 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def publish(self, jpeg: bytes | None, line: dict) -> None:
        with self._changed:
            if jpeg is not None:
                self._jpeg, self._frame_seq = jpeg, self._frame_seq + 1
            self._line_seq += 1
            self._lines.append((self._line_seq, json.dumps(line, separators=(",", ":"))))
            self._changed.notify_all()

    def close(self) -> None:
        """Stop serving; clients get what was published (the end line included) within ``WAIT_S``."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._streaming == 0, timeout=2 * WAIT_S)
        self._http.shutdown()
        self._http.server_close()

    def _next_frame(self, seen: int) -> tuple[int, bytes | None]:
        with self._changed:
            self._changed.wait_for(lambda: self._frame_seq > seen or self.closed, timeout=WAIT_S)
            return self._frame_seq, self._jpeg

    def _next_lines(self, seen: int) -> tuple[int, list[str]]:
        with self._changed:
            self._changed.wait_for(lambda: self._line_seq > seen or self.closed, timeout=WAIT_S)
            fresh = [text for seq, text in self._lines if seq > seen]
            return self._line_seq, fresh

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args) -> None:  # requests go to debug logging, not stderr
                log.debug("serve: " + format, *args)

            def do_GET(self) -> None:
                routes = {"/": self._page, "/video.mjpg": self._video, "/events": self._events}
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                with server._changed:
                    server._streaming += 1
                try:
                    route()
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnects += 1
                    log.info("serve: a client went away (%s)", self.path)
                finally:
                    with server._changed:
                        server._streaming -= 1
                        server._changed.notify_all()

            def _page(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(server.page)))
                self.end_headers()
                self.wfile.write(server.page)

            def _video(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = 0
                while not server.closed:
                    seen_now, jpeg = server._next_frame(seen)
                    if jpeg is None or seen_now == seen:
                        continue
                    seen = seen_now
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    self.wfile.flush()

            def _events(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = 0
                while True:
                    seen, lines = server._next_lines(seen)
                    for text in lines:
                        self.wfile.write(b"data: " + text.encode() + b"\n\n")
                    self.wfile.flush()
                    if server.closed:
                        return

        return Handler
