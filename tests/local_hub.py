"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1: serves one folder as model repos, read-only.

It speaks the part of the Hub's HTTP API that ``huggingface_hub.snapshot_download`` and ``hf_hub_download``
use, so the real client code runs against it (point ``HF_ENDPOINT`` at :attr:`LocalHub.url`):

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: repo info with the commit ``sha``;
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing (``recursive`` honoured);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length``.

Anything else is a 404 with the Hub's ``X-Error-Code`` header. ``hits`` counts the file downloads (GET).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "4c0ffee04c0ffee04c0ffee04c0ffee04c0ffee0"


class LocalHub:
    """Serve ``folder`` as every repo named in ``repos`` at revision ``main`` (and :data:`COMMIT`)."""

    def __init__(self, folder: Path, repos: tuple[str, ...]) -> None:
        self.folder, self.repos, self.hits = Path(folder), set(repos), 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/")]
                query = urlsplit(self.path).query
                if parts[:2] == ["api", "models"] and len(parts) >= 4:
                    repo, rest = "/".join(parts[2:4]), parts[4:]
                    if repo in hub.repos and (not rest or (rest[0] == "revision" and len(rest) == 2)):
                        return self._json({"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                                           "siblings": [{"rfilename": f} for f in hub.files()]}, body)
                    if repo in hub.repos and rest[:1] == ["tree"] and len(rest) >= 2:
                        prefix = "/".join(rest[2:])
                        return self._json(self._tree(prefix, "recursive=true" in query.lower()), body)
                elif len(parts) >= 5 and parts[2] == "resolve" and "/".join(parts[:2]) in hub.repos:
                    path = hub.folder.joinpath(*parts[4:])
                    if path.is_file():
                        return self._file(path, body)
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _tree(self, prefix: str, recursive: bool) -> list[dict]:
                entries = []
                for name in hub.files():
                    if prefix and not name.startswith(prefix + "/"):
                        continue
                    if not recursive and "/" in name[len(prefix) + 1 if prefix else 0 :]:
                        continue
                    data = (hub.folder / name).read_bytes()
                    entries.append({"type": "file", "path": name, "size": len(data), "oid": _git_oid(data)})
                return entries

            def _json(self, data, body: bool) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def _file(self, path: Path, body: bool) -> None:
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{_git_oid(data)}"')
                self.end_headers()
                if body:
                    hub.hits += 1
                    self.wfile.write(data)

        return Handler


def _git_oid(data: bytes) -> str:
    """The git blob id of ``data``: what the Hub reports as a regular file's ``oid`` and ``ETag``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
