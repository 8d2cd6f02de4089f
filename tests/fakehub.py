"""A Hugging Face hub on 127.0.0.1, speaking the part of its protocol huggingface_hub 0.36 uses to
download a model, with a throttle so a download takes seconds and its progress can be watched.

What ``snapshot_download`` asks, in order (huggingface_hub/_snapshot_download.py, file_download.py):

* ``GET /api/models/<repo>/revision/<rev>``: the model info, its commit ``sha`` and ``siblings``
  (with ``?blobs=True``, as ``HfApi.model_info(files_metadata=True)`` asks, each file's ``size``,
  ``blobId`` and, for large files, ``lfs`` {size, sha256, pointerSize});
* per file, ``HEAD /<repo>/resolve/<commit>/<path>``: ``X-Repo-Commit``, ``ETag`` (the blob's name
  in the cache: the sha256 for LFS files, the git blob id for the rest) and ``Content-Length``;
* per file, ``GET`` of the same URL, with ``Range: bytes=N-`` when a partial file is resumed
  (answered 206 with ``Content-Range``).

An unknown repository is a 404 with ``X-Error-Code: RepoNotFound``, as the hub says it.
Every request is recorded, and the bytes of each file sent so far are counted as they go, in all
and per response. A client killed mid-body can leave a response still writing its next piece into
the socket buffer, so "what did the resumed request send" is asked of that response (``bodies``),
not read off the total at the moment of the kill.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
#: Files at least this large are served as LFS files (a sha256 etag), like the hub's weights.
LFS_FROM = 1 << 20


class FakeHub:
    """``repos``: repo id -> {path in the repo: bytes}. ``bytes_per_second`` throttles file
    bodies; ``stall_after`` (bytes of one response) makes bodies stop there and hang until
    ``release`` is set, after which every body is sent whole."""

    def __init__(self, repos: dict[str, dict[str, bytes]], *, bytes_per_second: float | None = None,
                 stall_after: int | None = None) -> None:
        self.repos = repos
        self.bytes_per_second = bytes_per_second
        self.stall_after = stall_after
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.sent: dict[str, int] = {}  # "repo/path" -> body bytes sent so far, all requests together
        self.responses: list[list] = []  # [["repo/path", Range header or None, body bytes sent], ...]
        self.lock = threading.Lock()
        self.release = threading.Event()  # set to let stalled bodies end
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

            def do_GET(self) -> None:
                hub._answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @classmethod
    def from_folder(cls, repo_id: str, folder: Path, **options) -> FakeHub:
        """A hub holding one repository: every file under ``folder``."""
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return cls({repo_id: files}, **options)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- what it was asked ---------------------------------------------------------------

    def size(self, repo_id: str) -> int:
        return sum(len(data) for data in self.repos[repo_id].values())

    def body_bytes(self, repo_id: str) -> int:
        """Bytes of ``repo_id``'s files sent so far."""
        with self.lock:
            return sum(n for key, n in self.sent.items() if key.startswith(repo_id + "/"))

    def file_bytes(self, repo_id: str, name: str) -> int:
        """Bytes of one file sent so far, all requests together."""
        with self.lock:
            return self.sent.get(f"{repo_id}/{name}", 0)

    def bodies(self, repo_id: str, name: str) -> list[tuple[str | None, int]]:
        """(Range header, body bytes sent) of every GET of one file, in the order they came."""
        with self.lock:
            return [(rng, n) for key, rng, n in self.responses if key == f"{repo_id}/{name}"]

    def ranges(self) -> list[tuple[str, str]]:
        """(path, Range header) of every GET that asked for part of a file."""
        with self.lock:
            return [(path, rng) for method, path, rng in self.requests if method == "GET" and rng]

    # -- the protocol -----------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = handler.path.split("?", 1)[0]
        query = handler.path.split("?", 1)[1] if "?" in handler.path else ""
        with self.lock:
            self.requests.append((handler.command, path, handler.headers.get("Range")))
        info = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path)
        if info:
            return self._info(handler, info.group(1), "blobs=True" in query or "blobs=true" in query)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve and resolve.group(1) in self.repos and resolve.group(3) in self.repos[resolve.group(1)]:
            return self._file(handler, resolve.group(1), resolve.group(3), head=head)
        self._send(handler, 404, b'{"error": "Repository not found"}',
                   {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"}, head=head)

    def _info(self, handler: BaseHTTPRequestHandler, repo_id: str, blobs: bool) -> None:
        files = self.repos.get(repo_id)
        if files is None:
            return self._send(handler, 404, b'{"error": "Repository not found"}',
                              {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"})
        siblings = []
        for name, data in files.items():
            sibling: dict = {"rfilename": name}
            if blobs:
                sibling["size"] = len(data)
                sibling["blobId"] = _git_blob_id(data)
                if len(data) >= LFS_FROM:
                    sibling["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                      "pointerSize": 134}
            siblings.append(sibling)
        body = json.dumps({"id": repo_id, "modelId": repo_id, "sha": COMMIT, "private": False,
                           "siblings": siblings}).encode()
        self._send(handler, 200, body, {"Content-Type": "application/json"})

    def _file(self, handler: BaseHTTPRequestHandler, repo_id: str, name: str, *, head: bool) -> None:
        data = self.repos[repo_id][name]
        etag = hashlib.sha256(data).hexdigest() if len(data) >= LFS_FROM else _git_blob_id(data)
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start = 0
        wanted = handler.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and not head:
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if head:
            return self._send(handler, 200, b"", {**headers, "Content-Length": str(len(data))}, head=True)
        body = data[start:]
        handler.send_response(206 if start else 200)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        key = f"{repo_id}/{name}"
        response = [key, wanted, 0]
        with self.lock:
            self.responses.append(response)
        step = 64 * 1024
        sent = 0
        try:
            for offset in range(0, len(body), step):
                if self.stall_after is not None and sent >= self.stall_after and not self.release.is_set():
                    self.release.wait(120)
                    handler.close_connection = True  # the body ends short: the client retries with a Range
                    return
                piece = body[offset:offset + step]
                handler.wfile.write(piece)
                sent += len(piece)
                with self.lock:
                    self.sent[key] = self.sent.get(key, 0) + len(piece)
                    response[2] += len(piece)
                if self.bytes_per_second:
                    time.sleep(len(piece) / self.bytes_per_second)
        except (BrokenPipeError, ConnectionResetError):
            return

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], *,
              head: bool = False) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if "Content-Length" not in headers:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head and body:
            handler.wfile.write(body)


def partial_bytes(hf_home: Path) -> int:
    """Bytes of unfinished downloads on a client's disk (huggingface_hub's ``blobs/*.incomplete``):
    what a killed client keeps, as against what the hub sent, some of which was still in flight."""
    total = 0
    for path in hf_home.rglob("*.incomplete"):
        with contextlib.suppress(FileNotFoundError):  # finished meanwhile
            total += path.stat().st_size
    return total


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
