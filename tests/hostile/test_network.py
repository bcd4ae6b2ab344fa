"""Hostile and broken servers on 127.0.0.1: the MapRoulette key never leaves its host and is never
shown, every wait follows the one retry policy (Retry-After in seconds or as a date, capped
backoff with jitter, a bounded number of tries), and a malformed answer is one clear line, not
a traceback. MapRoulette runs through the CLI in-process against tests/fake_maproulette.py;
Overpass and tile servers are scripted servers. Every wait is recorded by an injected sleep, so
the suite does not actually wait.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import html
import io
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from osmgap.cli import main
from osmgap.core.aoi import load_aoi
from osmgap.core.http import (
    USER_AGENT,
    HttpClient,
    Refused,
    Retryable,
    RetryPolicy,
    retry_after_seconds,
    server_text,
)
from osmgap.core.http import Response as HttpResponse
from osmgap.core.secrets import redact
from osmgap.errors import InputError, ServiceError
from osmgap.export.report import osm_as_of
from osmgap.maproulette.api import EXTRACT_HEADER, MapRouletteClient, TransientError
from osmgap.maproulette.config import MapRouletteConfig
from osmgap.sources import overpass, tile_fetcher, xyz
from osmgap.sources.imagery import check_resolution
from osmgap.sources.overpass import load_overpass, overpass_cache_path, overpass_query
from osmgap.sources.tile_fetcher import TileFetcher, XyzOptions
from tests.fake_maproulette import EXTRACT_COLUMNS, FakeMapRoulette
from tests.hostile.test_arguments import snapshot
from tests.loopback import LoopbackServer
from tests.sample_outputs import sample_ways, write_outputs
from tests.tileserver import kept_body

# A key with characters that URL, HTML and JSON quoting change; "K3y" marks it in any quoting.
KEY = 'mr-K3y+/=&<x>"~9'
MARK = "K3y"
CHALLENGE = "osmgap hostile"
OVERPASS_FIXTURE = Path(__file__).parent.parent / "data" / "overpass_west_oakland.json"
OVERPASS_BBOX = "-122.3040,37.8035,-122.2975,37.8085"


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def fake():
    with FakeMapRoulette(api_key=KEY) as server:
        yield server
    assert not server.violations, server.violations


@pytest.fixture
def other():
    """Another origin (another port of this machine): whatever reaches it is recorded."""
    with FakeMapRoulette(api_key="not-the-key") as server:
        yield server


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MAPROULETTE_API_URL", raising=False)
    monkeypatch.setenv("MAPROULETTE_API_KEY", KEY)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Every sleep of the retry policy, recorded instead of slept."""
    seen: list[float] = []
    monkeypatch.setattr(time, "sleep", seen.append)
    return seen


@pytest.fixture
def published(fake, data, tmp_path) -> Path:
    """A diff output folder published once: the state knows its challenge."""
    out = tmp_path / "ws" / "run"
    write_outputs(out, sample_ways(data)[:3])
    assert publish(fake, out) == 0
    return out


def publish(fake, out: Path, *extra: str) -> int:
    return main(["publish", "--out", str(out), "--challenge", CHALLENGE, "--project", "1", "--api-url", fake.url,
                 *extra])


def sync(fake, out: Path, *extra: str) -> int:
    return main(["sync", "--out", str(out), "--api-url", fake.url, *extra])


def no_key_anywhere(*texts: str, folder: Path | None = None) -> None:
    """The key, in any quoting, is in no text and no file under ``folder``."""
    for text in texts:
        assert MARK not in text and urllib.parse.quote(KEY) not in text
    for p in (folder.rglob("*") if folder else ()):
        if p.is_file():
            assert MARK.encode() not in p.read_bytes(), p


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


# --- the key never goes to another host ---------------------------------------------------

REDIRECT_TARGETS = [
    (301, "other"), (302, "other"), (303, "other"), (307, "other"), (308, "other"),
    (302, "localhost"),  # the same port under another host name
    (307, "https"),  # the same host and port under another scheme
    (302, "backslash"), (307, "backslash"),  # the other host to urllib3, this one to urllib.parse
]


@pytest.mark.parametrize("status,where", REDIRECT_TARGETS)
def test_a_redirect_to_another_origin_is_refused_and_the_key_stays_home(fake, other, published, capsys, caplog,
                                                                         status, where):
    caplog.set_level(logging.DEBUG)
    port = urllib.parse.urlsplit(fake.url).port
    target = {"other": other.url + "/project/1", "localhost": f"http://localhost:{port}/api/v2/project/1",
              "https": f"https://127.0.0.1:{port}/api/v2/project/1",
              "backslash": f"{other.url.split('/api')[0]}\\@127.0.0.1:{port}/api/v2/project/1"}[where]
    before = snapshot(published.parent)
    capsys.readouterr()
    n = len(fake.log)
    fake.faults = [("redirect", (status, target))]
    assert publish(fake, published) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith(f"osmgap: error: {fake.url}:") and "redirected" in line and "did not follow" in line
    assert other.log == []  # the other host never saw a request, let alone the key
    assert len(fake.log) == n + 1 and fake.log[-1]["headers"]["apikey"] == KEY  # home did see it
    no_key_anywhere(out, err, caplog.text, folder=published.parent)
    assert snapshot(published.parent) == before


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_within_the_api_host_is_followed_with_the_key(fake, published, status):
    n = len(fake.log)
    fake.faults = [("redirect", (status, "/api/v2/project/1"))]  # a relative Location, same origin
    assert publish(fake, published) == 0
    assert [r["path"] for r in fake.log[n:n + 2]] == ["/api/v2/project/1"] * 2
    assert all(r["headers"]["apikey"] == KEY for r in fake.log[n:])


def test_an_endless_redirect_loop_is_bounded(fake, published, capsys):
    n = len(fake.log)
    capsys.readouterr()
    fake.faults = [("redirect", (302, fake.url + "/project/1"))] * 50
    assert publish(fake, published) == 2
    assert "more than 5 redirects" in one_error_line(capsys.readouterr().err)
    assert len(fake.log) - n == 6  # the first request and 5 redirects


# --- the key is never shown ---------------------------------------------------------------

@pytest.mark.parametrize("form", ["html", "json", "url", "entity"])
@pytest.mark.parametrize("status", [400, 500])
def test_an_error_page_that_echoes_the_key_is_redacted(fake, published, capsys, caplog, waits, status, form):
    """A proxy's error page that shows the request's headers, in four quotings; -v logs too."""
    caplog.set_level(logging.DEBUG)
    before = snapshot(published.parent)
    capsys.readouterr()
    fake.faults = [("echo", (status, form))] * 3
    assert main(["-v", "sync", "--out", str(published), "--api-url", fake.url, "--retries", "2"]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # errors go to stderr, never stdout
    last = err.strip().splitlines()[-1]
    assert last.startswith("osmgap: error: MapRoulette: HTTP") and "***" in last  # the page is quoted, masked
    assert len(waits) == (2 if status == 500 else 0)
    no_key_anywhere(out, err, caplog.text, folder=published.parent)
    assert snapshot(published.parent) == before


def test_a_200_page_that_echoes_the_key_is_a_redacted_one_line_error(fake, published, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    fake.faults = [("echo", (200, "html"))]
    assert main(["-v", "publish", "--out", str(published), "--challenge", CHALLENGE, "--project", "1",
                 "--api-url", fake.url]) == 2
    out, err = capsys.readouterr()
    assert "is not JSON" in err and "***" in err
    no_key_anywhere(out, err, caplog.text, folder=published.parent)


@pytest.mark.parametrize("verb", ["publish", "sync"])
def test_a_dry_run_writes_no_key(fake, published, capsys, caplog, verb):
    caplog.set_level(logging.DEBUG)
    n = len(fake.log)
    assert (publish if verb == "publish" else sync)(fake, published, "--dry-run") == 0
    out, err = capsys.readouterr()
    assert len(fake.log) == n  # nothing sent
    files = list((published / "maproulette-dry-run" / verb).iterdir())
    assert files
    no_key_anywhere(out, err, caplog.text, folder=published.parent)


@pytest.mark.parametrize("config,source", [
    ('api_key = "abc K3y def"\n', "maproulette.toml"),  # a space inside
    ('api_key = "abcK3y\\ndef"\n', "maproulette.toml"),  # a line break inside: requests would quote it
    ('api_key = "abcK3y\\u00e9"\n', "maproulette.toml"),  # beyond ASCII: no header can carry it
])
def test_a_key_no_header_can_carry_is_refused_without_showing_it(fake, published, tmp_path, monkeypatch, capsys,
                                                                    config, source):
    monkeypatch.delenv("MAPROULETTE_API_KEY")
    path = tmp_path / "maproulette.toml"
    path.write_text(config)
    path.chmod(0o600)
    capsys.readouterr()
    n = len(fake.log)
    assert publish(fake, published, "--config", str(path)) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert source in line and "API key" in line
    assert MARK not in out + err and len(fake.log) == n


@pytest.mark.parametrize("url", ["http://user:K3ypass@127.0.0.1:9/api/v2", "http://127.0.0.1:9/api/v2?apiKey=K3y",
                                 "ftp://127.0.0.1/api/v2", "http://127.0.0.1:99999/api/v2"])
def test_an_api_url_that_would_carry_secrets_or_is_no_http_url_is_refused(published, capsys, url):
    capsys.readouterr()
    assert main(["publish", "--out", str(published), "--challenge", CHALLENGE, "--project", "1",
                 "--api-url", url]) == 2
    out, err = capsys.readouterr()
    assert one_error_line(err).startswith("osmgap: error: --api-url: the MapRoulette API URL")
    assert MARK not in out + err


# --- Retry-After, backoff, bounds (the client, with an injected sleep) -----------------------

def _client(fake, **policy: Any) -> tuple[MapRouletteClient, list[float]]:
    seen: list[float] = []
    policy = {"retries": 3, "backoff_s": 0.01, "jitter": 0.0, **policy}
    client = MapRouletteClient(MapRouletteConfig(fake.url, KEY, "test"), policy=RetryPolicy(**policy),
                               sleep=seen.append, timeout=(2.0, 2.0))
    return client, seen


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize("status,retry_after,low,high", [
    (429, "7", 7.0, 7.0),
    (503, "3", 3.0, 3.0),
    (429, "date+5", 3.5, 5.0),  # HTTP dates count whole seconds
    (503, "date+12", 10.5, 12.0),
    (429, "date-30", 0.01, 0.01),  # a date in the past: the backoff applies
    (429, "soon", 0.01, 0.01),  # unreadable: the backoff applies
])
def test_retry_after_is_honoured_in_seconds_and_as_a_date(fake, status, retry_after, low, high):
    client, seen = _client(fake)
    value = _http_date(float(retry_after[4:])) if retry_after.startswith("date") else retry_after
    fake.faults = [("raw", (status, {"Retry-After": value}, b""))]
    assert client.project(1)["id"] == 1
    assert len(seen) == 1 and low <= seen[0] <= high, seen
    assert len(fake.log) == 2


@pytest.mark.parametrize("retry_after", ["3600", "date+3600"])
def test_a_retry_after_beyond_the_cap_gives_up_at_once(fake, retry_after):
    client, seen = _client(fake, max_retry_after_s=300.0)
    value = _http_date(3600) if retry_after.startswith("date") else retry_after
    fake.faults = [("raw", (429, {"Retry-After": value}, b""))] * 5
    with pytest.raises(TransientError, match=r"asks to wait 3\d{3} s, more than the 300 s"):
        client.project(1)
    assert seen == [] and len(fake.log) == 1  # not hammered early either


def test_endless_5xx_is_bounded_with_capped_jittered_backoff(fake):
    client, seen = _client(fake, retries=6, backoff_s=1.0, max_backoff_s=4.0, jitter=0.5)
    client.rand = lambda: 0.5
    fake.faults = [("status:503", 0)] * 100
    with pytest.raises(TransientError, match="gave up after 7 attempts"):
        client.project(1)
    assert len(fake.log) == 7
    assert seen == [0.75, 1.5, 3.0, 3.0, 3.0, 3.0]  # 1, 2, 4, 4, 4, 4 (capped), each less a quarter


def test_every_request_carries_the_one_user_agent(fake, published):
    assert fake.log and {r["headers"]["user-agent"] for r in fake.log} == {USER_AGENT}
    assert USER_AGENT.startswith("osmgap/") and "(+http" in USER_AGENT


# --- malformed MapRoulette answers: one line naming the server, exit 2, state untouched ------

def _csv(*rows: list[str], columns: list[str] = EXTRACT_COLUMNS) -> bytes:
    return ("\n".join(",".join(r) for r in [columns, *rows]) + "\n").encode()


ROW = ["1001", "link", "1001", "", "osmgap-x", "LineString", "Created", "High"] + [""] * 12
MALFORMED = [  # (verb, requests answered normally first, answer, words in the message)
    ("publish", 0, (200, {"Content-Type": "text/html"}, b"<html><body>MapRoulette</body></html>"), "is not JSON"),
    ("publish", 0, (200, {"Content-Type": "application/json"}, b'{"id": 1,'), "is not JSON"),
    ("publish", 0, (200, {"Content-Type": "application/json"}, b"[1, 2]"), "is a JSON list"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"name": "x"}'), "no usable challenge id"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"id": "1001"}'), "no usable challenge id"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"id": 1e30}'), "no usable challenge id"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"id": 100000000000000000000}'),
     "no usable challenge id"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"id": true}'), "no usable challenge id"),
    ("publish", 1, (200, {"Content-Type": "application/json"}, b'{"id": 7, "name": "another", "parent": 1}'),
     "is challenge 'another' of project 1"),  # found under our name, yet another's: its tasks would be replaced
    ("sync", 0, (200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html>login</html>"), "lacks the column"),
    ("sync", 0, (200, {}, _csv(["1", "a"], columns=["TaskID", "Name"])), "lacks the column(s) ChallengeID"),
    ("sync", 0, (200, {}, _csv(["1001", "link"])), "too few columns"),
    ("sync", 0, (200, {}, _csv(ROW) + b"\xff\xfe\x00"), "not UTF-8"),
    ("sync", 0, (200, {}, _csv(ROW[:6] + ["Exploded"] + ROW[7:])), "unknown task status 'Exploded'"),
    ("sync", 0, (200, {}, _csv(ROW[:6] + ["\u00b2"] + ROW[7:])), "unknown task status '\u00b2'"),  # isdigit(), no int
    ("sync", 0, (200, {}, _csv(ROW[:6] + ["999"] + ROW[7:])), "unknown task status '999'"),
    ("sync", 0, (200, {}, _csv(["abc"] + ROW[1:])), "TaskID 'abc'"),
    ("sync", 0, (200, {}, _csv(["1" * 30] + ROW[1:])), "not an id"),
    ("sync", 0, (200, {}, _csv(ROW[:2] + ["77"] + ROW[3:])), "task of challenge 77"),
]


@pytest.mark.parametrize("verb,skip,answer,words", MALFORMED)
def test_a_malformed_answer_is_one_line_and_changes_nothing(fake, published, capsys, verb, skip, answer, words):
    before = snapshot(published.parent)
    capsys.readouterr()
    n = len(fake.log)
    if verb == "publish":  # the challenge looked up by name must be the published one
        fake.faults = [("pass", 0)] * skip + [("raw", answer)]
        assert publish(fake, published) == 2
    else:
        fake.faults = [("raw", answer)]
        assert sync(fake, published) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert line.startswith(f"osmgap: error: {fake.url}: the answer to GET /") and words in line, line
    assert "is this a MapRoulette API v2 URL?" in line
    assert all(r["method"] == "GET" for r in fake.log[n:])  # nothing was written on the server
    assert snapshot(published.parent) == before


# --- Overpass ------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False  # Content-Length promises more than is sent


class ScriptedServer:
    """Answers each request with the next scripted answer (the last one for ever) and records
    method, path, headers and body; ``/elsewhere/...`` answers ``elsewhere`` instead."""

    def __init__(self, answers: list[Answer], elsewhere: Answer | None = None):
        self.answers, self.elsewhere = list(answers), elsewhere
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None: server._answer(self)
            def do_POST(self) -> None: server._answer(self)
            def log_message(self, *args: Any) -> None: pass

        self._loopback = LoopbackServer(Handler)
        self.url = self._loopback.origin

    def __enter__(self) -> ScriptedServer:
        self._loopback.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loopback.stop()

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        self.requests.append({"method": h.command, "path": h.path, "body": body,
                              "headers": {k.lower(): v for k, v in h.headers.items()}})
        if h.path.startswith("/elsewhere/") and self.elsewhere:
            a = self.elsewhere
        else:
            a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        h.send_response(a.status)
        for k, v in a.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(a.body) * (2 if a.truncate else 1)))
        h.end_headers()
        h.wfile.write(a.body)
        if a.truncate:
            h.close_connection = True


OVERPASS_OK = Answer(200, OVERPASS_FIXTURE.read_bytes(), {"Content-Type": "application/json"})
REMARK = Answer(200, b'{"version": 0.6, "elements": [], "remark": "runtime error: Query timed out in \\"query\\""}',
                {"Content-Type": "application/json"})
HTML_BUSY = Answer(200, b"<html><body><p>rate_limited</p></body></html>", {"Content-Type": "text/html"})


@pytest.mark.parametrize("first,low,high", [
    (Answer(429, b"", {"Retry-After": "30"}), 30.0, 30.0),  # longer than the backoff: waited in full
    (Answer(503, b"", {"Retry-After": "date+9"}), 7.5, 9.0),
    (Answer(504, b"<html>Gateway Timeout</html>"), 2.5, 5.0),  # the backoff: 5 s less up to half
    (REMARK, 2.5, 5.0),
    (HTML_BUSY, 2.5, 5.0),
    (Answer(200, OVERPASS_FIXTURE.read_bytes()[:5000], truncate=True), 2.5, 5.0),
])
def test_overpass_faults_are_waited_out_then_the_answer_is_cached(tmp_path, waits, first, low, high):
    if first.headers.get("Retry-After", "").startswith("date+"):
        first.headers["Retry-After"] = _http_date(float(first.headers["Retry-After"][5:]))
    aoi = load_aoi(OVERPASS_BBOX)
    with ScriptedServer([first, OVERPASS_OK]) as server:
        net = load_overpass(aoi, tmp_path, url=server.url + "/api/interpreter")
    assert len(net) > 0 and len(server.requests) == 2
    assert len(waits) == 1 and low <= waits[0] <= high, waits
    sent = server.requests[1]
    assert sent["method"] == "POST" and sent["headers"]["user-agent"] == USER_AGENT
    assert urllib.parse.parse_qs(sent["body"].decode())["data"] == [overpass_query(aoi)]
    cache = overpass_cache_path(overpass_query(aoi), tmp_path, server.url + "/api/interpreter")
    assert cache.read_bytes() == OVERPASS_OK.body


def _overpass_edited(edit: Any) -> Answer:
    doc = json.loads(OVERPASS_FIXTURE.read_bytes())
    edit(doc)
    return Answer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def _drop_a_ways_node(doc: dict) -> None:
    first_way = next(e for e in doc["elements"] if e["type"] == "way")
    doc["elements"] = [e for e in doc["elements"] if not (e["type"] == "node" and e["id"] == first_way["nodes"][0])]


def _null_latitude(doc: dict) -> None:
    next(e for e in doc["elements"] if e["type"] == "node")["lat"] = None


@pytest.mark.parametrize("garbled", [_drop_a_ways_node, _null_latitude])
def test_an_overpass_answer_whose_roads_cannot_be_built_is_asked_again_never_cached(tmp_path, waits, garbled):
    """It parsed, so it was cached, and every later run failed from the cache without asking
    again (a way whose node is missing: exit 2; a null latitude: an internal error)."""
    aoi = load_aoi(OVERPASS_BBOX)
    with ScriptedServer([_overpass_edited(garbled), OVERPASS_OK]) as server:
        net = load_overpass(aoi, tmp_path, url=server.url + "/api/interpreter")
    assert len(net) > 0 and len(server.requests) == 2 and len(waits) == 1
    cache = overpass_cache_path(overpass_query(aoi), tmp_path, server.url + "/api/interpreter")
    assert cache.read_bytes() == OVERPASS_OK.body


@pytest.mark.parametrize("answer,requests,words,error", [
    (Answer(503, b"busy"), 4, "failed 4 times, last: HTTP 503 on Overpass: busy", ServiceError),
    (HTML_BUSY, 4, "failed 4 times, last: ValueError", ServiceError),
    (REMARK, 4, "failed 4 times, last: OverpassRuntimeError: runtime error: Query timed out", ServiceError),
    (Answer(400, b"<html><p><strong>Error</strong>: line 1: parse error: ';' expected</p></html>"), 1,
     "Overpass rejected the query (Error : line 1: parse error: ';' expected)", InputError),
    (Answer(429, b"", {"Retry-After": "3600"}), 1, "asks to wait 3600 s, more than the 600 s", ServiceError),
    (Answer(418, b"teapot"), 1, "answered HTTP 418: teapot", InputError),
])
def test_overpass_that_keeps_failing_is_one_error_and_nothing_is_cached(tmp_path, waits, answer, requests, words,
                                                                         error):
    """A server that stays down is a ServiceError (exit 1, as MapRoulette's); a query it rejects
    or an answer no Overpass gives points at the user's setup (exit 2)."""
    with ScriptedServer([answer]) as server, pytest.raises(error) as err:
        load_overpass(load_aoi(OVERPASS_BBOX), tmp_path, url=server.url + "/api/interpreter")
    assert "overpass" in str(err.value) and words in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    assert len(server.requests) == requests and len(waits) == requests - 1
    assert all(w <= overpass.OVERPASS_POLICY.max_backoff_s for w in waits)
    assert not list(tmp_path.rglob("*.json"))


# --- tile servers ----------------------------------------------------------------------------

def _png(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(buf, format="PNG")
    return buf.getvalue()


TILE = Answer(200, _png(), {"Content-Type": "image/png"})


def _fetch(server: ScriptedServer, tmp: Path, **kw: Any):
    options = XyzOptions(server.url + "/{z}/{x}/{y}.png", 18, cache_dir=tmp / "cache",
                         **{"backoff_s": 1.0, "timeout_s": 5.0, "retries": 3, **kw})
    return TileFetcher(options).get(18, 132_000, 90_000)


@pytest.mark.parametrize("first,low,high", [
    (Answer(429, b"", {"Retry-After": "2"}), 2.0, 2.0),
    (Answer(429, b"", {"Retry-After": "date+6"}), 4.5, 6.0),
    (Answer(503, b"<h1>down</h1>"), 0.5, 1.0),
    (Answer(200, b"GIF89a-not-really", {"Content-Type": "image/png"}), 0.5, 1.0),
    (Answer(200, _png()[:300], truncate=True), 0.5, 1.0),
])
def test_tile_faults_are_waited_out(tmp_path, waits, first, low, high):
    if first.headers.get("Retry-After", "").startswith("date+"):
        first.headers["Retry-After"] = _http_date(float(first.headers["Retry-After"][5:]))
    with ScriptedServer([first, TILE]) as server:
        rgb = _fetch(server, tmp_path)
    assert rgb.shape == (4, 256, 256) and rgb[0].mean() == 200 and (rgb[3] == 255).all()  # RGBA, opaque
    assert len(waits) == 1 and low <= waits[0] <= high, waits
    assert {r["headers"]["user-agent"] for r in server.requests} == {USER_AGENT}
    cached = list((tmp_path / "cache").rglob("*.tile"))
    assert len(cached) == 1 and kept_body(cached[0]) == TILE.body


@pytest.mark.parametrize("answer,requests,words,error", [
    (Answer(500, b"oops"), 4, "tile server failed 4 times, last: HTTP 500 on GET tile: oops", ServiceError),
    (Answer(200, b"\x89PNG\r\n\x1a\n garbage"), 4, "last: corrupt or truncated tile", ServiceError),
    (Answer(429, b"", {"Retry-After": "9999"}), 1, "asks to wait 9999 s, more than the 120 s", ServiceError),
    (Answer(410, b"gone"), 1, "tile server answered HTTP 410", InputError),
    (Answer(200, b"x" * 300_000), 1, "larger than 0 MiB", ServiceError),  # over a cap lowered to 64 KiB for the test
])
def test_tile_servers_that_keep_failing_are_one_error(tmp_path, waits, monkeypatch, answer, requests, words, error):
    """A server that answers and keeps failing is the server's failure (exit 1); a status that
    says the URL is wrong, the user's (exit 2)."""
    monkeypatch.setattr(tile_fetcher, "MAX_TILE_BYTES", 64 * 1024)
    with ScriptedServer([answer]) as server, pytest.raises(error) as err:
        _fetch(server, tmp_path)
    assert str(err.value).startswith(server.url) and words in str(err.value), str(err.value)
    assert len(server.requests) == requests and len(waits) == requests - 1
    assert not list((tmp_path / "cache").rglob("*.tile"))


def _keyed_fetch(origin: str, tmp: Path):
    options = XyzOptions(f"http://user:pa55word@{origin.split('://', 1)[1]}/{{z}}/{{x}}/{{y}}.png"
                         "?style=dark&access_token=SEKRIT123", 18, cache_dir=tmp / "cache", backoff_s=0.01,
                         timeout_s=2.0, retries=1)
    with pytest.raises((InputError, ServiceError)) as err:
        TileFetcher(options).get(18, 132_000, 90_000)
    return str(err.value)


@pytest.mark.parametrize("answer", [Answer(500, b"oops"), Answer(403, b"denied"), None])  # None: nobody listens
def test_a_key_in_a_tile_url_is_in_no_message(tmp_path, waits, answer):
    """Tile URL templates often carry a key (``?access_token=``); error lines quote the URL."""
    if answer is None:
        with ScriptedServer([TILE]) as closed:
            origin = closed.url
        text = _keyed_fetch(origin, tmp_path)  # connection refused: requests' message holds the URL
    else:
        with ScriptedServer([answer]) as server:
            text = _keyed_fetch(server.url, tmp_path)
    assert "SEKRIT123" not in text and "pa55word" not in text and "style=dark" in text, text


def test_the_summary_names_a_tile_url_without_its_key():
    from osmgap.core.secrets import public_url

    shown = public_url("https://tiles.example.com/{z}/{x}/{y}.jpg?apikey=K1&sig=S2&layer=a")
    assert shown == "https://tiles.example.com/{z}/{x}/{y}.jpg?apikey=***&sig=***&layer=a"


def test_a_tile_server_may_redirect_to_a_cdn_without_secrets(tmp_path, waits):
    with ScriptedServer([TILE]) as cdn, ScriptedServer([Answer(302, b"", {"Location": cdn.url + "/t.png"})]) as front:
        rgb = _fetch(front, tmp_path)
    assert rgb.shape == (4, 256, 256) and len(cdn.requests) == 1 and waits == []


# --- the helpers themselves ----------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    ("0", 0.0), ("120", 120.0), ("1.5", 1.5), (" 30 ", 30.0), ("-5", None), ("soon", None), ("nan", None),
    ("inf", None), ("", None), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
    ("Thu, 01 Jan 2099 00:00:00 GMT", "future"),
])
def test_retry_after_values(value, expected):
    got = retry_after_seconds(value)
    if expected == "future":
        assert got is not None and got > 365 * 86400
    else:
        assert got == expected


@pytest.mark.parametrize("quoted", [KEY, urllib.parse.quote(KEY, safe=""), urllib.parse.quote_plus(KEY),
                                    html.escape(KEY), json.dumps(KEY)[1:-1]])
def test_redact_masks_the_key_in_every_quoting(quoted):
    text = f"<p>apiKey: {quoted}</p>"
    assert redact(text, [KEY]) == "<p>apiKey: ***</p>"
    said = server_text(HttpResponse(500, text.encode() + b"\x1b[2J\x07"), [KEY])
    assert said == "apiKey: ***" and MARK not in said


OVERPASS_429 = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
<head>
  <meta http-equiv="content-type" content="text/html; charset=utf-8" lang="en"/>
  <title>OSM3S Response</title>
</head>
<body>

<p>The data included in this document is from www.openstreetmap.org. The data is made available under ODbL.</p>
<p><strong style="color:#FF0000">Error</strong>: runtime error: open64: 0 Success /osm3s_osm_base \
Dispatcher_Client::request_read_and_idx::rate_limited. Please check /api/status for the quota of your IP address. </p>

</body>
</html>
"""


def test_an_overpass_error_page_says_its_error_not_its_boilerplate():
    """Overpass's error pages (its 429 as served) open with a title and the ODbL notice: the
    message's 200 characters were cut before the error, which says what to do."""
    said = server_text(HttpResponse(429, OVERPASS_429))
    assert said.startswith("Error : runtime error") and said.endswith("the quota of your IP address.")
    assert server_text(HttpResponse(500, b"<p>no error word here</p>")) == "no error word here"


# --- answers no server should give (audit, stop 46) ---------------------------------------------

def test_an_error_page_of_deeply_nested_json_is_one_line_not_an_internal_error(tmp_path, waits):
    deep = b"[" * 200_000 + b"]" * 200_000
    with ScriptedServer([Answer(503, deep)]) as server, pytest.raises(ServiceError) as err:
        _fetch(server, tmp_path)
    assert "HTTP 503 on GET tile" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="nested too deeply"):
        HttpResponse(200, deep).json()


@pytest.mark.parametrize("location", ["http://[::1/api/v2/project/1", "http://tiles example.com/1.png"])
def test_a_redirect_to_no_url_is_refused(location):
    """requests reads a redirect's Location even when not following it: a ValueError (an
    internal error) for one that is no URL."""
    with ScriptedServer([Answer(302, b"", {"Location": location})]) as server, pytest.raises(Refused, match="no URL"):
        HttpClient().send("GET", server.url + "/x")  # no secret: the ambiguity test does not come first


def test_a_tile_url_with_no_port_number_is_bad_input_and_keeps_its_key(tmp_path):
    options = XyzOptions("http://127.0.0.1:99999/{z}/{x}/{y}.png?access_token=SEKRIT123", 18, cache_dir=tmp_path)
    with pytest.raises(InputError, match="port is not a number") as err:
        xyz.open_xyz(options, load_aoi(OVERPASS_BBOX).geometry)
    assert "SEKRIT123" not in str(err.value)


def _tile_png(mode: str, size: int, colour: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def _two_colour_png(size: int) -> bytes:
    img = Image.new("RGB", (size, size), (10, 20, 30))
    img.putpixel((0, 0), (200, 40, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("body,error,words", [
    (_tile_png("RGBA", 256, (0, 0, 0, 0)), InputError, "is blank"),  # the usual "no coverage" tile
    (_tile_png("RGB", 256, (255, 255, 255)), InputError, "is blank"),  # one colour, opaque
    (_tile_png("RGB", 3000, (10, 20, 30)), ServiceError, "larger than tile servers send"),  # 9 KB, 27 MB decoded
    (_tile_png("I;16", 256, 4095), InputError, "16-bit or float grey"),  # was clipped to white
    (_two_colour_png(2), InputError, "coarser than the model's"),  # 2 px tiles: ~40 m a pixel, not zoom 18's 0.4
])
def test_tiles_that_are_no_imagery_are_refused(tmp_path, waits, body, error, words):
    """Transparent or one-colour tiles were read as imagery showing no road (exit 0, and a later
    run marked every suggestion fixed); a tiny file decoding to a huge image took gigabytes."""
    options = XyzOptions("{}/{{z}}/{{x}}/{{y}}.png", 18, cache_dir=tmp_path, retries=1, backoff_s=0.01)
    with ScriptedServer([Answer(200, body, {"Content-Type": "image/png"})]) as server, pytest.raises(error, match=words):
        imagery = xyz.open_xyz(replace(options, url=options.url.format(server.url)), load_aoi(OVERPASS_BBOX).geometry)
        check_resolution(imagery, 1.0)


def test_a_partly_transparent_tile_is_imagery_only_where_opaque():
    img = Image.new("RGBA", (256, 256), (90, 90, 90, 255))
    for x in range(128):
        for y in range(256):
            img.putpixel((x, y), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    rgba = tile_fetcher.decode_tile(buf.getvalue())
    assert rgba.shape == (4, 256, 256) and (rgba[3][:, :128] == 0).all() and (rgba[3][:, 128:] == 255).all()


def test_a_server_that_trickles_its_answer_is_cut_at_a_deadline():
    """The read timeout bounds each wait for a byte: a byte a second under a 0.5 s timeout held
    osmgap as long as the server liked (20 s for 20 bytes; forever for a longer answer)."""
    import time as clock
    from http.server import BaseHTTPRequestHandler

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.end_headers()
            for _ in range(40):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:  # osmgap hung up, as it should: no traceback into a later test's stderr
                    return
                clock.sleep(0.3)

    _is_cut_within_the_deadline(Trickle)  # 40 bytes would take 12 s


def _is_cut_within_the_deadline(handler: type) -> None:
    """A 0.5 s read timeout, 4 of them for the whole answer: the trickle is cut at 2 s."""
    server = LoopbackServer(handler)
    server.start()
    try:
        started = time.monotonic()
        with pytest.raises(Retryable, match="no whole answer within 2 s"):
            HttpClient(timeout=(1.0, 0.5), read_factor=4.0).send("GET", server.origin + "/slow")
        assert time.monotonic() - started < 6.0
    finally:
        server.stop()


SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"." * 30 + b"\r\n\r\nok"  # 73 bytes


class HeadTrickle(BaseHTTPRequestHandler):
    """``/slow``: the status line and headers a byte every 0.3 s (22 s in all); anything else a
    prompt answer, on a connection kept alive."""

    protocol_version = "HTTP/1.1"
    ports: list[int] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/slow":
            self.ports.append(self.client_address[1])
            time.sleep(0.1)  # so a request is in flight most of the time
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"fast")
            return
        self.close_connection = True
        for byte in SLOW_HEAD:
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # osmgap hung up, as it should: no traceback into a later test's stderr
                return
            time.sleep(0.3)


def test_a_server_that_trickles_its_status_line_and_headers_is_cut_at_the_same_deadline():
    """The deadline started once the headers were in: a byte every 0.3 s under a 0.5 s read
    timeout held osmgap through the status line and headers for as long as the server liked."""
    _is_cut_within_the_deadline(HeadTrickle)  # the head alone takes 22 s


def test_the_deadline_cuts_only_its_own_attempts_socket():
    """Tile fetches share one client (one pool) between threads: the trickling request is cut,
    the prompt ones in flight beside it on the same client all succeed, and reuse their connection."""
    from concurrent.futures import ThreadPoolExecutor

    HeadTrickle.ports = []
    server = LoopbackServer(HeadTrickle)
    server.start()
    client = HttpClient(timeout=(1.0, 0.5), read_factor=4.0)

    def prompt() -> list[bytes]:
        until = time.monotonic() + 3.5  # past the slow one's deadline (2 s)
        bodies = []
        while time.monotonic() < until:
            bodies.append(client.send("GET", server.origin + "/fast").body)
        return bodies

    try:
        with ThreadPoolExecutor(2) as pool:
            slow = pool.submit(client.send, "GET", server.origin + "/slow")
            fast = pool.submit(prompt)
            with pytest.raises(Retryable, match="no whole answer within 2 s"):
                slow.result(timeout=10)
            bodies = fast.result(timeout=10)
    finally:
        server.stop()
    assert len(bodies) >= 10 and set(bodies) == {b"fast"}
    assert len(set(HeadTrickle.ports)) <= 2  # kept alive (a second one after the cut attempt left its pool slot)


def test_a_compressed_answer_cut_short_is_truncated_not_whole():
    """A gzip stream whose end never came (the connection closed after two of three CSV rows)
    was read as the whole extract: a reviewer's verdict on the third task was lost."""
    import gzip
    import zlib

    text = b"TaskID,ChallengeID\n" + b"".join(b"%d,1001\n" % i for i in range(1, 4000))
    whole = gzip.compress(text)
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    cut = co.compress(text[: len(text) // 2]) + co.flush(zlib.Z_SYNC_FLUSH)  # decodes, but has no end
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/csv"}
    with ScriptedServer([Answer(200, whole, headers)]) as server:
        assert HttpClient().send("GET", server.url + "/x").body == text
    with ScriptedServer([Answer(200, cut, headers)]) as server, pytest.raises(Retryable, match="stream ends early"):
        HttpClient().send("GET", server.url + "/x")
    with ScriptedServer([Answer(200, b"\x1f\x8b\x08garbage" * 10, headers)]) as server, \
            pytest.raises(Retryable, match="does not decode"):
        HttpClient().send("GET", server.url + "/x")


def test_an_overpass_answer_is_reused_the_same_day_and_asked_again_a_week_later(tmp_path, waits):
    """The cache answered the same query for ever: a weekly run diffed against the OSM of its first
    week, so roads mapped since stayed "missing" and went out to MapRoulette again."""
    import os

    aoi = load_aoi(OVERPASS_BBOX)
    week_later = _overpass_edited(lambda doc: doc["elements"].remove(next(e for e in doc["elements"]
                                                                          if e["type"] == "way")))
    with ScriptedServer([OVERPASS_OK, week_later]) as server:
        url = server.url + "/api/interpreter"
        first = load_overpass(aoi, tmp_path, url=url)
        again = load_overpass(aoi, tmp_path, url=url)  # an hour later, say: from the cache
        assert len(server.requests) == 1 and len(again) == len(first)
        cache = overpass_cache_path(overpass_query(aoi), tmp_path, url)
        week_ago = time.time() - 7 * 86400
        os.utime(cache, (week_ago, week_ago))
        assert first.provenance["fetched"][:10] == time.strftime("%Y-%m-%d", time.gmtime())
        assert first.provenance["extract_time"] == "2024-05-01T12:00:00Z"  # its osm3s.timestamp_osm_base
        xml_head = b'<?xml version="1.0"?>\n<osm version="0.6" generator="Overpass API">\n<meta osm_base="2024-05-02T08:30:00Z"/>'
        assert overpass.data_time(xml_head) == dt.datetime(2024, 5, 2, 8, 30, tzinfo=dt.timezone.utc)
        assert osm_as_of(first.provenance).startswith("OSM of the last run: Overpass, data as of 2024-05-01 12:00 UTC, "
                                                      f"fetched {time.strftime('%Y-%m-%d', time.gmtime())} ")
        later = load_overpass(aoi, tmp_path, url=url)
    assert len(server.requests) == 2 and len(later) == len(first) - 1
    assert cache.read_bytes() == week_later.body


def test_an_answer_that_echoes_the_key_into_a_quoted_value_shows_none_of_it():
    """A CSV cell or a challenge name that echoes the key is quoted cut short in the error: the
    key is masked before the cut, so not even its first characters show."""
    key = "31337|0f8fe1c4-2d5b-4a8e-9a53-a6b2d1f0e9c7"

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            said = self.headers.get("apiKey", "")
            if self.path.startswith("/api/v2/challenge/7/tasks/extract"):
                body, kind = (EXTRACT_HEADER + f"1,x,7,x,t,LineString,{said},0,,,,,,,,,,,,\n").encode(), "text/csv"
            else:
                body, kind = json.dumps({"id": 5, "name": "challenge of " + said, "parent": 1}).encode(), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = LoopbackServer(Echo)
    server.start()
    try:
        client = MapRouletteClient(MapRouletteConfig(server.origin + "/api/v2", key, "$MAPROULETTE_API_KEY"))
        for call, said in ((lambda: client.task_statuses(7), "unknown task status '***'"),
                           (lambda: client.challenge_by_name(1, "x"), "is challenge 'challenge of ***'")):
            with pytest.raises(InputError) as caught:
                call()
            assert said in str(caught.value)
            assert key[:8] not in str(caught.value)
    finally:
        server.stop()
