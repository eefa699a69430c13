"""The CLI contract on a freshly trained file and on the embedded default."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from topoviewer.cli import main
from topoviewer.io import load_tensors, read_header


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json(capsys, tiny_model_file):
    code, out, _ = run(capsys, "info", str(tiny_model_file), "--json")
    info = json.loads(out)
    assert code == 0
    assert [s["name"] for s in info["sheets"]] == ["fc6", "fc7"]
    assert info["sheets"][0]["units"] == 256 and info["sheets"][0]["extent_mm"] == [10.0, 10.0]


def test_analyze_writes_contract(capsys, tiny_model_file, tmp_path):
    out_dir = tmp_path / "res"
    code, out, _ = run(capsys, "analyze", str(tiny_model_file), "--out", str(out_dir), "--json", "--save-responses")
    assert code == 0
    summary = json.loads(out)
    assert summary == json.loads((out_dir / "summary.json").read_text())
    cats = summary["categories"]
    assert len(cats) >= 6 and "faces" in cats
    s = summary["sheets"]["fc6"]
    assert s["units"] == 256 and s["extent_mm"] == [10.0, 10.0]
    for key in ("fraction_selective", "largest_patch_voxels", "peak_mm", "cluster_strength"):
        assert set(s[key]) == set(cats)
    assert len(s["purity_curve"]["distance_mm"]) == len(s["purity_curve"]["purity"]) > 0
    maps = np.load(out_dir / "fc6.npz")
    assert maps["dprime_faces"].shape == (256,)
    assert maps["voxel_t_faces"].shape == (20, 20)  # 10 mm / 0.5 mm voxels
    resp = np.load(out_dir / "responses_fc7.npz")
    assert resp["responses"].shape == (len(resp["labels"]), 256)
    assert resp["positions"].shape == (256, 2) and list(resp["categories"]) == cats


def test_stimulate_json(capsys, tiny_model_file):
    code, out, _ = run(capsys, "stimulate", str(tiny_model_file), "--at", "5", "5", "--radius-mm", "2", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["layer"] == "fc6" and r["next_layer"] == "fc7" and r["site_mm"] == [5.0, 5.0]
    assert r["radius_mm"] == 2.0 and r["stimulated_units"] > 0
    for key in ("next_patch_mean", "next_mean"):
        assert np.isfinite(r[key])


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["info", "missing.safetensors"], "no such file"),
        (["stimulate", "{model}", "--layer", "fc9", "--site", "inside"], "unknown layer 'fc9'"),
        (["stimulate", "{model}", "--at", "50", "50"], "outside sheet"),
        (["analyze", "{model}", "--stimuli", "/no/such/dir"], "/no/such/dir is missing"),
        (["figure", "{model}", "--out", "maps.gif"], "gif"),
        (["train", "--resume", "--out", "/no/such/run.safetensors"], "no checkpoint at /no/such/run.safetensors"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, tiny_model_file, argv, expected):
    code, out, err = run(capsys, *[a.format(model=tiny_model_file) for a in argv])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("topoviewer: error:")
    assert expected in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], "the following arguments are required: command (see topoviewer --help)"),
        (["train", "--loss", "bogus", "--out", "x.safetensors"],
         "argument --loss: invalid choice: 'bogus'"),
        (["train", "--steps", "many", "--out", "x.safetensors"], "argument --steps: expected an integer, got 'many'"),
        (["stimulate", "sample"], "one of the arguments --at --site is required (see topoviewer stimulate --help)"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("topoviewer: error: ")
    assert expected in lines[0] and lines[0].endswith("--help)")
    assert "usage:" not in err


def test_console_script_entry_point(tiny_model_file):
    """The installed command works end to end (a subprocess, as a user runs it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "topoviewer.cli", "info", str(tiny_model_file), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sheets"][1]["name"] == "fc7"


def test_train_then_analyze_fresh_file(capsys, tmp_path):
    path = tmp_path / "fresh.safetensors"
    code, out, _ = run(capsys, "train", "--steps", "6", "--per-category", "8", "--batch-size", "16",
                       "--checkpoint-every", "3", "--device", "cpu", "--quiet", "--out", str(path))
    assert code == 0 and path.exists() and "saved" in out
    code, out, _ = run(capsys, "info", str(path), "--json")
    assert code == 0 and json.loads(out)["sheets"][0]["units"] == 1024


def test_train_with_a_recipe(capsys, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"arch": "tdann_small", "loss": "relative", "weight": 2.5, "steps": 3,
                                  "batch_size": 8, "lr": 0.002, "per_category": 4, "val_per_category": 2,
                                  "correlation_length_mm": 1.5, "arch_config": {"fc_units": [64, 64]},
                                  "category_frequency": {"faces": 3.0}}))
    path = tmp_path / "recipe.safetensors"
    # the recipe sets the run; options given on the command line override it
    code, out, _ = run(capsys, "train", "--recipe", str(recipe), "--weight", "1.5", "--seed", "2",
                       "--device", "cpu", "--checkpoint-every", "2", "--quiet", "--out", str(path))
    assert code == 0 and f"saved {path}" in out
    config = read_header(path)["meta"]["training"]["config"]
    assert (config["loss"], config["weight"], config["steps"], config["lr"], config["seed"]) == (
        "relative", 1.5, 3, 0.002, 2)
    assert config["arch_config"] == {"fc_units": [64, 64]} and config["category_frequency"] == {"faces": 3.0}
    assert config["checkpoint_every"] == 2 and config["val_per_category"] == 2
    code, _, err = run(capsys, "train", "--recipe", str(tmp_path / "absent.json"), "--out", str(tmp_path / "n.st"))
    assert code == 2 and "absent.json: not a readable training recipe" in err and len(err.strip().splitlines()) == 1


def test_train_resume_continues_an_interrupted_run_exactly(capsys, tmp_path):
    """`train --resume` from the command line ends with the weights of the uninterrupted run."""
    from topoviewer.model import drain
    from topoviewer.training import TrainConfig, train

    config = dict(steps=4, checkpoint_every=2, seed=5, per_category=4, val_per_category=2, batch_size=8,
                  device="cpu", arch_config={"fc_units": [64, 64]})
    full, cut = tmp_path / "full.safetensors", tmp_path / "cut.safetensors"
    drain(train(TrainConfig(**config), full))
    gen = train(TrainConfig(**config), cut)
    for _ in range(3):  # interrupted during step 3: the step-2 checkpoint stays behind
        next(gen)
    gen.close()
    assert read_header(cut)["training"]["step"] == 2
    # (the settings, --steps included, come from the checkpoint)
    code, out, _ = run(capsys, "train", "--resume", "--device", "cpu", "--quiet", "--out", str(cut))
    assert code == 0 and f"saved {cut}" in out
    header = read_header(cut)
    assert header["training"]["step"] == 4 and header["meta"]["training"]["steps"] == 4  # finished, extendable
    resumed, uninterrupted = load_tensors(cut, "net."), load_tensors(full, "net.")
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)


def test_figure(capsys, tiny_model_file, tmp_path):
    from PIL import Image

    png = tmp_path / "maps.png"
    code, out, _ = run(capsys, "figure", str(tiny_model_file), "--out", str(png), "--dpi", "60",
                       "--category", "bodies")
    assert code == 0 and out.strip() == f"wrote {png}"
    with Image.open(png) as im:
        assert im.format == "PNG" and abs(im.info["dpi"][0] - 60) < 1
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 10  # maps drawn, not a blank page
    svg = tmp_path / "maps.svg"
    assert run(capsys, "figure", str(tiny_model_file), "--out", str(svg))[0] == 0
    assert "<svg" in svg.read_text() and "bodies" not in svg.read_text()  # the default category is faces


def test_calibrate_json(capsys, tiny_model_file):
    code, out, _ = run(capsys, "calibrate", str(tiny_model_file), "--json", "--gain", "20")
    assert code == 0
    r = json.loads(out)
    # the threshold is the inversion of the fitted line at the neural threshold
    assert r["model_threshold"] == pytest.approx((0.65 - r["intercept"]) / r["slope"])
    assert r["layer"] == "fc6" and r["slope"] > 0


def test_analyze_a_toponet(capsys, tmp_path):
    """Channel-grid sheets (one unit per cell) get every map too."""
    from topoviewer.families import build
    from topoviewer.io import save_model

    path = tmp_path / "toponet.safetensors"
    save_model(build("toponet_small", {"widths": [8, 16, 32, 64]}), path)
    code, out, _ = run(capsys, "analyze", str(path), "--out", str(tmp_path / "res"), "--json")
    assert code == 0
    s = json.loads(out)["sheets"]["conv3"]
    assert s["units"] == 32 and len(s["purity_curve"]["purity"]) > 0
