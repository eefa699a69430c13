"""The CUDA paths of training: float32 on the GPU agrees with the CPU, bf16 autocast trains, a GPU
checkpoint resumes on the CPU, and torchrun starts the run over NCCL. Skipped without a GPU (CI has
none); run on a machine with one."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from topoviewer.io import load, read_header
from topoviewer.model import drain
from topoviewer.training import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY = dict(arch_config={"fc_units": [128, 128]}, per_category=12, val_per_category=4, batch_size=32,
            loss="relative", weight=1.0, seed=3, checkpoint_every=4)


def _events(cfg, path):
    events = []
    gen = train(cfg, path)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_float32_on_the_gpu_follows_the_cpu(tmp_path):
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    cpu, m_cpu = _events(TrainConfig(steps=6, device="cpu", **TINY), tmp_path / "cpu.safetensors")
    gpu, m_gpu = _events(TrainConfig(steps=6, device="cuda", precision="float32", **TINY), tmp_path / "gpu.safetensors")
    # the same batches and the same arithmetic up to summation order: step-1 losses agree to float32 rounding
    assert abs(cpu[0].task_loss - gpu[0].task_loss) < 1e-4, (cpu[0].task_loss, gpu[0].task_loss)
    assert abs(cpu[0].spatial_loss - gpu[0].spatial_loss) < 1e-4
    worst = max(float((a - b.cpu()).abs().max()) for a, b in
                zip(m_cpu.net.state_dict().values(), m_gpu.net.state_dict().values()) if a.is_floating_point())
    print(f"largest weight difference after 6 steps: {worst:.2e}")
    assert worst < 1e-3


def test_bf16_autocast_trains_and_its_file_opens_on_the_cpu(tmp_path):
    path = tmp_path / "bf16.safetensors"
    events, model = _events(TrainConfig(steps=8, device="cuda", **TINY), path)  # precision "auto" → bf16
    assert all(np.isfinite(e.task_loss) and np.isfinite(e.spatial_loss) for e in events)
    f32, _ = _events(TrainConfig(steps=1, device="cuda", precision="float32", **TINY), tmp_path / "f32.safetensors")
    assert abs(events[0].task_loss - f32[0].task_loss) < 0.02 * f32[0].task_loss  # bf16 rounding, not a bug
    assert next(model.net.parameters()).dtype == torch.float32  # autocast: the weights stay float32
    reopened = load(path)  # opens on the CPU
    x = torch.rand(5, 32, 32)
    with torch.no_grad():
        on_gpu = model.responses(x.numpy())
        on_cpu = reopened.responses(x.numpy())
    for sheet in on_cpu:
        np.testing.assert_allclose(on_cpu[sheet], on_gpu[sheet], rtol=1e-3, atol=1e-4)


def test_a_gpu_checkpoint_resumes_on_the_cpu(tmp_path):
    path = tmp_path / "cut.safetensors"
    gen = train(TrainConfig(steps=8, device="cuda", precision="float32", **TINY), path)
    for _ in range(6):  # checkpoint at step 4, then the run is cut
        next(gen)
    gen.close()
    assert read_header(path)["training"]["step"] == 4
    resumed = drain(train(TrainConfig(steps=8, device="cpu", **TINY), path, resume=True))
    assert resumed.meta["training"]["steps"] == 8


def test_torchrun_over_nccl(tmp_path):
    out = tmp_path / "ddp.safetensors"
    cmd = [sys.executable, "-m", "topoviewer", "train", "--nproc", "1", "--device", "cuda", "--steps", "4",
           "--per-category", "12", "--val-per-category", "4", "--batch-size", "32", "--quiet", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert load(out).meta["training"]["steps"] == 4


def test_centre_weights_on_the_gpu_equal_the_cpu():
    """The relative loss's centre weights, iterated on the GPU (gather/scatter), are the CPU's (sparse matrix)."""
    from topoviewer.losses import spatial_loss
    from topoviewer.positions import retinotopic_positions
    from topoviewer.sheet import Sheet

    sheet = Sheet("conv", retinotopic_positions((16, 12, 12), 10.0), (10.0, 10.0))
    cpu = spatial_loss("relative", sheet, neighbourhood_units=100).centre_weights()
    gpu = spatial_loss("relative", sheet, neighbourhood_units=100).centre_weights(device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=0)
