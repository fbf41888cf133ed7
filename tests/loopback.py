"""A loopback HTTP server for download tests and benchmarks: real sockets, misbehaving on purpose.

    with LoopbackServer() as server:
        server.add("aaaaaaaaaaa.mp4", Path("clip.mp4").read_bytes())            # plain file
        server.add("bbbbbbbbbbb.mp4", status=404)                               # always 404
        server.add("ccccccccccc.mp4", data, fail_first=2, fail_status=500)      # 500 twice, then ok
        server.add("ddddddddddd.mp4", data, fail_first=1, fail_status=429, retry_after=1)
        server.add("eeeeeeeeeee.mp4", data, truncate_at=10_000)   # Content-Length says more
        server.add("fffffffffff.mp4", data, delay=5.0)            # headers only after 5 s
        server.add("ggggggggggg.mp4", b"<html>...</html>", content_type="text/html")
        server.add("hhhhhhhhhhh.mp4", data, rate=2048)            # drips 2 KB/s, never stalls
        url = server.url("aaaaaaaaaaa.mp4")       # http://127.0.0.1:<random port>/aaaaaaaaaaa.mp4
        server.requests["ccccccccccc.mp4"]        # GET/HEAD requests seen for that path
        server.get_times["ddddddddddd.mp4"]       # monotonic time of each GET
        server.bytes_sent["aaaaaaaaaaa.mp4"]      # body bytes written for that path

Served files support single `Range: bytes=a-b` / `bytes=a-` requests (206 + Content-Range),
as ffmpeg seeks with them. Used only by tests and benchmarks; binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Route:
    """What one path serves and how it misbehaves."""

    data: bytes = b""
    content_type: str = "video/mp4"
    status: int = 200  # a non-200 status is returned on every request, with no body
    fail_first: int = 0  # the first N GET requests fail with fail_status
    fail_status: int = 500
    retry_after: float | None = None  # Retry-After header (seconds) on the failing responses
    truncate_at: int | None = None  # stop sending at this absolute byte offset, then close
    delay: float = 0.0  # seconds to wait before answering (or, with stall_at, mid-body)
    stall_at: int | None = None  # with delay: pause at this absolute byte offset of the body
    rate: float | None = None  # bytes per second: drip the body this slowly (never stalls)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 with per-path behaviours and request counters."""

    def __init__(self, sndbuf: int | None = 65536) -> None:
        self.sndbuf = sndbuf
        self.routes: dict[str, Route] = {}
        self.requests: dict[str, int] = {}
        self.gets: dict[str, int] = {}
        self.get_times: dict[str, list[float]] = {}  # time.monotonic() of each GET
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration -----------------------------------------------------------------
    def add(self, name: str, data: bytes = b"", **behaviour: object) -> str:
        """Serve `data` at `/<name>` with the given `Route` behaviour; return its URL."""
        self.routes[name] = Route(data=data, **behaviour)  # type: ignore[arg-type]
        return self.url(name) if self._server else f"/{name}"

    def reset_counters(self) -> None:
        """Forget request and byte counts."""
        with self._lock:
            self.requests.clear()
            self.gets.clear()
            self.get_times.clear()
            self.bytes_sent.clear()

    def total_bytes(self) -> int:
        """Body bytes sent over all paths."""
        with self._lock:
            return sum(self.bytes_sent.values())

    # -- life cycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def start(self) -> LoopbackServer:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- bookkeeping used by the handler ----------------------------------------------------------
    def _count(self, name: str, method: str) -> int:
        """Count a request; return how many GETs this path had before this one."""
        with self._lock:
            self.requests[name] = self.requests.get(name, 0) + 1
            before = self.gets.get(name, 0)
            if method == "GET":
                self.gets[name] = before + 1
                self.get_times.setdefault(name, []).append(time.monotonic())
            return before

    def _sent(self, name: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[name] = self.bytes_sent.get(name, 0) + n


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            if server.sndbuf:  # bound what the kernel buffers, so bytes_sent ~ bytes consumed
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, server.sndbuf)

        def handle(self) -> None:
            # a client dropping its connection is normal here (ffmpeg seeks that way)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
                super().handle()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

        def do_HEAD(self) -> None:  # noqa: N802 - http.server API
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            name = self.path.split("?", 1)[0].lstrip("/")
            route = server.routes.get(name)
            gets_before = server._count(name, "HEAD" if head else "GET")
            if route is None:
                self._empty(404)
                return
            if route.delay and route.stall_at is None and server._stopping.wait(route.delay):
                return
            if route.status != 200:
                self._empty(route.status)
                return
            if not head and gets_before < route.fail_first:
                extra = {}
                if route.retry_after is not None:
                    extra["Retry-After"] = f"{route.retry_after:g}"
                self._empty(route.fail_status, extra)
                return
            self._send_body(name, route, head)

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_body(self, name: str, route: Route, head: bool) -> None:
            data = route.data
            size = len(data)
            start, end = 0, size - 1
            status = 200
            match = _RANGE.match(self.headers.get("Range", "").strip())
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:  # suffix range: the last N bytes
                    start = max(0, size - int(match.group(2)))
                if start >= size:
                    self._empty(416, {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if route.truncate_at is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if head:
                return
            stop = end + 1
            if route.truncate_at is not None:
                stop = min(stop, max(start, route.truncate_at))
            pos = start
            stall = route.stall_at if route.stall_at is not None and route.delay else None
            try:
                while pos < stop:
                    if stall is not None and pos >= stall:
                        stall = None
                        if server._stopping.wait(route.delay):
                            return
                    limit = min(stop, pos + 65536)
                    if route.rate:  # a drip: a tenth of a second's worth, then a pause
                        limit = min(limit, pos + max(1, int(route.rate / 10)))
                        if server._stopping.wait(0.1):
                            return
                    if stall is not None and pos < stall < limit:
                        limit = stall
                    chunk = data[pos:limit]
                    self.wfile.write(chunk)
                    pos += len(chunk)
                    server._sent(name, len(chunk))
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away (ffmpeg seeks by dropping connections)
            if route.truncate_at is not None and stop <= end:
                self.close_connection = True

    return Handler


def make_video(
    path: str | Path,
    duration: float = 20.0,
    width: int = 320,
    height: int = 180,
    fps: int = 25,
    audio: bool = True,
    pattern: str = "testsrc",
    crf: int = 28,
    preset: str = "ultrafast",
) -> Path:
    """Write an H.264 (+ AAC sine) mp4 test video with ffmpeg, moov atom first (faststart)."""
    from repurpose.media import run_ffmpeg

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={fps}:duration={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-g", str(2 * fps)]
    args += ["-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "96k"]
    args += ["-movflags", "+faststart", "-t", str(duration), str(out)]
    run_ffmpeg(args)
    return out
