"""Publication figures with matplotlib: maps in millimetres, scale bars, colorbars, purity.

Everything here builds :class:`matplotlib.figure.Figure` objects directly (Agg rendering,
no ``pyplot``), so no global figure state leaks and nothing needs a display. Files are
written atomically (:func:`topoviewer.io.atomic_write`); the format follows the suffix:
``.png`` (raster, at the requested DPI), ``.svg`` or ``.pdf`` (vector).

Orientation convention
----------------------
Maps are drawn in sheet coordinates with **y pointing up** (``imshow(origin="lower")``):
raster row ``r`` covers ``y ∈ [y0 + r·p, y0 + (r+1)·p)`` exactly as :class:`~topoviewer.sheet.Sheet`
defines it, so a unit at (x, y) mm appears at (x, y) on the axes. The napari plugin uses
the same arrays (row = y, column = x) but napari's default 2-D camera draws row 0 at the
*top*; a figure therefore shows the napari view flipped vertically unless the viewer's
camera is oriented y-up.

The dashed "monkey" purity curve is a **qualitative** guide (docs/science.md; methods §5: purity near 1
at the centre of the middle face patch, falling to a low floor within ~3–4 mm), not data.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from . import defaults
from .errors import TopoviewerError
from .style import CMAP, map_limits

__all__ = [
    "FORMATS",
    "early_figure",
    "figure_format",
    "map_figure",
    "model_figure",
    "monkey_reference_purity",
    "nice_scale_length",
    "purity_figure",
    "save_figure",
    "sheet_map_axes",
]

#: Output formats by file suffix.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

#: Matplotlib settings used while a figure is built and saved (restored afterwards).
STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "figure.titlesize": 10.5,
    "axes.linewidth": 0.7,
    "xtick.major.width": 0.7,
    "ytick.major.width": 0.7,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text stays text in SVG (editable in Inkscape/Illustrator)
    "pdf.fonttype": 42,  # TrueType in PDF, as journals ask
    "image.interpolation": "nearest",
}

PANEL_W, PANEL_H = 2.7, 2.4  # inches per map panel (colorbar included)


# ---------------------------------------------------------------------- saving
def figure_format(out) -> str:
    """The matplotlib format of a figure file name (png, svg or pdf); TopoviewerError for another suffix."""
    suffix = Path(out).suffix.lower()
    if suffix not in FORMATS:
        raise TopoviewerError(
            f"cannot write a figure to {Path(out).name!r}: unknown file type {suffix or '(no suffix)'!r}; "
            f"valid suffixes are {', '.join(FORMATS)}"
        )
    return FORMATS[suffix]


def save_figure(fig, out, dpi: int = 200) -> Path:
    """Write ``fig`` to ``out`` atomically; the suffix picks PNG, SVG or PDF."""
    fmt = figure_format(out)
    if not (isinstance(dpi, (int, float)) and dpi > 0):
        raise TopoviewerError(f"dpi must be a positive number, got {dpi!r}")
    from .io import atomic_write
    from .validate import figure_pixels

    figure_pixels(*fig.get_size_inches(), dpi)

    # Dates left out of vector files so that the same figure gives the same bytes.
    metadata = {"Creator": "topoviewer"} if fmt == "png" else {"Creator": "topoviewer", "Date": None}
    return atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata))


@contextlib.contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _styled(func):
    """Run a figure builder inside :data:`STYLE` (rcParams restored afterwards)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _style():
            return func(*args, **kwargs)

    return wrapper


def _new_figure(width_in, height_in):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


# ---------------------------------------------------------------------- one map
def nice_scale_length(span: float, fraction: float = 0.2) -> float:
    """The largest 1-2-5 × 10ᵏ length not longer than ``fraction · span`` (10 mm → 2 mm)."""
    if not span > 0:
        raise TopoviewerError(f"a scale bar needs a positive span, got {span}")
    target = span * fraction
    k = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10.0**k <= target * (1 + 1e-9):
            return m * 10.0**k
    return 10.0**k  # pragma: no cover - m = 1 always fits


def _unit_label(sheet) -> str:
    return "mm" if sheet.unit == "mm" else "cells"


def _add_scale_bar(ax, sheet, length=None, loc="lower right"):
    """A labelled scale bar (length in sheet units) in a lower corner of a map."""
    from matplotlib.font_manager import FontProperties
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = nice_scale_length(min(sheet.extent_mm)) if length is None else float(length)
    unit = _unit_label(sheet)
    label = f"{length:g} {unit[:-1] if unit == 'cells' and length == 1 else unit}"
    bar = AnchoredSizeBar(
        ax.transData, length, label, loc, pad=0.25, borderpad=0.35, sep=2, color="black",
        frameon=True, size_vertical=min(sheet.extent_mm) / 120.0, fontproperties=FontProperties(size=7),
    )
    bar.patch.set_facecolor("white")
    bar.patch.set_alpha(0.85)
    bar.patch.set_edgecolor("none")
    bar.set_gid("scalebar")
    bar.length = length  # the bar's length in data units (sheet mm or cells), for readers and tests
    ax.add_artist(bar)
    return bar


def sheet_map_axes(
    ax, sheet, image, *, pixel_mm, cmap="viridis", vmin=None, vmax=None, title="", colorbar_label="",
    outline=None, outline_color="black", scale_bar=True, colorbar=True, marks=None,
):
    """Draw a raster of ``sheet`` on ``ax`` in sheet coordinates, with scale bar and colorbar.

    Parameters
    ----------
    ax : matplotlib Axes
    sheet : Sheet
        Gives the origin and units; the raster's pixel ``(r, c)`` is placed at
        ``x = x0 + c·pixel_mm``, ``y = y0 + r·pixel_mm`` (y up, ``origin="lower"``).
    image : (rows, cols) array
        A raster from :meth:`Sheet.rasterise`, :meth:`Sheet.voxelise` or any map on
        ``sheet.grid(pixel_mm)``. NaN pixels are drawn light grey.
    pixel_mm : float
        Its pixel edge (sheet units).
    cmap, vmin, vmax : colormap name and limits.
    title, colorbar_label : str
    outline : (rows, cols) bool array, optional
        Drawn as a contour (e.g. the patch voxels with t > 10) on the same grid.
    marks : list of (x, y), optional
        Points to mark with a small cross (e.g. a patch centre).

    Returns
    -------
    (image artist, colorbar or None, scale bar or None)
    """
    import matplotlib

    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise TopoviewerError(f"a sheet map must be a 2-D raster, got shape {image.shape}")
    x0, y0 = sheet.origin_mm
    rows, cols = image.shape
    extent = (x0, x0 + cols * pixel_mm, y0, y0 + rows * pixel_mm)
    cm = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    cm = cm.with_extremes(bad="0.88")
    im = ax.imshow(image, origin="lower", extent=extent, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    if outline is not None:
        _draw_outline(ax, np.asarray(outline, dtype=bool), x0, y0, pixel_mm, outline_color)
    if marks:
        from matplotlib import patheffects

        halo = [patheffects.withStroke(linewidth=3, foreground="white")]
        for x, y in marks:
            ax.plot([x], [y], marker="+", color="black", markersize=8, markeredgewidth=1.3, path_effects=halo)
    w, h = sheet.extent_mm
    ax.set_xlim(x0, x0 + w)
    ax.set_ylim(y0, y0 + h)
    ax.set_aspect("equal")
    unit = "mm" if sheet.unit == "mm" else "cell"
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5, integer=True, min_n_ticks=3))
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=5, integer=True, min_n_ticks=3))
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if title:
        ax.set_title(title)
    cbar = None
    if colorbar:
        # an inset colorbar is exactly as tall as the (equal-aspect) map, whatever the layout
        cax = ax.inset_axes([1.04, 0.0, 0.05, 1.0])
        cbar = ax.figure.colorbar(im, cax=cax)
        cbar.set_label(colorbar_label)
        cbar.ax.tick_params(labelsize=7)
        cbar.outline.set_linewidth(0.5)
    bar = _add_scale_bar(ax, sheet, loc=_free_corner(sheet, marks)) if scale_bar else None
    return im, cbar, bar


def _free_corner(sheet, marks) -> str:
    """"lower right" unless a mark sits there (then "lower left"): the bar never hides a mark."""
    (x0, y0), (w, h) = sheet.origin_mm, sheet.extent_mm
    for x, y in marks or ():
        if x > x0 + 0.55 * w and y < y0 + 0.3 * h:
            return "lower left"
    return "lower right"


def _draw_outline(ax, mask, x0, y0, pixel_mm, color, upsample=8):
    """Contour of a boolean pixel mask along (nearly) the pixel edges.

    The mask is upsampled ``upsample``× before contouring at 0.5, so the line follows
    the voxel borders (corners cut by 1/(2·upsample) voxel) instead of joining voxel
    centres, and a single voxel is drawn as a square, not a diamond.
    """
    if not mask.any():
        return None
    k = int(upsample)
    fine = np.kron(mask.astype(float), np.ones((k, k)))
    padded = np.pad(fine, 1)  # closes patches that touch the border
    step = pixel_mm / k
    xs = x0 + (np.arange(padded.shape[1]) - 0.5) * step
    ys = y0 + (np.arange(padded.shape[0]) - 0.5) * step
    cs = ax.contour(xs, ys, padded, levels=[0.5], colors=[color], linewidths=1.1)
    cs.set_gid("outline")
    return cs


# ---------------------------------------------------------------------- purity helpers
def monkey_reference_purity(distance_mm, floor=0.1, half_mm=2.0, width_mm=0.5):
    """Qualitative purity profile of the monkey middle face patch (docs/science.md; methods §5).

    A logistic fall-off: ≈ 1 at the centre, half-way at ``half_mm`` and a ``floor`` of
    ≈ 0.1 beyond ~3.5 mm. It reproduces the *shape* described in the paper, not data.
    """
    d = np.asarray(distance_mm, dtype=float)
    return floor + (1.0 - floor) / (1.0 + np.exp((d - half_mm) / width_mm))


def _curve_arrays(curve):
    """(distance, purity) float arrays from a PurityCurve, a summary dict or a pair."""
    if hasattr(curve, "distance_mm") and hasattr(curve, "purity"):
        d, p = curve.distance_mm, curve.purity
    elif isinstance(curve, dict):
        try:
            d, p = curve["distance_mm"], curve["purity"]
        except KeyError:
            raise TopoviewerError(
                f"a purity curve dict needs 'distance_mm' and 'purity' keys, got {sorted(curve)}"
            ) from None
    else:
        try:
            d, p = curve
        except (TypeError, ValueError):
            raise TopoviewerError(
                "a purity curve must be a PurityCurve, a dict with distance_mm/purity or a (distance, purity) pair"
            ) from None
    d = np.asarray(d, dtype=float)
    p = np.asarray([np.nan if v is None else v for v in p], dtype=float)
    if d.shape != p.shape or d.ndim != 1:
        raise TopoviewerError(f"purity curve: distance and purity differ in shape ({d.shape} vs {p.shape})")
    return d, p


def _stack_curves(curves):
    """Align curves on their distance bins (union); missing bins are NaN. → (d, (n, bins))."""
    arrays = [_curve_arrays(c) for c in curves]
    if not arrays:
        raise TopoviewerError("purity_figure needs at least one purity curve")
    d_all = np.unique(np.round(np.concatenate([d for d, _ in arrays]), 9))
    stack = np.full((len(arrays), len(d_all)), np.nan)
    for i, (d, p) in enumerate(arrays):
        stack[i, np.searchsorted(d_all, np.round(d, 9))] = p
    return d_all, stack


def _mean_sem(stack):
    n = np.sum(np.isfinite(stack), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        mean = np.nanmean(stack, axis=0)
        sd = np.nanstd(stack, axis=0, ddof=1)
    sem = np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, np.where(np.isfinite(sem), sem, 0.0), n


@contextlib.contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _purity_axes(ax, *, reference=True, max_d=None, unit="mm"):
    if reference:
        d = np.linspace(0.0, max(6.0, max_d or 0.0), 200)
        ax.plot(d, monkey_reference_purity(d), ls="--", color="0.45", lw=1.1, zorder=1.5,
                label="monkey middle face patch (qualitative reference)")
    ax.set_xlabel(f"distance from centre ({unit})")
    ax.set_ylabel("purity (fraction selective)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, max_d if max_d else None)
    import matplotlib.ticker

    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, integer=True))
    ax.grid(True, lw=0.3, color="0.85")
    ax.set_axisbelow(True)


# ---------------------------------------------------------------------- figures
@_styled
def map_figure(analysis, model, out, category="faces", dpi=200, *, threshold=defaults.DPRIME_THRESHOLD,
               t_threshold=defaults.VOXEL_T_THRESHOLD, voxel_mm=defaults.VOXEL_MM,
               fwhm_mm=defaults.FWHM_MM) -> Path:
    """One row per sheet: d′ map, voxel t-map with patch outline, purity rings, purity curve.

    Parameters
    ----------
    analysis : pipeline.Analysis
        From :func:`topoviewer.pipeline.analyze`; its ``voxel_t`` maps must be on
        ``voxel_mm`` voxels smoothed with ``fwhm_mm`` (the defaults of both).
    model : TopoModel
        Supplies the sheets (positions, extents).
    out : path ending in .png, .svg or .pdf
    category : str
        The category mapped (``"faces"``).
    dpi : int
        Resolution of a PNG (and of the embedded rasters of vector files).
    threshold : float
        d′ threshold of a selective unit (purity).
    t_threshold : float
        Voxel t of the patch outline (t > 10).
    """
    from .analysis import purity_rings

    figure_format(out)
    if category not in analysis.categories:
        raise TopoviewerError(f"category {category!r} is not in the analysis ({', '.join(analysis.categories)})")
    names = list(analysis.sheets)
    if not names:
        raise TopoviewerError("the analysis holds no sheet to draw")
    fig = _new_figure(4 * PANEL_W + 0.2, len(names) * PANEL_H + 0.45)
    _suptitle(fig, f"{model.name}: {category} selectivity", analysis.stimuli_name)
    subfigs = np.atleast_1d(fig.subfigures(len(names), 1, hspace=0.02))
    legend_axes = None
    for sub, name in zip(subfigs, names):
        sheet = model.sheet(name)
        maps = analysis.sheets[name]
        unit = "mm" if sheet.unit == "mm" else "cell"
        axes = sub.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 0.95]})
        sub.supylabel(f"{sheet.title}\n{sheet.n_units} units", fontsize=9.5, fontweight="bold")

        # d′ map
        dp = np.asarray(maps.dprime[category], dtype=float)
        px = sheet.default_pixel_mm()
        vmin, vmax = map_limits("dprime", dp, threshold=threshold)
        _, cbar, _ = sheet_map_axes(
            axes[0], sheet, sheet.rasterise(dp, px), pixel_mm=px, cmap=CMAP["dprime"], vmin=vmin, vmax=vmax,
            title=f"{category} d′ (units)", colorbar_label="d′",
        )
        for v in (-threshold, threshold):
            cbar.ax.axhline(v, color="black", lw=0.6)

        # voxel t-map with the patch outline
        t_map = maps.voxel_t.get(category)
        if t_map is None:
            _empty(axes[1], f"no voxel t-map for {category}")
        else:
            t_map = np.asarray(t_map, dtype=float)
            tmin, tlim = map_limits("voxel_t", t_map, threshold=t_threshold)
            n_sel = int(np.sum(np.nan_to_num(t_map, nan=-np.inf) > t_threshold))
            _, tbar, _ = sheet_map_axes(
                axes[1], sheet, t_map, pixel_mm=voxel_mm, cmap=CMAP["voxel_t"], vmin=tmin, vmax=tlim,
                title=f"voxel t ({fwhm_mm:g} {unit} FWHM)", colorbar_label=f"t ({category} vs others)",
                outline=np.nan_to_num(t_map, nan=-np.inf) > t_threshold,
            )
            if tlim > t_threshold:
                for v in (-t_threshold, t_threshold):
                    tbar.ax.axhline(v, color="black", lw=0.6)
            axes[1].text(0.02, 0.98, f"t > {t_threshold:g}: {n_sel} vox", transform=axes[1].transAxes,
                         va="top", ha="left", fontsize=7,
                         bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.75})

        # purity rings and curve
        try:
            curve = maps.purity(category, threshold)
        except TopoviewerError as exc:
            _empty(axes[2], f"purity not defined:\n{exc}")
            _empty(axes[3], "")
            continue
        rpx = sheet.default_pixel_mm(200)
        rings = purity_rings(sheet, curve, rpx)
        vmin, vmax = map_limits("purity", rings)
        sheet_map_axes(
            axes[2], sheet, rings, pixel_mm=rpx, cmap=CMAP["purity"], vmin=vmin, vmax=vmax,
            title=f"purity rings ({curve.bin_mm:g} {unit})", colorbar_label="purity", marks=[curve.centre],
        )
        d, p = _curve_arrays(curve)
        ax = axes[3]
        _purity_axes(ax, reference=sheet.unit == "mm", max_d=float(d.max() + curve.bin_mm / 2), unit=unit)
        ax.plot(d, p, "-o", color="C3", ms=3.5, lw=1.4, label="model")
        same = maps.null is not None and category == _purity_category(maps) and maps.thresholds.get(category) == threshold
        band = maps.null.purity_band() if same else None
        if band is not None:
            k = min(len(d), len(band[0]))
            ax.fill_between(d[:k], band[0][:k], band[1][:k], color="C0", alpha=0.2, lw=0,
                            label=f"spatial null, 5–95 % ({maps.null.n_shuffles} shuffles)")
        frac = float(np.mean(dp > threshold))
        ax.axhline(frac, color="C3", lw=0.7, ls=":", label="model, whole-sheet fraction")
        ax.set_title("purity vs distance")
        ax.set_box_aspect(1.0)
        legend_axes = legend_axes or ax
    if legend_axes is not None:
        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Patch

        handles, labels = legend_axes.get_legend_handles_labels()
        # the null band's entry as a plain patch of its colour: matplotlib < 3.10.5 cannot put a
        # subfigure's fill_between into the figure's legend ("single artist in more than one figure")
        handles = [Patch(facecolor=h.get_facecolor()[0], lw=0) if isinstance(h, PolyCollection) else h for h in handles]
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return save_figure(fig, out, dpi)


def early_figure(analysis, model, out, dpi=200) -> Path:
    """One row per sheet of an analysis on gratings: the orientation map with its pinwheels, OSI,
    preferred spatial frequency and preferred hue (or why there is none).

    Parameters
    ----------
    analysis : pipeline.Analysis
        From :func:`topoviewer.pipeline.analyze` on :func:`topoviewer.stimuli.gratings`.
    model : TopoModel
    out : path ending in .png, .svg or .pdf
    dpi : int
    """
    figure_format(out)
    names = [n for n, m in analysis.sheets.items() if m.early is not None]
    if not names:
        raise TopoviewerError("the analysis holds no early visual maps: analyse on gratings (--stimuli gratings)")
    fig = _new_figure(4 * PANEL_W + 0.2, len(names) * PANEL_H + 0.45)
    _suptitle(fig, f"{model.name}: early visual maps", analysis.stimuli_name)
    subfigs = np.atleast_1d(fig.subfigures(len(names), 1, hspace=0.02))
    for sub, name in zip(subfigs, names):
        sheet, early = model.sheet(name), analysis.sheets[name].early
        omap, t = early.orientation, early.tuning
        axes = sub.subplots(1, 4)
        sub.supylabel(f"{sheet.title}\n{sheet.n_units} units", fontsize=9.5, fontweight="bold")
        pw = early.pinwheels
        density = analysis.sheets[name].summary["gratings"]["orientation_map"]["pinwheel_density"]
        sheet_map_axes(axes[0], sheet, omap.orientation_deg, pixel_mm=omap.grid.pixel_mm, cmap=CMAP["orientation"],
                       vmin=0, vmax=180, colorbar_label="preferred orientation (°)",
                       title=f"orientation · {len(pw.charge)} pinwheels"
                             + ("" if density is None else f" ({density:.2f}/Λ²)"))
        positive = pw.charge > 0
        axes[0].scatter(*pw.positions_mm.T, s=28, c=np.where(positive, "white", "black"),
                        edgecolors=np.where(positive, "black", "white"), linewidths=0.9, zorder=3)
        px = sheet.default_pixel_mm()
        for ax, kind, values, label in ((axes[1], "osi", t.osi, "OSI (1 − circ. variance)"),
                                        (axes[2], "sf", t.sf_cpi, "preferred SF (cycles/image)"),
                                        (axes[3], "colour", t.hue_deg, "preferred hue (°)")):
            if values is None:
                _empty(ax, f"no colour map:\n{early.colour_note}")
                continue
            vmin, vmax = map_limits(kind, values)
            sheet_map_axes(ax, sheet, sheet.rasterise(values, px), pixel_mm=px, cmap=CMAP[kind], vmin=vmin,
                           vmax=vmax, colorbar_label=label, title=label.split(" (")[0])
    return save_figure(fig, out, dpi)


def _suptitle(fig, title, stimuli_name):
    """The figure's bold title and its stimuli; long names on two lines, never clipped."""
    stim = f"stimuli: {stimuli_name}"
    sep = "\n" if len(title) + len(stim) > 100 else "  ·  "
    fig.suptitle(f"{title}{sep}{stim}", fontweight="bold")


def _purity_category(maps):
    return (maps.summary.get("purity_curve") or {}).get("category")


def _empty(ax, message):
    ax.set_axis_off()
    if message:
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=7.5, wrap=True, transform=ax.transAxes)


@_styled
def purity_figure(curves, out, labels=None, dpi=200, *, title="Purity around the patch centre",
                  reference=True, unit="mm") -> Path:
    """Purity vs distance: mean ± SEM over several curves, with the monkey reference shape.

    Parameters
    ----------
    curves : sequence of curves, sequence of groups, or mapping label → curves
        A curve is a :class:`~topoviewer.analysis.PurityCurve`, a ``summary["purity_curve"]``
        dict (``distance_mm``, ``purity``) or a ``(distance, purity)`` pair. A plain
        sequence of curves is one group (e.g. 20 trained models); a sequence of
        sequences or a mapping gives one mean ± SEM line per group.
    out : path ending in .png, .svg or .pdf
    labels : str or list of str, optional
        Names of the groups (default: "model" or the mapping's keys).
    reference : bool
        Draw the qualitative monkey middle-face-patch shape (dashed).
    """
    figure_format(out)
    groups = _groups(curves, labels)
    fig = _new_figure(3.6, 3.1 + 0.17 * (len(groups) + int(reference)))
    ax = fig.add_subplot()
    max_d = 0.0
    for i, (label, members) in enumerate(groups):
        d, stack = _stack_curves(members)
        mean, sem, _ = _mean_sem(stack)
        color = f"C{(i + 3) % 10}"
        if len(members) > 1:
            for row in stack:
                ax.plot(d, row, color=color, lw=0.5, alpha=0.25)
        ax.fill_between(d, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
        ax.plot(d, mean, "-o", color=color, ms=3.5, lw=1.5,
                label=f"{label} (n = {len(members)}{', mean ± SEM' if len(members) > 1 else ''})")
        max_d = max(max_d, float(d.max()) + 0.5 * (d[1] - d[0] if len(d) > 1 else 1.0))
    _purity_axes(ax, reference=reference, max_d=max_d, unit=unit)
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=1, frameon=False)
    return save_figure(fig, out, dpi)


def _is_curve(obj) -> bool:
    if hasattr(obj, "distance_mm") and hasattr(obj, "purity"):
        return True
    if isinstance(obj, dict):
        return "distance_mm" in obj and "purity" in obj
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        try:
            return np.asarray(obj[0], dtype=float).ndim == 1 and len(obj[0]) > 0
        except (TypeError, ValueError):
            return False
    return False


def _groups(curves, labels):
    """Normalise the ``curves`` argument of :func:`purity_figure` to [(label, [curve, ...]), ...]."""
    if isinstance(curves, dict) and not _is_curve(curves):
        items = [(str(k), list(v)) for k, v in curves.items()]
    else:
        curves = [curves] if _is_curve(curves) else list(curves)
        if not curves:
            raise TopoviewerError("purity_figure needs at least one purity curve")
        items = [(None, curves)] if all(_is_curve(c) for c in curves) else [(None, list(g)) for g in curves]
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else [str(v) for v in labels]
        if len(labels) != len(items):
            raise TopoviewerError(f"{len(labels)} labels for {len(items)} groups of purity curves")
        items = [(lab, g) for lab, (_, g) in zip(labels, items)]
    out = []
    for i, (lab, members) in enumerate(items):
        lab = lab if lab is not None else ("model" if len(items) == 1 else f"group {i + 1}")
        if not members:
            raise TopoviewerError(f"purity curve group {lab!r} is empty")
        out.append((lab, members))
    return out


def model_figure(model, stimuli=None, out="topoviewer-figure.png", category="faces", dpi=200, **options) -> Path:
    """Analyse ``model`` on ``stimuli`` (default: the procedural localizer) and draw :func:`map_figure`
    (:func:`early_figure` for gratings).

    This is what ``topoviewer figure MODEL --out FILE`` runs. ``options`` go to
    :func:`topoviewer.pipeline.analyze` (e.g. ``fwhm_mm``, ``voxel_mm``).
    """
    from .pipeline import analyze
    from .stimuli import GratingSet

    figure_format(out)  # fail before the (slow) analysis
    analysis = analyze(model, stimuli, **options)
    if isinstance(stimuli, GratingSet):
        return early_figure(analysis, model, out, dpi=dpi)
    extra = {k: options[k] for k in ("fwhm_mm", "voxel_mm", "threshold") if k in options}
    return map_figure(analysis, model, out, category=category, dpi=dpi, **extra)
