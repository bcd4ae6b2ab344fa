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
    warning = (f"WARNING: {shown}: the imagery covers only {coverage.aoi_share:.0%} of the AOI "
               f"({coverage.area_km2:.3g} of {aoi.area_km2():.3g} km2{rest}); "
               f"no {looked_for} was looked for in the rest")
    log.warning(warning)
    return warning
