"""Shared fixtures: tiny models built and saved once per session."""

import os

import numpy as np
import pytest

import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained small TDANN with 256-unit sheets (fast)."""
    from topoviewer.families import build

    torch.manual_seed(0)
    return build("tdann_small", {"fc_units": [256, 256]})


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory, tiny_model):
    from topoviewer.io import save_model

    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(tiny_model, path)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class CodeRunningPayload:
    """Pickles into a call of ``os.system("touch MARKER")``: loading it must never run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def exploit():
    """The class of a hostile pickle payload; ``exploit(marker_path)``."""
    return CodeRunningPayload


@pytest.fixture
def fake_spacetorch(monkeypatch):
    """Factory for a stand-in ``spacetorch`` module (only to *write* pickles that name its class).

    ``fake_spacetorch(module)`` registers ``module`` and its parents in ``sys.modules`` (undone after
    the test) and returns its ``LayerPositions`` dataclass.
    """
    import dataclasses
    import sys
    import types

    def make(module="spacetorch.models.positions"):
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))

        @dataclasses.dataclass
        class LayerPositions:
            name: str
            dims: tuple
            coordinates: np.ndarray
            neighborhood_indices: np.ndarray
            neighborhood_width: float

        LayerPositions.__module__ = module
        LayerPositions.__qualname__ = "LayerPositions"
        sys.modules[module].LayerPositions = LayerPositions
        return LayerPositions

    return make
