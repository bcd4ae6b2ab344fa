"""Training features on real data: every architecture trains and round-trips, early stopping,
resume continues exactly, schedules, progress bar, label sources and band counts."""
import numpy as np
import pytest
import torch

from osmgap.cli import main
from osmgap.errors import InputError
from osmgap.jobs.train import load_samples
from osmgap.model.data import Sample, load_labelled_image, load_training_data
from osmgap.model.nets import load_checkpoint, save_checkpoint
from osmgap.model.resume import state_path
from osmgap.model.train import RunClock, TrainConfig, make_schedule, train


@pytest.fixture(scope="module")
def crops(data):
    """Real DeepGlobe crops (1 m/px): three 160x160 training crops and one 96x96 validation crop."""
    pairs = load_training_data(data, ["deepglobe"], 1.0)
    trn = [Sample(f"t{i}", s.image[:, 100:260, 100:260].copy(), s.mask[100:260, 100:260].copy())
           for i, s in enumerate(pairs[:3])]
    val = [Sample("v", pairs[3].image[:, :96, :96].copy(), pairs[3].mask[:96, :96].copy())]
    return trn, val


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 2, "batch": 2, "crop": 64, "eval_every": 2, **kw})


@pytest.mark.parametrize("arch", ["Unet", "Linknet", "UnetPlusPlus", "DeepLabV3Plus"])
def test_each_architecture_trains_and_round_trips(crops, tmp_path, arch):
    trn, val = crops
    record = train(trn, tiny(arch=arch), tmp_path / "m.pt", log=lambda m: None, val=val)
    assert record["steps_done"] == 2
    net, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta.arch == arch and meta.in_channels == 3 and len(meta.mean) == 3 and len(meta.std) == 3
    save_checkpoint(tmp_path / "again.pt", net, meta)
    net2, meta2 = load_checkpoint(tmp_path / "again.pt")
    x = torch.from_numpy(val[0].image[None, :, :64, :64])
    with torch.no_grad():
        assert torch.equal(net(x), net2(x))
    assert meta2 == meta


def test_early_stopping_after_patience(crops, tmp_path, monkeypatch):
    scores = iter([0.3, 0.2, 0.25, 0.1, 0.5, 0.6])  # best at the first validation, then worse twice

    def fake_evaluate(net, meta, samples, device):
        return {"iou": next(scores), "precision": 0.5, "recall": 0.5, "f1": 0.5}

    monkeypatch.setattr("osmgap.model.train.evaluate", fake_evaluate)
    monkeypatch.setattr("osmgap.model.train.choose_threshold",  # what train calibrates with since stop 54
                        lambda net, meta, val, device: {"threshold": meta.threshold, "calibrated": False})
    trn, val = crops
    record = train(trn, tiny(steps=20, eval_every=1, patience=2), tmp_path / "m.pt", log=lambda m: None, val=val)
    assert record["steps_done"] == 3 and "early stopping" in record["stopped"]
    assert record["best"]["step"] == 1


def test_resume_continues_exactly_where_it_stopped(crops, tmp_path):
    trn, val = crops
    cfg = dict(steps=4, eval_every=2, schedule="cosine")
    train(trn, tiny(**cfg), tmp_path / "whole.pt", log=lambda m: None, val=val)
    first = train(trn, tiny(**cfg, max_minutes=0), tmp_path / "cut.pt", log=lambda m: None, val=val)
    assert first["steps_done"] == 1 and "time budget" in first["stopped"]
    with pytest.raises(InputError, match="other settings.*steps 4 -> 6"):  # another schedule length
        train(trn, tiny(**{**cfg, "steps": 6}, resume=str(state_path(tmp_path / "cut.pt"))), tmp_path / "other.pt",
              log=lambda m: None, val=val)
    with pytest.raises(InputError, match="other settings.*cldice 0.0 -> 0.3"):  # another loss
        train(trn, tiny(**cfg, cldice=0.3, resume=str(state_path(tmp_path / "cut.pt"))), tmp_path / "other.pt",
              log=lambda m: None, val=val)
    logs = []
    second = train(trn, tiny(**cfg, resume=str(state_path(tmp_path / "cut.pt"))), tmp_path / "cut.pt",
                   log=logs.append, val=val)
    assert second["steps_done"] == 4 and any("resumed at step 1" in m for m in logs)
    whole = torch.load(state_path(tmp_path / "whole.pt"), weights_only=False)
    resumed = torch.load(state_path(tmp_path / "cut.pt"), weights_only=False)
    assert whole["state"]["step"] == resumed["state"]["step"] == 4
    for name, tensor in whole["net"].items():
        assert torch.equal(tensor, resumed["net"][name]), name


def test_schedules_warm_up_and_decay():
    for schedule in ("onecycle", "cosine"):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
        sched = make_schedule(opt, 100, 1e-3, schedule)
        lrs = []
        for _ in range(100):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        peak = int(np.argmax(lrs))
        assert 0 < peak < 15 and lrs[peak] == pytest.approx(1e-3, rel=0.05)
        assert lrs[-1] < 0.05 * lrs[peak] and lrs[0] < lrs[peak]


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 10, 11, 19])
@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_short_runs_get_a_schedule_that_steps_to_the_end(steps, schedule):
    """`osmgap train --steps 10` once died in OneCycleLR (a warm-up of zero steps)."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = make_schedule(opt, steps, 1e-3, schedule)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(np.isfinite(lrs)) and max(lrs) <= 1e-3 * 1.0001 and max(lrs) > 1e-5


def test_without_a_terminal_training_says_where_it_is(crops, tmp_path, monkeypatch):
    """Run from cron or into a log file (no progress bar), training still prints step lines."""
    import osmgap.model.train as module

    monkeypatch.setattr(module, "HEARTBEAT_S", 0.0)
    trn, val = crops
    logs: list[str] = []
    train(trn, tiny(progress=False), tmp_path / "m.pt", log=logs.append, val=val)
    beats = [m for m in logs if "min to go" in m]
    assert beats and beats[0].startswith("step 1/") and "loss" in beats[0]


def test_progress_bar_shows_loss_and_iou(crops, tmp_path, capsys):
    trn, val = crops
    train(trn, tiny(progress=True), tmp_path / "m.pt", log=lambda m: None, val=val)
    err = capsys.readouterr().err
    assert "loss=" in err and "val_iou=" in err and "2/2" in err


def test_single_band_samples_train_a_single_band_model(crops, tmp_path):
    trn, val = crops
    grey = [Sample(s.name, s.image.mean(axis=0, keepdims=True), s.mask) for s in trn]
    grey_val = [Sample(s.name, s.image.mean(axis=0, keepdims=True), s.mask) for s in val]
    train(grey, tiny(), tmp_path / "m.pt", log=lambda m: None, val=grey_val)
    _, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta.in_channels == 1 and len(meta.mean) == 1


def test_label_sources_on_real_chips(vegas, paris):
    """16-bit single-band Vegas with SpaceNet centrelines and with its mask; Paris RGB with OSM."""
    lines = load_labelled_image(vegas / "image_pan_uint16.tif", vegas / "roads.geojson", 1.0)
    mask = load_labelled_image(vegas / "image_pan_uint16.tif", vegas / "road_mask.tif", 1.0)
    osm = load_labelled_image(paris / "image.tif", paris / "osm_roads.geojson", 1.0)
    for s in (lines, mask, osm):
        assert s.image.shape[0] == 3 and s.image.dtype == np.float32 and 0 <= s.image.min() and s.image.max() <= 1
        assert s.image.shape[1:] == s.mask.shape and 0.02 < s.mask.mean() < 0.5
    assert lines.image.shape[1] == pytest.approx(1300 * 0.3, rel=0.05)  # 0.3 m chip resampled to 1 m (UTM box a bit bigger)
    overlap = np.count_nonzero(lines.mask & mask.mask) / np.count_nonzero(lines.mask | mask.mask)
    assert overlap > 0.4  # the centrelines drawn 6 m wide and SpaceNet's own mask cover the same roads


def test_cli_trains_on_pairs_only(vegas, paris, tmp_path, capsys):
    out = tmp_path / "pairs.pt"
    code = main(["train", "--out", str(out), "--data", "", "--steps", "2", "--batch", "2", "--crop", "64",
                 "--eval-every", "2", "--arch", "Linknet", "--no-progress", "--schedule", "cosine",
                 "--pair", f"{vegas / 'image_pan_uint16.tif'}={vegas / 'roads.geojson'}",
                 "--pair", f"{paris / 'image.tif'}={paris / 'osm_roads.geojson'}"])
    assert code == 0
    net, meta = load_checkpoint(out)
    assert meta.training["config"]["schedule"] == "cosine"
    assert meta.training["train_images"] + meta.training["val_images"] in (2, 4)  # 4: none held out, val = train
    assert state_path(out).exists()
    assert main(["train", "--out", str(tmp_path / "x.pt"), "--data", "", "--pair", "no-equals-sign"]) == 2


class _Clock(RunClock):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def elapsed(self) -> float:
        return self.now


def test_cosine_fit_anneals_over_whichever_budget_runs_out_first():
    """A run on a GPU of unknown speed: by minutes when they run out first, else by steps."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    clock = _Clock()
    sched = make_schedule(opt, 1000, 1e-3, "cosine-fit", clock, budget_minutes=1.0)
    lr = {}
    for step, now in [(1, 0.0), (2, 30.0), (3, 59.0), (4, 60.0)]:  # minutes run out first
        clock.now = now
        sched.step()
        lr[step] = opt.param_groups[0]["lr"]
    assert lr[2] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 0.45 / 0.95)), rel=1e-6)
    assert lr[1] < 1e-4 and lr[3] < 1e-6 and lr[4] == 0.0
    clock.now = 1.0  # steps run out first: annealed by step 1000 whatever the clock says
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched2 = make_schedule(opt2, 1000, 1e-3, "cosine-fit", clock, budget_minutes=1.0)
    for _ in range(500):
        sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 0.45 / 0.95)), rel=1e-6)
    with pytest.raises(InputError, match="max-minutes"):
        make_schedule(opt, 1000, 1e-3, "cosine-fit", clock, budget_minutes=None)


def test_cosine_fit_needs_max_minutes_and_counts_them_across_resumes(crops, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m.pt"), "--schedule", "cosine-fit", "--steps", "2"]) == 2
    assert "--max-minutes" in capsys.readouterr().err
    trn, val = crops
    cfg = {"steps": 5000, "eval_every": 1000, "schedule": "cosine-fit", "max_minutes": 0.002}
    first = train(trn, tiny(**cfg), tmp_path / "fit.pt", log=lambda m: None, val=val)
    assert "time budget" in first["stopped"] and first["steps_done"] < 5000
    saved = torch.load(state_path(tmp_path / "fit.pt"), weights_only=False)["state"]
    assert saved["elapsed_s"] >= 0.12
    again = train(trn, tiny(**cfg, resume=str(state_path(tmp_path / "fit.pt"))), tmp_path / "fit.pt",
                  log=lambda m: None, val=val)  # the budget is spent: it stops after one step
    assert again["steps_done"] == first["steps_done"] + 1


def test_a_pair_is_read_in_the_bands_asked_for(data, tmp_path, capsys):
    """A real 8-band WorldView-3 chip with its SpaceNet centrelines: `--bands 5,3,2` trains on its
    true colour (three channels that differ), not the coastal/blue/green its file tags; --bands
    with nothing it could apply to is refused before any data is read."""
    chips = data / "chips" / "shanghai"
    image, labels = chips / "AOI_4_Shanghai_img1227_mul.tif", chips / "AOI_4_Shanghai_img1227_roads.geojson"
    tagged, colour = (load_samples([], [f"{image}={labels}"], 1.0, bands) for bands in (None, (5, 3, 2)))
    assert tagged[0].image.shape == colour[0].image.shape and (tagged[0].mask == colour[0].mask).all()
    assert np.abs(tagged[0].image[0] - colour[0].image[0]).mean() > 0.02  # red is not the coastal band
    assert np.abs(colour[0].image[0] - colour[0].image[2]).mean() > 0.01  # colour, not grey
    assert main(["train", "--out", str(tmp_path / "x.pt"), "--data", "massachusetts", "--bands", "5,3,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count("--bands") == 1 and "chooses the bands of the --pair and --aoi" in err


def test_a_pair_image_that_validates_is_named(crops, tmp_path):
    """The hash-chosen validation tenth can take one of a user's few --pair images: it then does not
    train, and the log names it (chip25's name hashes into the tenth, chips 20-24 do not)."""
    trn, _ = crops
    names = [f"pair/chip{i}.tif+roads.geojson" for i in range(20, 26)]
    samples = [Sample(name, s.image, s.mask) for name, s in zip(names, trn * 3)]
    said: list[str] = []
    record = train(samples, tiny(), tmp_path / "m.pt", log=said.append)
    assert record["val_images"] == 1 and record["train_images"] == 5
    assert [m for m in said if "validation tenth" in m] == [
        "1 --pair image(s) fell in the validation tenth (a hash of the names) and choose the checkpoint and "
        "threshold instead of training: chip25.tif+roads.geojson"]


def test_a_lone_pair_image_in_the_validation_tenth_still_trains(crops, tmp_path):
    """One chip of one's own whose name hashes into the validation tenth: it trains and validates
    (optimistic, and said so) instead of leaving nothing to train on."""
    trn, _ = crops
    said: list[str] = []
    record = train([Sample("pair/chip25.tif+roads.geojson", trn[0].image, trn[0].mask)], tiny(), tmp_path / "m.pt",
                   log=said.append)
    assert record["train_images"] == 1 and record["val_images"] == 1 and (tmp_path / "m.pt").exists()
    assert any("every image fell in the validation split" in m for m in said)


def test_a_blank_image_is_refused_for_training(paris, tmp_path, capsys):
    """A pair or cross-prediction image with nothing in it teaches nothing: exit 2, as a diff of it."""
    import rasterio

    blank = tmp_path / "blank.tif"
    with rasterio.open(paris / "image.tif") as src:
        with rasterio.open(blank, "w", **src.profile) as dst:
            dst.write(np.zeros((src.count, src.height, src.width), src.dtypes[0]))
    roads = paris / "osm_roads.geojson"
    for args in (["--data", "", "--pair", f"{blank}={roads}", "--out", str(tmp_path / "m.pt")],
                 ["--aoi", str(paris / "aoi.geojson"), "--imagery", str(blank), "--osm", str(roads), "--folds", "2",
                  "--out", str(tmp_path / "folds")]):
        assert main(["train", "--steps", "1", *args]) == 2
        assert "a blank image" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.tif"]
