"""Simulated fMRI (docs/science.md; methods §4): smoothed voxel responses and voxel selectivity maps.

Each image's activation map is smoothed with a Gaussian of ``fwhm_mm`` and sampled on
``voxel_mm`` voxels by :meth:`Sheet.voxelise` (a Gaussian-weighted mean of the units,
NaN where no unit is within 2σ). Voxel selectivity is Welch's t per voxel.
"""

from __future__ import annotations

import numpy as np

from .. import defaults
from ..errors import TopoviewerError
from .selectivity import contrast_masks, contrasted_categories, welch_t

__all__ = ["contrast_map", "t_maps", "units_in_voxels", "voxel_responses", "voxel_t_maps"]


def voxel_responses(sheet, responses, fwhm_mm=defaults.FWHM_MM, voxel_mm=defaults.VOXEL_MM):
    """Voxelise every image's responses: (n_images, n_units) → (n_images, rows, cols)."""
    return sheet.voxelise(np.asarray(responses), fwhm_mm=fwhm_mm, voxel_mm=voxel_mm)


def voxel_t_maps(
    sheet,
    responses,
    labels,
    categories,
    *,
    versus="others",
    fwhm_mm=defaults.FWHM_MM,
    voxel_mm=defaults.VOXEL_MM,
):
    """Welch-t voxel selectivity map of every category: ``{name: (rows, cols)}``.

    The responses are voxelised once and reused for every category. With ``versus``
    a list of names, a category that is the only name in the list is left out
    (it has no contrast set).
    """
    return t_maps(voxel_responses(sheet, responses, fwhm_mm, voxel_mm), labels, categories, versus=versus)


def t_maps(voxels, labels, categories, *, versus="others"):
    """Welch-t map of every category from voxel responses already computed (n_images, rows, cols)."""
    return {
        name: welch_t(voxels, *contrast_masks(labels, categories, name, versus))
        for name in contrasted_categories(categories, versus)
    }


def contrast_map(values, in_mask, contrast_mask):
    """Mean response to the in set minus mean response to the contrast set, along axis 0.

    For voxel responses (n_images, rows, cols) this is the per-voxel contrast intensity
    summed by cluster strength; NaN voxels stay NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    return values[np.asarray(in_mask, bool)].mean(axis=0) - values[np.asarray(contrast_mask, bool)].mean(axis=0)


def units_in_voxels(sheet, voxel_mask, voxel_mm=defaults.VOXEL_MM):
    """Which units lie inside the selected voxels: (rows, cols) bool → (n_units,) bool.

    Used to turn a voxel patch (e.g. all t > 10 voxels) into the units it covers.
    """
    voxel_mask = np.asarray(voxel_mask, dtype=bool)
    grid = sheet.grid(voxel_mm)
    if voxel_mask.shape != grid.shape:
        raise TopoviewerError(f"voxel mask of shape {voxel_mask.shape} does not match the {grid.shape} voxel grid")
    rows, cols = _cell_indices(sheet.positions, grid)
    return voxel_mask[rows, cols]


def _cell_indices(positions, grid):
    """(row, col) of the grid cell holding each position, clipped to the grid."""
    rel = (np.asarray(positions) - np.asarray(grid.origin_mm)) / grid.pixel_mm
    cols = np.clip(np.floor(rel[:, 0]).astype(int), 0, grid.shape[1] - 1)
    rows = np.clip(np.floor(rel[:, 1]).astype(int), 0, grid.shape[0] - 1)
    return rows, cols
