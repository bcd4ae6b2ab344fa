"""MapRoulette API v2: the few routes osmgap calls, with timeouts, retries and a dry run.

Routes (maproulette/maproulette-backend, conf/v2_route/*.api):
- ``GET /project/:id`` (project.api, ProjectController.retrieve)
- ``GET /project/:id/challenge/:name`` (challenge.api, ChallengeController.readByName)
- ``GET /challenge/:id`` (challenge.api, ChallengeController.read; 404 when there is none)
- ``POST /challenge`` and ``PUT /challenge/:id`` (challenge.api, create / update); the body is
  the flattened challenge JSON, priority rules as JSON *strings* (ChallengeFormatters.scala
  reads ``highPriorityRule: Option[String]``)
- ``PUT /challenge/:id/addFileTasks?lineByLine=true&removeUnmatched=..`` (challenge.api,
  addTasksToChallengeFromFile): a multipart upload whose file part is named ``json``
- ``GET /challenge/:id/tasks/extract`` (challenge.api, extractTaskSummaries): CSV with
  ``TaskID,...,ChallengeID,...,TaskName,...,TaskStatus`` where the status is a name from
  Task.statusMap
Authentication is the ``apiKey`` header (as in maproulette-python-client's Configuration).

Requests go through osmgap.core.http: timeouts, connection errors, 429 and 5xx are retried
with its capped, jittered backoff (about 1, 2, 4, 8 s by default) or the server's Retry-After; a
POST that creates something is not retried blindly (the caller looks first). The key is sent
only to the API's own scheme, host and port (a redirect elsewhere is refused) and is masked in
every message. An answer that is not what the route returns (HTML, other JSON, a CSV without
its columns) is an InputError naming the API URL: most likely it is not a MapRoulette API.
``DryRunTransport`` records exactly what would be sent, headers minus the key, and answers as
a server on which the challenge does not exist yet.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import random
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from osmgap.core import http
from osmgap.core.atomic import check_output_dir, staged_output_dir
from osmgap.core.http import USER_AGENT, Response, RetryPolicy, server_text
from osmgap.core.secrets import quoted, redact
from osmgap.core.taskstatus import MR_STATUS_IDS, MR_STATUS_NAMES, TaskStatus
from osmgap.errors import InputError
from osmgap.maproulette.config import DEFAULT_TIMEOUT, MapRouletteConfig

log = logging.getLogger(__name__)

API_KEY_HEADER = "apiKey"
DEFAULT_POLICY = RetryPolicy(retries=4, backoff_s=1.0, max_backoff_s=60.0, max_retry_after_s=300.0)
MAX_ANSWER_BYTES = 256 * 2**20  # the task extract of a full challenge is a few MB
MAX_ID = 2**63 - 1  # ids are SQLite integers in the state


class MapRouletteError(Exception):
    """MapRoulette refused or kept failing a request (not a bad API key: that is an InputError)."""


class TransientError(MapRouletteError):
    """A timeout, connection failure or 5xx that may pass."""


class MalformedAnswer(MapRouletteError):
    """An answer that is not what the route returns; the client turns it into an InputError."""


class Transport(Protocol):
    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Response: ...


class RequestsTransport:
    """The network, through osmgap's one HTTP client: the ``apiKey`` header is a secret, so
    it never follows a redirect to another host."""

    def __init__(self) -> None:
        self.http = http.HttpClient(secret_headers=(API_KEY_HEADER,), max_bytes=MAX_ANSWER_BYTES)

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             timeout: tuple[float, float]) -> Response:
        return self.http.send(method, url, headers=headers, data=body, timeout=timeout)


REQUEST_FILE = re.compile(r"\d{2,}-[A-Z]+-[A-Za-z0-9-]*\.(json|body)")
"""The names ``DryRunTransport.write`` gives its files: what a dry run replaces in its folder."""


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
        if method == "GET" and re.search(r"/challenge/[^/]+$", path):
            return Response(404, b'{"status":"KO","message":"dry run: assuming no such challenge"}')
        if method == "GET" and re.search(r"/project/[^/]+$", path):
            return Response(200, json.dumps({"id": path.rsplit("/", 1)[1], "name": "(dry run)"}).encode())
        if method == "POST":
            self.created += 1
            return Response(200, json.dumps({**json.loads(body or b"{}"), "id": f"{{new-challenge-{self.created}}}"}).encode())
        if path.endswith("/tasks/extract"):
            return Response(200, EXTRACT_HEADER.encode())
        return Response(204)

    def write(self, directory: Path) -> list[Path]:
        """One ``.json`` (and ``.body``) per request, in order, into ``directory`` through the
        staged output folder: an earlier dry run's request files are replaced as a whole (a
        shorter run leaves none of them behind), any other file there is the user's and stays."""
        directory = Path(directory)
        check_output_dir(directory)  # a file at its name is refused before it is listed
        earlier = [e.name for e in os.scandir(directory) if REQUEST_FILE.fullmatch(e.name)] if directory.is_dir() else []
        written = []
        with staged_output_dir(directory, replaces=earlier) as stage:
            for i, req in enumerate(self.requests, 1):
                slug = re.sub(r"[^A-Za-z0-9]+", "-", _path(req["url"]).removeprefix("/api/v2/")).strip("-")[:60]
                stem = f"{i:02d}-{req['method']}-{slug}"
                meta = {"method": req["method"], "url": req["url"], "headers": req["headers"],
                        "note": f"the {API_KEY_HEADER} header is left out here; it is sent with every request"}
                if req["body"]:
                    (stage / f"{stem}.body").write_bytes(req["body"])
                    meta["body_file"] = f"{stem}.body"
                    meta["body_sha256"] = hashlib.sha256(req["body"]).hexdigest()
                    if req["headers"].get("Content-Type", "").startswith("application/json"):
                        meta["body"] = json.loads(req["body"])
                (stage / f"{stem}.json").write_bytes((json.dumps(meta, indent=2) + "\n").encode())
                written.append(directory / f"{stem}.json")
        return written


EXTRACT_HEADER = ("TaskID,TaskLink,ChallengeID,ChallengeLink,TaskName,GeometryType,TaskStatus,TaskPriority,"
                  "MappedOn,CompletionTime,Mapper,ReviewStatus,Reviewer,ReviewedAt,ReviewTimeSeconds,"
                  "AdditionalReviewers,Comments,BundleId,IsBundlePrimary,Tags\n")


class MapRouletteClient:
    """The routes osmgap uses; every call has a timeout and retries what may pass."""

    def __init__(self, config: MapRouletteConfig, transport: Transport | None = None, *,
                 dry_run: bool = False, policy: RetryPolicy = DEFAULT_POLICY,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, sleep: Callable[[float], None] | None = None,
                 rand: Callable[[], float] = random.random):
        self.config = config
        self.dry_run = dry_run
        self.transport = transport or (DryRunTransport() if dry_run else RequestsTransport())
        self.api_key = None if dry_run else config.require_key()
        self.policy, self.timeout, self.sleep, self.rand = policy, timeout, sleep, rand

    @property
    def secrets(self) -> list[str]:
        """What no message may show: the key, also in a dry run (it may be in the environment)."""
        return [k for k in (self.api_key, self.config.api_key) if k]

    # routes -------------------------------------------------------------------------------
    def project(self, project_id: int) -> dict[str, Any] | None:
        """``GET /project/:id``; None when there is no such project."""
        r = self.request("GET", f"/project/{project_id}", ok=(200, 404))
        return self._object(r, f"GET /project/{project_id}") if r.status == 200 else None

    def challenge_by_name(self, project_id: int, name: str) -> dict[str, Any] | None:
        """``GET /project/:id/challenge/:name``; None when the project has no such challenge."""
        path = f"/project/{project_id}/challenge/{urllib.parse.quote(name, safe='')}"
        r = self.request("GET", path, ok=(200, 404))
        if r.status != 200:
            return None
        return self._same_challenge(r, self._object(r, f"GET {path}", with_id=True), f"GET {path}", name, project_id)

    def challenge(self, challenge_id: int | str) -> dict[str, Any] | None:
        """``GET /challenge/:id``; None when the server no longer has it (404, or marked deleted:
        MapRoulette removes a challenge some time after its owner deletes it)."""
        what = f"GET /challenge/{challenge_id}"
        r = self.request("GET", f"/challenge/{challenge_id}", ok=(200, 404))
        if r.status != 200:
            return None
        doc = self._object(r, what, with_id=True)
        if str(doc["id"]) != str(challenge_id):  # another challenge's tasks would be replaced by these
            raise self._malformed(r, what, f"is challenge {redact(str(doc['id']), self.secrets)[:40]}")
        return None if doc.get("deleted") is True else doc

    def create_challenge(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /challenge``: not retried here, since a lost answer may hide a created challenge."""
        r = self.request("POST", "/challenge", json_body=body, retry=False)
        return self._same_challenge(r, self._object(r, "POST /challenge", with_id=True), "POST /challenge",
                                    body.get("name"), body.get("parent"))

    def _same_challenge(self, r: Response, doc: dict[str, Any], what: str, name: Any, parent: Any) -> dict[str, Any]:
        """``doc`` when it is the challenge asked for (its name and project, where it says them):
        another one's id would have its tasks replaced by these."""
        if doc.get("name") not in (None, name) or (parent is not None and doc.get("parent") not in (None, parent)):
            raise self._malformed(r, what, f"is challenge {quoted(doc.get('name'), self.secrets, 60)} of project "
                                           f"{redact(str(doc.get('parent')), self.secrets)[:40]}, not "
                                           f"{quoted(name, self.secrets, 60)} of project {parent}")
        return doc

    def update_challenge(self, challenge_id: int | str, body: dict[str, Any]) -> None:
        """``PUT /challenge/:id`` (304 means nothing to update)."""
        self.request("PUT", f"/challenge/{challenge_id}", json_body=body, ok=(200, 304))

    def add_file_tasks(self, challenge_id: int | str, data: bytes, *, remove_unmatched: bool,
                       gone_ok: bool = False) -> bool:
        """``PUT /challenge/:id/addFileTasks?lineByLine=true&removeUnmatched=..``: the file part
        ``json`` holds RFC 7464 line-by-line GeoJSON, one task per line. False where the server
        no longer has the challenge (404) and ``gone_ok``: emptying a deleted challenge is done."""
        body, content_type = multipart_file("json", "tasks.geojson", data)
        params = {"lineByLine": "true", "removeUnmatched": "true" if remove_unmatched else "false"}
        r = self.request("PUT", f"/challenge/{challenge_id}/addFileTasks", params=params, body=body,
                         content_type=content_type, ok=(200, 204, 304, 404) if gone_ok else (200, 204, 304))
        return r.status != 404

    def task_statuses(self, challenge_id: int | str) -> list[TaskStatus] | None:
        """``GET /challenge/:id/tasks/extract`` (all tasks: limit -1), parsed from its CSV; None
        when the server no longer has the challenge (deleted on MapRoulette: 404)."""
        what = f"GET /challenge/{challenge_id}/tasks/extract"
        r = self.request("GET", f"/challenge/{challenge_id}/tasks/extract", params={"limit": "-1", "page": "0"},
                         accept="text/csv", ok=(200, 404))
        if r.status == 404:
            return None
        try:
            return parse_task_extract(r.body, challenge_id, self.secrets)
        except MalformedAnswer as exc:
            raise self._malformed(r, what, str(exc)) from None

    # answers ------------------------------------------------------------------------------
    def _object(self, r: Response, what: str, *, with_id: bool = False) -> dict[str, Any]:
        """The answer as a JSON object (with a usable ``id`` where the caller needs one)."""
        try:
            doc = r.json()
        except ValueError:
            raise self._malformed(r, what, "is not JSON") from None
        if not isinstance(doc, dict):
            raise self._malformed(r, what, f"is a JSON {type(doc).__name__}, not an object")
        if with_id and not self._usable_id(doc.get("id")):
            raise self._malformed(r, what, "has no usable challenge id")
        return doc

    def _usable_id(self, value: Any) -> bool:
        if isinstance(value, str) and self.dry_run:  # the dry run's placeholders
            return True
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID

    def _malformed(self, r: Response, what: str, problem: str) -> InputError:
        said = server_text(r, self.secrets, limit=120)
        kind = r.header("Content-Type") or "no Content-Type"
        return InputError(self.config.api_url, redact(f"the answer to {what} {problem} ({kind}"
                                                      f"{': ' + said if said else ''}); is this a MapRoulette "
                                                      "API v2 URL?", self.secrets))

    # transport ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                json_body: Any = None, body: bytes | None = None, content_type: str | None = None,
                ok: tuple[int, ...] = (200,), retry: bool = True, accept: str = "application/json") -> Response:
        url = self.config.api_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, sort_keys=True).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        if content_type:
            headers["Content-Type"] = content_type
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        policy = self.policy if retry else replace(self.policy, retries=0)
        try:
            return http.retry(lambda: self._attempt(method, url, headers, body, ok), policy,
                              sleep=self.sleep, rand=self.rand)
        except http.GaveUp as exc:
            n = exc.attempts
            raise TransientError(redact(f"{exc.last} (gave up after {n} attempt{'s' if n > 1 else ''})",
                                        self.secrets)) from None
        except http.Refused as exc:
            raise InputError(self.config.api_url, redact(str(exc), self.secrets)) from None

    def _attempt(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                 ok: tuple[int, ...]) -> Response:
        """One try: the answer when its status is one of ``ok``, else the right error."""
        what = f"{method} {_path(url)}"
        try:
            r = self.transport.send(method, url, headers, body, self.timeout)
        except http.Retryable as exc:
            raise http.Retryable(f"{what}: {exc.message}", exc.retry_after) from None
        log.info("%s -> %s", what, r.status)
        if r.status in ok:
            return r
        if r.status in (401, 403):
            raise InputError(self.config.key_source, f"MapRoulette refused the API key (HTTP {r.status} on {what})")
        http.raise_if_retryable(r, what, self.secrets)
        said = server_text(r, self.secrets)
        raise MapRouletteError(f"HTTP {r.status} on {what}{': ' + said if said else ''}")


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


def parse_task_extract(body: bytes, challenge_id: int | str | None = None,
                       secrets: Sequence[str | None] = ()) -> list[TaskStatus]:
    """Rows of the extract CSV; anything but the CSV the route returns is a MalformedAnswer
    (a header without the columns osmgap needs, a short row, an id that is no number, a
    status MapRoulette does not have, a row of another challenge), quoting with ``secrets`` masked."""
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline=""))
        fields = reader.fieldnames or []
        needed = ["TaskID", "ChallengeID", "TaskName", "TaskStatus"]
        missing = [k for k in needed if k not in fields]
        if missing:
            raise MalformedAnswer(f"is not the task CSV: it lacks the column(s) {', '.join(missing)}")
        return [_task_row(row, reader.line_num, challenge_id, secrets) for row in reader]
    except UnicodeDecodeError:
        raise MalformedAnswer("is not UTF-8 text") from None
    except csv.Error as exc:
        raise MalformedAnswer(f"is not readable CSV ({exc})") from None


def _task_row(row: dict[str | Any, str | Any], line: int, challenge_id: int | str | None,
              secrets: Sequence[str | None]) -> TaskStatus:
    values = {k: v for k in ("TaskID", "ChallengeID", "TaskName", "TaskStatus") if isinstance(v := row.get(k), str)}
    if len(values) < 4:
        raise MalformedAnswer(f"has a row with too few columns (line {line})")
    task_id = _csv_id(values["TaskID"], "TaskID", line, secrets)
    parent = _csv_id(values["ChallengeID"], "ChallengeID", line, secrets)
    if isinstance(challenge_id, int) and parent != challenge_id:
        raise MalformedAnswer(f"lists a task of challenge {parent} (line {line})")
    status = values["TaskStatus"]
    if status in MR_STATUS_IDS:
        number = MR_STATUS_IDS[status]
    elif status.isascii() and status.isdigit() and int(status) in MR_STATUS_NAMES:  # '²' is a digit to isdigit()
        number = int(status)
    else:
        raise MalformedAnswer(f"has an unknown task status {quoted(status, secrets)} (line {line})")
    return TaskStatus(task_id, parent, values["TaskName"], number)


def _csv_id(text: str, column: str, line: int, secrets: Sequence[str | None]) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID):
        raise MalformedAnswer(f"has {column} {quoted(text, secrets)}, not an id (line {line})")
    return int(text)


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path
