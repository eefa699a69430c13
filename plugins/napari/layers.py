"""The layer book: turns the :class:`~topoviewer_napari.state.TopoState` into napari layers.

Every layer the plugin owns carries ``metadata["topoviewer_key"] = "<sheet>/<kind>"``
and is looked up by that key, so it is **updated in place** (data, limits, name) and
never added twice — whoever created it (the book, the sample, a reader). Names read
``"<sheet> · <map>"`` (e.g. ``"fc6 · d′ faces"``); every layer carries the sheet unit
(``mm``) so napari's scale bar works; placement comes from :mod:`.layout` only.

napari, but no Qt: usable from a script with ``napari.Viewer()``.
"""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager

import numpy as np

from topoviewer.style import CMAP, map_limits, symmetric_limit

from .layout import COLUMN_TITLES, COLUMNS, SheetLayout
from .state import ring_pixel_mm

__all__ = ["LayerBook", "KEY", "frame_layer_data"]

#: The metadata entry naming a plugin layer.
KEY = "topoviewer_key"

#: Colours of overlays.
SITE_COLOR = "#39ff14"
PATCH_COLOR = "#101010"
READOUT_COLOR = "#00e5ff"
CENTRE_COLOR = "#00e5ff"
PINWHEEL_COLOR = "#ffffff"
#: Outline of drawn lesion regions, and the key of their Shapes layer.
REGION_COLOR = "#ff3b30"
REGIONS_KEY = "lesion/regions"
#: Colormap of matched neurons' r (0 → 1).
MATCH_CMAP = "viridis"
#: The early visual map layers (analysis on gratings) and the cell each is drawn in, over the category maps.
EARLY_LAYERS = {"orientation": "dprime", "pinwheels": "dprime", "osi": "voxel_t", "sf": "purity", "colour": "purity"}
#: Outline of the category's patch over the activation and stimulation maps (dark colormaps).
ACTIVITY_PATCH_COLOR = "#f2f2f2"
#: Where the category's patch is outlined besides its own voxel t map.
ACTIVITY_COLUMNS = ("activation", "stimulation")
#: Upsampling of patch outlines (thin contours on coarse voxels).
OUTLINE_UPSAMPLE = 4


def frame_layer_data(layout: SheetLayout, titles: dict | None = None):
    """Layer-data tuple of the cell frames with their titles (a Shapes layer)."""
    rects, names = [], []
    for s in layout.sheets:
        for column in COLUMNS:
            y0, x0, y1, x1 = layout.cell_box(s.name, column)
            rects.append(np.array([[y0, x0], [y1, x1]]))
            names.append((titles or {}).get((s.name, column), f"{s.title} · {COLUMN_TITLES[column]}"))
    kwargs = {
        "name": "layout · cells",
        "shape_type": "rectangle",
        "edge_color": "#808080",
        "edge_width": 0.04 * layout.gap,
        "face_color": "transparent",
        "features": {"title": names},
        "text": {"string": "{title}", "anchor": "upper_left", "size": 8, "color": "#d0d0d0",
                 "translation": [-0.32 * layout.gap, 0.0]},
        "units": (layout.unit, layout.unit),
        "metadata": {KEY: "layout/cells"},
        "blending": "translucent_no_depth",
    }
    return (rects, kwargs, "shapes")


def _one_scene_update(method):
    """Run a LayerBook method inside :meth:`LayerBook.scene_update` (one scene-graph redo at the end)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.scene_update():
            return method(self, *args, **kwargs)

    return wrapper


#: Layer-list events after which napari redoes its scene graph.
_SCENE_EVENTS = frozenset({"inserted", "removed", "reordered", "moved", "visible"})


class LayerBook:
    """Creates and updates the plugin's layers in a viewer from a state."""

    def __init__(self, viewer, state):
        self.viewer = viewer
        self.state = state
        self.layout: SheetLayout | None = None
        self.last_update_ms = 0.0
        self._refs: dict = {}
        ev = state.events
        ev.model_changed.connect(self._on_model)
        ev.analysis_changed.connect(self._on_analysis)
        ev.early_changed.connect(self._on_early)
        ev.category_changed.connect(self._on_category)
        ev.voxel_t_changed.connect(self._on_voxel_t)
        ev.activations_changed.connect(self._on_activations)
        ev.stimulated.connect(self._on_stimulated)
        self.viewer.mouse_move_callbacks.append(self._on_hover)
        self.viewer.layers.selection.events.active.connect(self._show_colorbar)
        self._closed = False
        #: How secondary maps are scheduled after the d′ maps: immediately here; the Qt controller
        #: defers them to the next event-loop turn so the first picture appears sooner.
        self.defer = lambda fn: fn()
        self._stim_roles = None
        self._revealed: set = set()
        #: Analyses whose secondary maps are still being drawn (deferred steps).
        self.pending = 0
        self._hidden_units: dict = {}  # units layers hidden while their map changed: key → _units args
        self._units_hooked: set = set()  # ids of units layers whose visibility we follow

    def close(self):
        """Disconnect from the state and the viewer (the layers stay)."""
        if self._closed:
            return
        self._closed = True
        ev = self.state.events
        for sig, fn in ((ev.model_changed, self._on_model), (ev.analysis_changed, self._on_analysis),
                        (ev.early_changed, self._on_early),
                        (ev.category_changed, self._on_category), (ev.voxel_t_changed, self._on_voxel_t),
                        (ev.activations_changed, self._on_activations), (ev.stimulated, self._on_stimulated)):
            sig.disconnect(fn)
        if self._on_hover in self.viewer.mouse_move_callbacks:
            self.viewer.mouse_move_callbacks.remove(self._on_hover)
        self.viewer.layers.selection.events.active.disconnect(self._show_colorbar)

    @contextmanager
    def scene_update(self):
        """Layers added, removed or shown/hidden inside redo napari's scene graph once, at the end.

        napari's canvas redoes every layer's overlays and draw order at each added layer and at
        each ``visible`` set (≈ 20–40 ms with the plugin's 20 layers under llvmpipe: 21 redos
        while the first maps are drawn, 6 when a stimulation's layers are shown or hidden).
        ``viewer.layers.batched_update()`` batches them but always ends with ``gc.collect()`` and
        a redo (≈ 100 ms here), even when nothing changed. This pauses the canvas's redo and does
        it once, only if a layer was added, removed, reordered or toggled. Without a Qt canvas
        (a headless viewer) or when a batch is already open, it only runs the block.
        """
        canvas = getattr(getattr(getattr(self.viewer, "window", None), "_qt_viewer", None), "canvas", None)
        if getattr(canvas, "_pause_scene_graph", True) or not hasattr(canvas, "_update_scenegraph"):
            yield
            return
        changed = []

        def note(event):
            if event.type in _SCENE_EVENTS:
                changed.append(event.type)

        layers = self.viewer.layers
        layers.events.connect(note)
        canvas._pause_scene_graph = True
        try:
            yield
        finally:
            canvas._pause_scene_graph = False
            layers.events.disconnect(note)
            if changed and not self._closed:
                canvas._update_scenegraph()

    def _show_colorbar(self, event=None):
        """napari's colorbar overlay on the selected map layer only (its colormap and limits, in the map's units)."""
        active = self.viewer.layers.selection.active
        for layer in self.viewer.layers:
            if KEY in layer.metadata and hasattr(layer, "colorbar"):
                layer.colorbar.visible = layer is active

    # ------------------------------------------------------------------ lookup
    def get(self, key: str):
        """The layer with metadata key ``key`` (None if absent)."""
        layer = self._refs.get(key)
        if layer is not None and layer in self.viewer.layers:
            return layer
        for layer in self.viewer.layers:
            if layer.metadata.get(KEY) == key:
                self._refs[key] = layer
                return layer
        self._refs.pop(key, None)
        return None

    def keys(self) -> list:
        return [layer.metadata[KEY] for layer in self.viewer.layers if KEY in layer.metadata]

    def remove(self, predicate):
        for layer in [lyr for lyr in self.viewer.layers if KEY in lyr.metadata and predicate(lyr.metadata[KEY])]:
            self.viewer.layers.remove(layer)
            self._refs.pop(layer.metadata[KEY], None)

    def _unit(self):
        u = self.layout.unit
        return (u, u)

    @contextmanager
    def _unselected(self):
        """Add layers without selecting them.

        napari makes each inserted layer the active one (``LayerList._activate_on_insert``), and every
        change of the active layer rebuilds the canvas overlays of the layers and swaps the layer
        controls: about a quarter of the time to open the plugin's ~20 layers (profiled). The book's
        layers arrive unselected and ``_select_map`` picks one map once. A napari without that flag
        (private API) selects as before.
        """
        layers = self.viewer.layers
        before = getattr(layers, "_activate_on_insert", None)
        if before is not None:
            layers._activate_on_insert = False
        try:
            yield
        finally:
            if before is not None:
                layers._activate_on_insert = before

    def _image(self, key, sheet, column, raster, pixel, *, name, cmap, limits, visible=True, opacity=1.0):
        """Create or update an image layer showing a sheet raster in a cell."""
        place = self.layout.placement(sheet, column, raster.shape, pixel)
        data = SheetLayout.display(raster)
        layer = self.get(key)
        if layer is None:
            with self._unselected():
                layer = self.viewer.add_image(
                    data, name=name, colormap=cmap, contrast_limits=limits, scale=place.scale,
                    translate=place.translate, units=self._unit(), metadata={KEY: key}, visible=visible,
                    opacity=opacity, interpolation2d="nearest",
                )
            self._refs[key] = layer
            return layer
        if tuple(layer.scale) != place.scale or tuple(layer.translate) != place.translate:
            layer.scale, layer.translate = place.scale, place.translate
        _set_data(layer, data)
        if tuple(layer.contrast_limits) != tuple(limits):
            layer.contrast_limits = limits
        if layer.name != name:
            layer.name = name
        return layer

    def _labels(self, key, sheet, column, labels, pixel, *, name, color, visible=True):
        up = OUTLINE_UPSAMPLE
        fine = np.kron((np.asarray(labels) > 0).astype(np.uint8), np.ones((up, up), np.uint8))
        place = self.layout.placement(sheet, column, fine.shape, pixel / up)
        data = SheetLayout.display(fine)
        layer = self.get(key)
        if layer is None:
            from napari.utils.colormaps import DirectLabelColormap

            with self._unselected():
                layer = self.viewer.add_labels(
                    data, name=name, scale=place.scale, translate=place.translate, units=self._unit(),
                    metadata={KEY: key}, opacity=1.0, visible=visible,
                    colormap=DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: color}),
                )
            layer.contour = 1
            self._refs[key] = layer
            return layer
        if tuple(layer.scale) != place.scale or tuple(layer.translate) != place.translate:
            layer.scale, layer.translate = place.scale, place.translate
        if layer.data.shape != data.shape or not np.array_equal(layer.data, data):
            _set_data(layer, data)
        if layer.name != name:
            layer.name = name
        return layer

    def _points(self, key, world, *, name, **kwargs):
        layer = self.get(key)
        world = np.asarray(world, dtype=float).reshape(-1, 2)
        if layer is None:
            with self._unselected():
                layer = self.viewer.add_points(world, name=name, units=self._unit(), metadata={KEY: key}, **kwargs)
            self._refs[key] = layer
            return layer
        if layer.data.shape != world.shape or not np.allclose(layer.data, world):
            layer.data = world
        for k in ("size",):
            if k in kwargs and not np.all(np.asarray(getattr(layer, k)) == kwargs[k]):
                setattr(layer, k, kwargs[k])
        if layer.name != name:
            layer.name = name
        return layer

    # ------------------------------------------------------------------ model
    @_one_scene_update
    def _on_model(self, state):
        model = state.model
        first = self.layout is None
        names = [s.name for s in model.sheets]
        new_layout = SheetLayout(model.sheets)
        same = self.layout is not None and self.layout.names == names and all(
            a.extent_mm == b.extent_mm and a.origin_mm == b.origin_mm
            for a, b in zip(self.layout.sheets, model.sheets, strict=False)
        )
        self.layout = new_layout
        # layers of sheets that no longer exist, and everything derived from the previous model's activity;
        # on the same layout (e.g. a training run's model at Stop) the stimulation layers are only hidden:
        # prepare_stimulation would add them again at once, and napari removes and adds layers slowly
        stale = {"activation", "contrast", "stimulation", "propagated", "readout_patch", "matched"} | set(EARLY_LAYERS)
        keep = {"stimulation", "propagated", "readout_patch", "sites"} if same else set()
        self._stim_roles = None
        if keep:
            self.clear_stimulation()
        self._revealed = set()
        self.remove(lambda key: key.split("/")[0] not in names + ["layout", "stimulation", "input", "lesion"]
                    or (key.split("/")[-1] in stale or key == "stimulation/sites") and key.split("/")[-1] not in keep
                    or (key.startswith("input/") and not first))
        frames = frame_layer_data(self.layout, self._titles())
        dupes = [lyr for lyr in self.viewer.layers if lyr.metadata.get(KEY) == "layout/cells"][:-1]
        for lyr in dupes:  # e.g. frames returned by the sample over older ones
            self.viewer.layers.remove(lyr)
        self._refs.pop("layout/cells", None)
        layer = self.get("layout/cells")
        framed = layer is None  # the frames span the whole layout (a preview drew only the d′ column)
        if framed:
            rects, kwargs, _ = frames
            with self._unselected():
                self._refs["layout/cells"] = self.viewer.add_shapes(rects, **kwargs)
        elif not same:
            layer.data = frames[0]
            layer.features = frames[1]["features"]
        else:
            self._retitle()
        if framed or not same:
            self._scale_bar()
            self.fit()

    def _scale_bar(self):
        bar = _overlay(self.viewer, "scale_bar")
        if bar is not None:
            bar.visible = True

    def fit(self):
        """Zoom so that every cell is visible."""
        with _suppress():
            self.viewer.reset_view(margin=0.1)  # room for the cell titles above the top row

    def _titles(self) -> dict:
        st = self.state
        cat = st.category
        t = {}
        stim = st.stimulation
        for s in self.state.model.sheets:
            t[(s.name, "dprime")] = f"{s.title} · d′ {cat}"
            t[(s.name, "voxel_t")] = f"t {cat} · FWHM {st.fwhm_mm:g} mm"
            t[(s.name, "purity")] = f"purity {cat}"
            if s is self.state.model.sheets[0]:
                t[(s.name, "input")] = "input image" if self.get("input/image") is not None \
                    else "input · drop a picture"
            else:
                t[(s.name, "input")] = ""
            act = st.activations
            t[(s.name, "activation")] = "activation" if act is None or act.n_images == 1 \
                else f"activation · {act.n_images} images"
            if act is not None and act.contrast:
                t[(s.name, "activation")] = f"d′ {act.contrast_category} · {act.n_images} images"
            role = "stimulation"
            if stim is not None:
                role = {stim.layer: "stimulation", stim.next_layer: "propagated"}.get(s.name, "—")
            t[(s.name, "stimulation")] = role
        if st.early is not None:
            for s in self.state.model.sheets:
                if s.name in st.early.sheets:
                    t[(s.name, "dprime")] += " / orientation"
                    t[(s.name, "voxel_t")] += " / OSI"
                    t[(s.name, "purity")] += " / SF"
        if st.training_step is not None:
            for s in self.state.model.sheets:
                t[(s.name, "dprime")] = f"{s.title} · d′ {cat} · step {st.training_step}"
        return t

    def _retitle(self):
        layer = self.get("layout/cells")
        if layer is None or self.layout is None:
            return
        titles = self._titles()
        names = [titles[(s.name, c)] for s in self.layout.sheets for c in COLUMNS]
        if len(names) == len(layer.data):
            layer.features = {"title": names}

    # ------------------------------------------------------------------ analysis maps
    @_one_scene_update
    def _on_analysis(self, state):
        self._draw_selectivity()
        self._retitle()
        analysis = state.analysis
        # the secondary maps follow one kind per event-loop turn (with the Qt controller's defer),
        # so that no single turn holds the GUI for all of them
        rest = [self._draw_voxel_t, self._draw_purity, self._draw_units, self._select_map]

        def step():
            try:
                if self._closed or state.analysis is not analysis:
                    rest.clear()
                else:
                    with self.scene_update():
                        rest.pop(0)()
            except BaseException:
                rest.clear()
                raise
            finally:
                if rest:
                    self.defer(step)
                else:
                    self.pending -= 1

        self.pending += 1
        self.defer(step)

    def _select_map(self):
        """Make the first sheet's d′ map the active layer unless an image layer is active.

        The book adds its layers unselected (``_unselected``); a map's controls (contrast,
        colormap) fit a start better than a points layer's or an outline's editing tools.
        """
        from napari.layers import Image

        if isinstance(self.viewer.layers.selection.active, Image) or self.layout is None:
            return
        layer = self.get(f"{self.layout.names[0]}/dprime")
        if layer is not None:
            self.viewer.layers.selection.active = layer

    @_one_scene_update
    def _on_category(self, state):
        self._on_analysis(state)
        if state.activations is not None:
            self._on_activations(state)

    @_one_scene_update
    def _on_voxel_t(self, state):
        self._draw_voxel_t()
        self._retitle()

    @_one_scene_update
    def _on_early(self, state):
        """The early visual maps over the category maps: orientation (cyclic HSV) with pinwheel points in
        the d′ cell, OSI in the voxel-t cell, preferred SF (and hue, hidden) in the purity cell."""
        for s in state.model.sheets:
            maps = state.early.sheets.get(s.name)
            if maps is None:
                self.remove(lambda k, n=s.name: k.split("/")[0] == n and k.split("/")[-1] in EARLY_LAYERS)
                continue
            early, px = maps.early, s.default_pixel_mm()
            omap = early.orientation
            self._image(f"{s.name}/orientation", s.name, "dprime", omap.orientation_deg.astype(np.float32),
                        omap.grid.pixel_mm, name=f"{s.name} · orientation", cmap=CMAP["orientation"],
                        limits=map_limits("orientation", None))
            world = self.layout.to_world(s.name, "dprime", early.pinwheels.positions_mm.reshape(-1, 2))
            n = len(early.pinwheels.charge)
            self._points(f"{s.name}/pinwheels", world, name=f"{s.name} · pinwheels ({n})", symbol="disc",
                         size=max(0.03 * self.layout.cell_w, 0.8 * omap.grid.pixel_mm),
                         face_color=PINWHEEL_COLOR, border_color="#000000", border_width=0.25,
                         border_width_is_relative=True)
            units = early.unit_maps()
            for kind, visible in (("osi", True), ("sf", True), ("colour", False)):
                values = units[kind]
                if not np.isfinite(values).any():
                    self.remove(lambda k, key=f"{s.name}/{kind}": k == key)
                    continue
                self._image(f"{s.name}/{kind}", s.name, EARLY_LAYERS[kind], s.rasterise(values, px), px,
                            name=f"{s.name} · {'preferred hue' if kind == 'colour' else kind.upper()}",
                            cmap=CMAP[kind], limits=map_limits(kind, values), visible=visible)
        self._retitle()

    def _draw_selectivity(self):
        st = self.state
        if st.analysis is None:
            return
        for s in st.model.sheets:
            if s.name in st.analysis.sheets:
                self._dprime(s, st.dprime(s.name), st.category, st.threshold)

    def _dprime(self, s, dp, category, threshold):
        px = s.default_pixel_mm()
        self._image(f"{s.name}/dprime", s.name, "dprime", s.rasterise(dp, px), px, name=f"{s.name} · d′ {category}",
                    cmap=CMAP["dprime"], limits=map_limits("dprime", dp, threshold=threshold))

    @_one_scene_update
    def preview(self, sheets, categories, dprime):
        """The d′ maps of a cached analysis before its model is loaded (the first picture at start).

        ``sheets`` from :func:`topoviewer.io.read_sheets`, ``categories`` and ``dprime``
        (sheet → category → values) from :func:`topoviewer.cache.cached_preview`: no torch. Drawn as
        the state's maps are (same keys, places, colormap and limits), so the model's arrival updates
        these layers in place.
        """
        self.layout = SheetLayout(sheets)
        cat = self.state.category if self.state.category in categories else categories[0]
        for s in sheets:
            if s.name in dprime:
                self._dprime(s, dprime[s.name][cat], cat, self.state.threshold)
        self._scale_bar()
        self.fit()

    def _draw_units(self):
        st = self.state
        for s in st.model.sheets:
            if s.name in st.analysis.sheets:
                dp = st.dprime(s.name)
                self._units(s, dp, map_limits("dprime", dp, threshold=st.threshold)[1])

    def _units(self, sheet, values, lim):
        key = f"{sheet.name}/units"
        layer = self.get(key)
        if layer is not None and not layer.visible:  # hidden (the default): recoloured when shown
            if id(layer) not in self._units_hooked:
                self._units_hooked.add(id(layer))
                layer.events.visible.connect(lambda event, key=key: self._show_units(key))
            self._hidden_units[key] = (sheet, values, lim)
            return
        self._hidden_units.pop(key, None)
        world = self.layout.to_world(sheet.name, "dprime", sheet.positions)
        spacing = math.sqrt(sheet.extent_mm[0] * sheet.extent_mm[1] / sheet.n_units)
        feats = {"value": np.asarray(values, dtype=float)}
        name = f"{sheet.name} · units (d′ {self.state.category})"
        if layer is None:
            with self._unselected():
                layer = self.viewer.add_points(
                    world, name=name, units=self._unit(), metadata={KEY: key}, features=feats, face_color="value",
                    face_colormap=CMAP["dprime"], face_contrast_limits=(-lim, lim), size=0.7 * spacing,
                    border_width=0.08, border_width_is_relative=True, border_color="#202020", visible=False,
                )
            self._refs[key] = layer
            return
        if layer.data.shape != world.shape or not np.allclose(layer.data, world):
            layer.data = world
        layer.features = feats
        layer.face_contrast_limits = (-lim, lim)
        layer.refresh_colors(True)
        layer.name = name

    def _show_units(self, key):
        pending = self._hidden_units.get(key)
        layer = self.get(key)
        if pending is not None and layer is not None and layer.visible:
            self._units(*pending)

    @_one_scene_update
    def colour_units(self, values, label: str, show: bool = False):
        """Colour every sheet's units by another per-unit map (``{sheet: (N,)}``); ``show``: and show them."""
        for s in self.state.model.sheets:
            layer = self.get(f"{s.name}/units")
            if layer is None or s.name not in values:
                continue
            self._hidden_units.pop(f"{s.name}/units", None)  # the user's colouring wins over a pending d′
            v = np.asarray(values[s.name], dtype=float)
            signed = np.nanmin(v) < 0
            lim = symmetric_limit(v, 1e-6)
            layer.features = {"value": v}
            layer.face_colormap = CMAP["contrast"] if signed else CMAP["activation"]
            layer.face_contrast_limits = (-lim, lim) if signed else map_limits("activation", v)
            layer.refresh_colors(True)
            layer.name = f"{s.name} · units ({label})"
            if show:
                layer.visible = True

    @_one_scene_update
    def reset_units(self):
        """Every sheet's units coloured by d′ again (after :meth:`colour_units`)."""
        if self.state.analysis is not None:
            self._draw_units()

    # ------------------------------------------------------------------ drawn regions, matched neurons
    def region_layer(self):
        """The Shapes layer for drawing lesion regions (created empty, selected, in polygon mode)."""
        layer = self.get(REGIONS_KEY)
        if layer is None:
            layer = self.viewer.add_shapes(name="lesion regions", units=self._unit(), edge_color=REGION_COLOR,
                                           face_color="transparent", edge_width=0.08 * self.layout.gap,
                                           metadata={KEY: REGIONS_KEY}, blending="translucent_no_depth")
            self._refs[REGIONS_KEY] = layer
        self.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"
        return layer

    def drawn_regions(self) -> dict:
        """The regions drawn on the sheets: ``{sheet: [(n, 2) polygons in sheet (x, y)]}``.

        Every visible Shapes layer counts (but the cell frames): its polygons, rectangles and
        ellipses (as 64-gons), each on the sheet of the cell that holds its vertices' mean, in
        whichever column it was drawn. Lines and paths enclose nothing: TopoviewerError.
        """
        from napari.layers import Shapes

        from topoviewer.errors import TopoviewerError

        regions: dict = {}
        layers = [lyr for lyr in self.viewer.layers if isinstance(lyr, Shapes) and lyr.visible
                  and lyr.metadata.get(KEY) in (None, REGIONS_KEY)]
        for layer in layers:
            for k, (data, kind) in enumerate(zip(layer.data, layer.shape_type, strict=True)):
                where = f"shape {k} of layer {layer.name!r}"
                if kind not in ("polygon", "rectangle", "ellipse"):
                    raise TopoviewerError(f"{where} is a {kind}: a lesion region is a polygon, rectangle or ellipse")
                world = np.asarray(data, dtype=float)[:, -2:] * np.asarray(layer.scale)[-2:] \
                    + np.asarray(layer.translate)[-2:]
                if kind == "ellipse":  # napari's ellipse: the four corners of its bounding box
                    t = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)[:, None]
                    centre = world.mean(axis=0)
                    world = centre + np.cos(t) * (world[1] - world[0]) / 2 + np.sin(t) * (world[3] - world[0]) / 2
                loc = self.layout.locate(world.mean(axis=0))
                if loc is None:
                    raise TopoviewerError(f"{where} lies on no sheet: draw it inside a sheet's map")
                regions.setdefault(loc.sheet, []).append(self.layout.to_sheet(loc.sheet, loc.column, world))
        if not regions:
            raise TopoviewerError("no region drawn: press “Draw region” and draw a polygon on a sheet's map")
        return regions

    @_one_scene_update
    def show_matches(self, result: dict):
        """Each matched neuron as a point at its best unit, on its sheet's d′ map, coloured by r
        (:data:`MATCH_CMAP`, r from 0 to 1); features ``neuron`` and ``r``. Returns ``{sheet: layer}``."""
        self.remove(lambda key: key.endswith("/matched"))
        out = {}
        for s in self.state.model.sheets:
            rows = [n for n in result["neurons"] if n["sheet"] == s.name]
            if not rows:
                continue
            world = self.layout.to_world(s.name, "dprime", np.array([n["position_mm"] for n in rows]))
            spacing = math.sqrt(s.extent_mm[0] * s.extent_mm[1] / s.n_units)
            feats = {"neuron": [n["neuron"] for n in rows], "r": [n["r"] for n in rows]}
            out[s.name] = self._points(f"{s.name}/matched", world, name=f"{s.name} · matched neurons (r)",
                                       features=feats, face_color="r", face_colormap=MATCH_CMAP,
                                       face_contrast_limits=(0.0, 1.0), size=2.5 * spacing, border_color="white",
                                       border_width=0.12, border_width_is_relative=True)
        return out

    def _draw_voxel_t(self):
        st = self.state
        if not st.voxel_t:
            return
        for s in st.model.sheets:
            if s.name not in st.voxel_t or st.category not in st.voxel_t[s.name]:
                continue
            t = st.t_map(s.name)
            self._image(f"{s.name}/voxel_t", s.name, "voxel_t", t, st.voxel_mm,
                        name=f"{s.name} · voxel t {st.category}", cmap=CMAP["voxel_t"],
                        limits=map_limits("voxel_t", t, threshold=st.t_threshold))
            self._labels(f"{s.name}/patch", s.name, "voxel_t", st.patch_labels(s.name), st.voxel_mm,
                         name=f"{s.name} · patch t>{st.t_threshold:g} {st.category}", color=PATCH_COLOR)
            for column in ACTIVITY_COLUMNS:
                self._labels(f"{s.name}/patch_{column}", s.name, column, st.patch_labels(s.name), st.voxel_mm,
                             name=f"{s.name} · patch t>{st.t_threshold:g} {st.category} over {column}",
                             color=ACTIVITY_PATCH_COLOR, visible=self._has_activity(s.name, column))
        self._raise_outlines()

    def _has_activity(self, sheet, column) -> bool:
        """Whether a cell shows a map to outline the patch over (an empty cell gets no outline)."""
        st = self.state
        if column == "activation":
            return st.activations is not None and sheet in st.activations.mean
        r = st.stimulation
        return r is not None and sheet in (r.layer, r.next_layer)

    def _show_activity_outlines(self, column):
        for s in self.state.model.sheets:
            layer = self.get(f"{s.name}/patch_{column}")
            if layer is not None and layer.visible != self._has_activity(s.name, column):
                layer.visible = not layer.visible

    def _raise_outlines(self):
        """Keep the patch outlines of the activity cells, and the drawn lesion regions, above those cells'
        maps (added later)."""
        layers = self.viewer.layers
        outline = [i for i, lyr in enumerate(layers)
                   if str(lyr.metadata.get(KEY, "")).endswith(("/readout_patch",) + tuple(
                       f"/patch_{c}" for c in ACTIVITY_COLUMNS)) or lyr.metadata.get(KEY) == REGIONS_KEY]
        maps = [i for i, lyr in enumerate(layers)
                if str(lyr.metadata.get(KEY, "")).endswith(("/activation", "/contrast", "/stimulation", "/propagated"))]
        if outline and maps and max(maps) > min(outline):
            layers.move_multiple(outline, len(layers))

    def _draw_purity(self):
        st = self.state
        for s in st.model.sheets:
            px = ring_pixel_mm(s)
            rings = st.purity_rings(s.name)
            if rings is None:
                self.remove(lambda k, n=s.name: k in (f"{n}/purity", f"{n}/purity_centre"))
                continue
            self._image(f"{s.name}/purity", s.name, "purity", rings, px,
                        name=f"{s.name} · purity rings {st.category}", cmap=CMAP["purity"], limits=map_limits("purity", rings))
            centre = st.purity(s.name).centre
            world = np.vstack([self.layout.to_world(s.name, c, centre) for c in ("dprime", "purity")])
            self._points(f"{s.name}/purity_centre", world, name=f"{s.name} · patch centre {st.category}",
                         symbol="cross", size=0.06 * self.layout.cell_w, face_color=CENTRE_COLOR,
                         border_width=0)

    # ------------------------------------------------------------------ activations
    @_one_scene_update
    def _on_activations(self, state):
        act = state.activations
        self.remove(lambda k: k.endswith("/activation") or k.endswith("/contrast"))
        if act is None:
            self._show_activity_outlines("activation")
            return
        for s in state.model.sheets:
            if s.name not in act.mean:
                continue
            px = s.default_pixel_mm()
            mean = act.mean[s.name]
            label = "activation" if act.n_images == 1 else "mean activation"
            self._image(f"{s.name}/activation", s.name, "activation", s.rasterise(mean, px), px,
                        name=f"{s.name} · {label}", cmap=CMAP["activation"], limits=map_limits("activation", mean))
            if s.name in act.contrast:
                c = act.contrast[s.name]
                self._image(f"{s.name}/contrast", s.name, "activation", s.rasterise(c, px), px,
                            name=f"{s.name} · d′ {act.contrast_category} (images)", cmap=CMAP["contrast"],
                            limits=map_limits("contrast", c, threshold=state.threshold))
        self._show_activity_outlines("activation")
        self._raise_outlines()
        self._retitle()

    def placement_for_input(self, shape, rgb: bool):
        """Kwargs placing a picture of ``shape`` in the input cell (for readers that return layer data)."""
        first = self.layout.names[0]
        hw = shape[-3:-1] if rgb else shape[-2:]
        place = self.layout.fit_image(first, "input", hw)
        extra = len(shape) - (3 if rgb else 2)
        return {
            "scale": (1.0,) * extra + place.scale,
            "translate": (0.0,) * extra + place.translate,
            "units": ("pixel",) * extra + self._unit(),
        }

    # ------------------------------------------------------------------ stimulation
    @_one_scene_update
    def _on_stimulated(self, state, result):
        layer, nxt = result.layer, result.next_layer
        s, n = state.model.sheet(layer), state.model.sheet(nxt)
        px, npx = s.default_pixel_mm(), n.default_pixel_mm()
        act, prop = result.activity, result.propagated
        self._image(f"{layer}/stimulation", layer, "stimulation", s.rasterise(act, px), px,
                    name=f"{layer} · stimulation", cmap=CMAP["stimulation"], limits=map_limits("stimulation", act))
        self._image(f"{nxt}/propagated", nxt, "stimulation", n.rasterise(prop, npx), npx,
                    name=f"{nxt} · propagated", cmap=CMAP["propagated"], limits=map_limits("propagated", prop))
        if state.has_stimulator(layer):
            mask = state.stimulator(layer).patch_mask[nxt]
            self._labels(f"{nxt}/readout_patch", nxt, "stimulation", mask, state.voxel_mm,
                         name=f"{nxt} · read-out patch", color=READOUT_COLOR)
        # ring markers: where it was clicked (all map cells of the stimulated sheet) and in the stimulation cell
        site = result.site_mm
        cols = ("dprime", "voxel_t", "purity", "stimulation")
        world = np.vstack([self.layout.to_world(layer, c, site) for c in cols])
        self._sites(world, 2.0 * result.radius_mm)
        for key in (f"{layer}/stimulation", f"{nxt}/propagated", f"{nxt}/readout_patch", "stimulation/sites",
                    f"{layer}/patch_stimulation", f"{nxt}/patch_stimulation"):
            if key not in self._revealed:  # prepared hidden; shown once, then the user's eye toggle rules
                self._revealed.add(key)
                lyr = self.get(key)
                if lyr is not None and not lyr.visible:
                    lyr.visible = True
        if self._stim_roles != (layer, nxt):
            self._stim_roles = (layer, nxt)
            self._raise_outlines()
            self._retitle()

    def _sites(self, world, size, visible=True):
        layer = self.get("stimulation/sites")
        if layer is not None and layer.data.shape == world.shape and len(world) and np.all(layer.size == size):
            shift = world[0] - (layer.data[0] + layer.translate)
            if np.allclose(world - world[0], layer.data - layer.data[0]):
                # the same markers at another site: move the layer (a transform, not new point data: ≈ 10× cheaper)
                layer.translate = np.asarray(layer.translate) + shift
                return layer
        if layer is not None and np.any(layer.translate):
            layer.translate = (0.0, 0.0)
        return self._points("stimulation/sites", world, name="stimulation · site", symbol="disc", size=size,
                            face_color="transparent", border_color=SITE_COLOR, border_width=0.07,
                            border_width_is_relative=True, visible=visible)

    @_one_scene_update
    def prepare_stimulation(self, layer, nxt, patch_mask):
        """Create the stimulation layers ahead of the first click (so that click stays fast).

        New layers are drawn once (zeros: black in the empty stimulation cell) and hidden two
        event-loop turns later, so that their shaders are built now and not when the first
        click shows them (the longest stall of a click burst, profiled).
        """
        st = self.state
        s, n = st.model.sheet(layer), st.model.sheet(nxt)
        new = []
        for sheet, key, name in ((s, f"{layer}/stimulation", f"{layer} · stimulation"),
                                 (n, f"{nxt}/propagated", f"{nxt} · propagated")):
            if self.get(key) is None:
                px = sheet.default_pixel_mm()
                zeros = sheet.rasterise(np.zeros(sheet.n_units, np.float32), px)
                self._image(key, sheet.name, "stimulation", zeros, px, name=name, cmap=CMAP["stimulation"],
                            limits=(0.0, 1.0))
                new.append(key)
        if self.get(f"{nxt}/readout_patch") is None:
            self._labels(f"{nxt}/readout_patch", nxt, "stimulation", patch_mask, st.voxel_mm,
                         name=f"{nxt} · read-out patch", color=READOUT_COLOR).visible = False
        if self.get("stimulation/sites") is None:
            self._sites(np.empty((0, 2)), 2.0 * st.stim_radius_mm, visible=False)
        self._raise_outlines()
        self._select_map()  # the layers just added must not become the active layer

        def hide():  # unless a click showed them meanwhile
            with self.scene_update():
                for key in new:
                    lyr = self.get(key)
                    if lyr is not None and key not in self._revealed and lyr.visible:
                        lyr.visible = False
            self.pending -= 1

        self.pending += 1
        self.defer(lambda: self.defer(hide))

    @_one_scene_update
    def clear_stimulation(self):
        """Hide the stimulation layers and forget the last stimulation (the log is kept)."""
        self.state.stimulation = None
        for key in self.keys():
            if key.endswith(("/stimulation", "/propagated", "/readout_patch", "/patch_stimulation")) \
                    or key == "stimulation/sites":
                layer = self.get(key)
                if layer.visible:  # napari redoes the whole canvas's overlays at every set, even an unchanged one
                    layer.visible = False
        self._revealed = set()  # the next stimulation shows its layers again

    # ------------------------------------------------------------------ hover
    def _on_hover(self, viewer, event):
        text = self.describe(event.position)
        ov = _overlay(viewer, "text")
        if ov is None:
            return
        if text:
            ov.text = text
            ov.visible = True
            ov.position = "top_left"
        elif ov.visible:
            ov.visible = False

    def describe(self, world_position) -> str:
        """One line naming the sheet, the sheet coordinates and every map's value under a world point."""
        st = self.state
        if self.layout is None or st.model is None:
            return ""
        loc = self.layout.locate(world_position)
        if loc is None:
            return ""
        s = st.model.sheet(loc.sheet)
        unit = "mm" if s.unit == "mm" else "cells"
        x, y = loc.xy
        i = int(np.argmin(s.distances_to(loc.xy)))
        parts = [f"{s.title}  x {x:.2f}, y {y:.2f} {unit}  unit {i}"]
        if st.analysis is not None and s.name in st.analysis.sheets:
            parts.append(f"d′ {st.category} {st.dprime(s.name)[i]:+.2f}")
            if s.name in st.voxel_t:
                t = st.t_map(s.name)
                r, c = s.grid(st.voxel_mm).index_of(loc.xy)
                parts.append(f"t {t[r, c]:+.1f}")
            curve = st.purity(s.name)
            if curve is not None:
                k = int(np.hypot(x - curve.centre[0], y - curve.centre[1]) // curve.bin_mm)
                if k < len(curve.purity) and np.isfinite(curve.purity[k]):
                    parts.append(f"purity {curve.purity[k]:.2f}")
        if st.early is not None and s.name in st.early.sheets:
            u = {k: v[i] for k, v in st.early.sheets[s.name].early.unit_maps().items()}
            text = "no orientation" if not np.isfinite(u["orientation"]) else f"orientation {u['orientation']:.0f}°"
            parts.append(f"{text} (OSI {u['osi']:.2f}), SF {u['sf']:.3g} c/img")
            if np.isfinite(u["colour"]):
                parts.append(f"hue {u['colour']:.0f}° (selectivity {u['colour_selectivity']:.2f})")
        if st.activations is not None and s.name in st.activations.mean:
            parts.append(f"activation {st.activations.mean[s.name][i]:.3f}")
        r = st.stimulation
        if r is not None:
            if s.name == r.layer:
                parts.append(f"stimulation {r.activity[i]:.3f}")
            elif s.name == r.next_layer:
                parts.append(f"propagated {r.propagated[i]:.3f}")
        return "  ·  ".join(parts)


def _set_data(layer, data):
    """Replace a layer's array: in place when the shape and dtype allow (no extent/dims recomputation)."""
    old = layer.data
    if isinstance(old, np.ndarray) and old.shape == data.shape and old.dtype == data.dtype and old.flags.writeable:
        old[...] = data
        layer.refresh(extent=False)
    else:
        layer.data = data


def _overlay(viewer, name):
    overlays = viewer.canvas.overlays
    try:
        return getattr(overlays, name)
    except AttributeError:
        try:
            return overlays[name]
        except (KeyError, TypeError):
            return None


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (AttributeError, ValueError, TypeError))
