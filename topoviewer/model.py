"""The one protocol every model family implements: sheets, responses, propagation.

A family provides a :class:`SheetNet` — a ``torch.nn.Module`` that splits its forward
pass into *stages*, one per topographic sheet (stage 0 maps the image to sheet 0,
stage k maps sheet k−1 to sheet k), plus a ``head`` from the last sheet to logits.
:class:`TopoModel` wraps it with the sheets' positions and the preprocessing, and is
all that analyses, the CLI and the GUI ever see: they never branch on the family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import contextlib

import numpy as np

from .errors import TopoviewerError
from .sheet import Sheet

__all__ = ["TopoModel", "SheetNet", "resolve_device"]


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is present, else ``"cpu"``; validates the name."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TopoviewerError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    if device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise TopoviewerError(f"unknown device {device!r}; expected auto, cpu or cuda")
    if device.startswith("cuda:"):
        index, count = device.split(":", 1)[1], torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise TopoviewerError(f"device {device!r}: expected cuda:0 … cuda:{count - 1} ({count} GPU(s) present)")
    return device


def _torch_nn():
    import torch.nn as nn

    return nn


class SheetNet(_torch_nn().Module):
    """Base class for networks split into per-sheet stages.

    Subclasses implement :meth:`stage` and :meth:`head` and set ``n_sheets``.
    A stage's output may be (B, N) (fully connected sheets), (B, C, H, W) with every
    activation value a unit (``unit_mode="chw"``), or (B, C, H, W) reduced to channels
    by a spatial mean (``unit_mode="channel"``, TopoNets).
    """

    n_sheets: int = 0
    unit_modes: tuple[str, ...] = ()

    def stage(self, k: int, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def head(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def sheet_weight(self, k: int):
        """The weight tensor whose output units form sheet k (for TopoLoss)."""
        raise TopoviewerError(f"{type(self).__name__} exposes no weights for sheet {k}")

    def run_stage(self, k: int, x):
        """Stage k with its lesion applied: silenced units of sheet k are set to 0.

        Lesions live in ``self.lesions`` (sheet index → boolean keep-mask over the sheet's
        units, see :meth:`TopoModel.lesion`); a unit is one value of a (B, N) output, one
        value of C×H×W (``unit_mode="chw"``) or one whole channel (``"channel"``).
        """
        return self.silence(k, self.stage(k, x))

    def silence(self, k: int, x):
        """Sheet k's tensor `x` with the lesioned units of sheet k set to 0 (see :meth:`run_stage`)."""
        keep = getattr(self, "lesions", {}).get(k)
        if keep is None:
            return x
        if self.unit_modes[k] == "channel" and x.ndim == 4:
            return x * keep.view(1, -1, 1, 1).to(x.dtype)
        return (x.reshape(x.shape[0], -1) * keep.to(x.dtype)).reshape(x.shape)

    def forward(self, x, upto: int | None = None):
        """Run the whole net (lesions applied); returns ``(logits, [sheet tensors])``."""
        acts = []
        for k in range(self.n_sheets if upto is None else upto + 1):
            x = self.run_stage(k, x)
            acts.append(x)
        logits = self.head(x) if upto is None else None
        return logits, acts


@dataclass(eq=False)
class TopoModel:
    """A topographic model: a :class:`SheetNet`, its sheets and its input convention.

    Parameters
    ----------
    net : SheetNet
    sheets : list of Sheet
        One per stage of ``net``, in order.
    arch : str
        Architecture name in the family registry (``"tdann_small"``, ``"lee2020"``, …).
    config : dict
        Everything needed to rebuild ``net`` (saved in the model file).
    input_size : int
        Side of the square input in pixels.
    in_channels : int
        1 (grayscale) or 3 (RGB).
    mean, std : tuple of float
        Per-channel normalisation applied after scaling images to [0, 1].
    classes : list of str
        Names of the training categories (the head's outputs), if known.
    resize_size : float
        Shorter side the image is resized to before the centre crop of ``input_size``
        (e.g. 256 for ImageNet's Resize(256) + CenterCrop(224)); 0 → ``input_size``.
    meta : dict
        Provenance: losses and weights used, training data, steps, seed, version.
    """

    net: object
    sheets: list[Sheet]
    arch: str
    config: dict
    input_size: int
    in_channels: int = 1
    mean: tuple = (0.5,)
    std: tuple = (0.25,)
    classes: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    name: str = ""
    device: str = "cpu"
    resize_size: float = 0.0
    _unit_shapes: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if len(self.sheets) != self.net.n_sheets:
            raise TopoviewerError(f"{self.arch}: {self.net.n_sheets} stages but {len(self.sheets)} sheets")
        self.net.eval()
        self.name = self.name or self.arch

    # ------------------------------------------------------------------ sheets
    @property
    def sheet_names(self) -> list[str]:
        return [s.name for s in self.sheets]

    def sheet_index(self, name: str) -> int:
        for k, s in enumerate(self.sheets):
            if name in (s.name, s.label) and name:
                return k
        raise TopoviewerError(f"unknown layer {name!r}; this model's sheets are: {', '.join(self.sheet_names)}")

    def sheet(self, name: str) -> Sheet:
        """The sheet called ``name`` (its name or its label, e.g. ``"cIT"``)."""
        return self.sheets[self.sheet_index(name)]

    def next_sheet(self, name: str) -> str | None:
        k = self.sheet_index(name)
        return self.sheets[k + 1].name if k + 1 < len(self.sheets) else None

    def describe(self) -> dict:
        """JSON summary (the ``topoviewer info`` contract)."""
        return {
            "name": self.name,
            "arch": self.arch,
            "input": {"size": self.input_size, "channels": self.in_channels},
            "classes": len(self.classes),
            "sheets": [s.describe() for s in self.sheets],
        }

    # ------------------------------------------------------------------ device
    def to(self, device: str = "auto") -> "TopoModel":
        self.device = resolve_device(device)
        self.net.to(self.device)
        return self

    # ------------------------------------------------------------------ input
    def preprocess(self, images):
        """Images → the network's input tensor (B, C, S, S) on the model's device: :meth:`input_pixels`
        through :meth:`normalise`."""
        return self.normalise(self.input_pixels(images))

    def input_pixels(self, images):
        """Images → the pictures the network sees, (B, C, S, S) in [0, 1] on the model's device.

        ``images`` is one image or a batch as numpy: (H, W) / (H, W, 3) or (B, H, W) /
        (B, H, W, 3), floats in [0, 1]. Colour is converted to the model's channels
        (luminance for gray models, replication for RGB models); the shorter side is
        resized to ``resize_size`` (default the input size) and the centre cropped, never
        squashed: :mod:`topoviewer.images`, the same path stimulus files take.
        """
        import torch

        from .images import resize_crop, to_gray

        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 2 or images_is_single_rgb(arr):
            arr = arr[None]
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise TopoviewerError(f"expected images as (B, H, W) or (B, H, W, 3) arrays, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise TopoviewerError("images contain NaN or infinity")
        if arr.shape[-1] == 3 and self.in_channels == 1:
            arr = to_gray(arr)[..., None]
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
        if x.shape[1] == 1 and self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return resize_crop(x.to(self.device), self.input_size, self.resize_size)

    def normalise(self, x):
        """(B, C, S, S) images in [0, 1] at the input size → the network's input (``(x − mean) / std``)."""
        import torch

        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous()

    # ------------------------------------------------------------------ units
    def units(self, k: int, tensor):
        """A stage output → (B, N) unit activations of sheet k."""
        mode = self.net.unit_modes[k]
        self._unit_shapes[k] = tuple(tensor.shape[1:])
        if mode == "channel":
            return tensor.mean(dim=(2, 3)) if tensor.ndim == 4 else tensor
        return tensor.reshape(tensor.shape[0], -1)

    def _from_units(self, k: int, activity):
        """(B, N) unit activity on sheet k → the stage-output tensor that feeds stage k+1."""
        mode = self.net.unit_modes[k]
        shape = self._unit_shapes.get(k)
        if shape is None:
            self._probe_shapes()
            shape = self._unit_shapes[k]
        if mode == "channel" and len(shape) == 3:
            return activity[:, :, None, None].expand(-1, -1, shape[1], shape[2]).contiguous()
        return activity.reshape((activity.shape[0],) + shape)

    def _probe_shapes(self):
        import torch

        with torch.no_grad():
            x = torch.zeros(1, self.in_channels, self.input_size, self.input_size, device=self.device)
            _, acts = self.net(x, upto=self.net.n_sheets - 1)
        for k, a in enumerate(acts):
            self._unit_shapes[k] = tuple(a.shape[1:])

    # ------------------------------------------------------------------ forward
    def iter_responses(self, images, sheets=None, batch_size: int = 256) -> Iterator:
        """Generator of progress: yields ``(done, total)`` per batch, returns the responses.

        Use :meth:`responses` for the plain call; GUIs and progress bars drive this
        generator directly (``result = yield from model.iter_responses(...)``).
        """
        import torch

        wanted = self.sheet_names if sheets is None else [self.sheet(s).name for s in sheets]
        idx = [self.sheet_index(n) for n in wanted]
        arr = np.asarray(images)
        if arr.ndim == 2 or images_is_single_rgb(arr):
            arr = arr[None]
        total = len(arr)
        out = {n: [] for n in wanted}
        upto = max(idx)
        with torch.inference_mode():
            for start in range(0, total, batch_size):
                x = self.preprocess(arr[start : start + batch_size])
                _, acts = self.net(x, upto=upto)
                for n, k in zip(wanted, idx):
                    out[n].append(self.units(k, acts[k]).float().cpu().numpy())
                yield min(start + batch_size, total), total
        return {n: np.concatenate(v, axis=0) for n, v in out.items()}

    def responses(self, images, sheets=None, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Unit responses per sheet: ``{name: (B, N) float32}`` for a batch of images."""
        return drain(self.iter_responses(images, sheets, batch_size))

    def propagate(self, sheet: str, activity, to: str | None = None) -> dict[str, np.ndarray]:
        """Clamp ``sheet``'s units to ``activity`` and run forward to the following sheets.

        ``activity`` is (N,) or (B, N). Returns ``{name: (B, N_k)}`` for every sheet after
        ``sheet`` up to and including ``to`` (default: all of them).
        """
        import torch

        k = self.sheet_index(sheet)
        last = len(self.sheets) - 1 if to is None else self.sheet_index(to)
        if last <= k:
            raise TopoviewerError(f"layer {to!r} is not downstream of {sheet!r}")
        act = np.asarray(activity, dtype=np.float32)
        if act.ndim == 1:
            act = act[None]
        n = self.sheets[k].n_units
        if act.ndim != 2 or act.shape[1] != n:
            raise TopoviewerError(f"sheet {sheet!r} has {n} units; got activity of shape {np.shape(activity)}")
        if not np.all(np.isfinite(act)):
            raise TopoviewerError("stimulation activity contains NaN or infinity")
        out = {}
        with torch.inference_mode():
            x = self.net.silence(k, self._from_units(k, torch.from_numpy(act).to(self.device)))
            for j in range(k + 1, last + 1):
                x = self.net.run_stage(j, x)
                out[self.sheets[j].name] = self.units(j, x).float().cpu().numpy()
        return out

    @contextlib.contextmanager
    def lesion(self, sheet: str, units):
        """Silence `units` of `sheet` (set them to 0) in every forward pass inside the block.

        Applies to :meth:`responses`, :meth:`propagate` (where a clamped sheet's lesioned units
        stay silent too) and :meth:`logits` alike, for every family (the mask is applied to the
        stage's output, see :meth:`SheetNet.run_stage`).
        Lesions nest: an inner block adds to the units an outer one silenced.

        Parameters
        ----------
        sheet : str
            Sheet name or label.
        units : int array or bool mask of length ``n_units``
            The units to silence.

        Examples
        --------
        >>> with model.lesion("cIT", face_units):
        ...     scores = model.logits(images)
        """
        import torch

        k = self.sheet_index(sheet)
        n = self.sheets[k].n_units
        idx = np.asarray(units)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise TopoviewerError(f"a lesion mask of sheet {sheet!r} must have shape ({n},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1
                           or idx.min() < 0 or idx.max() >= n):
            raise TopoviewerError(f"lesioned units of sheet {sheet!r} must be unit indices in [0, {n})")
        lesions = getattr(self.net, "lesions", None)
        if lesions is None:
            lesions = self.net.lesions = {}
        before = lesions.get(k)
        keep = torch.ones(n, dtype=torch.bool, device=self.device) if before is None else before.clone()
        keep[torch.as_tensor(idx.astype(np.int64), device=self.device)] = False
        lesions[k] = keep
        try:
            yield self
        finally:
            if before is None:
                lesions.pop(k, None)
            else:
                lesions[k] = before

    def logits(self, images):
        """Class scores for images (numpy (B, n_classes))."""
        import torch

        with torch.inference_mode():
            logits, _ = self.net(self.preprocess(images))
        return logits.float().cpu().numpy()


def images_is_single_rgb(arr: np.ndarray) -> bool:
    """An (H, W, 3) array is one RGB image unless H is tiny (a batch of 3-px images is absurd)."""
    return arr.ndim == 3 and arr.shape[-1] == 3 and arr.shape[0] > 3 and arr.shape[1] > 3


def drain(gen):
    """Run a progress generator to completion and return its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
