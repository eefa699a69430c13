"""Training on image files, extending a finished run, --init, and data-parallel training (torchrun)."""

import numpy as np
import pytest
import torch
from PIL import Image

import topoviewer as tv
from topoviewer.cli import main
from topoviewer.data import ImageDataset, StepBatches, read_image_list
from topoviewer.io import load_tensors, read_header

CLASSES = ["cars", "faces", "trees"]


def _folder(root, per_class=6, corrupt=True):
    """A tiny image folder: colour PNG/JPEG of different sizes whose mean grey depends on the class."""
    rng = np.random.default_rng(0)
    for k, c in enumerate(CLASSES):
        d = root / c
        d.mkdir(parents=True)
        for i in range(per_class):
            a = rng.uniform(0, 0.4, (20 + 3 * i, 26, 3)) + 0.3 * k
            Image.fromarray((a * 255).astype(np.uint8)).save(d / (f"{i}.png" if i % 2 else f"{i}.jpg"))
    if corrupt:
        (root / "faces" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    return root


def _recipe(tmp_path, **extra):
    import json

    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"arch_config": {"input_size": 16, "widths": [4, 8], "fc_units": [32, 32]},
                                "device": "cpu", "val_per_category": 1, **extra}))
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("images"))


def test_training_on_an_image_folder_skips_a_corrupt_file(folder, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(folder), "--recipe", _recipe(tmp_path), "--steps", "4", "--batch-size", "8",
                 "--checkpoint-every", "2", "--workers", "1", "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable image(s)" in err and "truncated.jpg" in err
    model = tv.load(out)
    assert model.classes == CLASSES and model.in_channels == 1
    training = model.meta["training"]
    assert training["skipped_images"]["count"] == 1 and training["steps"] == 4
    assert "19 images in 3 classes; 16 for training, 3 held out" in model.meta["training_data"]
    from topoviewer.pipeline import analyze
    from topoviewer.stimuli import localizer

    analysis = analyze(model, localizer(size=32, per_category=4, seed=1))  # analyses like any other model
    assert set(analysis.sheets) == {"fc6", "fc7"} and analysis.responses["fc6"].shape == (len(analysis.labels), 32)


def test_an_empty_class_or_a_single_class_is_a_clear_error(tmp_path, capsys):
    data = _folder(tmp_path / "d", per_class=2, corrupt=False)
    (data / "zebras").mkdir()
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--data: class 'zebras' is empty" in capsys.readouterr().err
    listing = tmp_path / "list.txt"
    listing.write_text(f"# one class only\n{data / 'cars' / '0.jpg'}\n\n")
    assert main(["train", "--data", str(listing), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "expected at least 2 classes to classify, found 1" in capsys.readouterr().err


def test_a_file_list_names_images_and_classes(folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'cars' / '1.png'}\tvehicle\n{folder / 'trees' / '2.jpg'}\n")
    images = read_image_list(listing)
    assert images.classes == ["trees", "vehicle"] and images.labels.tolist() == [1, 0]


def test_batches_depend_only_on_seed_and_step(folder):
    """Each step's global batch is the same whatever the start step and the number of processes;
    the processes' slices make it up; an item's crop and flip depend only on its seed."""
    whole = StepBatches(15, 6, seed=4, start=0, stop=8)
    batches = list(whole)
    assert list(StepBatches(15, 6, seed=4, start=5, stop=8)) == batches[5:]
    halves = [StepBatches(15, 6, seed=4, start=0, stop=8, rank=r, world=2) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == batches
    epoch0 = [i for b in batches[:2] for i, _ in b] + [i for i, _ in batches[2][:3]]
    assert sorted(epoch0) == list(range(15))  # one epoch is a permutation of the images
    images = read_image_list(folder)
    ds = ImageDataset(images, np.arange(len(images)), 16, 1)
    first, again = ds[batches[3][0]], ds[batches[3][0]]
    assert torch.equal(first[0], again[0]) and first[0].shape == (1, 16, 16)
    assert not torch.equal(ds[(batches[3][0][0], (4, 9, 0))][0], first[0])  # another step: another crop


def test_a_finished_run_is_extended_and_changes_are_reported(folder, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    base = ["train", "--data", str(folder), "--recipe", _recipe(tmp_path), "--batch-size", "6", "--workers", "0",
            "--quiet", "--out", str(out)]
    assert main(base + ["--steps", "3"]) == 0
    finished = load_tensors(out, "net.")
    assert main(["train", "--resume", "--steps", "6", "--lr", "0.001", "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "steps 3 → 6; lr 0.003 → 0.001" in err
    header = read_header(out)
    assert header["training"]["step"] == 6 and header["training"]["config"]["lr"] == 0.001
    adam_steps = {int(v) for k, v in load_tensors(out, "optim.").items() if k.endswith(".step")}
    assert adam_steps == {6}  # the optimizer state went on from step 3, it was not restarted
    assert not torch.equal(load_tensors(out, "net.")["classifier.1.weight"], finished["classifier.1.weight"])
    assert main(["train", "--resume", "--steps", "9", "--arch", "toponet_small", "--out", str(out)]) == 2
    assert "--resume cannot change arch (the run's 'tdann_small', given 'toponet_small')" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert "stopped at step 6; pass --steps larger" in capsys.readouterr().err


def test_init_from_a_published_toponets_resnet18(folder, tmp_path):
    """--init takes a foreign checkpoint (a TopoNets ResNet-18 state dict, as test_foreign builds it):
    its trunk is kept, its 1000-class fc is replaced by one for the folder's classes."""
    from topoviewer.families.resnet import ResNetSheets

    torch.manual_seed(2)
    init = tmp_path / "all_topo_tau_10.0.pt"
    torch.save(ResNetSheets(18, True, "channel", [512, 1000]).state_dict(), init)
    out = tmp_path / "r18.safetensors"
    assert main(["train", "--data", str(folder), "--init", str(init), "--loss", "topoloss", "--steps", "1",
                 "--batch-size", "2", "--optimizer", "sgd", "--lr", "1e-7", "--val-per-category", "0",
                 "--workers", "0", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    model = tv.load(out)
    assert model.arch == "resnet" and model.classes == CLASSES and model.net.fc.out_features == 3
    assert model.meta["init"]["fresh"] == ["fc.bias", "fc.weight"]
    start = torch.load(init, weights_only=True)
    trained = model.net.state_dict()
    torch.testing.assert_close(trained["layer3.0.conv2.weight"], start["layer3.0.conv2.weight"], rtol=0, atol=1e-5)
    assert not torch.equal(trained["layer3.0.conv2.weight"], start["layer3.0.conv2.weight"])


def test_a_tdann_resnet18_trains_from_scratch_on_a_folder(folder, tmp_path):
    """--arch resnet from fresh weights: the TDANN's retinotopic starting layout on every block, the relative
    spatial loss over all eight sheets, a head for the folder's classes; the file opens and analyses."""
    import json

    from topoviewer.families.resnet import block_dims
    from topoviewer.positions import retinotopic_positions

    recipe = tmp_path / "r18.json"
    recipe.write_text(json.dumps({"arch": "resnet", "arch_config": {"input_size": 32, "widths": [4, 8, 8, 16]},
                                  "loss": "relative", "weight": 1.0, "device": "cpu", "val_per_category": 1}))
    out = tmp_path / "r18.safetensors"
    assert main(["train", "--data", str(folder), "--recipe", str(recipe), "--steps", "1", "--batch-size", "8",
                 "--workers", "0", "--quiet", "--out", str(out)]) == 0
    model = tv.load(out)
    assert model.arch == "resnet" and model.classes == CLASSES and model.net.fc.out_features == 3
    assert np.isfinite(model.meta["training"]["val_accuracy"])
    dims = block_dims(18, 32, [4, 8, 8, 16])
    assert len(model.sheets) == 8
    for k, sheet in enumerate(model.sheets):
        np.testing.assert_array_equal(sheet.positions, retinotopic_positions(dims[sheet.name], 10.0, seed=k))
    responses = model.responses(np.random.default_rng(0).random((3, 40, 40)).astype(np.float32))
    assert responses["layer4.1"].shape == (3, int(np.prod(dims["layer4.1"])))


def test_the_diet_at_full_resolution_is_refused_before_it_is_drawn(tmp_path, capsys):
    assert main(["train", "--arch", "resnet", "--steps", "1", "--device", "cpu", "--quiet",
                 "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("topoviewer: error: the procedural diet at 224 px (500 images × 21 categories) would take")
    assert "GiB in memory" in err and "--data DIR" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()


@pytest.fixture(scope="module")
def one_process(folder, tmp_path_factory):
    """The reference of the data-parallel tests: 1 process, global batch 8, 20 steps, float64 (float32
    rounding differences grow chaotically through the correlations of near-silent units), the
    learning rate warming up over the first 10 steps. Returns the run's arguments and its file."""
    tmp = tmp_path_factory.mktemp("one_process")
    args = ["train", "--data", str(folder), "--recipe", _recipe(tmp, optimizer="sgd", lr=0.05, precision="float64"),
            "--loss", "absolute", "--weight", "1", "--batch-size", "8", "--checkpoint-every", "20", "--workers", "0",
            "--quiet"]
    out = tmp / "one.safetensors"
    assert main(args + ["--steps", "20", "--warmup", "0.5", "--out", str(out)]) == 0
    return args, load_tensors(out, "net.")


def _max_difference(one, other):
    assert one.keys() == other.keys()
    return max(float((one[k].double() - other[k].double()).abs().max()) for k in one)


def test_two_gloo_processes_train_like_one(one_process, tmp_path):
    """torchrun with 2 processes and global batch 8 gives the weights of 1 process with batch 8 after
    20 steps: gradients averaged, batch norm and the spatial loss over the global batch."""
    args, one = one_process
    assert main(args + ["--steps", "20", "--warmup", "0.5", "--nproc", "2", "--out", str(tmp_path / "two.safetensors")]) == 0
    two = load_tensors(tmp_path / "two.safetensors", "net.")
    from topoviewer.families import build

    torch.manual_seed(0)  # the runs' initial weights (seed 0)
    start = build("tdann_small", {"input_size": 16, "widths": [4, 8], "fc_units": [32, 32], "n_classes": 3}).net
    worst = _max_difference(one, two)
    moved = max(float((one[k].double() - v.double()).abs().max()) for k, v in start.state_dict().items()
                if v.is_floating_point())
    assert worst <= 1e-5 < 1e-2 < moved, (worst, moved)


def test_a_run_of_two_processes_continues_in_one(one_process, tmp_path, capsys):
    """10 steps on 2 gloo processes, then --resume in 1 process to step 20, give the weights of the
    uninterrupted 1-process run (float64, ≤ 1e-5 as above): every step's global batch, seeds and
    learning rate are the same on any number of processes. The resumed run says the world size
    changed. (The first part runs 10 steps with the whole run's schedule: warm-up over all its 10
    steps, i.e. the reference's warm-up over 10 of 20; the resume sets --warmup 0.5 back.)"""
    args, one = one_process
    out = tmp_path / "part.safetensors"
    assert main(args + ["--steps", "10", "--warmup", "1", "--nproc", "2", "--out", str(out)]) == 0
    assert read_header(out)["training"]["world_size"] == 2 and read_header(out)["training"]["step"] == 10
    capsys.readouterr()
    assert main(["train", "--resume", "--steps", "20", "--warmup", "0.5", "--quiet", "--out", str(out)]) == 0
    assert "with changed settings: steps 10 → 20; warmup 1.0 → 0.5; world size 2 → 1" in capsys.readouterr().err
    assert read_header(out)["training"]["world_size"] == 1
    assert _max_difference(one, load_tensors(out, "net.")) <= 1e-5
