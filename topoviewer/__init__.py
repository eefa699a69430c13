"""topoviewer: an interactive microscope for topographic deep neural networks.

The core library is Qt-free::

    import topoviewer as tv
    model = tv.load("sample")                     # the embedded default TDANN
    stimuli = tv.stimuli.localizer()
    responses = model.responses(stimuli.images)   # {sheet: (images, units)}
"""

__version__ = "0.1.0"

from .errors import TopoviewerError  # noqa: E402
from .io import load, save_model  # noqa: E402
from .sheet import Sheet  # noqa: E402

__all__ = ["TopoviewerError", "Sheet", "load", "save_model", "__version__"]
