"""Sheets: topographic layers whose units have fixed 2-D positions in millimetres.

Everything that turns a length-N vector of unit values into a picture goes through
:class:`Sheet`: :meth:`Sheet.rasterise` (nearest-unit display raster) and
:meth:`Sheet.voxelise` (simulated fMRI, docs/science.md; methods §4). Nothing else knows how
units are laid out.

Image convention: row ``r`` of a raster covers ``y ∈ [y0 + r·p, y0 + (r+1)·p)`` and
column ``c`` covers ``x ∈ [x0 + c·p, x0 + (c+1)·p)``, with ``p`` the pixel (voxel) edge in
mm and ``(x0, y0)`` the sheet origin. Pixel centres are at ``origin + (index + 0.5)·p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import defaults
from .errors import TopoviewerError

__all__ = ["Sheet", "Grid", "sigma_from_fwhm", "cortical_sheet_shape"]


def sigma_from_fwhm(fwhm_mm: float) -> float:
    """Gaussian σ for a full width at half maximum: ``σ = FWHM / (2·sqrt(2·ln 2))``."""
    return float(fwhm_mm) / defaults.FWHM_PER_SIGMA


def cortical_sheet_shape(n: int) -> tuple[int, int]:
    """TopoNets' ``find_cortical_sheet_size``: height = largest divisor of n ≤ √n.

    Returns ``(height, width)`` with ``height · width == n``; e.g. 512 → (16, 32).
    """
    n = int(n)
    if n < 1:
        raise TopoviewerError(f"a sheet needs at least one unit, got {n}")
    for h in range(int(math.isqrt(n)), 0, -1):
        if n % h == 0:
            return h, n // h
    return 1, n  # pragma: no cover - h = 1 always divides


@dataclass(frozen=True)
class Grid:
    """A regular pixel grid over a sheet: ``shape`` (rows, cols), pixel edge and origin."""

    shape: tuple[int, int]
    pixel_mm: float
    origin_mm: tuple[float, float]

    def centres(self) -> np.ndarray:
        """Pixel centres as an (rows·cols, 2) array of (x, y) mm, row-major."""
        rows, cols = self.shape
        x = self.origin_mm[0] + (np.arange(cols) + 0.5) * self.pixel_mm
        y = self.origin_mm[1] + (np.arange(rows) + 0.5) * self.pixel_mm
        xx, yy = np.meshgrid(x, y)
        return np.column_stack([xx.ravel(), yy.ravel()])

    def index_of(self, point_mm) -> tuple[int, int]:
        """(row, col) of the pixel containing an (x, y) point, clipped to the grid."""
        c = int((point_mm[0] - self.origin_mm[0]) // self.pixel_mm)
        r = int((point_mm[1] - self.origin_mm[1]) // self.pixel_mm)
        return min(max(r, 0), self.shape[0] - 1), min(max(c, 0), self.shape[1] - 1)


@dataclass(eq=False)
class Sheet:
    """One topographic layer: ``positions`` (N, 2) of (x, y) in ``unit`` (mm or grid cells).

    Parameters
    ----------
    name : str
        The layer's name in its model (e.g. ``"fc6"``, ``"layer4.1"``).
    positions : (N, 2) array
        Unit positions, x then y.
    extent_mm : (width, height)
        Size of the sheet; positions lie in ``[origin, origin + extent]``.
    origin_mm : (x0, y0), optional
        Lower corner of the sheet.
    unit : str
        ``"mm"`` for cortical millimetres, ``"cell"`` for a channel grid (TopoNets).
    grid_shape : (rows, cols), optional
        For channel-grid sheets: unit ``i`` sits at ``(i // cols, i % cols)`` and
        rasterising is an exact reshape.
    label : str, optional
        Scientific alias shown to people (``"cIT"``, ``"V1"``).
    """

    name: str
    positions: np.ndarray
    extent_mm: tuple[float, float]
    origin_mm: tuple[float, float] = (0.0, 0.0)
    unit: str = "mm"
    grid_shape: tuple[int, int] | None = None
    label: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
            raise TopoviewerError(
                f"sheet {self.name!r}: positions must be an (N, 2) array of x, y, got shape {pos.shape}"
            )
        if not np.all(np.isfinite(pos)):
            raise TopoviewerError(f"sheet {self.name!r}: positions contain NaN or infinity")
        self.positions = pos
        self.extent_mm = (float(self.extent_mm[0]), float(self.extent_mm[1]))
        self.origin_mm = (float(self.origin_mm[0]), float(self.origin_mm[1]))
        if self.grid_shape is not None:
            self.grid_shape = (int(self.grid_shape[0]), int(self.grid_shape[1]))
            if self.grid_shape[0] * self.grid_shape[1] != len(pos):
                raise TopoviewerError(
                    f"sheet {self.name!r}: grid {self.grid_shape} does not hold {len(pos)} units"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def uniform(cls, name, n_units, extent_mm=(10.0, 10.0), seed=0, **kw) -> "Sheet":
        """Uniformly random positions on a rectangle (the Lee 2020 FC-sheet layout)."""
        rng = np.random.default_rng(seed)
        pos = rng.uniform(0.0, 1.0, size=(int(n_units), 2)) * np.asarray(extent_mm, dtype=float)
        return cls(name, pos, tuple(extent_mm), **kw)

    @classmethod
    def channel_grid(cls, name, n_units, cell_mm=1.0, **kw) -> "Sheet":
        """TopoNets' channel grid: unit i at (row, col) = (i // W, i % W), one cell each."""
        rows, cols = cortical_sheet_shape(n_units)
        i = np.arange(rows * cols)
        pos = np.column_stack([(i % cols + 0.5) * cell_mm, (i // cols + 0.5) * cell_mm])
        kw.setdefault("unit", "cell" if cell_mm == 1.0 else "mm")
        return cls(name, pos, (cols * cell_mm, rows * cell_mm), grid_shape=(rows, cols), **kw)

    # ------------------------------------------------------------------ geometry
    @property
    def n_units(self) -> int:
        return len(self.positions)

    @property
    def title(self) -> str:
        """Name shown to people: ``"fc6 (cIT)"`` or just the name."""
        return f"{self.name} ({self.label})" if self.label else self.name

    def distances_to(self, point_mm) -> np.ndarray:
        """Euclidean distance of every unit to an (x, y) point."""
        p = np.asarray(point_mm, dtype=np.float64).reshape(2)
        return np.hypot(self.positions[:, 0] - p[0], self.positions[:, 1] - p[1])

    def disc(self, center_mm, radius_mm) -> np.ndarray:
        """Indices of the units within ``radius_mm`` of ``center_mm`` (inclusive)."""
        return np.flatnonzero(self.distances_to(center_mm) <= radius_mm)

    def contains(self, point_mm) -> bool:
        x, y = point_mm
        (x0, y0), (w, h) = self.origin_mm, self.extent_mm
        return x0 <= x <= x0 + w and y0 <= y <= y0 + h

    def grid(self, pixel_mm: float) -> Grid:
        """The pixel grid of edge ``pixel_mm`` covering the sheet."""
        if not pixel_mm > 0:
            raise TopoviewerError(f"pixel size must be positive, got {pixel_mm}")
        w, h = self.extent_mm
        shape = (max(1, math.ceil(h / pixel_mm - 1e-9)), max(1, math.ceil(w / pixel_mm - 1e-9)))
        return Grid(shape, float(pixel_mm), self.origin_mm)

    def default_pixel_mm(self, max_pixels: int = 256) -> float:
        """Display pixel: one grid cell for grid sheets, else the longer side / ``max_pixels``."""
        if self.grid_shape is not None:
            return self.extent_mm[0] / self.grid_shape[1]
        return max(self.extent_mm) / max_pixels

    # ------------------------------------------------------------------ pictures
    def rasterise(self, values, pixel_mm: float | None = None) -> np.ndarray:
        """Draw unit values as an image: each pixel shows its nearest unit.

        Pixels farther than 1.5 mean unit spacings from every unit are NaN.
        Accepts (N,) → (rows, cols) or (B, N) → (B, rows, cols); the nearest-unit
        map is cached, so repeated calls are a single fancy-index.
        """
        values = self._check_values(values)
        if pixel_mm is None:
            pixel_mm = self.default_pixel_mm()
        index, mask = self.nearest_map(pixel_mm)
        img = values[..., index].astype(np.float32, copy=False)
        if mask is not None:
            img = img.copy()
            img[..., mask] = np.nan
        return img

    def voxelise(self, values, fwhm_mm: float = defaults.FWHM_MM, voxel_mm: float = defaults.VOXEL_MM):
        """Simulated fMRI voxels (docs/science.md; methods §4): Gaussian-weighted mean of the units.

        ``v(x) = Σ_i a_i g(x − p_i) / Σ_i g(x − p_i)`` with g a Gaussian of the given FWHM,
        evaluated at voxel centres; voxels with no unit within 2σ are NaN. The Gaussian
        is truncated at 4σ (weights below e⁻⁸). (N,) → (rows, cols), (B, N) → (B, rows, cols).
        """
        values = self._check_values(values)
        weights, mask, shape = self.voxel_weights(fwhm_mm, voxel_mm)
        flat = values.reshape(-1, self.n_units).astype(np.float64, copy=False)
        out = np.asarray((weights @ flat.T).T, dtype=np.float32)  # (B, V)
        out[:, mask.ravel()] = np.nan
        return out.reshape(values.shape[:-1] + shape)

    def voxel_weights(self, fwhm_mm: float = defaults.FWHM_MM, voxel_mm: float = defaults.VOXEL_MM):
        """Row-normalised sparse (voxels × units) Gaussian weights, the NaN mask and the grid shape."""
        key = ("voxel", float(fwhm_mm), float(voxel_mm))
        if key not in self._cache:
            from scipy import sparse

            if not fwhm_mm > 0:
                raise TopoviewerError(f"FWHM must be positive, got {fwhm_mm} mm")
            sigma = sigma_from_fwhm(fwhm_mm)
            grid = self.grid(voxel_mm)
            centres = grid.centres()
            tree = self.kdtree()
            near = tree.query_ball_point(centres, 4.0 * sigma, return_sorted=False)
            counts = np.fromiter(map(len, near), dtype=np.int64, count=len(centres))
            cols = np.concatenate([np.asarray(n, dtype=np.int64) for n in near]) if counts.sum() else np.zeros(0, int)
            rows = np.repeat(np.arange(len(centres)), counts)
            d = np.hypot(*(self.positions[cols] - centres[rows]).T)
            w = sparse.csr_matrix(
                (np.exp(-0.5 * (d / sigma) ** 2), (rows, cols)), shape=(len(centres), self.n_units)
            )
            total = np.asarray(w.sum(axis=1)).ravel()
            nearest, _ = tree.query(centres, k=1)
            mask = nearest > defaults.VOXEL_MASK_SIGMAS * sigma
            scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
            w = sparse.diags(scale) @ w
            self._cache[key] = (w.tocsr(), mask.reshape(grid.shape), grid.shape)
        return self._cache[key]

    # ------------------------------------------------------------------ internals
    def kdtree(self):
        """The (cached) k-d tree of the unit positions."""
        if "tree" not in self._cache:
            from scipy.spatial import cKDTree

            self._cache["tree"] = cKDTree(self.positions)
        return self._cache["tree"]

    def nearest_map(self, pixel_mm: float):
        """``(index, mask)`` behind :meth:`rasterise`: each pixel's nearest unit, and the pixels too far from
        every unit (None when there are none). Cached per pixel size."""
        pixel_mm = float(pixel_mm)
        key = ("nearest", pixel_mm)
        if key not in self._cache:
            grid = self.grid(pixel_mm)
            d, nearest = self.kdtree().query(grid.centres(), k=1)
            index = nearest.reshape(grid.shape)
            mask = None
            if self.grid_shape is None:  # random layouts have gaps; grid sheets have none
                spacing = math.sqrt(self.extent_mm[0] * self.extent_mm[1] / self.n_units)
                far = (d > max(1.5 * spacing, pixel_mm)).reshape(grid.shape)
                mask = far if far.any() else None
            self._cache[key] = (index, mask)
        return self._cache[key]

    def set_nearest_map(self, pixel_mm: float, index, mask=None):
        """Adopt a stored :meth:`nearest_map` (e.g. from the analysis cache: no KD-tree, no scipy import).

        Checked against this sheet: the pixel grid's shape and the unit indices.
        """
        shape = self.grid(float(pixel_mm)).shape
        index = np.asarray(index)
        if index.shape != shape or not np.issubdtype(index.dtype, np.integer) or index.size == 0 \
                or index.min() < 0 or index.max() >= self.n_units:
            raise TopoviewerError(f"a nearest-unit map of sheet {self.name!r} must be {shape} unit indices "
                                  f"< {self.n_units}")
        if mask is not None and np.shape(mask) != shape:
            raise TopoviewerError(f"the mask of sheet {self.name!r}'s nearest-unit map must have shape {shape}")
        self._cache[("nearest", float(pixel_mm))] = (index, None if mask is None else np.asarray(mask, bool))

    def _check_values(self, values) -> np.ndarray:
        values = np.asarray(values)
        if values.shape[-1:] != (self.n_units,):
            raise TopoviewerError(
                f"sheet {self.name!r} has {self.n_units} units; got values of shape {values.shape}"
            )
        return values

    def describe(self) -> dict:
        """JSON-friendly summary used by ``topoviewer info``."""
        return {
            "name": self.name,
            "label": self.label,
            "units": self.n_units,
            "extent_mm": [self.extent_mm[0], self.extent_mm[1]],
            "unit": self.unit,
        }
