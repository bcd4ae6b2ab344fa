"""The summary's coverage block and its warning, one way for diff, change and scan.

Why: "0 suggestions" over an AOI the imagery covers a third of reads as "all mapped". Every verb
that looks at imagery says how much of the AOI it actually analysed, with the same keys (the
printed summary lines and the weekly report read them) and the same warning under
COVERAGE_WARN_SHARE, so a user reads one sentence whichever verb they ran.
"""
from __future__ import annotations

import logging
from typing import Any

from osmgap.core.aoi import Aoi
from osmgap.sources.imagery import COVERAGE_WARN_SHARE, Coverage

log = logging.getLogger(__name__)

# a model that sees a place's roads at under this share of OSM's km says nothing about it: it reads
# the imagery poorly (a sensor or a light it was not trained on), and the rest is no "complete map"
WEAK_EVIDENCE_SHARE = 0.25


def model_saw_too_little(seen_km: float, osm_km: float) -> bool:
    """The model's road is too little beside OSM's to judge the area by (none at all included,
    where OSM has road)."""
    return osm_km > 0 and seen_km < WEAK_EVIDENCE_SHARE * osm_km


def share_text(share: float) -> str:
    """A share as a percentage that never reads 0% for a sliver (an AOI far larger than its image)."""
    return f"{share:.2%}" if 0 < share < 0.01 else f"{share:.0%}"


def coverage_block(aoi: Aoi, coverage: Coverage | None, analysed_km2: float | None = None,
                   **shares: float) -> dict[str, Any]:
    """``summary["coverage"]``: the AOI's area, the area analysed (``analysed_km2``, else the
    imagery's usable part of the AOI, else the whole AOI: candidates and GPS are read everywhere)
    and the share of the AOI the imagery covers (None without imagery); ``shares`` adds
    per-image shares (change's before and after)."""
    aoi_km2 = aoi.area_km2()
    if analysed_km2 is None:
        analysed_km2 = coverage.area_km2 if coverage is not None else aoi_km2
    return {"aoi_km2": round(aoi_km2, 4), "area_analysed_km2": round(analysed_km2, 4),
            "imagery_aoi_share": round(coverage.aoi_share, 4) if coverage is not None else None,
            **{key: round(value, 4) for key, value in shares.items()}}


def partly_covered(shown: str, coverage: Coverage, aoi: Aoi, rest: str, looked_for: str) -> str | None:
    """The warning, logged, when the imagery (``shown``: its name) covers under
    COVERAGE_WARN_SHARE of the AOI: how much, why the rest is not analysed (``rest``) and that
    no ``looked_for`` (road, change) was looked for there; None when it covers the AOI."""
    if coverage.aoi_share >= COVERAGE_WARN_SHARE:
        return None
    warning = (f"WARNING: {shown}: the imagery covers only {share_text(coverage.aoi_share)} of the AOI "
               f"({coverage.area_km2:.3g} of {aoi.area_km2():.3g} km2{rest}); "
               f"no {looked_for} was looked for in the rest")
    log.warning(warning)
    return warning
