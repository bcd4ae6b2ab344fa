"""MapRoulette API v2: the few routes osmgap calls, with timeouts, retries and a dry run.

Routes (maproulette/maproulette-backend, conf/v2_route/*.api):
- ``GET /project/:id`` (project.api, ProjectController.retrieve)
- ``GET /project/:id/challenge/:name`` (challenge.api, ChallengeController.readByName)
- ``POST /challenge`` and ``PUT /challenge/:id`` (challenge.api, create / update); the body is
  the flattened challenge JSON, priority rules as JSON *strings* (ChallengeFormatters.scala
  reads ``highPriorityRule: Option[String]``)
- ``PUT /challenge/:id/addFileTasks?lineByLine=true&removeUnmatched=..`` (challenge.api,
  addTasksToChallengeFromFile): a multipart upload whose file part is named ``json``
- ``GET /challenge/:id/tasks/extract`` (challenge.api, extractTaskSummaries): CSV with
  ``TaskID,...,ChallengeID,...,TaskName,...,TaskStatus`` where the status is a name from
  Task.statusMap
Authentication is the ``apiKey`` header (as in maproulette-python-client's Configuration).

Timeouts, connection errors, 429 and 5xx are retried with exponential backoff (1, 2, 4, 8 s by
default); a POST that creates something is not retried blindly (the caller looks first).
``DryRunTransport`` records exactly what would be sent, headers minus the key, and answers as
a server on which the challenge does not exist yet.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from osmgap import __version__
from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.taskstatus import MR_STATUS_IDS, TaskStatus
from osmgap.errors import InputError
from osmgap.maproulette.config import DEFAULT_TIMEOUT, MapRouletteConfig

log = logging.getLogger(__name__)

API_KEY_HEADER = "apiKey"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class MapRouletteError(Exception):
    """MapRoulette refused or kept failing a request (not a bad API key: that is an InputError)."""


class TransientError(MapRouletteError):
    """A timeout, connection failure or 5xx that may pass."""


class Transport(Protocol):
    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Response: ...


class RequestsTransport:
    """The network, through one ``requests`` session."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Response:
        try:
            r = self.session.request(method, url, headers=headers, data=body, timeout=timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(f"{method} {_path(url)}: {type(exc).__name__}") from None
        return Response(r.status_code, r.content, dict(r.headers))


class DryRunTransport:
    """Sends nothing; keeps each request to write out, answers as for a new challenge."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.created = 0

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Response:
        self.requests.append({"method": method, "url": url, "headers": headers, "body": body or b""})
        path = _path(url)
        if method == "GET" and re.search(r"/project/[^/]+/challenge/", path):
            return Response(404, b'{"status":"KO","message":"dry run: assuming a new challenge"}')
        if method == "GET" and re.search(r"/project/[^/]+$", path):
            return Response(200, json.dumps({"id": path.rsplit("/", 1)[1], "name": "(dry run)"}).encode())
        if method == "POST":
            self.created += 1
            return Response(200, json.dumps({**json.loads(body or b"{}"), "id": f"{{new-challenge-{self.created}}}"}).encode())
        if path.endswith("/tasks/extract"):
            return Response(200, EXTRACT_HEADER.encode())
        return Response(204)

    def write(self, directory: Path) -> list[Path]:
        """Replace ``directory`` with one ``.json`` (and ``.body``) per request, in order."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        written = []
        for i, req in enumerate(self.requests, 1):
            slug = re.sub(r"[^A-Za-z0-9]+", "-", _path(req["url"]).removeprefix("/api/v2/")).strip("-")[:60]
            stem = f"{i:02d}-{req['method']}-{slug}"
            meta = {"method": req["method"], "url": req["url"], "headers": req["headers"],
                    "note": f"the {API_KEY_HEADER} header is left out here; it is sent with every request"}
            if req["body"]:
                write_bytes_atomic(stage / f"{stem}.body", req["body"])
                meta["body_file"] = f"{stem}.body"
                meta["body_sha256"] = hashlib.sha256(req["body"]).hexdigest()
                if req["headers"].get("Content-Type", "").startswith("application/json"):
                    meta["body"] = json.loads(req["body"])
            write_bytes_atomic(stage / f"{stem}.json", (json.dumps(meta, indent=2) + "\n").encode())
            written.append(directory / f"{stem}.json")
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        stage.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
        return written


EXTRACT_HEADER = ("TaskID,TaskLink,ChallengeID,ChallengeLink,TaskName,GeometryType,TaskStatus,TaskPriority,"
                  "MappedOn,CompletionTime,Mapper,ReviewStatus,Reviewer,ReviewedAt,ReviewTimeSeconds,"
                  "AdditionalReviewers,Comments,BundleId,IsBundlePrimary,Tags\n")


class MapRouletteClient:
    """The routes osmgap uses; every call has a timeout and retries what may pass."""

    def __init__(self, config: MapRouletteConfig, transport: Transport | None = None, *,
                 dry_run: bool = False, retries: int = 4, backoff_s: float = 1.0,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.dry_run = dry_run
        self.transport = transport or (DryRunTransport() if dry_run else RequestsTransport())
        self.api_key = None if dry_run else config.require_key()
        self.retries, self.backoff_s, self.timeout, self.sleep = retries, backoff_s, timeout, sleep

    # routes -------------------------------------------------------------------------------
    def project(self, project_id: int) -> dict[str, Any] | None:
        """``GET /project/:id``; None when there is no such project."""
        r = self.request("GET", f"/project/{project_id}", ok=(200, 404))
        return r.json() if r.status == 200 else None

    def challenge_by_name(self, project_id: int, name: str) -> dict[str, Any] | None:
        """``GET /project/:id/challenge/:name``; None when the project has no such challenge."""
        r = self.request("GET", f"/project/{project_id}/challenge/{urllib.parse.quote(name, safe='')}", ok=(200, 404))
        return r.json() if r.status == 200 else None

    def create_challenge(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /challenge``: not retried here, since a lost answer may hide a created challenge."""
        return self.request("POST", "/challenge", json_body=body, retry=False).json()

    def update_challenge(self, challenge_id: int | str, body: dict[str, Any]) -> None:
        """``PUT /challenge/:id`` (304 means nothing to update)."""
        self.request("PUT", f"/challenge/{challenge_id}", json_body=body, ok=(200, 304))

    def add_file_tasks(self, challenge_id: int | str, data: bytes, *, remove_unmatched: bool) -> None:
        """``PUT /challenge/:id/addFileTasks?lineByLine=true&removeUnmatched=..``: the file part
        ``json`` holds RFC 7464 line-by-line GeoJSON, one task per line."""
        body, content_type = multipart_file("json", "tasks.geojson", data)
        params = {"lineByLine": "true", "removeUnmatched": "true" if remove_unmatched else "false"}
        self.request("PUT", f"/challenge/{challenge_id}/addFileTasks", params=params, body=body,
                     content_type=content_type, ok=(200, 204, 304))

    def task_statuses(self, challenge_id: int | str) -> list[TaskStatus]:
        """``GET /challenge/:id/tasks/extract`` (all tasks: limit -1), parsed from its CSV."""
        r = self.request("GET", f"/challenge/{challenge_id}/tasks/extract", params={"limit": "-1", "page": "0"},
                         accept="text/csv")
        return parse_task_extract(r.body, f"GET /challenge/{challenge_id}/tasks/extract")

    # transport ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                json_body: Any = None, body: bytes | None = None, content_type: str | None = None,
                ok: tuple[int, ...] = (200,), retry: bool = True, accept: str = "application/json") -> Response:
        url = self.config.api_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        headers = {"Accept": accept, "User-Agent": f"osmgap/{__version__}"}
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, sort_keys=True).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        if content_type:
            headers["Content-Type"] = content_type
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        attempts = 1 + (self.retries if retry else 0)
        for attempt in range(attempts):
            try:
                r = self.transport.send(method, url, headers, body, self.timeout)
            except TransientError as exc:
                failure = str(exc)
            else:
                log.info("%s %s -> %s", method, _path(url), r.status)
                if r.status in ok:
                    return r
                if r.status in (401, 403):
                    raise InputError(self.config.key_source, f"MapRoulette refused the API key "
                                                             f"(HTTP {r.status} on {method} {_path(url)})")
                failure = f"HTTP {r.status} on {method} {_path(url)}: {_message(r)}"
                if not (r.status >= 500 or r.status == 429):
                    raise MapRouletteError(failure)
            if attempt + 1 < attempts:
                wait = min(60.0, self.backoff_s * 2 ** attempt)
                log.warning("MapRoulette: %s; retrying in %.0f s", failure, wait)
                self.sleep(wait)
        raise TransientError(f"{failure} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})")


def multipart_file(field_name: str, filename: str, data: bytes,
                   content_type: str = "application/json") -> tuple[bytes, str]:
    """A multipart/form-data body with one file part; the boundary depends on the data only,
    so the same upload is the same bytes (and a dry run shows exactly them)."""
    salt = 0
    while True:
        boundary = "osmgap-" + hashlib.sha256(data + str(salt).encode()).hexdigest()[:32]
        if boundary.encode() not in data:
            break
        salt += 1
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def parse_task_extract(body: bytes, what: str) -> list[TaskStatus]:
    """Rows of the extract CSV; a header without the columns osmgap needs is an error."""
    reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    needed = {"TaskID", "ChallengeID", "TaskName", "TaskStatus"}
    if not needed <= set(reader.fieldnames or ()):
        raise MapRouletteError(f"{what}: CSV lacks {sorted(needed - set(reader.fieldnames or ()))}")
    out = []
    for row in reader:
        status = row["TaskStatus"]
        if status not in MR_STATUS_IDS and not status.isdigit():
            raise MapRouletteError(f"{what}: unknown task status {status!r}")
        out.append(TaskStatus(int(row["TaskID"]), int(row["ChallengeID"]), row["TaskName"],
                              MR_STATUS_IDS.get(status, int(status) if status.isdigit() else -1)))
    return out


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _message(r: Response) -> str:
    try:
        return str(r.json().get("message"))[:300]
    except (ValueError, AttributeError):
        return r.body[:300].decode("utf-8", "replace")
