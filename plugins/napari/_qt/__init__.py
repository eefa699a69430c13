"""Qt widgets of the plugin. They only listen to :class:`~topoviewer_napari.state.TopoState` and call the controller."""
