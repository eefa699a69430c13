"""Data-free maps of a sheet from its weights alone (no images needed).

For any sheet whose weights are known (``model.net.sheet_weight(k)``) — and for any named
Conv2d / Linear of a model on its TopoNets channel grid — three maps:

* :func:`weight_norm_map` — the L2 norm of each unit's weight vector;
* :func:`local_topoloss_map` — the cosine between each unit's weight vector and the blurred
  sheet at its place (docs/science.md; methods §2: ``blur(S) = upsample(downsample(S, 1/φ), (H, W))``,
  bilinear, φ = 3). Its mean is ``1 − TopoLoss`` of the layer exactly, so the map shows
  *where* a layer is smooth (≈ 1) or rough;
* :func:`pca_rgb_map` — the first three principal components of the weight vectors as RGB,
  so units with similar weights get similar colours.

A unit's weight vector is its row of the weight flattened in C order (``in_channels·kh·kw``
for a conv, ``in_features`` for a linear). For ``"chw"`` sheets (TDANN) every unit of channel
c shares channel c's kernel: values are computed per channel and spread over the units
(unit i → channel i // (H·W)); the local TopoLoss map needs a channel grid and is refused
there. Results are numpy arrays of length N (RGB: (N, 3)), ready for ``Sheet.rasterise``
(use :func:`rasterise_rgb` for colour).
"""

from __future__ import annotations

import numpy as np

from . import defaults
from .errors import TopoviewerError
from .sheet import cortical_sheet_shape

__all__ = [
    "MAP_KINDS",
    "layer_weight_maps",
    "local_topoloss_map",
    "pca_rgb_map",
    "rasterise_rgb",
    "sheet_weight_maps",
    "weight_norm_map",
    "weight_vectors",
]

MAP_KINDS = ("norm", "topoloss", "pca")


def weight_vectors(weight):
    """(out, ...) weight → (out, fan_in) float32 CPU tensor, C-order flattening."""
    import torch

    w = weight.detach() if isinstance(weight, torch.Tensor) else torch.as_tensor(np.asarray(weight))
    if w.ndim < 2:
        raise TopoviewerError(f"a layer weight has shape (units, fan_in, ...); got shape {tuple(w.shape)}")
    w = w.to("cpu", torch.float32).reshape(w.shape[0], -1)
    if not bool(torch.isfinite(w).all()):
        raise TopoviewerError("the weights contain NaN or infinity")
    return w


def weight_norm_map(weight) -> np.ndarray:
    """Per-unit L2 norm of the weight vector: (N,)."""
    return weight_vectors(weight).norm(dim=1).numpy()


def local_topoloss_map(weight, grid_shape=None, factor=defaults.TOPOLOSS_FACTOR) -> np.ndarray:
    """Cosine of each unit's weight vector to the blurred sheet: (N,), in [−1, 1].

    ``grid_shape`` (H, W) defaults to TopoNets' ``find_cortical_sheet_size``; ``factor`` is φ
    (or (φ_h, φ_w)). ``1 − mean`` of the map equals :func:`topoviewer.losses.topoloss`.
    """
    import torch.nn.functional as F

    from .losses import _factors, blurred_sheet

    w = weight_vectors(weight)
    n = w.shape[0]
    h, wd = cortical_sheet_shape(n) if grid_shape is None else (int(grid_shape[0]), int(grid_shape[1]))
    if h * wd != n:
        raise TopoviewerError(f"the {h}×{wd} grid does not hold the layer's {n} units")
    fh, fw = _factors(factor)
    if fh > h or fw > wd:
        raise TopoviewerError(f"the blur factor ({fh:g}, {fw:g}) is larger than the {h}×{wd} channel grid")
    return F.cosine_similarity(w, blurred_sheet(w, (h, wd), (fh, fw)), dim=-1).numpy()


def pca_rgb_map(weight, seed: int = 0) -> np.ndarray:
    """First three principal components of the weight vectors as RGB in [0, 1]: (N, 3).

    Each component is centred at 0.5 and scaled so that its 1st–99th percentile range fills
    [0, 1] (clipped). Signs are fixed (the largest loading of each component is positive)
    so the colours are reproducible.
    """
    import torch

    w = weight_vectors(weight).double()
    x = w - w.mean(dim=0, keepdim=True)
    k = min(3, x.shape[0], x.shape[1])
    if k == 0 or float(x.abs().max()) == 0.0:
        return np.full((w.shape[0], 3), 0.5)
    if min(x.shape) > 512:
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(x, q=min(k + 7, min(x.shape)), center=False, niter=4)
    else:
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        v = vh.T
    v = v[:, :k]
    signs = torch.sign(v.gather(0, v.abs().argmax(dim=0, keepdim=True)))
    scores = (x @ (v * signs)).numpy()
    rgb = np.full((w.shape[0], 3), 0.5)
    for j in range(k):
        s = scores[:, j]
        lo, hi = np.percentile(s, [1, 99])
        half = max(abs(lo), abs(hi), 1e-12)
        rgb[:, j] = np.clip(0.5 + 0.5 * s / half, 0.0, 1.0)
    return rgb


def rasterise_rgb(sheet, rgb, pixel_mm=None) -> np.ndarray:
    """(N, 3) colours → (rows, cols, 3) image through ``sheet.rasterise`` (NaN outside the units)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 2 or rgb.shape[1] != 3:
        raise TopoviewerError(f"expected (N, 3) colours, got shape {rgb.shape}")
    return np.moveaxis(sheet.rasterise(rgb.T, pixel_mm), 0, -1)


# ---------------------------------------------------------------------------- on a model
def _factor_for(model, layer: str | None):
    cfg = (model.meta or {}).get("topoloss_config") or {}
    if layer and layer in cfg:
        return (float(cfg[layer].get("factor_h", defaults.TOPOLOSS_FACTOR)),
                float(cfg[layer].get("factor_w", cfg[layer].get("factor_h", defaults.TOPOLOSS_FACTOR))))
    return defaults.TOPOLOSS_FACTOR


def _maps(weight, kinds, grid_shape, factor, name) -> dict:
    unknown = set(kinds) - set(MAP_KINDS)
    if unknown:
        raise TopoviewerError(f"unknown weight map(s) {sorted(unknown)}; expected {', '.join(MAP_KINDS)}")
    out = {}
    for kind in kinds:
        if kind == "norm":
            out[kind] = weight_norm_map(weight)
        elif kind == "pca":
            out[kind] = pca_rgb_map(weight)
        else:
            if grid_shape is None:
                raise TopoviewerError(
                    f"sheet {name!r} has no channel grid: the local TopoLoss map needs one (TopoNets sheets); "
                    "the norm and PCA maps work on any sheet"
                )
            out[kind] = local_topoloss_map(weight, grid_shape, factor)
    return out


def sheet_weight_maps(model, sheet: str, kinds=MAP_KINDS, factor=None) -> dict[str, np.ndarray]:
    """Weight maps of one sheet of ``model``: ``{kind: (N,) or (N, 3)}`` with N its units.

    ``factor`` (φ) defaults to the model's TopoLoss config for the layer, else 3.
    """
    k = model.sheet_index(sheet)
    sh = model.sheets[k]
    weight = model.net.sheet_weight(k)
    n_out = int(weight.shape[0])
    layer = model.net.sheet_layer(k) if hasattr(model.net, "sheet_layer") else None
    factor = _factor_for(model, layer) if factor is None else factor
    if sh.n_units == n_out:  # one unit per output channel / feature
        grid = sh.grid_shape
        return _maps(weight, kinds, grid, factor, sh.name)
    if sh.n_units % n_out == 0:  # "chw": every unit of channel c shares channel c's kernel
        per_channel = _maps(weight, [k_ for k_ in kinds if k_ != "topoloss"], None, factor, sh.name)
        if "topoloss" in kinds:
            _maps(weight, ["topoloss"], None, factor, sh.name)  # raises the clear message
        channel = np.arange(sh.n_units) // (sh.n_units // n_out)
        return {kind: v[channel] for kind, v in per_channel.items()}
    raise TopoviewerError(f"sheet {sh.name!r} has {sh.n_units} units, which do not match {n_out} weight rows")


def layer_weight_maps(model, layer: str, kinds=MAP_KINDS, factor=None) -> tuple[dict, object]:
    """Weight maps of any named Conv2d / Linear of the model on its channel grid.

    Returns ``(maps, sheet)`` where ``sheet`` is the ``Sheet.channel_grid`` the maps live on
    (e.g. ``layer2.0.conv1`` of a TopoNets ResNet-18, regularised but not a response sheet).
    """
    from .families.resnet import layer_weight
    from .sheet import Sheet

    weight = layer_weight(model.net, layer)
    sheet = Sheet.channel_grid(layer, int(weight.shape[0]))
    factor = _factor_for(model, layer) if factor is None else factor
    return _maps(weight, kinds, sheet.grid_shape, factor, layer), sheet
