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
