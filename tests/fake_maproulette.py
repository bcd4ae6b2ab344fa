"""A local stand-in for MapRoulette API v2 that is strict about what it accepts.

It implements only the routes osmgap calls and checks each request the way the real server
(maproulette/maproulette-backend) reads it; anything it would reject, or silently mangle, is
answered with an error and recorded in ``violations``, which the tests require to stay empty.
Sources, all in maproulette/maproulette-backend unless said otherwise:
- routes: conf/v2_route/project.api and conf/v2_route/challenge.api (cited per handler);
- authentication: the ``apiKey`` header (maproulette-python-client api/configuration.py puts the
  key there; the server's SessionManager reads it), 401 otherwise;
- challenge JSON: app/org/maproulette/models/utils/ChallengeFormatters.scala (ChallengeReads:
  ``name``, ``parent``, ``instruction`` required, the priority rules are *strings*) and
  framework/model/Challenge.scala (``matchesJSONRule`` / ``PriorityRule.doesMatch``: rule
  value ``key.value``, types string/integer/double/long, numeric operators ==,!=,<,<=,>,>=;
  a task property that does not parse as the rule's number type throws);
- task upload: controllers/api/ChallengeController.scala ``addTasksToChallengeFromFile``
  (multipart file part ``json``; tasks counted *before* ``removeUnmatched`` removes the
  Created (0) and Skipped (3) ones; over ``maxTasksPerChallenge`` -> 400, or a silently failed
  challenge when it was empty) and provider/ChallengeProvider.scala (RFC 7464 RS stripped per
  line, task name from the first feature's ``id``/``@id``/``osmid``/``osm_id``/``name``, a
  second task of the same name is dropped by the unique key);
- cooperative work: ``cooperativeWork`` beside ``features`` with meta version 2, type 2 and a
  base64 osmChange file (maproulette/mr-cli src/commands/cooperative_commands/changes.mjs);
- task extract: ChallengeController ``_extractTaskSummaries`` CSV header and
  Task.statusMap names (Created, Fixed, False_Positive, ...).
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer

STATUS_NAMES = {0: "Created", 1: "Fixed", 2: "False_Positive", 3: "Skipped", 4: "Deleted",
                5: "Already_Fixed", 6: "Too_Hard", 7: "Answered", 8: "Validated", 9: "Disabled"}
PRIORITY_NAMES = {0: "High", 1: "Medium", 2: "Low"}
EXTRACT_COLUMNS = ["TaskID", "TaskLink", "ChallengeID", "ChallengeLink", "TaskName", "GeometryType",
                   "TaskStatus", "TaskPriority", "MappedOn", "CompletionTime", "Mapper", "ReviewStatus",
                   "Reviewer", "ReviewedAt", "ReviewTimeSeconds", "AdditionalReviewers", "Comments",
                   "BundleId", "IsBundlePrimary", "Tags"]
RULE_TYPES = {"string", "integer", "double", "long"}
STRING_OPS = {"equal", "not_equal", "contains", "not_contains", "is_empty", "is_not_empty"}
NUMERIC_OPS = {"==", "!=", "<", "<=", ">", ">="}
OSM_LIKE_ID = re.compile(r"^(node|way|relation|n|r|w)?/?\d+$")
RS = "\x1e"


class Reject(Exception):
    def __init__(self, status: int, message: str, violation: bool = True):
        super().__init__(message)
        self.status, self.message, self.violation = status, message, violation


@dataclass
class Task:
    id: int
    parent: int
    name: str
    geojson: dict[str, Any]
    status: int = 0
    priority: int = 0
    cooperative: dict[str, Any] | None = None


@dataclass
class FakeMapRoulette:
    api_key: str = "test-key-5f0c1d"
    projects: tuple[int, ...] = (1,)
    max_tasks: int = 50_000
    challenges: dict[int, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # one per coming request: ("pass", 0), ("status:503", 0), ("stall", seconds), ("lost", 0), and the
    # hostile ones, answered without doing anything: ("raw", (status, headers, body)),
    # ("redirect", (status, location)), ("echo", (status, form)) (an error page that shows the
    # request's headers, as some proxies do; form: "html", "json", "url" or "entity")
    faults: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = iter(range(1001, 10**9))
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None: fake._handle(self)
            def do_POST(self) -> None: fake._handle(self)
            def do_PUT(self) -> None: fake._handle(self)
            def do_DELETE(self) -> None: fake._handle(self)
            def log_message(self, *args: Any) -> None: pass

        self._loopback = LoopbackServer(Handler)
        self.url = f"{self._loopback.origin}/api/v2"

    def __enter__(self) -> FakeMapRoulette:
        self._loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loopback.stop()

    # what tests use -----------------------------------------------------------------------
    def tasks_of(self, challenge_id: int) -> dict[str, Task]:
        return {t.name: t for t in self.tasks.values() if t.parent == challenge_id}

    def challenge_named(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.challenges.values() if c["name"] == name), None)

    def review(self, challenge_id: int, name: str, status: int) -> None:
        """What a mapper or reviewer does on the website."""
        self.tasks_of(challenge_id)[name].status = status

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.log if r["method"] != "GET"]

    # dispatch -----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urllib.parse.urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        record = {"method": h.command, "path": split.path, "query": urllib.parse.parse_qs(split.query),
                  "headers": {k.lower(): v for k, v in h.headers.items()}, "body": body}
        with self._lock:
            self.log.append(record)
            fault = self.faults.pop(0) if self.faults else None
        kind = fault[0] if fault else "pass"
        if kind in ("raw", "redirect", "echo"):
            return self._send_raw(h, *_hostile(kind, fault[1], h))
        if kind == "stall":  # answer too late: the client has given up by then
            time.sleep(fault[1])
        elif kind.startswith("status:"):  # fail before doing anything
            return self._send(h, int(kind.split(":")[1]), {"status": "KO", "message": "injected fault"})
        try:
            if record["headers"].get("apikey") != self.api_key:
                raise Reject(401, "not authorized", violation=False)
            status, payload = self._route(h.command, split.path, record)
        except Reject as exc:
            if exc.violation:
                self.violations.append(f"{h.command} {split.path}: {exc.message}")
            status, payload = exc.status, {"status": "KO", "message": exc.message}
        if kind == "lost":  # did the work, but the answer is lost on the way
            status, payload = 502, {"status": "KO", "message": "bad gateway"}
        self._send(h, status, payload)

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode(), "text/csv; header=present"
        else:
            data, ctype = (b"" if payload is None else json.dumps(payload).encode()), "application/json"
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _send_raw(self, h: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if not any(k.lower() == "content-length" for k in headers):
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _route(self, method: str, path: str, req: dict[str, Any]) -> tuple[int, Any]:
        if not path.startswith("/api/v2/"):
            raise Reject(404, "not an API v2 path")
        p = path[len("/api/v2"):]
        with self._lock:
            if method == "GET" and (m := re.fullmatch(r"/project/(\d+)", p)):
                return self._get_project(int(m[1]))
            if method == "GET" and (m := re.fullmatch(r"/project/(\d+)/challenge/([^/]+)", p)):
                return self._read_by_name(int(m[1]), urllib.parse.unquote(m[2]))
            if method == "GET" and (m := re.fullmatch(r"/challenge/(\d+)", p)):
                return self._read(int(m[1]))
            if method == "POST" and p == "/challenge":
                return self._create(req)
            if method == "PUT" and (m := re.fullmatch(r"/challenge/(\d+)", p)):
                return self._update(int(m[1]), req)
            if method == "PUT" and (m := re.fullmatch(r"/challenge/(\d+)/addFileTasks", p)):
                return self._add_file_tasks(int(m[1]), req)
            if method == "GET" and (m := re.fullmatch(r"/challenge/(\d+)/tasks/extract", p)):
                return self._extract(int(m[1]), req)
        raise Reject(404, f"route not implemented by the fake (osmgap should not call it): {method} {p}")

    # project.api: GET /project/:id  (ProjectController.retrieve)
    def _get_project(self, pid: int) -> tuple[int, Any]:
        if pid not in self.projects:
            raise Reject(404, f"project {pid} not found", violation=False)
        return 200, {"id": pid, "name": f"project-{pid}", "enabled": True}

    # challenge.api: GET /project/:id/challenge/:name  (ChallengeController.readByName)
    def _read_by_name(self, pid: int, name: str) -> tuple[int, Any]:
        found = next((c for c in self.challenges.values() if c["parent"] == pid and c["name"] == name), None)
        if found is None:
            raise Reject(404, f"no challenge {name!r} in project {pid}", violation=False)
        return 200, _as_returned(found)

    # challenge.api: GET /challenge/:id  (ChallengeController.read; 404 when there is none)
    def _read(self, cid: int) -> tuple[int, Any]:
        if cid not in self.challenges:
            raise Reject(404, f"no challenge found with id {cid}", violation=False)
        return 200, _as_returned(self.challenges[cid])

    # challenge.api: POST /challenge  (ChallengeController.create; body read by ChallengeReads)
    def _create(self, req: dict[str, Any]) -> tuple[int, Any]:
        body = _json_body(req)
        if "id" in body:
            raise Reject(400, "leave the id out when creating (challenge.api challenge_create)")
        for key, kind in (("name", str), ("parent", int), ("instruction", str)):
            if not isinstance(body.get(key), kind) or body[key] in ("",):
                raise Reject(400, f"{key} missing or not {kind.__name__}")
        self._check_challenge(body)
        if body["parent"] not in self.projects:
            raise Reject(404, f"project {body['parent']} not found")
        if any(c["parent"] == body["parent"] and c["name"] == body["name"] for c in self.challenges.values()):
            raise Reject(400, f"duplicate challenge name {body['name']!r} in project {body['parent']}")
        cid = next(self._ids)
        self.challenges[cid] = {**body, "id": cid, "status": 0}
        return 200, _as_returned(self.challenges[cid])

    # challenge.api: PUT /challenge/:id  (ChallengeController.update)
    def _update(self, cid: int, req: dict[str, Any]) -> tuple[int, Any]:
        body = _json_body(req)
        if cid not in self.challenges:
            raise Reject(404, f"challenge {cid} not found")
        if "id" in body and body["id"] != cid:
            raise Reject(400, "id in the body differs from the path")
        self._check_challenge(body)
        self.challenges[cid].update(body)
        return 200, _as_returned(self.challenges[cid])

    def _check_challenge(self, body: dict[str, Any]) -> None:
        if "defaultPriority" in body and body["defaultPriority"] not in PRIORITY_NAMES:
            raise Reject(400, "defaultPriority must be 0, 1 or 2")
        for key in ("highPriorityRule", "mediumPriorityRule", "lowPriorityRule"):
            if key in body:
                if not isinstance(body[key], str):
                    raise Reject(400, f"{key} must be a JSON string (ChallengePriority reads Option[String])")
                _check_rule(key, json.loads(body[key]))

    # challenge.api: PUT /challenge/:id/addFileTasks  (ChallengeController.addTasksToChallengeFromFile)
    def _add_file_tasks(self, cid: int, req: dict[str, Any]) -> tuple[int, Any]:
        q = {k: v[-1] for k, v in req["query"].items()}
        if q.get("lineByLine") != "true":
            raise Reject(400, "osmgap uploads line-by-line GeoJSON: lineByLine=true expected")
        if q.get("removeUnmatched", "false") not in ("true", "false"):
            raise Reject(400, "removeUnmatched must be true or false")
        data = _multipart_file(req, "json")
        challenge = self.challenges.get(cid)
        if challenge is None:
            raise Reject(404, f"no challenge found with id {cid}")
        current = len(self.tasks_of(cid))  # counted before removeUnmatched, as the server does
        if q.get("removeUnmatched") == "true":
            for t in list(self.tasks.values()):
                if t.parent == cid and t.status in (0, 3):
                    del self.tasks[t.id]
        lines = data.decode("utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if current + len(lines) > self.max_tasks:
            if current == 0:
                challenge["status"] = 6  # STATUS_FAILED, and the answer is still 204
                self.violations.append(f"challenge {cid}: {len(lines)} tasks exceed the cap; silently failed")
                return 204, None
            raise Reject(400, f"Total challenge tasks would exceed cap of {self.max_tasks}")
        for i, line in enumerate(lines):
            self._create_task(challenge, line.lstrip(RS), i)
        return 204, None

    def _create_task(self, challenge: dict[str, Any], line: str, index: int) -> None:
        try:
            fc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Reject(400, f"line {index}: not JSON ({exc})") from None
        if fc.get("type") != "FeatureCollection" or not fc.get("features"):
            raise Reject(400, f"line {index}: not a FeatureCollection with features")
        first = fc["features"][0]
        name = next((str(first[k]) for k in ("id", "@id", "osmid", "osm_id", "name") if first.get(k) not in (None, "")), None)
        if name is None or OSM_LIKE_ID.match(name):
            raise Reject(400, f"line {index}: task name {name!r} would be a random UUID or read as an OSM id")
        for f in fc["features"]:
            _check_geometry(f.get("geometry"), index)
        coop = fc.get("cooperativeWork")
        if coop is not None:
            _check_cooperative(coop, index)
        props = {k: v for k, v in (first.get("properties") or {}).items()}
        priority = _priority(challenge, props, index)
        if name in self.tasks_of(challenge["id"]):
            return  # unique (parent, name): the server logs and drops the new task
        tid = next(self._ids)
        self.tasks[tid] = Task(tid, challenge["id"], name, fc, 0, priority, coop)

    # challenge.api: GET /challenge/:id/tasks/extract  (ChallengeController.extractTaskSummaries)
    def _extract(self, cid: int, req: dict[str, Any]) -> tuple[int, Any]:
        if cid not in self.challenges:
            raise Reject(404, f"Challenge with id {cid} not found")
        for key in ("limit", "page"):
            if key in req["query"] and not re.fullmatch(r"-?\d+", req["query"][key][-1]):
                raise Reject(400, f"{key} must be an integer")
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(EXTRACT_COLUMNS)
        for t in sorted(self.tasks_of(cid).values(), key=lambda t: t.id):
            w.writerow([t.id, f"[[hyperlink URL link=http://x/challenge/{cid}/task/{t.id}]]", cid, "", t.name,
                        t.geojson["features"][0]["geometry"]["type"], STATUS_NAMES[t.status],
                        PRIORITY_NAMES[t.priority], *[""] * 12])
        return 200, out.getvalue()


def _hostile(kind: str, arg: Any, h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a hostile fault."""
    if kind == "raw":
        return arg
    if kind == "redirect":
        return arg[0], {"Location": arg[1]}, b""
    status, form = arg
    seen = dict(sorted(h.headers.items(), key=lambda kv: kv[0].lower()))
    if form == "json":
        return status, {"Content-Type": "application/json"}, json.dumps(
            {"status": "KO", "message": f"bad request, headers were {seen}"}).encode()
    if form == "url":
        return status, {"Content-Type": "text/plain"}, urllib.parse.urlencode(seen).encode()
    lines = "".join(f"<li>{k}: {html.escape(v) if form == 'entity' else v}</li>" for k, v in seen.items())
    return status, {"Content-Type": "text/html"}, f"<html><body><h1>Error</h1><ul>{lines}</ul></body></html>".encode()


def _as_returned(challenge: dict[str, Any]) -> dict[str, Any]:
    """As ChallengeWrites answers: priority rules parsed into JSON objects."""
    out = dict(challenge)
    for key in ("highPriorityRule", "mediumPriorityRule", "lowPriorityRule"):
        out[key] = json.loads(challenge.get(key) or "{}")
    return out


def _json_body(req: dict[str, Any]) -> dict[str, Any]:
    if not req["headers"].get("content-type", "").startswith("application/json"):
        raise Reject(400, "challenge JSON must be sent as application/json")
    try:
        body = json.loads(req["body"])
    except json.JSONDecodeError as exc:
        raise Reject(400, f"invalid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Reject(400, "challenge JSON must be an object")
    return body


def _multipart_file(req: dict[str, Any], field_name: str) -> bytes:
    ctype = req["headers"].get("content-type", "")
    m = re.match(r'multipart/form-data;\s*boundary="?([^";]+)"?', ctype)
    if not m:
        raise Reject(400, "addFileTasks takes multipart/form-data")
    delimiter = b"--" + m[1].encode()
    body = req["body"]
    if not body.rstrip(b"\r\n").endswith(delimiter + b"--"):
        raise Reject(400, "multipart body does not end with the closing boundary")
    for part in body.split(delimiter)[1:-1]:
        head, _, content = part.partition(b"\r\n\r\n")
        disposition = head.decode("latin-1")
        if f'name="{field_name}"' in disposition:
            fname = re.search(r'filename="([^"]*)"', disposition)
            if not fname or not fname[1]:
                raise Reject(400, "No json uploaded with request to add tasks from (file part needs a filename)")
            if not content.endswith(b"\r\n"):
                raise Reject(400, "file part not terminated by CRLF")
            return content[:-2]
    raise Reject(400, "No json uploaded with request to add tasks from")


def _check_rule(key: str, rule: Any) -> None:
    if not isinstance(rule, dict) or rule.get("condition") not in ("AND", "OR") or not rule.get("rules"):
        raise Reject(400, f"{key}: needs condition AND/OR and a non-empty rules list")
    for r in rule["rules"]:
        if "rules" in r:
            _check_rule(key, r)
            continue
        value, kind, op = r.get("value"), r.get("type"), r.get("operator")
        if not isinstance(value, str) or "." not in value or not value.split(".", 1)[0]:
            raise Reject(400, f"{key}: rule value must be 'key.value', got {value!r}")
        if kind not in RULE_TYPES:
            raise Reject(400, f"{key}: type {kind!r} not supported by Priority Rules")
        if op not in (STRING_OPS if kind == "string" else NUMERIC_OPS):
            raise Reject(400, f"{key}: operator {op!r} not supported for {kind}")
        if kind != "string":
            _number(value.split(".", 1)[1], kind, f"{key} value")


def _number(text: str, kind: str, what: str) -> float:
    try:
        return float(text) if kind == "double" else int(text)
    except ValueError:
        raise Reject(400, f"{what}: {text!r} is not a {kind} (the server would throw)") from None


def _priority(challenge: dict[str, Any], props: dict[str, Any], index: int) -> int:
    """Challenge.getTaskPriority: high, medium, low rule in turn, else defaultPriority."""
    values = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v))
              for k, v in props.items()}
    for level, key in ((0, "highPriorityRule"), (1, "mediumPriorityRule"), (2, "lowPriorityRule")):
        rule = challenge.get(key)
        if rule and _matches(json.loads(rule), values, index):
            return level
    return int(challenge.get("defaultPriority", 0))


def _matches(rule: dict[str, Any], values: dict[str, str], index: int) -> bool:
    hits = []
    for r in rule["rules"]:
        if "rules" in r:
            hits.append(_matches(r, values, index))
            continue
        key, target = r["value"].split(".", 1)
        have = next((v for k, v in values.items() if k.lower() == key.lower()), None)
        if have is None:
            hits.append(False)
        elif r["type"] == "string":
            hits.append({"equal": have == target, "not_equal": have != target, "contains": target in have,
                         "not_contains": target not in have, "is_empty": have == "",
                         "is_not_empty": have != ""}[r["operator"]])
        else:
            a = _number(have, r["type"], f"line {index}: property {key}")
            b = _number(target, r["type"], "rule value")
            hits.append({"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[r["operator"]])
    return all(hits) if rule["condition"] == "AND" else any(hits)


def _check_geometry(geom: Any, index: int) -> None:
    if not isinstance(geom, dict) or geom.get("type") not in ("Point", "LineString", "Polygon", "MultiLineString"):
        raise Reject(400, f"line {index}: feature without a usable geometry")
    if geom["type"] == "LineString":
        coords = geom.get("coordinates") or []
        if len(coords) < 2 or not all(-180 <= c[0] <= 180 and -90 <= c[1] <= 90 for c in coords):
            raise Reject(400, f"line {index}: LineString needs >= 2 lon/lat positions")


def _check_cooperative(coop: Any, index: int) -> None:
    meta, f = (coop or {}).get("meta") or {}, (coop or {}).get("file") or {}
    if meta.get("version") != 2 or meta.get("type") != 2:
        raise Reject(400, f"line {index}: cooperativeWork meta must be version 2, type 2 (change file)")
    if (f.get("type"), f.get("format"), f.get("encoding")) != ("xml", "osc", "base64"):
        raise Reject(400, f"line {index}: cooperativeWork file must be xml / osc / base64")
    try:
        root = ET.fromstring(base64.b64decode(f.get("content", ""), validate=True))
    except Exception as exc:  # bad base64 or bad XML: both are refused
        raise Reject(400, f"line {index}: cooperativeWork content is not base64 osmChange XML ({exc})") from None
    if root.tag != "osmChange" or root.find("create") is None:
        raise Reject(400, f"line {index}: cooperativeWork content is not an osmChange with <create>")
