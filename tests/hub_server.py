"""A local stand-in for the Hugging Face Hub HTTP API: a test double, not a server for real use.

It implements just what ``huggingface_hub`` 2.x needs to push a model repo and pull it back (the file is long because
that protocol is one unit, kept in one place):

- ``HfApi.create_repo`` (``POST /api/repos/create``; public or private), ``create_branch``
  (``POST /api/models/{repo}/branch/{branch}``), README front-matter validation (``POST /api/validate-yaml``);
- ``upload_folder`` / ``create_commit``: ``POST .../preupload/{rev}`` answers as the Hub does: ``uploadMode: "lfs"``
  for files that ``.gitattributes`` sends to LFS (``*.safetensors``...), binary files (a NUL byte in the sample) and
  files over 10 MB, ``"regular"`` for the rest (inline, base64 in the ndjson ``POST .../commit/{rev}`` body), with
  each remote file's ``oid`` (sha256 for LFS files, the git blob sha1 otherwise) so unchanged files are skipped;
- the Git LFS basic transfer: ``POST /{repo}.git/info/lfs/objects/batch`` (upload actions for unknown objects,
  none for stored ones), ``PUT`` of the content to the ``upload`` href (sha256 and size checked), ``POST`` to the
  ``verify`` href, then ``lfsFile`` commit operations that must name a stored, verified object;
- ``create_tag`` (``POST .../tag/{rev}``) and ``list_repo_refs`` (``GET .../refs``);
- ``snapshot_download`` / ``hf_hub_download``: ``GET /api/models/{repo}[/revision/{rev}]`` (sha, siblings),
  ``GET .../tree/{rev}`` (recursive listing) and ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with
  ``X-Repo-Commit``, ``ETag`` (the git blob sha1) and ``Content-Length``; no ``X-Xet-*`` headers, so downloads
  are plain HTTP;
- errors as the Hub sends them: 404 with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` /
  ``EntryNotFound`` (which ``huggingface_hub`` turns into its typed exceptions), 409 for existing repos/branches.

Auth is modelled loosely: any ``Authorization`` header counts as a valid token. Writes need one (401 otherwise)
and a private repo is invisible without one (401 + ``RepoNotFound``, like the Hub). Every commit gets a fresh
random 40-hex sha; branches map to commits; a new repo starts with one commit (``.gitattributes``) on ``main``.
State lives under ``repo_dir/<org>/<name>/`` (``repo.json`` plus ``blobs/<git sha1>``, ``lfs/<sha256>``).

Not covered: the Xet transfer. With ``hf_xet`` installed, huggingface_hub uploads LFS-mode files through a Xet CAS
server (``_upload_xet_files``, and ``upload_folder``'s pipelined multi-commit path), a binary protocol implemented
in Rust inside ``hf_xet`` that this double does not speak; the ``local_hub`` fixture therefore disables Xet
(``HF_HUB_DISABLE_XET``), which is the path huggingface_hub takes without ``hf_xet``: preupload → LFS batch →
PUT → verify → commit. Multipart LFS uploads (files over the Hub's chunk size) and pull requests are not emulated.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.pt filter=lfs diff=lfs merge=lfs -text\n"
API_ROUTE = re.compile(
    r"^/api/models/([^/]+)/([^/]+)(?:/(revision|tree|preupload|commit|branch|tag)/([^/]+)(/.*)?|/(refs))?$"
)
RESOLVE_ROUTE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
LFS_BATCH_ROUTE = re.compile(r"^/([^/]+)/([^/]+)\.git/info/lfs/objects/batch$")
LFS_UPLOAD_ROUTE = re.compile(r"^/lfs-test/([^/]+)/([^/]+)/(upload|verify)(?:/([0-9a-f]{64}))?$")
LFS_PATTERNS = ("*.safetensors", "*.pt", "*.bin", "*.png", "*.tfevents.*")  # the .gitattributes of a new repo
LFS_SIZE = 10 * 1024 * 1024  # the Hub sends larger files to LFS whatever their type


class HubError(Exception):
    """An HTTP error answer: status, message and the Hub's ``X-Error-Code`` (if any)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.headers, self.extra = status, code, headers or {}, extra


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LocalHub:
    """The fake Hub: ``start()`` serves it on 127.0.0.1 (free port) from a daemon thread; ``stop()`` ends it."""

    def __init__(self, repo_dir: Path):
        self.repo_dir = Path(repo_dir)
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []  # "METHOD /path -> status", for assertions on what the client did
        self.signature = secrets.token_hex(8)  # of the LFS upload/verify URLs handed out by the batch endpoint
        self.lfs_uploads: list[str] = []  # sha256 of every object received through the LFS upload action
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> LocalHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: one request per connection, nothing to keep alive
            def do_GET(self) -> None:
                hub.handle(self, "GET")

            def do_HEAD(self) -> None:
                hub.handle(self, "HEAD")

            def do_POST(self) -> None:
                hub.handle(self, "POST")

            def do_PUT(self) -> None:
                hub.handle(self, "PUT")

            def log_message(self, *args: Any) -> None:  # keep pytest's output clean; see LocalHub.requests
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = lambda: self.server.serve_forever(poll_interval=0.05)  # noqa: E731 - quick shutdown()
        threading.Thread(target=serve, name="local-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- storage ----------------------------------------------------------------------------------------
    def _save(self, repo_id: str) -> None:
        (self.repo_dir / repo_id).mkdir(parents=True, exist_ok=True)
        (self.repo_dir / repo_id / "repo.json").write_text(json.dumps(self.repos[repo_id], indent=1))

    def _lfs_path(self, repo_id: str, oid: str) -> Path:
        return self.repo_dir / repo_id / "lfs" / oid

    def _oid(self, repo_id: str, git_sha: str) -> str:
        """What preupload and the tree report for a stored file: sha256 for LFS files, else the git blob sha1."""
        return self.repos[repo_id].setdefault("lfs", {}).get(git_sha, git_sha)

    def _put_blob(self, repo_id: str, data: bytes) -> str:
        sha = git_sha1(data)
        path = self.repo_dir / repo_id / "blobs" / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return sha

    def _commit(self, repo_id: str, branch: str, files: dict[str, str], message: str) -> str:
        repo = self.repos[repo_id]
        sha = secrets.token_hex(20)
        repo["commits"][sha] = {
            "parent": repo["branches"].get(branch),
            "message": message,
            "files": files,
            "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        repo["branches"][branch] = sha
        self._save(repo_id)
        return sha

    def _repo(self, repo_id: str, authorized: bool) -> dict[str, Any]:
        repo = self.repos.get(repo_id)
        if repo is None or (repo["private"] and not authorized):
            # The Hub answers 401 for private repos seen anonymously, 404 for missing ones; both RepoNotFound.
            status = 401 if repo is not None else 404
            raise HubError(status, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _resolve(self, repo_id: str, repo: dict[str, Any], revision: str) -> str:
        sha = repo["branches"].get(revision) or repo.get("tags", {}).get(revision)
        sha = sha or (revision if revision in repo["commits"] else None)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # -- public helpers for tests -------------------------------------------------------------------------
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (branch or commit sha), read from the blob store."""
        repo = self.repos[repo_id]
        tree = repo["commits"][self._resolve(repo_id, repo, revision)]["files"]
        return {path: (self.repo_dir / repo_id / "blobs" / sha).read_bytes() for path, sha in tree.items()}

    # -- HTTP -----------------------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(req.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if req.headers.get("Transfer-Encoding", "").lower() == "chunked":  # httpx streams file objects this way
            body = b""
            while (size := int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                body += req.rfile.read(size)
                req.rfile.readline()
            req.rfile.readline()
        else:
            length = int(req.headers.get("Content-Length") or 0)
            body = req.rfile.read(length) if length else b""
        authorized = req.headers.get("Authorization") is not None
        status, headers, payload = 200, {}, b""
        try:
            with self.lock:
                status, headers, payload = self.route(method, url.path, query, body, authorized)
        except HubError as err:
            status, headers = err.status, {**err.headers, "Content-Type": "application/json"}
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = str(err)
            payload = json.dumps({"error": str(err), **err.extra}).encode()
        self.requests.append(f"{method} {url.path} -> {status}")
        req.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(payload)))
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(payload)

    def route(self, method: str, path: str, query: dict[str, str], body: bytes, authorized: bool):
        """One answer per endpoint of the module docstring, in its order. Long because it is the table of the API
        this double speaks, a few lines per endpoint, best read in one piece."""

        def answer(obj: Any) -> tuple[int, dict[str, str], bytes]:
            return 200, {}, json.dumps(obj).encode()

        if method == "POST" and path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
            try:
                yaml.safe_load(match.group(1)) if match else None
            except yaml.YAMLError as exc:
                return 400, {}, json.dumps({"errors": [{"message": str(exc)}], "warnings": []}).encode()
            return answer({"errors": [], "warnings": []})
        if method == "POST" and path == "/api/repos/create":
            return answer(self.create_repo(json.loads(body), authorized))
        if (m := RESOLVE_ROUTE.match(path)) and method in ("GET", "HEAD"):
            org, name, rev, file = (unquote(g) for g in m.groups())
            return self.resolve(f"{org}/{name}", rev, file, authorized)
        if m := LFS_UPLOAD_ROUTE.match(path):  # presigned like the Hub's storage URLs: no token, a signature
            if query.get("sig") != self.signature:
                raise HubError(403, "invalid or missing upload signature")
            org, name, action, oid = m.groups()
            return answer(self.lfs_transfer(f"{org}/{name}", method, action, oid, body))
        if method in ("POST", "PUT") and not authorized:
            raise HubError(401, "Invalid username or password.")
        if (m := LFS_BATCH_ROUTE.match(path)) and method == "POST":
            repo_id = f"{m.group(1)}/{m.group(2)}"
            self._repo(repo_id, authorized)
            return answer(self.lfs_batch(repo_id, json.loads(body)))
        m = API_ROUTE.match(path)
        if m is None:
            raise HubError(404, f"no such route in the local test Hub: {method} {path}")
        org, name, action, rev, rest, refs = (unquote(g) if g else g for g in m.groups())
        repo_id = f"{org}/{name}"
        repo = self._repo(repo_id, authorized)
        if method == "GET" and refs:
            tags = repo.setdefault("tags", {})
            ref = lambda kind, n, sha: {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha}  # noqa: E731
            return answer(
                {
                    "branches": [ref("heads", n, sha) for n, sha in sorted(repo["branches"].items())],
                    "tags": [ref("tags", n, sha) for n, sha in sorted(tags.items())],
                    "converts": [],
                    "pullRequests": [],
                }
            )
        if method == "POST" and action == "tag":
            tag = json.loads(body)["tag"]
            tags = repo.setdefault("tags", {})
            if tag in tags or tag in repo["branches"]:
                raise HubError(409, f"Tag {tag} already exists")
            tags[tag] = self._resolve(repo_id, repo, rev)
            self._save(repo_id)
            return answer({})
        if method == "GET" and action in (None, "revision"):
            sha = self._resolve(repo_id, repo, rev or "main")
            commit = repo["commits"][sha]
            return answer(
                {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": sha,
                    "private": repo["private"],
                    "lastModified": commit["date"],
                    "tags": [],
                    "downloads": 0,
                    "likes": 0,
                    "siblings": [{"rfilename": p} for p in sorted(commit["files"])],
                }
            )
        if method == "GET" and action == "tree":
            return answer(
                self.tree(repo_id, repo, rev, (rest or "").strip("/"), query.get("recursive") in ("1", "true", "True"))
            )
        if method == "POST" and action == "branch":
            if rev in repo["branches"]:
                raise HubError(409, f"Branch {rev} already exists")
            start = json.loads(body or b"{}").get("startingPoint") or "main"
            repo["branches"][rev] = self._resolve(repo_id, repo, start)
            self._save(repo_id)
            return answer({})
        if method == "POST" and action == "preupload":
            files = repo["commits"][self._resolve(repo_id, repo, rev)]["files"]
            return answer(
                {
                    "files": [
                        {
                            "path": f["path"],
                            "uploadMode": self.upload_mode(f),
                            "shouldIgnore": False,
                            "oid": self._oid(repo_id, files[f["path"]]) if f["path"] in files else None,
                        }
                        for f in json.loads(body)["files"]
                    ]
                }
            )
        if method == "POST" and action == "commit":
            return answer(self.commit(repo_id, repo, rev, body, query))
        raise HubError(405, f"{method} not supported on {path} by the local test Hub")

    @staticmethod
    def upload_mode(file: dict[str, Any]) -> str:
        """The Hub's rule: LFS for .gitattributes patterns, binary content (a NUL in the sample) and big files."""
        sample = base64.b64decode(file.get("sample", ""))
        lfs = any(fnmatch.fnmatch(file["path"].rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)
        return "lfs" if lfs or b"\0" in sample or file.get("size", 0) > LFS_SIZE else "regular"

    def lfs_batch(self, repo_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "the local test Hub only accepts basic LFS uploads")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if not self._lfs_path(repo_id, obj["oid"]).is_file():  # already stored: no actions, nothing to send
                base = f"{self.endpoint}/lfs-test/{repo_id}"
                entry["actions"] = {
                    "upload": {"href": f"{base}/upload/{obj['oid']}?sig={self.signature}", "header": {}},
                    "verify": {"href": f"{base}/verify?sig={self.signature}", "header": {}},
                }
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def lfs_transfer(self, repo_id: str, method: str, action: str, oid: str | None, body: bytes) -> dict[str, Any]:
        if action == "upload" and method == "PUT" and oid:
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"LFS upload content does not match its oid {oid}")
            path = self._lfs_path(repo_id, oid)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            self.lfs_uploads.append(oid)
            return {}
        if action == "verify" and method == "POST":
            payload = json.loads(body)
            path = self._lfs_path(repo_id, payload["oid"])
            if not path.is_file() or path.stat().st_size != payload["size"]:
                raise HubError(404, f"LFS object {payload['oid']} not found or of the wrong size")
            return {}
        raise HubError(405, f"{method} {action} not supported by the local test Hub's LFS store")

    def create_repo(self, payload: dict[str, Any], authorized: bool) -> dict[str, Any]:
        if not authorized:
            raise HubError(401, "Invalid username or password.")
        if payload.get("type") not in (None, "model"):
            raise HubError(400, "the local test Hub only hosts model repos")
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            raise HubError(409, "You already created this model repo", url=url)  # the Hub sends the url along
        self.repos[repo_id] = {"private": payload.get("visibility") == "private", "branches": {}, "commits": {}}
        self._commit(repo_id, "main", {".gitattributes": self._put_blob(repo_id, GITATTRIBUTES)}, "initial commit")
        return {"url": url, "name": repo_id, "id": repo_id}

    def tree(self, repo_id: str, repo: dict[str, Any], rev: str, prefix: str, recursive: bool) -> list[dict]:
        files = repo["commits"][self._resolve(repo_id, repo, rev)]["files"]
        base = f"{prefix}/" if prefix else ""
        entries: dict[str, dict[str, Any]] = {}
        for path, sha in sorted(files.items()):
            if not path.startswith(base):
                continue
            parts = path[len(base) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                folder = base + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {"type": "directory", "path": folder, "oid": git_sha1(folder.encode())})
            if recursive or len(parts) == 1:
                size = (self.repo_dir / repo_id / "blobs" / sha).stat().st_size
                entries[path] = {"type": "file", "path": path, "size": size, "oid": sha}
                if self._oid(repo_id, sha) != sha:  # an LFS file: the tree names its pointer's object
                    entries[path]["lfs"] = {"oid": self._oid(repo_id, sha), "size": size, "pointerSize": 134}
        if prefix and not entries:
            raise HubError(404, f"{prefix} does not exist on {rev}", "EntryNotFound")
        return list(entries.values())

    def commit(self, repo_id: str, repo: dict[str, Any], rev: str, body: bytes, query: dict[str, str]) -> dict:
        if query.get("create_pr"):
            raise HubError(400, "the local test Hub does not support pull requests")
        if rev not in repo["branches"]:
            raise HubError(404, f"Invalid rev id: {rev} (commits go to a branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        parent = repo["branches"][rev]
        if header.get("parentCommit") not in (None, parent):
            raise HubError(412, f"A commit has happened since {header['parentCommit']}: the head of {rev} is {parent}")
        files = dict(repo["commits"][parent]["files"])
        for op in lines[1:]:
            key, value = op["key"], op["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "file content must be base64-encoded")
                data = base64.b64decode(value["content"])
                if (
                    self.upload_mode({"path": value["path"], "sample": base64.b64encode(data[:512]), "size": len(data)})
                    == "lfs"
                ):
                    raise HubError(422, f"{value['path']} must be uploaded with LFS (preupload said so)")
                files[value["path"]] = self._put_blob(repo_id, data)
            elif key == "lfsFile":
                if value.get("algo") != "sha256" or not self._lfs_path(repo_id, value["oid"]).is_file():
                    raise HubError(422, f"LFS object {value.get('oid')} for {value['path']} was never uploaded")
                git_sha = self._put_blob(repo_id, self._lfs_path(repo_id, value["oid"]).read_bytes())
                repo.setdefault("lfs", {})[git_sha] = value["oid"]
                files[value["path"]] = git_sha
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: s for p, s in files.items() if not p.startswith(folder)}
            else:
                raise HubError(400, f"the local test Hub does not support {key!r} commit operations")
        sha = self._commit(repo_id, rev, files, header.get("summary", ""))
        return {
            "commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha}",
            "commitOid": sha,
            "success": True,
            "pullRequestUrl": None,
        }

    def resolve(self, repo_id: str, rev: str, file: str, authorized: bool) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(repo_id, authorized)
        sha = self._resolve(repo_id, repo, rev)
        blob = repo["commits"][sha]["files"].get(file)
        if blob is None:
            raise HubError(404, f"Entry not found: {file}", "EntryNotFound", headers={"X-Repo-Commit": sha})
        data = (self.repo_dir / repo_id / "blobs" / blob).read_bytes()
        return 200, {"Content-Type": "application/octet-stream", "X-Repo-Commit": sha, "ETag": f'"{blob}"'}, data
