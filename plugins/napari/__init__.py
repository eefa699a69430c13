"""napari plugin of topoviewer: sheets as layers, clicks as microstimulation, training live.

Layout (after napari-animation): Qt-free model and helpers at the top level —
:mod:`.state` (what is loaded and computed), :mod:`.layout` (sheet ↔ world offsets),
:mod:`.layers` (state → napari layers), :mod:`.tools` (mouse tools) — and the controller
and the docks, which listen to the state's psygnal events, in :mod:`._qt`. Importing this
package is cheap: torch, napari and Qt are imported by the functions that need them.
"""

__version__ = "0.1.0"

#: The docks of the plugin: manifest display name → widget class path.
DOCKS = {
    "Model & maps": "topoviewer_napari._qt.model_dock:ModelDock",
    "Purity": "topoviewer_napari._qt.purity_dock:PurityDock",
    "Images": "topoviewer_napari._qt.images_dock:ImagesDock",
    "Stimulate": "topoviewer_napari._qt.stimulate_dock:StimulateDock",
    "Train": "topoviewer_napari._qt.train_dock:TrainDock",
    "Suites": "topoviewer_napari._qt.suites_dock:SuitesDock",
    "Export": "topoviewer_napari._qt.export_dock:ExportDock",
}

__all__ = ["__version__", "DOCKS"]
