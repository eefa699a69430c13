"""The training engine: progress events, spatial loss going down, checkpoints, exact resume."""

import numpy as np
import pytest
import torch

from topoviewer import TopoviewerError
from topoviewer.io import load, read_header
from topoviewer.model import drain
from topoviewer.training import TrainConfig, train

TINY = dict(arch_config={"fc_units": [128, 128]}, per_category=12, val_per_category=4, batch_size=32)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.net.state_dict().items()}


def test_progress_events_and_spatial_loss_goes_down(tmp_path):
    cfg = TrainConfig(loss="absolute", weight=4.0, steps=30, checkpoint_every=15, lr=3e-3, device="cpu", **TINY)
    events = []
    gen = train(cfg, tmp_path / "m.safetensors")
    model = None
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            model = stop.value
            break
    assert [e.step for e in events] == list(range(1, 31))
    assert [e.checkpoint is not None for e in events].count(True) == 2
    assert events[-1].val_accuracy is not None and 0.0 <= events[-1].val_accuracy <= 1.0
    first = np.mean([e.spatial_loss for e in events[:3]])
    last = np.mean([e.spatial_loss for e in events[-10:]])
    # the same run with the spatial term measured but not optimised (α = 0)
    cfg.weight = 0.0
    control = [e.spatial_loss for e in train(cfg, tmp_path / "control.safetensors")]
    assert last < first - 0.03, (first, last)
    assert last < 0.8 * np.mean(control[-10:]), (last, np.mean(control[-10:]))
    assert all(e.images_per_s > 0 for e in events)
    assert model.meta["training"]["loss"] == "absolute" and model.meta["training"]["weight"] == 4.0
    h = read_header(tmp_path / "m.safetensors")
    assert h["training"]["step"] == 30  # finished, with its optimizer state: it can be extended
    assert h["meta"]["training"]["steps"] == 30 and h["meta"]["training"]["seed"] == cfg.seed


def test_interrupted_run_resumes_exactly(tmp_path):
    cfg = dict(loss="relative", weight=1.0, checkpoint_every=4, device="cpu", seed=3, **TINY)
    full = drain(train(TrainConfig(steps=8, **cfg), tmp_path / "full.safetensors"))

    path = tmp_path / "cut.safetensors"
    gen = train(TrainConfig(steps=8, **cfg), path)
    for _ in range(6):  # checkpoint at step 4, then "crash" during step 6
        next(gen)
    gen.close()
    assert read_header(path)["training"]["step"] == 4
    load(path)  # the checkpoint left behind is intact and loadable
    resumed = drain(train(TrainConfig(steps=8, **cfg), path, resume=True))
    for k, v in _weights(full).items():
        torch.testing.assert_close(_weights(resumed)[k], v, rtol=0, atol=1e-6, msg=k)


def test_topoloss_on_toponet(tmp_path):
    cfg = TrainConfig(arch="toponet_small", arch_config={"widths": [8, 16, 32, 64]}, loss="topoloss", weight=10.0,
                      steps=20, checkpoint_every=20, device="cpu", per_category=12, val_per_category=4,
                      batch_size=32)
    model = drain(train(cfg, tmp_path / "t.safetensors"))
    assert model.arch == "toponet_small"
    assert load(tmp_path / "t.safetensors").sheet("conv3").grid_shape == (4, 8)


def test_bad_configs(tmp_path):
    with pytest.raises(TopoviewerError, match="unknown loss"):
        drain(train(TrainConfig(loss="nope"), tmp_path / "x.safetensors"))
    with pytest.raises(TopoviewerError, match="no checkpoint"):
        drain(train(TrainConfig(), tmp_path / "absent.safetensors", resume=True))
    with pytest.raises(TopoviewerError, match="channel-grid"):
        drain(train(TrainConfig(loss="topoloss", steps=2, device="cpu", **TINY), tmp_path / "y.safetensors"))


def test_a_finished_run_resumes_only_with_more_steps(tmp_path, tiny_model_file):
    path = tmp_path / "done.safetensors"
    drain(train(TrainConfig(steps=2, checkpoint_every=1, device="cpu", **TINY), path))
    with pytest.raises(TopoviewerError, match="stopped at step 2; pass --steps larger"):
        drain(train(TrainConfig(steps=2, device="cpu", **TINY), path, resume=True))
    with pytest.raises(TopoviewerError, match="finished model without training state"):
        drain(train(TrainConfig(steps=4, device="cpu", **TINY), tiny_model_file, resume=True))


def test_control_logs_spatial_loss_but_trains_like_no_loss(tmp_path):
    """α = 0 measures the spatial loss without a gradient: the weights equal a run without it."""
    base = dict(steps=4, checkpoint_every=4, device="cpu", **TINY)
    control = train(TrainConfig(loss="absolute", weight=0.0, **base), tmp_path / "c.safetensors")
    logged = [e.spatial_loss for e in control]
    plain = drain(train(TrainConfig(loss="none", **base), tmp_path / "n.safetensors"))
    assert all(np.isfinite(v) and v > 0 for v in logged)
    ctrl = load(tmp_path / "c.safetensors")
    for k, v in _weights(plain).items():
        torch.testing.assert_close(_weights(ctrl)[k], v, rtol=0, atol=0)


def test_recipes_load_into_the_one_train_config(tmp_path):
    import json

    from topoviewer.training import recipe_path

    sample = TrainConfig.from_json("sample")
    shipped = json.loads(recipe_path().read_text())
    assert sample == TrainConfig(**shipped)  # what the recipe sets; TrainConfig's defaults for the rest
    assert TrainConfig.from_json(sample.to_json()) == sample
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steps": 5, "stpes": 6}))
    with pytest.raises(TopoviewerError, match="unknown recipe setting.*stpes"):
        TrainConfig.from_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(TopoviewerError, match="JSON object"):
        TrainConfig.from_json(bad)


def test_cli_options_override_the_recipe(tmp_path):
    from topoviewer.cli import main

    out = tmp_path / "m.safetensors"
    assert main(["train", "--recipe", "sample", "--steps", "2", "--batch-size", "8", "--per-category", "4",
                 "--checkpoint-every", "1", "--quiet", "--out", str(out)]) == 0
    cfg = read_header(out)["meta"]["training"]["config"]
    assert (cfg["steps"], cfg["batch_size"], cfg["per_category"]) == (2, 8, 4)
    assert cfg["loss"] == "relative" and cfg["arch_config"]["fc_norm"] is True  # the rest from the recipe


def test_a_stop_request_saves_the_step_in_progress(tmp_path):
    """A graceful stop (the GUI's Stop) before the first checkpoint still leaves a resumable model."""
    import threading

    stop = threading.Event()
    path = tmp_path / "stopped.safetensors"
    gen = train(TrainConfig(steps=50, checkpoint_every=40, device="cpu", **TINY), path, stop=stop)
    events = [next(gen), next(gen)]
    assert not path.exists() and all(e.checkpoint is None for e in events)
    stop.set()
    events += list(gen)  # one more step, saved, then the run ends
    assert [e.step for e in events] == [1, 2, 3] and events[-1].checkpoint == str(path)
    assert read_header(path)["training"]["step"] == 3  # resumable: the optimizer state is in the file
    assert load(path).meta["training"]["steps"] == 3
