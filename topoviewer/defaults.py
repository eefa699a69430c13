"""One place for every scientific default (section numbers of the methods summary in brackets; decisions in docs/science.md)."""

#: Gaussian smoothing of the simulated fMRI, full width at half maximum in mm [§4].
FWHM_MM = 1.0
#: Simulated fMRI voxel edge in mm [§4].
VOXEL_MM = 0.5
#: FWHM → σ conversion factor: FWHM = 2·sqrt(2·ln 2)·σ ≈ 2.3548·σ [§4].
FWHM_PER_SIGMA = 2.0 * (2.0 * __import__("math").log(2.0)) ** 0.5
#: A voxel with no unit within this many σ is masked (NaN) [§4].
VOXEL_MASK_SIGMAS = 2.0
#: Model d′ threshold for category selectivity (monkey 0.65 after Poisson noise) [§3].
DPRIME_THRESHOLD = 0.85
#: Neural d′ threshold the noise calibration inverts at [§3].
NEURAL_DPRIME_THRESHOLD = 0.65
#: Voxel Welch-t threshold for a selective voxel [§3–4].
VOXEL_T_THRESHOLD = 10.0
#: A patch is at least this many connected selective voxels [§4].
PATCH_MIN_VOXELS = 10
#: Radius of the disc searched for the peak selectivity point, mm [§5].
PEAK_RADIUS_MM = 1.0
#: Units within this distance of the peak are "patch units", mm [§5].
PATCH_RADIUS_MM = 3.0
#: Purity region edge and purity-curve bin width, mm [§5].
PURITY_BIN_MM = 1.0
#: Microstimulation disc radius, mm (the paper's 4 mm region read as a diameter) [§6].
STIM_RADIUS_MM = 2.0
#: σ of the Gaussian spatial decay of microstimulation, mm [§6].
STIM_SIGMA_MM = 1.0
#: Spatial profile of microstimulation: "peak1" (exp(−d²/2σ²), peak 1) or "normal_density"
#: (the normal density exp(−d²/2σ²)/(σ·sqrt(2π)), peak 0.399 at σ = 1 mm) [§6].
STIM_DECAY = "peak1"
#: Outside stimulation sites: "paper" (only the site's centre outside every patch) or "strict"
#: (the whole disc clear of every patch voxel) [§6].
STIM_OUTSIDE_RULE = "paper"
#: Correlation length λ of the spatial-loss target 1/(d/λ + 1), mm [§2].
CORRELATION_LENGTH_MM = 1.0
#: Per-layer weight of the absolute / relative spatial loss [§2].
SPATIAL_ALPHA = 0.25
#: TopoLoss downsampling factor φ [§2].
TOPOLOSS_FACTOR = 3.0
#: Largest sheet for which a full N×N correlation matrix is built [§2].
MAX_DENSE_UNITS = 4096
#: Units in one sampled neighbourhood of the relative loss [§2].
NEIGHBOURHOOD_UNITS = 500
