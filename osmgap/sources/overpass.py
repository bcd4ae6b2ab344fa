"""OSM roads of an AOI from the Overpass API: one query, a disk cache, osmgap's one retry policy.

The query asks for the road ways and parking lots in the AOI's bbox with their nodes and versions
(``out meta``), so new ways can join existing nodes. Answers are checked to be Overpass answers
(an HTML "rate limited" page would otherwise read as an empty area, every road of it missing),
cached by query for a few hours (a rerun the same day reuses the answer; a daily or weekly run
asks again, or it would diff against the OSM of its first week for ever), and a busy server is
asked again after its Retry-After or a capped backoff.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import time
from decimal import Decimal
from pathlib import Path

import overpy
import overpy.exception as opx
from shapely.geometry import LineString

from osmgap.core.aoi import Aoi
from osmgap.core.atomic import write_bytes_atomic
from osmgap.core.datamodel import RoadNetwork
from osmgap.core.http import GaveUp, HttpClient, Refused, Retryable, RetryPolicy, raise_if_retryable, retry, server_text
from osmgap.core.osmtags import EDITED_KEY, LIFECYCLE_KEYS, OTHER_LINES, ROAD_CLASSES, mapped_otherwise, way_level
from osmgap.core.secrets import public_url, url_secrets
from osmgap.errors import InputError, ServiceError, one_line
from osmgap.sources.osm_age import age_facts, iso_utc, stale_warning, utc_time
from osmgap.sources.osm_extent import check_reaches_aoi, union_bounds
from osmgap.sources.osmways import (
    Lot,
    NodeTable,
    NodeTags,
    OtherWay,
    Way,
    clip_lots,
    clip_to_aoi,
    near_other_ways,
    polygon_of_rings,
    road_network,
)

OVERPASS_URL = "https://overpass-api.de/api/interpreter"
OVERPASS_URL_ENV = "OSMGAP_OVERPASS_URL"  # another instance: a mirror, a private or a local one
OVERPASS_SPEC = "overpass"
OVERPASS_TIMEOUT_S = 180  # server-side [timeout:]; the client waits a little longer
OVERPASS_RETRIES = 3  # retries after the first attempt
OVERPASS_BACKOFF_S = 5.0  # first wait; doubles on each retry (osmgap.core.http's policy)
OVERPASS_POLICY = RetryPolicy(retries=OVERPASS_RETRIES, backoff_s=OVERPASS_BACKOFF_S, max_backoff_s=120.0,
                              max_retry_after_s=600.0)
OVERPASS_MAX_BYTES = 2 * 2**30  # a large AOI's answer is hundreds of MB; more is no Overpass answer
DEFAULT_CACHE_DIR = Path("~/.cache/osmgap/overpass")
OVERPASS_MAX_AGE_S = 6 * 3600  # a cached answer older than this is OSM as it was: asked again
OVERPASS_STALE_DAYS = 1  # Overpass lags the OSM database by minutes: data older than this is a stuck server
CACHE_NAME = re.compile(r"[0-9a-f]{64}\.json")
CACHE_TEMP_NAME = re.compile(r"[0-9a-f]{64}\.json\.\w+")  # write_bytes_atomic's ".NAME.XXXXXXXX", less the dot

log = logging.getLogger(__name__)


def overpass_url() -> str:
    """The Overpass API osmgap asks: ``$OSMGAP_OVERPASS_URL`` when set (a mirror such as
    overpass.kumi.systems, an instance of one's own: the main one limits each address to a few
    queries at a time), else the main instance. InputError for a value that is no http(s) URL."""
    url = os.environ.get(OVERPASS_URL_ENV, "").strip()
    if not url:
        return OVERPASS_URL
    if not re.match(r"https?://[^/\s]+", url):
        raise InputError(OVERPASS_URL_ENV, f"not an http(s) URL of an Overpass API: {public_url(url)[:120]!r}")
    return url


def overpass_query(aoi: Aoi, timeout_s: int = OVERPASS_TIMEOUT_S) -> str:
    """Overpass QL for the road ways and parking lots (ways and multipolygon relations) in the
    AOI's bbox, with their members, nodes and versions, and the ways mapped as something other
    than a road that may look like one (osmgap.core.osmtags.mapped_otherwise)."""
    minx, miny, maxx, maxy = aoi.bounds
    classes = "|".join(sorted(ROAD_CLASSES))
    bbox = f"({miny:.7f},{minx:.7f},{maxy:.7f},{maxx:.7f})"
    others = "".join(f' way["{key}"~"^({"|".join(sorted(values))})$"]{bbox};\n' for key, values in OTHER_LINES.items())
    others += "".join(f' way["{key}"~"^({classes})$"]{bbox};\n' for key in LIFECYCLE_KEYS)
    return (f"[out:json][timeout:{timeout_s}];\n"
            f'(way["highway"~"^({classes})$"]{bbox};\n'
            f"{others}"
            f' way["amenity"="parking"]{bbox};\n'
            f' relation["amenity"="parking"]["type"="multipolygon"]{bbox};);\n'
            "(._;>;);\nout meta;\n")


def overpass_cache_path(query: str, cache_dir: Path | None = None,
                        url: str = OVERPASS_URL) -> Path:
    """Where the response to ``query`` is cached (for OVERPASS_MAX_AGE_S)."""
    key = hashlib.sha256(f"{url}\n{query}".encode()).hexdigest()
    return Path(cache_dir or DEFAULT_CACHE_DIR).expanduser() / f"{key}.json"


def load_overpass(aoi: Aoi, cache_dir: Path | None = None, url: str = OVERPASS_URL,
                  max_age_s: float = OVERPASS_MAX_AGE_S) -> RoadNetwork:
    """Roads of ``aoi`` from Overpass, from the disk cache when the query was answered less than
    ``max_age_s`` ago; the provenance says when the answer was fetched and, for a cached one,
    how long ago (``cached_s``), and when its data was current: an instance whose replication is
    stuck answers with old data, warned about past OVERPASS_STALE_DAYS."""
    query = overpass_query(aoi)
    cache = overpass_cache_path(query, cache_dir, url)
    roads = _read_cached(cache, max_age_s)
    cached = roads is not None
    if roads is None:
        raw, roads = _query_with_retries(url, query)
        asked, head = time.time(), raw[:4096]
        _keep(cache, raw, max_age_s)
    else:
        asked = cache.stat().st_mtime
        with cache.open("rb") as f:
            head = f.read(4096)
    current = data_time(head)
    net = _network(roads, aoi, OVERPASS_SPEC, "overpass", stale_warning(
        OVERPASS_SPEC, current, "the server's replication may be stuck: try again later (--osm-max-age 0 asks "
        "again) or use a fresh extract", limit_days=OVERPASS_STALE_DAYS))
    net.provenance["fetched"] = iso_utc(dt.datetime.fromtimestamp(asked, dt.timezone.utc))
    if cached:  # said: roads mapped since this answer are not in it (a mapper rerunning after an edit)
        net.provenance["cached_s"] = round(max(0.0, time.time() - asked))
    if current is not None:
        net.provenance["extract_time"] = iso_utc(current)
    return net


def load_overpass_answer(path: Path, aoi: Aoi) -> RoadNetwork:
    """Roads of ``aoi`` from an Overpass JSON answer saved to a file (Overpass turbo's raw data
    export, a curl of the API): read as the API's answer is, dated and warned about as a file."""
    raw = path.read_bytes()
    try:
        roads = _roads_of(raw)
    except (ValueError, opx.OverPyException) as exc:
        raise InputError(path, f"an Overpass answer osmgap cannot read ({one_line(exc)[:200]}); save one of a "
                               "query that ends in `(._;>;); out meta;`, or give --osm overpass") from None
    if not clip_to_aoi(roads[0], aoi):  # an unmapped place, or the answer for another one
        check_reaches_aoi(path, aoi, union_bounds([w.geometry.bounds for w in roads[0]]))
    facts, stale = age_facts(path, data_time(raw[:4096]), None)
    net = _network(roads, aoi, str(path), "overpass-json", stale)
    net.provenance.update(facts)
    return net


def _network(roads: Roads, aoi: Aoi, source: str, fmt: str, warning: str | None) -> RoadNetwork:
    """The RoadNetwork of ``aoi`` from an answer's roads."""
    ways, nodes, lots, node_tags, others = roads
    return road_network(clip_to_aoi(ways, aoi), nodes, source=source, fmt=fmt, lots=clip_lots(lots, aoi),
                        node_tags=node_tags, others=near_other_ways(others, aoi), warning=warning)


def _keep(cache: Path, raw: bytes, max_age_s: float) -> None:
    """Keep the answer in the cache. One that cannot be written (a read-only home, a --cache-dir
    under a file) is warned about and the run goes on with the answer in memory: Overpass has
    already done the work, and failing now would only have it asked again."""
    try:
        write_bytes_atomic(cache, raw)  # only an answer whose roads were built: a bad one is asked again
    except OSError as exc:
        log.warning(f"WARNING: cannot keep Overpass's answer in {cache.parent} ({exc.strerror or exc}): this run "
                    "goes on with it, and the next asks Overpass again; give a writable --cache-dir")
        return
    _forget_expired(cache.parent, max(max_age_s, OVERPASS_MAX_AGE_S))


def data_time(head: bytes) -> dt.datetime | None:
    """When an Overpass answer's data was current, from its head: ``osm3s.timestamp_osm_base``
    (JSON) or ``<meta osm_base=...>`` (XML); None where it does not say."""
    said = re.search(rb'"timestamp_osm_base"\s*:\s*"([^"]{1,40})"|<meta\s[^>]*\bosm_base="([^"]{1,40})"', head)
    return None if said is None else utc_time((said.group(1) or said.group(2)).decode("ascii", "replace"))


Roads = tuple[list[Way], NodeTable, list[Lot], NodeTags, list[OtherWay]]


def _forget_expired(folder: Path, max_age_s: float) -> None:
    """Remove the cached answers no run reads any more (older than ``max_age_s``: asked again), and
    the temp files of writes that were killed: an answer for a large AOI is hundreds of MB, and
    every new AOI or edit of one makes a new query. Only osmgap's names (a SHA-256 and .json) go."""
    now = time.time()
    for path in folder.glob("*.json*"):
        name = path.name.lstrip(".")
        if not (CACHE_NAME.fullmatch(name) or CACHE_TEMP_NAME.fullmatch(name)):
            continue
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
        except OSError:
            continue  # removed meanwhile, or not ours to remove


def _read_cached(cache: Path, max_age_s: float) -> Roads | None:
    """The cached answer's roads, or None when there is none, it is older than ``max_age_s`` (or
    dated in the future: a clock set back) or unusable (then re-fetch)."""
    if not cache.is_file() or not -60.0 <= time.time() - cache.stat().st_mtime <= max_age_s:
        return None
    try:
        return _roads_of(cache.read_bytes())
    except (ValueError, opx.OverPyException):
        return None


def _roads_of(raw: bytes) -> Roads:
    """Ways, nodes and lots of an answer; ValueError for one that parses but does not hold them
    (a way whose nodes are missing, a null or text coordinate): garbled, to be asked again."""
    result = _parse_overpass(raw)
    try:
        ways, nodes, node_tags = _ways_from_overpass(result)
        return ways, nodes, _lots_from_overpass(result), node_tags, _other_ways_from_overpass(result)
    except (TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise ValueError(f"not an Overpass answer ({type(exc).__name__}: {one_line(exc)[:100]})") from None


def _parse_overpass(raw: bytes) -> overpy.Result:
    """Overpass JSON or XML -> overpy.Result; overpy's errors for server remarks, ValueError
    for anything that is not an Overpass answer. overpy reads any XML or JSON as a result, so an
    HTML "rate limited" page would be an empty area, every road of it "missing": the root is
    checked first."""
    api = overpy.Overpass()
    try:
        if raw.lstrip().startswith(b"<"):
            if not re.search(rb"<osm[\s>/]", raw[:4096]):
                raise ValueError("not an Overpass answer: XML or HTML without an <osm> root")
            return api.parse_xml(raw)
        doc = json.loads(raw, parse_float=Decimal)  # as overpy reads it
        if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
            raise ValueError("not an Overpass answer: JSON without an elements list")
        if doc.get("remark"):
            raise opx.OverpassRuntimeError(msg=str(doc["remark"]))
        return overpy.Result.from_json(doc, api=api)
    except (opx.OverPyException, ValueError):
        raise
    except Exception as exc:  # KeyError, TypeError, XML parse errors, ...: a garbled answer
        raise ValueError(f"not an Overpass answer ({type(exc).__name__})") from None


def _query_with_retries(url: str, query: str) -> tuple[bytes, Roads]:
    """Ask Overpass under osmgap's one retry policy (osmgap.core.http): a busy server (429,
    504, a "runtime error" remark), a dropped connection or a garbled answer is tried again
    after a capped, jittered backoff or the server's Retry-After; a rejected query is not."""
    def attempt() -> tuple[bytes, Roads]:
        try:
            raw = _http_post(url, query, OVERPASS_TIMEOUT_S + 30)
            return raw, _roads_of(raw)
        except opx.OverpassBadRequest as exc:
            raise InputError(OVERPASS_SPEC, f"Overpass rejected the query ({one_line(exc)[:300]})") from None
        except (opx.OverPyException, ValueError) as exc:
            raise Retryable(f"{type(exc).__name__}: {one_line(exc)[:200]}") from None

    try:
        return retry(attempt, OVERPASS_POLICY, sleep=time.sleep)
    except GaveUp as exc:  # the server's failure, not the user's input: exit 1
        raise ServiceError(OVERPASS_SPEC, f"Overpass API at {public_url(url)} {exc}") from None
    except Refused as exc:
        raise ServiceError(OVERPASS_SPEC, f"Overpass API at {public_url(url)}: {exc}") from None


def _http_post(url: str, query: str, timeout_s: float) -> bytes:
    """POST the query, once: 400 becomes overpy's bad-request error with the server's words,
    408/429/5xx a Retryable carrying the server's Retry-After, any other status an InputError."""
    r = _overpass_client().send("POST", url, data={"data": query}, timeout=(10.0, timeout_s))
    if r.status == 400:
        raise opx.OverpassBadRequest(query.encode("utf-8"), msgs=[server_text(r, url_secrets(url))])
    raise_if_retryable(r, "Overpass", url_secrets(url))
    if r.status != 200:
        raise InputError(OVERPASS_SPEC, f"Overpass API at {public_url(url)} answered HTTP {r.status}: "
                                        f"{server_text(r, url_secrets(url))}")
    return r.body


_client: list[HttpClient] = []


def _overpass_client() -> HttpClient:
    """One session per process (keep-alive), made on first use."""
    if not _client:
        _client.append(HttpClient(max_bytes=OVERPASS_MAX_BYTES, read_factor=10.0))  # answers of hundreds of MB
    return _client[0]


def _ways_from_overpass(result: overpy.Result) -> tuple[list[Way], NodeTable, NodeTags]:
    """Road ways and all their nodes (and those nodes' tags) from an overpy result that includes
    the ways' nodes."""
    ways: list[Way] = []
    nodes: NodeTable = {}
    node_tags: NodeTags = {}
    for way in result.ways:
        tags = dict(way.tags)
        if tags.get("highway") not in ROAD_CLASSES:
            continue
        try:
            way_nodes = way.get_nodes(resolve_missing=False)
        except opx.DataIncomplete:
            raise ValueError(f"the answer lacks nodes of way {way.id}") from None
        for n in way_nodes:
            nodes[n.id] = (n.attributes.get("version"), float(n.lon), float(n.lat))
            if n.tags:
                node_tags[n.id] = {str(k): str(v) for k, v in n.tags.items()}
        if len(way_nodes) < 2:
            continue
        ways.append(Way(osm_id=way.id, highway=tags["highway"],
                         version=way.attributes.get("version"),
                         node_ids=[n.id for n in way_nodes], tags=tags,
                         geometry=LineString([nodes[n.id][1:] for n in way_nodes])))
    return ways, nodes, node_tags


def _other_ways_from_overpass(result: overpy.Result) -> list[OtherWay]:
    """The ways mapped as something other than a road (osmgap.core.osmtags.mapped_otherwise),
    each the line through those of its nodes the answer holds."""
    others: list[OtherWay] = []
    for way in result.ways:
        tags = dict(way.tags)
        if isinstance(edited := way.attributes.get("timestamp"), dt.datetime):  # "out meta"
            tags[EDITED_KEY] = edited.isoformat()
        what = mapped_otherwise(tags)
        if what is None:
            continue
        try:
            xy = [(float(n.lon), float(n.lat)) for n in way.get_nodes(resolve_missing=False)]
        except opx.DataIncomplete:
            continue  # only how near it runs to a suggestion is read: a way without nodes says nothing
        if len(xy) >= 2:
            others.append(OtherWay(way.id, what, LineString(xy), way_level(tags)))
    return others


def _lots_from_overpass(result: overpy.Result) -> list[Lot]:
    """Parking lots from closed ``amenity=parking`` ways and multipolygon relations; one whose
    members or nodes the answer lacks is left out."""
    lots: list[Lot] = []
    for way in result.ways:
        if way.tags.get("amenity") == "parking":
            rings = _way_lines([way])
            polygon = polygon_of_rings(rings, []) if rings and rings[0].is_closed else None
            if polygon is not None:
                lots.append(Lot("way", way.id, way.tags.get("parking"), polygon))
    for rel in result.relations:
        if rel.tags.get("amenity") != "parking" or rel.tags.get("type") != "multipolygon":
            continue
        try:
            members = [(m.role, m.resolve(resolve_missing=False))
                       for m in rel.members if isinstance(m, overpy.RelationWay)]
        except opx.DataIncomplete:
            continue
        outer = _way_lines([w for role, w in members if role != "inner"])
        polygon = polygon_of_rings(outer, _way_lines([w for role, w in members if role == "inner"]))
        if polygon is not None:
            lots.append(Lot("relation", rel.id, rel.tags.get("parking"), polygon))
    return lots


def _way_lines(ways: list[overpy.Way]) -> list[LineString]:
    """The lon/lat lines of ``ways``; empty when any way lacks its nodes."""
    lines = []
    for way in ways:
        try:
            coords = [(float(n.lon), float(n.lat)) for n in way.get_nodes(resolve_missing=False)]
        except opx.DataIncomplete:
            return []
        if len(coords) >= 2:
            lines.append(LineString(coords))
    return lines
