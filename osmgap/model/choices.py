"""The choices the training CLI offers, kept apart from the torch modules that use them so
``osmgap train --help`` answers without importing torch."""
from __future__ import annotations

DECODERS = ("plain", "1d")  # Linknet decoders: transposed convolutions, or Sun et al. 2019's 1D decoder
SCHEDULES = ("onecycle", "cosine", "cosine-fit")  # learning-rate schedules (osmgap.model.train.make_schedule)
FOLD_TILE_PX = 64  # cross-prediction tile at 1 m/px: a block or two of streets, and a whole training crop
# the labelled datasets of the data directory that `osmgap train --data` knows (osmgap.model.data)
DATASETS = ("massachusetts", "massachusetts-tiles", "shanghai", "shanghai-mul", "deepglobe", "spacenet")
