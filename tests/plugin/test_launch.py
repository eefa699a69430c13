"""The start command without a window: the manifest, display detection, figures instead of a viewer."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from topoviewer_napari.launch import has_display, main


def test_manifest_validates():
    npe2 = Path(sys.executable).with_name("npe2")
    cmd = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    out = subprocess.run(cmd + ["validate", "topoviewer"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


@pytest.mark.parametrize(
    "env, platform, expected",
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"DISPLAY": ""}, "linux", False),
        ({}, "darwin", True),
        ({}, "win32", True),
    ],
)
def test_has_display(env, platform, expected):
    assert has_display(env, platform) is expected


def test_no_display_writes_figures_instead(monkeypatch, tmp_path, capsys, tiny_model_file):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "figs"
    assert main([str(tiny_model_file), "--figures", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "no display" in printed[0] and str(out) in printed[0]
    files = sorted(out.glob("*.png"))
    assert {f.name for f in files} >= {"maps-faces.png", "purity-faces.png"}
    with Image.open(out / "maps-faces.png") as im:
        pixels = np.asarray(im.convert("L"))
    assert pixels.shape[0] > 300 and pixels.std() > 10  # a real picture, not a blank page
