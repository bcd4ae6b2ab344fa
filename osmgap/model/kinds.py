"""What kind of imagery a model knows (grey or colour), from its training record, so that a run
on imagery of a kind it never saw can say so: a model fine-tuned on panchromatic chips only, run
on colour imagery, draws few or wrong roads and nothing else would tell. Light (no torch), so a
diff can ask before its model runs."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from osmgap.model.data import Sample


def image_kinds(samples: list[Sample]) -> dict[str, int]:
    """How many of ``samples`` are grey (one band read as all three: panchromatic) and how many
    colour: the kind of imagery a model knows, which its checkpoint carries in its record so that
    imagery of a kind it never saw can be said (:func:`unseen_kind`)."""
    grey = sum(all(np.array_equal(s.image[0], band) for band in s.image[1:]) for s in samples)
    return {"grey_images": grey, "colour_images": len(samples) - grey}


def known_kinds(training: object) -> dict[str, int] | None:
    """The grey and colour images a model's training record counts, with those of the records
    inside it (an averaged model's parents) and of the model it started from (``init_image_kinds``);
    None when any of them does not say (trained before records counted them: the shipped model)."""
    if not isinstance(training, dict):
        return None
    records: list[dict] = []

    def walk(record: dict) -> None:
        if "train_names" in record:
            records.append(record)
        for value in record.values():
            if isinstance(value, dict):
                walk(value)

    walk(training)
    total = {"grey_images": 0, "colour_images": 0}
    for record in records:
        parts = [record.get("image_kinds"), *([record["init_image_kinds"]] if "init_image_kinds" in record else [])]
        said = [part for part in parts if isinstance(part, dict)]
        if len(said) < len(parts):
            return None
        for part in said:
            for key in total:
                total[key] += int(part.get(key) or 0)
    return total if records else None


def unseen_kind(training: object, grey: bool) -> str | None:
    """"colour" when a model's training (:func:`known_kinds`) never showed it a colour image (a
    model fine-tuned on panchromatic chips only); None when it did, when its records do not say,
    and for grey imagery, which every training shows it (a quarter of the crops are made grey:
    osmgap.model.augment.photometric)."""
    kinds = known_kinds(training)
    if grey or kinds is None or kinds["colour_images"]:
        return None
    return "colour"


def unseen_kind_warning(training: object, model: str | Path | None, image: str | Path, bands: list[int]) -> str | None:
    """The warning when a model's record says it never trained on the kind of imagery ``image``
    is read as (``bands``: one band repeated is grey), for every verb that runs a model on imagery."""
    unseen = unseen_kind(training, grey=len(set(bands)) == 1)
    if unseen is None:
        return None
    return (f"WARNING: {model or 'the model'} was trained on no {unseen} image (its training record: image_kinds) "
            f"and {Path(image).name} is read as {unseen} (bands {','.join(map(str, bands))}): the model has not "
            "learnt imagery of this kind; expect far fewer or far more roads than it shows")
