"""Spatial losses that make a layer topographic (docs/science.md; methods §2).

Three losses, all pure PyTorch and all differentiable:

* :func:`absolute_loss` — Lee et al. 2020 (TDANN, "cIT"/"aIT"): the mean over unit pairs
  ``i ≠ j`` of ``|C_ij − 1/(d_ij/λ + 1)|``, with ``C`` the Pearson correlation of the
  units' responses across the images of a batch and ``d`` their distance on the sheet (mm).
  **Decision** (docs/science.md; methods §2): the mean over pairs, not the paper's sum, so the weight is
  independent of the layer size.
* :func:`relative_loss` — Margalit et al. (TDANN code): ``(1 − r) / 2`` with ``r`` the Pearson
  correlation between the strict lower triangles of ``C`` and of the target ``1/(d/λ + 1)``.
* :func:`topoloss` — TopoNets (``topoloss`` 0.0.2 on PyPI, ``LaplacianPyramid``): the weights of
  a Conv2d / Linear are reshaped onto the channel grid, blurred by a bilinear down- then
  up-sampling, and ``L = 1 − mean_units cos(S_u, blur(S)_u)``. Matches the package to float
  rounding (tests/test_losses.py compares both on the same layers).

A training engine builds one :class:`SpatialLoss` per regularised sheet with
:func:`spatial_loss` and calls it every step; everything fixed (target matrices, k-d trees,
index tensors) is computed once and cached per device and dtype. Large sheets never build an
``N × N`` matrix: the absolute loss samples ``max_units`` random units per call, the relative
loss one neighbourhood of ``neighbourhood_units`` units around a random centre unit.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import defaults
from .errors import TopoviewerError
from .sheet import Sheet

__all__ = [
    "LOSS_NAMES",
    "SpatialLoss",
    "absolute_loss",
    "pearson_matrix",
    "relative_loss",
    "spatial_loss",
    "target_correlation",
    "topoloss",
]

#: Names accepted by :func:`spatial_loss`.
LOSS_NAMES = ("absolute", "relative", "topoloss")

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------- building blocks
def target_correlation(distance, correlation_length: float = defaults.CORRELATION_LENGTH_MM):
    """Target response correlation at a cortical distance: ``1 / (d/λ + 1)``.

    Works element-wise on a float, a NumPy array or a torch tensor (and returns the same kind).
    ``λ`` (``correlation_length``, mm) is the distance at which the target falls to 1/2; the
    papers use λ = 1 mm, i.e. ``1 / (d + 1)``.
    """
    _check_length(correlation_length)
    return 1.0 / (distance / float(correlation_length) + 1.0)


def pearson_matrix(responses: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between units across a batch: (B, N) → (N, N).

    Computed as ``Zᵀ Z / B`` from the z-scored columns (population standard deviation).
    A unit whose responses are constant over the batch (all equal, or B = 1) gets a z-score of
    0, so its row and column are 0 — including its diagonal entry — never NaN, and its
    gradient is finite. Half-precision inputs (and autocast regions) are computed in float32.
    """
    x = _as_batch(responses)
    # under mixed precision keep the correlations in float32: a bf16 matmul would put ~1 % noise
    # on every C_ij, as large as the spatial signal the loss is after
    with torch.autocast(device_type=x.device.type, enabled=False):
        z = _zscore_columns(x)
        return (z.T @ z) / z.shape[0]


def absolute_loss(
    responses: torch.Tensor,
    positions,
    *,
    correlation_length: float = defaults.CORRELATION_LENGTH_MM,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Lee et al. 2020: mean over pairs ``i ≠ j`` of ``|C_ij − 1/(d_ij/λ + 1)|``.

    Parameters
    ----------
    responses : (B, N) tensor, or (B, ...) flattened to (B, N)
        Unit responses to the B images of a batch.
    positions : (N, 2) array or tensor
        Unit positions (mm). Ignored when ``target`` is given.
    correlation_length : float
        λ of :func:`target_correlation`, mm.
    target : (N, N) tensor, optional
        A precomputed target matrix (moved to the responses' device and dtype).

    Builds the full N × N correlation matrix: for large sheets use :func:`spatial_loss`,
    which samples units.
    """
    x = _as_batch(responses)
    n = x.shape[1]
    if target is None:
        target = _target_matrix(_positions_tensor(positions, n, x), correlation_length)
    else:
        target = torch.as_tensor(target).to(device=x.device, dtype=x.dtype)
        if target.shape != (n, n):
            raise TopoviewerError(f"target must be ({n}, {n}) for {n} units, got {tuple(target.shape)}")
    return _absolute_from_target(x, target)


def relative_loss(
    responses: torch.Tensor,
    positions,
    *,
    correlation_length: float = defaults.CORRELATION_LENGTH_MM,
) -> torch.Tensor:
    """Margalit et al. (TDANN): ``(1 − pearson(lowertri(C), lowertri(T))) / 2``.

    ``C`` is :func:`pearson_matrix` of the responses, ``T = 1/(d/λ + 1)``; the strict lower
    triangles (``i > j``) are compared. The loss lies in [0, 1]; when either triangle is
    constant (e.g. all units constant, or fewer than three units) the correlation is taken
    as 0 and the loss is 0.5. Builds the full N × N matrix: for large sheets use
    :func:`spatial_loss`, which samples one neighbourhood per call.
    """
    x = _as_batch(responses)
    n = x.shape[1]
    pairs = _tril_pairs(n, x.device)
    return _relative_from_target(x, _relative_target(_positions_tensor(positions, n, x), correlation_length, pairs),
                                 pairs)


def topoloss(weight: torch.Tensor, grid_shape, factor=defaults.TOPOLOSS_FACTOR) -> torch.Tensor:
    """TopoNets' TopoLoss of one layer (``topoloss`` 0.0.2, ``LaplacianPyramid``), unscaled.

    Parameters
    ----------
    weight : tensor (out, ...)
        A Linear weight (out_features, in_features) or a Conv2d weight
        (out_channels, in_channels, kh, kw). Row ``i`` is unit ``i`` of the sheet, at
        (row, col) = (i // W, i % W); everything after the first axis is its feature vector
        (C-order flattening, i.e. ``in_channels·kh·kw`` for a conv).
    grid_shape : (H, W)
        The channel grid, ``H · W == out`` (see :func:`topoviewer.sheet.cortical_sheet_shape`).
    factor : float or (factor_h, factor_w)
        The shrink factor φ (TopoNets uses 3 by default here; the package's README shows 8).

    Returns ``1 − mean_u cos(S_u, blur(S)_u)`` where ``S`` is the (H, W, fan_in) sheet and
    ``blur(S) = interpolate(interpolate(S, scale_factor=(1/φ_h, 1/φ_w)), size=(H, W))``, both
    bilinear with ``align_corners=False`` and the scale factor used as given (as the package
    does). The package averages such per-layer losses (each times its ``scale``) over layers;
    that averaging is the caller's job.
    """
    h, w = _grid(grid_shape)
    fh, fw = _factors(factor)
    if weight.ndim < 2:
        raise TopoviewerError(
            f"TopoLoss needs a layer weight of shape (units, fan_in, ...), got shape {tuple(weight.shape)}"
        )
    if weight.shape[0] != h * w:
        raise TopoviewerError(
            f"TopoLoss: the weight has {weight.shape[0]} output units but the grid {h}×{w} holds {h * w}"
        )
    if fh > h or fw > w:
        raise TopoviewerError(
            f"TopoLoss: the shrink factor ({fh:g}, {fw:g}) is larger than the {h}×{w} channel grid; "
            "use a smaller factor or a wider layer"
        )
    sheet = weight.reshape(h * w, -1)
    return 1.0 - F.cosine_similarity(sheet, blurred_sheet(sheet, (h, w), (fh, fw)), dim=-1).mean()


def blurred_sheet(vectors, grid_shape, factors):
    """TopoLoss's blur of a channel-grid sheet: (N, E) unit vectors → (N, E) blurred vectors.

    The (N, E) vectors are laid out as (H, W, E) — the view einops' rearrange gives the
    ``topoloss`` package — shrunk by ``(1/φ_h, 1/φ_w)`` and resized back to (H, W), both
    bilinear with ``align_corners=False``.
    """
    (h, w), (fh, fw) = grid_shape, factors
    grid = vectors.reshape(h, w, -1).permute(2, 0, 1).unsqueeze(0)
    small = F.interpolate(grid, scale_factor=(1.0 / fh, 1.0 / fw), mode="bilinear", align_corners=False)
    blurred = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return blurred.squeeze(0).permute(1, 2, 0).reshape(h * w, -1)


# ---------------------------------------------------------------------------- per-sheet objects
class SpatialLoss:
    """One spatial loss bound to one sheet: built once, called every training step.

    Attributes
    ----------
    name : str
        ``"absolute"``, ``"relative"`` or ``"topoloss"``.
    needs : str
        ``"responses"`` — call with the sheet's (B, N) responses (any (B, ...) is flattened),
        or in two halves, :meth:`select` then :meth:`evaluate`; ``"weights"`` — call with the
        layer's weight tensor.
    sheet : Sheet
        The sheet whose positions (or channel grid) the loss uses.
    last_units : int or None
        How many units the last call correlated (the side of the correlation matrix it built):
        ``min(N, max_units)`` for the absolute loss, the neighbourhood size for the relative
        loss, N for TopoLoss. ``None`` before the first call.
    """

    name: str = ""
    needs: str = "responses"

    def __init__(self, sheet: Sheet):
        self.sheet = sheet
        self.last_units: int | None = None
        self._cache: dict[Any, Any] = {}

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The loss of a batch of responses (or of a layer's weights, for ``needs == "weights"``)."""
        return self.evaluate(*self.select(x, generator))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sheet={self.sheet.name!r}, units={self.sheet.n_units})"

    # the two halves of a response loss's call, apart so that a training engine can all-gather only
    # the units a step uses (topoviewer.training): loss(x, g) == loss.evaluate(*loss.select(x, g))
    def select(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """The responses of the units this call uses, and their indices.

        Draws the call's random units with ``generator`` (the absolute loss's sample, the relative
        loss's neighbourhood). Returns ``(responses, units)``: the (B, M) responses of those units
        (any (B, ...) is flattened; half precision is upcast after the selection) and their (M,)
        indices on the responses' device — or the (B, N) responses and ``None`` when the call uses
        every unit. The batches of several processes may be concatenated before :meth:`evaluate`.
        """
        x = _as_batch(x, upcast=False)
        if x.shape[1] != self.sheet.n_units:
            raise TopoviewerError(
                f"{self.name} loss on sheet {self.sheet.name!r}: expected responses with "
                f"{self.sheet.n_units} units per image, got {x.shape[1]}"
            )
        units = self._draw(generator, x.device)
        return _as_batch(x if units is None else x.index_select(1, units)), units

    def evaluate(self, x: torch.Tensor, units: torch.Tensor | None) -> torch.Tensor:
        """The loss of the responses ``x`` (B, M) of ``units``, as :meth:`select` returned them."""
        raise NotImplementedError  # pragma: no cover

    def _draw(self, generator, device) -> torch.Tensor | None:
        raise NotImplementedError  # pragma: no cover

    # helpers shared by the response losses
    def _positions_on(self, x: torch.Tensor) -> torch.Tensor:
        key = ("positions", x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.sheet.positions).to(device=x.device, dtype=x.dtype)
        return self._cache[key]


class _AbsoluteLoss(SpatialLoss):
    name = "absolute"
    needs = "responses"

    def __init__(self, sheet: Sheet, correlation_length: float, max_units: int):
        super().__init__(sheet)
        _check_length(correlation_length)
        if int(max_units) < 2:
            raise TopoviewerError(f"max_units must be at least 2, got {max_units}")
        self.correlation_length = float(correlation_length)
        self.max_units = int(max_units)
        self.dense = sheet.n_units <= self.max_units

    def _draw(self, generator, device):
        return None if self.dense else _sample_units(self.sheet.n_units, self.max_units, generator, device)

    def evaluate(self, x, units):
        self.last_units = x.shape[1]
        if units is None:
            key = ("target", x.device, x.dtype)
            if key not in self._cache:  # the target never changes: once per device and dtype
                pos = torch.as_tensor(self.sheet.positions, dtype=torch.float64)
                self._cache[key] = _target_matrix(pos, self.correlation_length).to(device=x.device, dtype=x.dtype)
            return _absolute_from_target(x, self._cache[key])
        target = _target_matrix(self._positions_on(x).index_select(0, units), self.correlation_length)
        return _absolute_from_target(x, target)


class _RelativeLoss(SpatialLoss):
    name = "relative"
    needs = "responses"

    def __init__(self, sheet: Sheet, correlation_length: float, neighbourhood_units: int):
        super().__init__(sheet)
        _check_length(correlation_length)
        if int(neighbourhood_units) < 3:
            raise TopoviewerError(f"neighbourhood_units must be at least 3, got {neighbourhood_units}")
        self.correlation_length = float(correlation_length)
        self.neighbourhood_units = int(neighbourhood_units)
        self.k = min(sheet.n_units, self.neighbourhood_units)
        self.whole = self.k == sheet.n_units  # one neighbourhood: the whole sheet, fixed target
        self._tree = None
        self._centre_p = None
        if not self.whole:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(sheet.positions)

    def centre_weights(self, iterations: int = 50, device=None) -> np.ndarray:
        """Sampling probability of each centre unit such that every unit lies in a sampled
        neighbourhood equally often.

        With uniformly drawn centres a unit near the border (or in a corner) is in 1/2 (1/4)
        as many neighbourhoods as a central one: it is barely constrained by the loss and
        free to become the most selective. Multiplicative (Lee–Seung) updates towards uniform
        coverage raise the border units' coverage from ≈ 0.6 to ≈ 0.83 of the inner units'
        (2,048 units on 10 × 10 mm, 500-unit neighbourhoods).

        Computed once per loss, in float64: the neighbourhoods of all N units (k-d tree, on all
        cores), then ``iterations`` times ``coverage = Aᵀ p`` and ``p ← p / (A coverage / k)``,
        normalised, with ``A`` the N × N neighbourhood membership (``A[i, j] = 1`` when unit j is
        in unit i's neighbourhood) — a sparse matrix on the CPU, a gather and a scatter on a CUDA
        ``device`` (the same numbers to float64 rounding; an N = 200,704 sheet of a ResNet-18 at
        224 px has N·k = 10⁸ memberships).
        """
        if self._centre_p is None:
            n, k = self.sheet.n_units, self.k
            _, nbrs = self._tree.query(self.sheet.positions, k=k, workers=-1)
            if device is not None and torch.device(device).type == "cuda":
                nb = torch.from_numpy(nbrs).to(device)
                p = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
                for _ in range(iterations):
                    coverage = torch.zeros_like(p).index_add_(0, nb.reshape(-1), p.repeat_interleave(k))
                    p = p / (coverage[nb].sum(dim=1) / k)
                    p /= p.sum()
                p = p.cpu().numpy()
            else:
                from scipy.sparse import csr_matrix

                member = csr_matrix((np.ones(n * k), nbrs.reshape(-1), np.arange(0, n * k + 1, k)), shape=(n, n))
                p = np.full(n, 1.0 / n)
                for _ in range(iterations):
                    coverage = member.T @ p
                    p = p / ((member @ coverage) / k)
                    p /= p.sum()
            self._centre_p = p
            self._centre_cdf = np.cumsum(p)
        return self._centre_p

    def neighbourhood(self, centre: int) -> np.ndarray:
        """Indices of the ``k`` units nearest to unit ``centre`` (itself first)."""
        if self.whole:
            return np.arange(self.sheet.n_units)
        _, idx = self._tree.query(self.sheet.positions[int(centre)], k=self.k)
        return np.asarray(idx, dtype=np.int64)

    def _draw(self, generator, device):
        if self.whole:
            return None
        gen_device = generator.device if generator is not None else torch.device("cpu")
        u = float(torch.rand((1,), generator=generator, device=gen_device).item())
        self.centre_weights(device=device)
        cdf = self._centre_cdf
        centre = int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), self.sheet.n_units - 1))
        self.last_centre = centre
        return torch.from_numpy(self.neighbourhood(centre)).to(device)

    def evaluate(self, x, units):
        pairs = self._pairs(x.device)
        self.last_units = self.k
        if units is None:
            key = ("target", x.device, x.dtype)
            if key not in self._cache:
                self._cache[key] = _relative_target(self._positions_on(x), self.correlation_length, pairs)
            return _relative_from_target(x, self._cache[key], pairs)
        pos = self._positions_on(x).index_select(0, units)
        return _relative_from_target(x, _relative_target(pos, self.correlation_length, pairs), pairs)

    def _pairs(self, device):
        key = ("pairs", device)
        if key not in self._cache:
            self._cache[key] = _tril_pairs(self.k, device)
        return self._cache[key]


class _TopoLoss(SpatialLoss):
    name = "topoloss"
    needs = "weights"

    def __init__(self, sheet: Sheet, factor):
        super().__init__(sheet)
        if sheet.grid_shape is None:
            raise TopoviewerError(
                f"TopoLoss needs a channel-grid sheet (TopoNets: one unit per output channel on an "
                f"H×W grid); sheet {sheet.name!r} has free unit positions — use the 'absolute' or "
                f"'relative' loss for it"
            )
        self.grid_shape = sheet.grid_shape
        self.factor = _factors(factor)
        h, w = self.grid_shape
        if self.factor[0] > h or self.factor[1] > w:
            raise TopoviewerError(
                f"TopoLoss on sheet {sheet.name!r}: the shrink factor {self.factor} is larger than "
                f"its {h}×{w} channel grid"
            )

    def __call__(self, x, generator=None):
        self.last_units = self.sheet.n_units
        return topoloss(x, self.grid_shape, self.factor)


def spatial_loss(
    name: str,
    sheet: Sheet,
    *,
    correlation_length: float = defaults.CORRELATION_LENGTH_MM,
    max_units: int = defaults.MAX_DENSE_UNITS,
    neighbourhood_units: int = defaults.NEIGHBOURHOOD_UNITS,
    factor=defaults.TOPOLOSS_FACTOR,
) -> SpatialLoss:
    """Build the spatial loss ``name`` for ``sheet`` (see :data:`LOSS_NAMES`).

    * ``"absolute"``: sheets of ≤ ``max_units`` units use the full target matrix, computed
      once; larger sheets correlate ``max_units`` units drawn at random (with the call's
      ``generator``) at every call.
    * ``"relative"``: every call uses one neighbourhood — the ``neighbourhood_units`` units
      nearest to a random centre unit (k-d tree built once); sheets of ≤
      ``neighbourhood_units`` units use all units and a target computed once.
    * ``"topoloss"``: needs a channel-grid sheet (``sheet.grid_shape``); called with the
      layer's weight, shrink factor ``factor`` (a float or ``(factor_h, factor_w)``).
    """
    key = str(name).strip().lower()
    if key == "absolute":
        return _AbsoluteLoss(sheet, correlation_length, max_units)
    if key == "relative":
        return _RelativeLoss(sheet, correlation_length, neighbourhood_units)
    if key == "topoloss":
        return _TopoLoss(sheet, factor)
    raise TopoviewerError(f"unknown spatial loss {name!r}; valid names: {', '.join(LOSS_NAMES)}")


# ---------------------------------------------------------------------------- internals
def _check_length(correlation_length) -> None:
    if not (
        isinstance(correlation_length, numbers.Real)
        and math.isfinite(correlation_length)
        and correlation_length > 0
    ):
        raise TopoviewerError(f"correlation length must be a positive number of mm, got {correlation_length!r}")


def _grid(grid_shape) -> tuple[int, int]:
    if grid_shape is None or len(grid_shape) != 2:
        raise TopoviewerError(f"TopoLoss needs a channel-grid sheet with grid shape (H, W), got {grid_shape!r}")
    h, w = int(grid_shape[0]), int(grid_shape[1])
    if h < 1 or w < 1:
        raise TopoviewerError(f"grid shape must be positive, got {grid_shape!r}")
    return h, w


def _factors(factor) -> tuple[float, float]:
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise TopoviewerError(f"TopoLoss factor must be a number or (factor_h, factor_w), got {factor!r}")
        fh, fw = float(factor[0]), float(factor[1])
    else:
        fh = fw = float(factor)
    if not (fh >= 1.0 and fw >= 1.0 and math.isfinite(fh) and math.isfinite(fw)):
        raise TopoviewerError(f"TopoLoss shrink factor must be ≥ 1, got {factor!r}")
    return fh, fw


def _as_batch(responses: torch.Tensor, upcast: bool = True) -> torch.Tensor:
    """(B, ...) → (B, N), upcasting half precision to float32 (and integers to the default dtype)."""
    if not isinstance(responses, torch.Tensor):
        responses = torch.as_tensor(responses)
    if responses.ndim < 2:
        raise TopoviewerError(
            f"spatial losses need a batch of responses of shape (B, units...), got shape {tuple(responses.shape)}"
        )
    x = responses.reshape(responses.shape[0], -1)
    if not upcast:
        return x
    if x.dtype in _LOW_PRECISION:
        x = x.float()
    elif not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x


def _zscore_columns(x: torch.Tensor) -> torch.Tensor:
    """Z-score each column (population std); constant columns → 0 with finite gradients."""
    xc = x - x.mean(dim=0, keepdim=True)
    var = (xc * xc).mean(dim=0, keepdim=True)
    tiny = _tiny(x.dtype)
    with torch.no_grad():
        constant = (x.amax(dim=0, keepdim=True) == x.amin(dim=0, keepdim=True)) | (var <= tiny)
    inv = torch.where(constant, torch.zeros_like(var), torch.rsqrt(var.clamp_min(tiny)))
    return xc * inv


def _zscore_vector(v: torch.Tensor) -> torch.Tensor:
    """Z-score a vector divided by sqrt(len): ``dot(zv(a), zv(b))`` is Pearson's r; constant → 0."""
    return _zscore_columns(v.reshape(-1, 1)).reshape(-1) / math.sqrt(v.numel())


def _tiny(dtype: torch.dtype) -> float:
    """Variance floor below which a column counts as constant (far below any real variance)."""
    return torch.finfo(dtype if dtype == torch.float64 else torch.float32).tiny * 1e4


def _positions_tensor(positions, n: int, like: torch.Tensor) -> torch.Tensor:
    pos = torch.as_tensor(positions).to(device=like.device, dtype=like.dtype)
    if pos.shape != (n, 2):
        raise TopoviewerError(f"positions must be ({n}, 2) for {n} units, got {tuple(pos.shape)}")
    return pos


def _target_matrix(pos: torch.Tensor, correlation_length: float) -> torch.Tensor:
    """``1 / (d/λ + 1)`` for all pairs of (M, 2) positions (exact distances, no matmul trick)."""
    d = torch.cdist(pos.unsqueeze(0), pos.unsqueeze(0), compute_mode="donot_use_mm_for_euclid_dist")[0]
    return target_correlation(d, correlation_length)


def _absolute_from_target(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    n = x.shape[1]
    if n < 2:
        return x.sum() * 0.0  # no pairs: zero, still attached to the graph
    c = pearson_matrix(x)
    diff = (c - target).abs()
    # mean over i ≠ j without building a mask: total minus the diagonal terms
    return (diff.sum() - diff.diagonal().sum()) / (n * (n - 1))


def _tril_pairs(n: int, device) -> torch.Tensor:
    """Flat indices ``i·n + j`` of the strict lower triangle (``i > j``) of an n × n matrix, row by row."""
    rows, cols = torch.tril_indices(n, n, offset=-1, device=device)
    return rows * n + cols


def _lower(m: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """The strict lower triangle of a square matrix as a vector (``pairs`` from :func:`_tril_pairs`)."""
    return m.reshape(-1).index_select(0, pairs)


def _relative_target(pos: torch.Tensor, correlation_length: float, pairs: torch.Tensor) -> torch.Tensor:
    """The z-scored lower triangle of the target ``1/(d/λ + 1)`` for (k, 2) positions."""
    return _zscore_vector(_lower(_target_matrix(pos, correlation_length), pairs))


def _relative_from_target(x, target_z, pairs) -> torch.Tensor:
    """``(1 − r)/2`` with r = Pearson(C[pairs], target); ``target_z`` from :func:`_relative_target`."""
    if pairs.numel() == 0:
        return x.sum() * 0.0 + 0.5
    r = torch.dot(_zscore_vector(_lower(pearson_matrix(x), pairs)), target_z)
    return (1.0 - r) / 2.0


def _sample_units(n: int, m: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """``m`` distinct unit indices drawn uniformly from ``range(n)`` with ``generator``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    idx = torch.randperm(n, generator=generator, device=gen_device)[:m]
    return idx.to(device)
