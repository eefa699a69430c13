"""Qt-free tests of the napari plugin: its pure-Python modules (layout, reader, launcher, state).

No viewer and no display: they run wherever napari is installed (the ``napari`` extra), with or
without an X server. Tests that need a real viewer live in ``tests/gui``.
"""

try:  # the plugin's dependencies are an optional extra
    import napari  # noqa: F401
except ImportError:  # pragma: no cover
    collect_ignore_glob = ["test_*.py"]
