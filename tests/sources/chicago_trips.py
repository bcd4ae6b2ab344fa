"""Real Chicago UIC shuttle trips as tables, for tests that write them in the formats people share."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

UTM = "EPSG:32616"  # the trips' coordinates


def chicago_trips(chicago_gps: Path, ids: Iterable[int]) -> dict[int, pd.DataFrame]:
    """Trip id -> its fixes: x, y (UTM), t (unix seconds), lon, lat."""
    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    out = {}
    for k in ids:
        raw = np.loadtxt(chicago_gps / "trips" / f"trip_{k}.txt")
        lon, lat = to_wgs84.transform(raw[:, 0], raw[:, 1])
        out[k] = pd.DataFrame({"x": raw[:, 0], "y": raw[:, 1], "t": raw[:, 2], "lon": lon, "lat": lat})
    return out
