"""Hostile inputs through the CLI (issue 13): every one ends in one line, never a traceback.

Each case asserts: the exit code (2 for a user mistake), exactly one stderr line starting
``topoviewer: error:`` that names what was expected, no ``Traceback``, and that the files
already in the working folder are byte-for-byte unchanged with no debris (temporary or
lock files, half-written outputs) left behind.

Argument-type errors are printed by argparse (its usage block is being reduced to one
line separately); for them the last stderr line is checked.

``python tests/test_fuzz.py`` regenerates docs/errors.md from the CASES table.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from topoviewer.cli import main

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- helpers
def snapshot(folder: Path) -> dict:
    """{relative path: sha1} of every file under ``folder`` (FIFOs and folders by kind)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_fifo():
            out[rel] = "fifo"
        elif p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def run_cli(capsys, argv):
    """(exit code, stdout, stderr) of ``topoviewer argv``; argparse's SystemExit included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, argparse_ok: bool = False) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if argparse_ok and len(lines) > 1 and lines[0].startswith("usage:"):
        return lines[-1]
    assert len(lines) == 1, err
    assert lines[0].startswith("topoviewer: error:"), err
    return lines[0]


def save_tiny(path: Path, header_edit=None, tensors_edit=None):
    """A tiny own-format model; ``header_edit(header)`` / ``tensors_edit(tensors)`` mutate it."""
    from safetensors.torch import save_file

    from topoviewer.families import build
    from topoviewer.io import save_model

    import torch

    torch.manual_seed(0)
    save_model(build("tdann_small", {"fc_units": [64, 64]}), path)
    if header_edit is None and tensors_edit is None:
        return path
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["topoviewer"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if header_edit is not None:
        header = header_edit(header)
    if tensors_edit is not None:
        tensors_edit(tensors)
    text = header if isinstance(header, str) else json.dumps(header)
    save_file(tensors, str(path), metadata={"topoviewer": text})
    return path


def _set(path, value):
    def edit(h):
        node = h
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return h

    return edit


def _drop(key):
    def edit(h):
        h.pop(key)
        return h

    return edit


def _png(path: Path, value=128, size=8):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8)).save(path)


def _stimuli(root: Path, categories):
    for c in categories:
        for i in range(2):
            _png(root / c / f"{i}.png", 40 + 60 * i)
    return root


# ---------------------------------------------------------------------------- the table
# (id, what the user did, setup, argv, exit code, expected text in the one line).
# setup(work) prepares files in the working folder; argv may use {model} (a valid tiny model)
# and {work}. Everything present before the call must be unchanged after it.
def _bad_model(**kw):
    return lambda work: save_tiny(work / "bad.safetensors", **kw)


def _text_pt(work):
    (work / "notes.pt").write_text("hello, I am not a checkpoint\n" * 5)


def _fifo(work):
    os.mkfifo(work / "pipe.safetensors")


def _empty(work):
    (work / "empty.safetensors").write_bytes(b"")


def _notes(work):
    (work / "notes.txt").write_text("my notes")


def _picture(work):
    _png(work / "thesis.png", 7)


def _folder_out(work):
    (work / "out.safetensors").mkdir()


def _foreign_summary(work):
    (work / "res").mkdir()
    (work / "res" / "summary.json").write_text('{"mine": true}')


def _one_category(work):
    _stimuli(work / "stim", ["faces"])


def _no_faces(work):
    _stimuli(work / "stim", ["cars", "houses"])


def _empty_category(work):
    _stimuli(work / "stim", ["faces"])
    (work / "stim" / "cars").mkdir()


def _non_utf8(work):
    _stimuli(work / "stim", ["faces"])
    os.mkdir(os.fsencode(work / "stim") + b"/caf\xe9")
    _png(Path(os.fsdecode(os.fsencode(work / "stim") + b"/caf\xe9/0.png")))


def _stale_lock(work):
    (work / "m.safetensors.lock").write_text("")


def _tdann_skeleton(path: Path, depth: int = 18) -> Path:
    """A VISSL checkpoint with the TDANN trunk's key layout but one value per output channel: detected as a
    TDANN and refused for its positions before any weight is used."""
    import torch

    from topoviewer.families.resnet import ResNetSheets

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in ResNetSheets(depth).state_dict().items()}
    trunk = {f"base_model.{k}": torch.zeros(tuple(sh[:1]) + (1,) * (len(sh) - 1)) for k, sh in shapes.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": {}}}}}, path)
    return path


CKPT = "model_final_checkpoint_phase199.torch"
ECOSET = "simclr_spatial_resnet18_fuzzy_swappedon_SineGrating2019_ecoset_checkpoints"


def _version_float(work):
    _tdann_skeleton(work / "run" / CKPT)
    (work / "pos").mkdir()
    (work / "pos" / "version.txt").write_text("2.0\n")


def _two_positions_folders(work):
    _tdann_skeleton(work / "run" / CKPT)
    for name in ("a_NBVER2", "b_NBVER2"):
        (work / "positions" / name).mkdir(parents=True)
        np.savez(work / "positions" / name / "layer1.0.npz", coordinates=np.zeros((1, 2)))


def _paired_missing(work):
    _tdann_skeleton(work / "checkpoints" / ECOSET / CKPT)


def _resnet50_folder(work):
    _tdann_skeleton(work / "rn50" / CKPT, depth=50)
    (work / "pos").mkdir()


LONG = "a" * 240 + ".safetensors"
TRAIN = ["train", "--steps", "2", "--per-category", "4", "--batch-size", "8", "--device", "cpu", "--quiet"]

CASES = [
    # ---- own-format metadata
    ("header-list", "the topoviewer header is a JSON list", _bad_model(header_edit=lambda h: [h]),
     ["info", "bad.safetensors"], 2, "expected format 'topoviewer-model', found 'list'"),
    ("header-no-sheets", "the header has no 'sheets'", _bad_model(header_edit=_drop("sheets")),
     ["info", "bad.safetensors"], 2, "has no 'sheets' entry"),
    ("header-classes-int", "'classes' is a number", _bad_model(header_edit=_set(["classes"], 3)),
     ["info", "bad.safetensors"], 2, "'classes' must be a list of names"),
    ("header-extent-string", "a sheet's 'extent_mm' is a string",
     _bad_model(header_edit=_set(["sheets", 0, "extent_mm"], "10 mm")),
     ["info", "bad.safetensors"], 2, "'extent_mm' must be two positive numbers"),
    ("header-input-size-0", "config 'input_size' is 0", _bad_model(header_edit=_set(["config", "input_size"], 0)),
     ["info", "bad.safetensors"], 2, "'input_size' must be an integer in 1..4096"),
    ("header-huge-layer", "config asks for 10⁷-unit layers (40 TB)",
     _bad_model(header_edit=_set(["config", "fc_units"], [10**7, 10**7])),
     ["info", "bad.safetensors"], 2, "parameters; at most 2,000,000,000"),
    ("header-wrong-size", "config layer sizes differ from the stored weights",
     _bad_model(header_edit=_set(["config", "fc_units"], [32, 64])),
     ["info", "bad.safetensors"], 2, "weights do not fit architecture 'tdann_small'"),
    ("header-bad-config-type", "config 'widths' is a string",
     _bad_model(header_edit=_set(["config", "widths"], "wide")),
     ["info", "bad.safetensors"], 2, "config cannot be built"),
    ("header-unknown-arch", "an unknown architecture", _bad_model(header_edit=_set(["arch"], "gpt9")),
     ["info", "bad.safetensors"], 2, "unknown architecture 'gpt9'"),
    ("header-not-json", "the header is not JSON", _bad_model(header_edit=lambda h: "{oops"),
     ["info", "bad.safetensors"], 2, "corrupt topoviewer header"),
    ("weights-int32", "a weight stored as int32 (loaded silently as garbage before)",
     _bad_model(tensors_edit=lambda t: t.update({"net.classifier.4.weight": t["net.classifier.4.weight"].int()})),
     ["info", "bad.safetensors"], 2, "weight 'classifier.4.weight' is stored as I32; expected floating point"),
    ("missing-positions", "a sheet's positions tensor is missing",
     _bad_model(tensors_edit=lambda t: t.pop("positions.fc7")),
     ["info", "bad.safetensors"], 2, "positions of sheet 'fc7' are missing"),
    # ---- files
    ("text-as-pt", "a text file named .pt", _text_pt, ["info", "notes.pt"], 2,
     "is not a readable PyTorch checkpoint"),
    ("fifo-model", "a FIFO given as the model (used to hang)", _fifo, ["info", "pipe.safetensors"], 2,
     "is not a regular file"),
    ("folder-model", "a folder given as the model", None, ["info", "{work}"], 2, "is a folder"),
    ("empty-model", "an empty model file", _empty, ["info", "empty.safetensors"], 2, "empty or truncated"),
    ("missing-model", "a missing model file", None, ["info", "nope.safetensors"], 2, "no such file"),
    # ---- published files (TDANN) read as the authors' code reads them
    ("positions-version-float", "a positions folder whose version.txt says 2.0 (int() of it fails)",
     _version_float, ["info", f"run/{CKPT}", "--positions", "pos"], 2,
     "version.txt: expected one integer on the first line"),
    ("positions-ambiguous", "two positions folders next to a checkpoint the authors' configs do not name",
     _two_positions_folders, ["info", f"run/{CKPT}"], 2,
     "2 positions folders could belong to this checkpoint"),
    ("positions-paired-missing", "the SimCLR-ecoset checkpoint without its (supervised) positions folder",
     _paired_missing, ["info", f"checkpoints/{ECOSET}/{CKPT}"], 2,
     "with the positions folder positions/supervised_resnet18/"),
    ("resnet50-paper-scale", "--scale paper for ResNet-50 positions (the factors cover ResNet-18 blocks)",
     _resnet50_folder, ["info", f"rn50/{CKPT}", "--positions", "pos", "--scale", "paper"], 2,
     "ResNet-50 positions have no paper scale"),
    # ---- outputs: never lose a user's file
    ("train-over-notes", "train --out over a text file", _notes, [*TRAIN, "--out", "notes.txt"], 2,
     "already exists and is not this command's own output; pass --force"),
    ("train-over-model", "train --out over a finished model", lambda w: save_tiny(w / "m.safetensors"),
     [*TRAIN, "--out", "m.safetensors"], 2, "it is a topoviewer model: to continue its run pass --resume"),
    ("figure-over-picture", "figure --out over an existing picture", _picture,
     ["figure", "{model}", "--out", "thesis.png"], 2, "--out thesis.png already exists"),
    ("figure-bad-suffix", "figure --out with an unknown suffix", None,
     ["figure", "{model}", "--out", "fig.txt"], 2,
     "unknown file type '.txt'; valid suffixes are .png, .svg, .pdf, or .html"),
    ("share-over-notes", "share --out over a text file", _notes,
     ["share", "{model}", "--out", "notes.txt"], 2, "--out notes.txt already exists"),
    ("share-bad-suffix", "share --out not an HTML file", None,
     ["share", "{model}", "--out", "page.txt"], 2, "expected a name ending in .html, got 'page.txt'"),
    ("share-images-missing", "share --images naming a missing folder", None,
     ["share", "{model}", "--images", "pics", "--out", "p.html"], 2, "--images expects a folder of pictures"),
    ("share-images-empty", "share --images naming a folder without pictures", lambda w: (w / "pics").mkdir(),
     ["share", "{model}", "--images", "pics", "--out", "p.html"], 2, "holds no pictures (expected files ending in"),
    ("analyze-foreign-summary", "analyze --out over a folder with someone else's summary.json", _foreign_summary,
     ["analyze", "{model}", "--out", "res"], 2, "summary.json already exists"),
    ("analyze-out-is-file", "analyze --out naming a file", _notes,
     ["analyze", "{model}", "--out", "notes.txt"], 2, "exists and is not a folder"),
    ("out-is-folder", "train --out naming a folder", _folder_out, [*TRAIN, "--out", "out.safetensors"], 2,
     "is a folder; expected a file name"),
    ("out-under-file", "train --out under a file", _notes, [*TRAIN, "--out", "notes.txt/m.safetensors"], 2,
     "is not a folder, so nothing can be written under it"),
    ("out-empty", "train --out ''", None, [*TRAIN, "--out", ""], 2, "expected a file path, got an empty string"),
    ("out-name-too-long", "a 252-byte --out name (the temporary name would exceed 255)", None,
     [*TRAIN, "--out", LONG], 2, "at most 241 bytes are allowed"),
    ("resume-missing", "train --resume without a checkpoint", None,
     [*TRAIN, "--resume", "--out", "none.safetensors"], 2, "no checkpoint at"),
    ("resume-finished", "train --resume on a finished model", lambda w: save_tiny(w / "m.safetensors"),
     [*TRAIN, "--resume", "--out", "m.safetensors"], 2, "finished model without training state"),
    # ---- stimulus folders
    ("stimuli-one-category", "a stimulus folder with one category", _one_category,
     ["analyze", "{model}", "--stimuli", "stim", "--out", "res"], 2, "needs at least 2 categories"),
    ("stimuli-no-faces", "figure on a stimulus folder without faces", _no_faces,
     ["figure", "{model}", "--stimuli", "stim", "--out", "f.png"], 2, "needs the category faces"),
    ("stimuli-empty-category", "an empty category folder", _empty_category,
     ["analyze", "{model}", "--stimuli", "stim", "--out", "res"], 2, "has no images"),
    ("stimuli-non-utf8", "a category folder whose name is not UTF-8", _non_utf8,
     ["analyze", "{model}", "--stimuli", "stim", "--out", "res"], 2, "is not valid UTF-8; rename it"),
    ("stimuli-is-file", "--stimuli naming a file", _notes,
     ["analyze", "{model}", "--stimuli", "notes.txt", "--out", "res"], 2, "expected a stimulus folder"),
    ("gratings-null", "the spatial null on gratings", None,
     ["analyze", "{model}", "--stimuli", "gratings", "--null", "5", "--out", "res"], 2, "apply to category stimuli"),
    # ---- resources
    ("voxel-tiny", "analyze --voxel 0.01 on a 10 mm sheet (14 GB before)", None,
     ["analyze", "{model}", "--voxel", "0.01", "--out", "res"], 2, "at most 65,536 (MAX_VOXELS)"),
    # ---- arguments (argparse reports these; the last line is checked)
    ("seed-negative", "--seed -1", None, ["stimulate", "{model}", "--at", "5", "5", "--seed=-1"], 2,
     "expected a number ≥ 0 and ≤ 4294967295"),
    ("seed-2-64", "--seed 2⁶⁴", None, [*TRAIN, "--seed", str(2**64), "--out", "x.safetensors"], 2,
     "expected a number ≥ 0 and ≤ 4294967295"),
    ("device-mps", "--device mps", None, ["info", "{model}", "--device", "mps"], 2,
     "expected auto, cpu, cuda or cuda:N, got 'mps'"),
    ("device-cpu-abc", "--device cpu:abc", None, ["info", "{model}", "--device", "cpu:abc"], 2,
     "expected auto, cpu, cuda or cuda:N"),
    ("radius-nan", "--radius-mm nan", None, ["stimulate", "{model}", "--at", "5", "5", "--radius-mm", "nan"], 2,
     "argument --radius-mm: expected a finite number"),
    ("radius-zero", "--radius-mm 0", None, ["stimulate", "{model}", "--at", "5", "5", "--radius-mm", "0"], 2,
     "expected a number > 0"),
    ("at-inf", "--at inf 5", None, ["stimulate", "{model}", "--at", "inf", "5"], 2, "expected a finite number"),
    ("fwhm-nan", "--fwhm nan", None, ["analyze", "{model}", "--fwhm", "nan"], 2, "expected a finite number"),
    ("voxel-negative", "--voxel -1", None, ["analyze", "{model}", "--voxel=-1"], 2, "expected a number > 0"),
    ("fov-deg-zero", "analyze --stimuli gratings --fov-deg 0", None,
     ["analyze", "{model}", "--stimuli", "gratings", "--fov-deg", "0"], 2, "expected a number > 0 and ≤ 360"),
    ("dpi-huge", "figure --dpi 100000 (MemoryError before)", None,
     ["figure", "{model}", "--dpi", "100000", "--out", "f.png"], 2, "≤ 2400"),
    ("threshold-nan", "--threshold nan", None, ["analyze", "{model}", "--threshold", "nan"], 2,
     "expected a finite number or 'calibrated'"),
    ("neural-threshold-nan", "calibrate --neural-threshold nan", None,
     ["calibrate", "{model}", "--neural-threshold", "nan"], 2, "expected a finite number"),
    ("null-negative", "--null -5", None, ["analyze", "{model}", "--null=-5"], 2, "expected a number ≥ 0"),
    ("steps-zero", "train --steps 0", None, [*TRAIN[:1], "--steps", "0", "--out", "x.safetensors"], 2,
     "expected a number ≥ 1"),
    ("lr-nan", "train --lr nan", None, [*TRAIN, "--lr", "nan", "--out", "x.safetensors"], 2,
     "expected a finite number"),
]

# Cases whose files are made for the table but stay after the call (the refused output is not there).
ARGPARSE = {c[0] for c in CASES if c[0].startswith(("seed-", "device-", "radius-", "at-", "fwhm-", "voxel-negative", "fov-",
                                                   "dpi-", "threshold-", "neural-", "null-", "steps-", "lr-"))}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("fuzz-model") / "tiny.safetensors")


def run_case(case, work: Path, model: Path, capsys):
    cid, _what, setup, argv, code, expected = case
    if setup is not None:
        setup(work)
    before = snapshot(work)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        got, _out, err = run_cli(capsys, [a.format(model=model, work=work) for a in argv])
    finally:
        os.chdir(cwd)
    return got, err, before, snapshot(work)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line(case, model_file, tmp_path, capsys):
    cid, _what, _setup, _argv, code, expected = case
    got, err, before, after = run_case(case, tmp_path, model_file, capsys)
    line = one_error_line(err, argparse_ok=cid in ARGPARSE)
    assert got == code, err
    assert expected in line, line
    assert after == before, "files changed or debris left behind"


# ---------------------------------------------------------------------------- property-based
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# CI runs a quick profile; TOPOVIEWER_FUZZ=deep runs ten times more examples.
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("deep", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ = settings.get_profile(os.environ.get("TOPOVIEWER_FUZZ", "ci"))

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
HEADER_FIELDS = [
    ["name"], ["arch"], ["config"], ["classes"], ["sheets"], ["meta"], ["sheets", 0], ["sheets", 0, "name"],
    ["sheets", 0, "extent_mm"], ["sheets", 0, "origin_mm"], ["sheets", 0, "grid_shape"], ["sheets", 1, "label"],
    ["config", "fc_units"], ["config", "widths"], ["config", "input_size"], ["config", "in_channels"],
    ["config", "pooled"], ["config", "n_classes"], ["config", "extent_mm"],
]


@FUZZ
@given(field=st.sampled_from(HEADER_FIELDS), value=JSON_VALUES)
def test_any_one_field_header_edit(field, value, model_file, tmp_path_factory, capsys):
    """Replacing any one header field by any JSON value: the file opens (exit 0) or one line (exit 2)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model_file), framework="pt") as f:
        header = json.loads(f.metadata()["topoviewer"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    _set(field, value)(header)
    path = tmp_path_factory.mktemp("h") / "m.safetensors"
    save_file(tensors, str(path), metadata={"topoviewer": json.dumps(header)})
    code, out, err = run_cli(capsys, ["info", path, "--json"])
    if code == 0:
        json.loads(out)
        assert err == ""
    else:
        assert code == 2, err
        one_error_line(err)


@FUZZ
@given(data=st.binary(min_size=0, max_size=300), suffix=st.sampled_from([".pt", ".safetensors", ".ckpt"]))
def test_random_bytes_as_model(data, suffix, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("b") / f"m{suffix}"
    path.write_bytes(data)
    code, _out, err = run_cli(capsys, ["info", path])
    assert code == 2, err
    one_error_line(err)


@FUZZ
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10**9), byte=st.integers(0, 255))
def test_damaged_torch_checkpoint(cut, flip, byte, tmp_path_factory, capsys):
    """Truncated or bit-flipped zip checkpoints (19 uncaught KeyError/IndexError before)."""
    import torch

    folder = tmp_path_factory.mktemp("pt")
    path = folder / "m.pt"
    torch.save({"state_dict": {"w": torch.zeros(4, 4)}}, path)
    data = bytearray(path.read_bytes())
    data = data[: max(8, len(data) - cut)]
    data[flip % len(data)] = byte
    path.write_bytes(bytes(data))
    code, _out, err = run_cli(capsys, ["info", path])
    assert code == 2, err
    one_error_line(err)


# ---------------------------------------------------------------------------- positions
def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


POSITION_CASES = [
    ("dims-strings", dict(coordinates=np.random.default_rng(0).uniform(0, 10, (8, 2)), dims=np.array(["a", "b"])),
     "'dims' must be positive integers"),
    ("dims-zero", dict(coordinates=np.random.default_rng(0).uniform(0, 10, (8, 2)), dims=np.array([0, 2, 4])),
     "'dims' must be positive integers"),
    ("width-string", dict(coordinates=np.random.default_rng(0).uniform(0, 10, (8, 2)),
                          neighborhood_width=np.array("wide")), "neighborhood_width: expected a number"),
    ("coords-1e299", dict(coordinates=np.full((8, 2), 1e299) * np.arange(8)[:, None]),
     "expected millimetres with |x|, |y| ≤ 10000"),
    ("coords-negative-huge", dict(coordinates=-np.arange(16.0).reshape(8, 2) * 1e8),
     "expected millimetres with |x|, |y| ≤ 10000"),
    ("coords-micrometres", dict(coordinates=np.random.default_rng(0).uniform(0, 9000, (8, 2))),
     "expected a sheet between 0.001 and 1000 mm (micrometres? divide by 1000)"),
    ("coords-nanometre-sheet", dict(coordinates=np.random.default_rng(0).uniform(0, 1e-9, (8, 2))),
     "expected a sheet between 0.001 and 1000 mm"),
    ("coords-all-duplicate", dict(coordinates=np.ones((8, 2))), "all 8 units are at the same position"),
    ("coords-strings", dict(coordinates=np.array([["a", "b"]] * 8)), "coordinates must be numbers"),
    ("coords-shape", dict(coordinates=np.zeros((8, 3))), "must be an (N, 2) array"),
    ("coords-nan", dict(coordinates=np.full((8, 2), np.nan)), "NaN or infinity"),
]


@pytest.mark.parametrize("arrays, expected", [c[1:] for c in POSITION_CASES], ids=[c[0] for c in POSITION_CASES])
def test_bad_positions(arrays, expected, tmp_path):
    from topoviewer import TopoviewerError
    from topoviewer.positions import load_positions

    path = _npz(tmp_path / "layer1.0.npz", **arrays)
    with pytest.raises(TopoviewerError) as info:
        load_positions(path, ["layer1.0"])
    assert expected in str(info.value) and "\n" not in str(info.value)


@FUZZ
@given(coords=st.lists(st.tuples(st.floats(), st.floats()), min_size=1, max_size=6),
       dims=st.one_of(st.none(), st.lists(st.integers(-3, 10**10), max_size=4)))
def test_any_positions_file(coords, dims, tmp_path_factory):
    """Any coordinates (NaN, inf, 1e308, one point…) and dims: loaded within the rules or one-line refusal."""
    from topoviewer import TopoviewerError
    from topoviewer.positions import load_positions

    path = tmp_path_factory.mktemp("p") / "layer1.0.npz"
    arrays = {"coordinates": np.array(coords, dtype=np.float64)}
    if dims is not None:
        arrays["dims"] = np.array(dims, dtype=np.int64)
    np.savez(path, **arrays)
    try:
        lp = load_positions(path, ["layer1.0"])[0]["layer1.0"]
    except TopoviewerError as exc:
        assert "\n" not in str(exc)
        return
    span = np.ptp(lp.coordinates, axis=0).max()
    assert np.isfinite(lp.coordinates).all() and 1e-3 <= span <= 1000 and np.abs(lp.coordinates).max() <= 1e4


def test_bad_positions_pickle(tmp_path, fake_spacetorch):
    import pickle

    from topoviewer import TopoviewerError
    from topoviewer.positions import load_positions

    lp_cls = fake_spacetorch()
    path = tmp_path / "layer1.0.pkl"
    path.write_bytes(pickle.dumps(lp_cls("layer1.0", "abc", np.ones((4, 2)) * np.arange(4)[:, None], None, 1.0)))
    with pytest.raises(TopoviewerError, match="'dims' must be positive integers"):
        load_positions(path, ["layer1.0"])


def test_voxel_weight_guard():
    """Many units under a wide Gaussian: refused by the weight count, before anything is built."""
    from topoviewer import TopoviewerError
    from topoviewer.sheet import Sheet
    from topoviewer.validate import voxel_grid

    sheet = Sheet.uniform("big", 200_000, (10.0, 10.0))
    voxel_grid(sheet, 0.5, 2.0)  # the defaults pass
    with pytest.raises(TopoviewerError, match=r"needs about 8,000,000,000 voxel weights .*\(MAX_VOXEL_WEIGHTS\)"):
        voxel_grid(sheet, 0.05, 500.0)


def test_positions_declaring_huge_arrays_are_refused_before_reading(tmp_path):
    """A tiny .npz whose header declares 16 GB, and a 20-byte pickle asking for bytearray(10**10)."""
    import io
    import zipfile

    from topoviewer import TopoviewerError
    from topoviewer.positions import load_positions

    path = tmp_path / "layer1.0.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 2)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("coordinates.npy", header.getvalue() + bytes(64))
    with pytest.raises(TopoviewerError, match="declares 16,000,000,000 bytes; at most MAX_ARRAY_BYTES"):
        load_positions(path, ["layer1.0"])
    pkl = tmp_path / "layer1.0.pkl"
    pkl.write_bytes(b"cbuiltins\nbytearray\n(\x8a\x05\x00\xe4\x0bT\x02tR.")
    with pytest.raises(TopoviewerError, match=r"refused bytearray\(10,000,000,000\)"):
        load_positions(pkl, ["layer1.0"])


def test_gpt_neo_is_refused_by_name(tmp_path, capsys):
    """A GPT-Neo state dict (HuggingFace names) shares nanoGPT's MLP keys: it was opened as NanoGPT."""
    import torch

    sd = {"transformer.wte.weight": torch.zeros(8, 4), "transformer.wpe.weight": torch.zeros(8, 4)}
    for i in range(2):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[f"transformer.h.{i}.attn.attention.{proj}.weight"] = torch.zeros(4, 4)
        sd[f"transformer.h.{i}.mlp.c_fc.weight"] = torch.zeros(16, 4)
        sd[f"transformer.h.{i}.mlp.c_proj.weight"] = torch.zeros(4, 16)
    path = tmp_path / "gpt_neo_125m_topo.pt"
    torch.save(sd, path)
    code, _o, err = run_cli(capsys, ["info", path])
    assert code == 2 and "is a GPT-Neo" in one_error_line(err) and "nanoGPT TopoNets" in err


# ---------------------------------------------------------------------------- outputs and training
def _hold_lock(path):
    from topoviewer.validate import output_lock

    return output_lock(path)


def test_second_writer_is_refused(tmp_path, capsys):
    out = tmp_path / "same.safetensors"
    with _hold_lock(out):
        before = snapshot(tmp_path)
        code, _o, err = run_cli(capsys, [*TRAIN, "--out", out])
        assert snapshot(tmp_path) == before
    assert code == 2 and "another topoviewer run is writing" in one_error_line(err)
    assert not (tmp_path / "same.safetensors.lock").exists()


def test_too_little_free_space_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    code, _o, err = run_cli(capsys, [*TRAIN, "--out", tmp_path / "m.safetensors"])
    assert code == 2 and "MB free; about" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_and_stale_tmp_is_removed(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("my notes")
    stale = tmp_path / ".notes.txt.abcd1234.tmp"
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / ".other.safetensors.abcd1234.tmp"  # another output's temp file: not touched
    other.write_bytes(b"y")
    code, out_text, err = run_cli(capsys, [*TRAIN, "--out", out, "--force"])
    assert code == 0, err
    assert "saved" in out_text and not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.safetensors.abcd1234.tmp", "notes.txt"]
    from topoviewer.io import load

    assert load(out).sheet_names == ["fc6", "fc7"]


def test_analyze_reruns_over_its_own_output(tmp_path, model_file, capsys):
    res = tmp_path / "res"
    for _ in range(2):
        code, _o, err = run_cli(capsys, ["analyze", model_file, "--out", res, "--json"])
        assert code == 0, err
    assert sorted(p.name for p in res.iterdir()) == ["fc6.npz", "fc7.npz", "summary.json"]


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    """A 6-step run (checkpoint every 2) abandoned after step 3: its file holds the step-2 checkpoint."""
    from topoviewer.training import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "run.safetensors"
    cfg = TrainConfig(steps=6, per_category=4, val_per_category=1, batch_size=8, checkpoint_every=2,
                      device="cpu", arch_config={"fc_units": [64, 64]})
    gen = train(cfg, out)
    for _ in range(3):
        next(gen)
    gen.close()
    return out.read_bytes()


@pytest.fixture
def checkpoint(tmp_path, checkpoint_bytes):
    out = tmp_path / "run.safetensors"
    out.write_bytes(checkpoint_bytes)
    return out


def test_resume_continues_the_runs_own_steps(checkpoint, capsys):
    out = checkpoint
    code, _o, err = run_cli(capsys, [*TRAIN[:1], "--resume", "--device", "cpu", "--quiet", "--out", out])
    assert code == 0, err
    from topoviewer.io import read_header

    training = read_header(out)["meta"]["training"]
    assert training["steps"] == 6 and training["config"]["steps"] == 6  # not the default 2000


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t["config"].update(colour="blue"), "unknown training config key(s) colour"),
    (lambda t: t.pop("optimizer"), "the optimizer state is missing"),
    (lambda t: t.update(step="three"), "training 'step' must be a non-negative integer"),
    (lambda t: t["config"].update(steps="many"), "the stored training config is damaged"),
    (lambda t: t.update(world_size=0), "training 'world_size' must be a positive integer, found 0"),
], ids=["unknown-key", "no-optimizer", "step-string", "steps-string", "world-size-zero"])
def test_tampered_resume_state(edit, expected, checkpoint, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = checkpoint
    with safe_open(str(out), framework="pt") as f:
        header = json.loads(f.metadata()["topoviewer"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(header["training"])
    save_file(tensors, str(out), metadata={"topoviewer": json.dumps(header)})
    before = snapshot(tmp_path)
    code, _o, err = run_cli(capsys, [*TRAIN[:1], "--resume", "--device", "cpu", "--quiet", "--out", out])
    assert code == 2 and expected in one_error_line(err)
    assert snapshot(tmp_path) == before


def test_resume_without_optimizer_tensors(checkpoint, capsys):
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = checkpoint
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optim.")}
    save_file(tensors, str(out), metadata=meta)
    code, _o, err = run_cli(capsys, [*TRAIN[:1], "--resume", "--device", "cpu", "--quiet", "--out", out])
    assert code == 2 and "has no optimizer tensors" in one_error_line(err)


# ---------------------------------------------------------------------------- subprocesses: signals, disk full
TRAIN_SUB = ["train", "--per-category", "4", "--batch-size", "8", "--device", "cpu", "--quiet"]
CHILD = (
    "import sys, resource\n"
    "limit = int(sys.argv[1])\n"
    "if limit: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "import torch; torch.set_num_threads(1)\n"
    "from topoviewer.cli import main\n"
    "sys.argv = ['topoviewer'] + sys.argv[2:]\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _default_sigint():
    # a test run started in the background of a non-interactive shell ignores SIGINT, and a child inherits
    # that (Python then never raises KeyboardInterrupt): give the run the terminal's default, as a user has
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(argv, cwd, fsize=0):
    return subprocess.Popen([PYTHON, "-c", CHILD, str(fsize), *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _wait_for(path: Path, proc, timeout=90):
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"{path.name} did not appear"
        time.sleep(0.05)


def test_sigterm_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "m.safetensors"
    proc = _spawn([*TRAIN_SUB, "--steps", "100000", "--checkpoint-every", "2", "--out", out.name], tmp_path)
    _wait_for(out, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    line = err.strip()
    assert line.startswith("topoviewer: interrupted at step") and "is intact; continue with --resume" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no .tmp, no .lock
    from topoviewer.io import read_header

    assert read_header(out)["training"]["step"] % 2 == 0


def test_sigint_before_the_first_checkpoint_says_so(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    before = snapshot(tmp_path)
    proc = _spawn([*TRAIN_SUB, "--steps", "100000", "--checkpoint-every", "100000", "--out", "m.safetensors"],
                  tmp_path)
    _wait_for(tmp_path / "m.safetensors.lock", proc)  # the run has started (its lock is taken inside the handler)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "nothing was saved" in err and "--checkpoint-every" in err
    assert snapshot(tmp_path) == before


def test_disk_full_while_saving(tmp_path):
    """RLIMIT_FSIZE makes the checkpoint write fail (EFBIG): one line, nothing half-written."""
    proc = _spawn([*TRAIN_SUB, "--steps", "2", "--out", "m.safetensors"], tmp_path, fsize=200_000)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = one_error_line(err)
    assert "could not write" in line and "nothing was replaced" in line
    assert list(tmp_path.iterdir()) == []


def test_unreadable_category_folder(tmp_path, model_file, monkeypatch, capsys):
    """A sub-folder that cannot be listed (PermissionError before); simulated, as root reads everything."""
    _stimuli(tmp_path / "stim", ["faces", "cars"])
    iterdir = Path.iterdir

    def guarded(self):
        if self.name == "cars":
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", guarded)
    code, _o, err = run_cli(capsys, ["analyze", model_file, "--stimuli", tmp_path / "stim", "--out", tmp_path / "r"])
    assert code == 2 and "cannot read the folder" in one_error_line(err) and "Permission denied" in err


def _obey_file_permissions():
    """``preexec_fn`` for a root child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its capability
    bounding set (prctl PR_CAPBSET_DROP), so after exec it reads and writes files only as their mode allows
    their owner — as an ordinary user would — while it can still reach the interpreter wherever it lives."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def test_permissions(tmp_path, model_file):
    """An unwritable --out folder and an unreadable model, as an ordinary user meets them.

    The CLI runs in a child process; when the tests run as root (as CI does) the child first gives up
    root's permission override, since root otherwise reads and writes everything.
    """
    ro, unreadable = tmp_path / "ro", tmp_path / "secret.safetensors"
    ro.mkdir()
    ro.chmod(0o555)
    unreadable.write_bytes(model_file.read_bytes())
    unreadable.chmod(0)
    drop = {"preexec_fn": _obey_file_permissions} if os.geteuid() == 0 else {}
    try:
        for argv, expected in (([*TRAIN, "--out", ro / "m.safetensors"], "cannot write in"),
                               (["info", unreadable], "cannot read")):
            try:
                proc = subprocess.run([PYTHON, "-c", CHILD, "0", *map(str, argv)], cwd=tmp_path,
                                      capture_output=True, text=True, timeout=300, **drop)
            except subprocess.SubprocessError as exc:  # no CAP_SETPCAP: root cannot give up its override
                pytest.skip(f"cannot run a child that obeys file permissions as root here ({exc})")
            assert proc.returncode == 2, proc.stderr
            assert expected in one_error_line(proc.stderr), proc.stderr
        assert list(ro.iterdir()) == [] and unreadable.stat().st_size == model_file.stat().st_size
    finally:
        ro.chmod(0o755)
        unreadable.chmod(0o644)


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, model_file, capsys):
    import topoviewer.cli as cli

    def boom(args):
        raise ZeroDivisionError("division by zero in a place nobody expected")

    monkeypatch.setattr(cli, "cmd_info", boom)
    code, _o, err = run_cli(capsys, ["info", model_file])
    assert code == 1 and "unexpected ZeroDivisionError" in one_error_line(err) and "--debug" in err
    code, _o, err = run_cli(capsys, ["--debug", "info", model_file])
    assert code == 1 and "Traceback" in err
    code, _o, err = run_cli(capsys, ["info", model_file, "--debug"])
    assert code == 1 and "Traceback" in err


def test_errors_doc_lists_every_case():
    doc = (ROOT / "docs" / "errors.md").read_text()
    missing = [c[0] for c in CASES if f"`{c[0]}`" not in doc]
    assert not missing, f"regenerate docs/errors.md (python tests/test_fuzz.py): {missing}"


# ---------------------------------------------------------------------------- docs/errors.md
def _write_doc():  # pragma: no cover - run by hand: python tests/test_fuzz.py
    import contextlib
    import io
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = save_tiny(Path(tmp) / "tiny.safetensors")
        for case in CASES:
            cid, what, setup, argv, code, _expected = case
            work = Path(tempfile.mkdtemp(dir=tmp))
            if setup is not None:
                setup(work)
            err = io.StringIO()
            cwd = os.getcwd()
            os.chdir(work)
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        got = main([a.format(model=model, work=work) for a in argv])
                    except SystemExit as exc:
                        got = exc.code
            finally:
                os.chdir(cwd)
            line = err.getvalue().strip().splitlines()[-1]
            line = line.replace(str(work) + "/", "").replace(str(work), "DIR").replace(str(model), "MODEL")
            shown = " ".join(a.replace("{model}", "MODEL").replace("{work}", "DIR") for a in argv)
            if len(shown) > 70:
                shown = shown[:67] + "…"
            rows.append(f"| `{cid}` | {what} | `{shown}` | {got} | {line.replace('|', '¦')} |")
    head = (ROOT / "docs" / "errors.md").read_text().split("<!-- cases -->")[0]
    table = "\n".join(["| case | input | command | exit | message |", "|---|---|---|---|---|", *rows])
    (ROOT / "docs" / "errors.md").write_text(f"{head}<!-- cases -->\n{table}\n")


if __name__ == "__main__":  # pragma: no cover
    _write_doc()
