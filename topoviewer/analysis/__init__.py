"""Pure analyses of unit responses on sheets (SCIENCE.md §3–6).

Every function takes numpy arrays (responses are ``(n_images, n_units)`` floats,
labels ``(n_images,)`` ints into a ``categories`` list) plus a :class:`~topoviewer.sheet.Sheet`
where positions matter, and returns numpy arrays or small dataclasses.
"""

from .fmri import contrast_map, t_maps, units_in_voxels, voxel_responses, voxel_t_maps
from .patches import (
    PurityCurve,
    cluster_strength,
    disc_centres,
    disc_means,
    find_patches,
    largest_patch,
    largest_patch_voxels,
    patch_units,
    peak_distance,
    peak_point,
    purity_curve,
    purity_rings,
    random_pair_distances,
    split_halves,
    voxel_cluster_strength,
)
from .selectivity import (
    Calibration,
    calibrate_threshold,
    contrast_masks,
    contrasted_categories,
    dprime,
    dprime_maps,
    fraction_selective,
    welch_t,
)
from .structure import CorrelationCurve, correlation_by_distance, effective_dimensionality, neighbour_agreement
from .stimulation import (
    Stimulation,
    lesion_disc,
    lesion_random,
    microstimulate,
    outside_site,
    stimulation_pattern,
)

__all__ = [
    "CorrelationCurve",
    "correlation_by_distance",
    "effective_dimensionality",
    "neighbour_agreement",
    "Calibration",
    "PurityCurve",
    "Stimulation",
    "calibrate_threshold",
    "cluster_strength",
    "contrast_map",
    "contrast_masks",
    "contrasted_categories",
    "disc_centres",
    "disc_means",
    "dprime",
    "dprime_maps",
    "find_patches",
    "fraction_selective",
    "largest_patch",
    "largest_patch_voxels",
    "lesion_disc",
    "lesion_random",
    "microstimulate",
    "outside_site",
    "patch_units",
    "peak_distance",
    "peak_point",
    "purity_curve",
    "purity_rings",
    "random_pair_distances",
    "split_halves",
    "t_maps",
    "stimulation_pattern",
    "units_in_voxels",
    "voxel_responses",
    "voxel_cluster_strength",
    "voxel_t_maps",
    "welch_t",
]
