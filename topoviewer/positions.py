"""Unit positions from files: TDANN positions folders and user-supplied coordinates.

Formats (docs/formats.md §1 and §3):

* a **positions folder** — one file per layer named ``<layer>.npz`` and/or ``<layer>.pkl``
  plus an optional ``version.txt`` (one integer). The ``.npz`` keys are ``name``, ``dims``
  (C, H, W), ``coordinates`` ((N, 2) x then y, mm), ``neighborhood_indices`` and
  ``neighborhood_width``; the ``.pkl`` is a pickled ``spacetorch.models.positions.LayerPositions``
  dataclass with the same attributes.
* a **coordinates file** — one ``.npz`` per layer with ``coordinates`` (and optionally
  ``dims``), or one ``.npz`` holding one ``<layer>`` array of shape (N, 2) per layer.

Safety: ``.npz`` files are read with ``allow_pickle=False``; ``.pkl`` files go through
:class:`RestrictedUnpickler`, which maps the known position classes onto the local
stand-in :class:`LayerPositions` (spacetorch is never imported) and allows only numpy's
array-reconstruction functions and plain builtins. Anything else is refused, naming the
class the file asked for. Nothing in a position file can run code.
"""

from __future__ import annotations

import io
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TopoviewerError
from .sheet import Sheet
from .validate import MAX_ARRAY_BYTES
from .validate import coordinates as _check_range
from .validate import dims as _check_dims
from .validate import number as _check_number

__all__ = [
    "LayerPositions",
    "RestrictedUnpickler",
    "is_positions_folder",
    "load_layer_positions",
    "load_positions",
    "load_positions_folder",
    "numpy_safe_globals",
    "retinotopic_positions",
    "safe_unpickle",
    "sheet_bounds",
    "sheets_from_positions",
]

POSITION_SUFFIXES = (".npz", ".pkl")


@dataclass
class LayerPositions:
    """Local stand-in for ``spacetorch.models.positions.LayerPositions``.

    ``neighborhood_indices`` is ``None`` unless asked for: it can be ~76 MB per layer and
    nothing in topoviewer needs it.
    """

    name: str
    dims: tuple
    coordinates: np.ndarray
    neighborhood_indices: np.ndarray | None = None
    neighborhood_width: float | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def __setstate__(self, state):  # called by the restricted unpickler (BUILD)
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise TopoviewerError(f"unexpected LayerPositions state of type {type(state).__name__}")
        known = {"name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width"}
        self.name = state.get("name", "")
        self.dims = state.get("dims", ())
        self.coordinates = state.get("coordinates")
        self.neighborhood_indices = state.get("neighborhood_indices")
        self.neighborhood_width = state.get("neighborhood_width")
        self.extra = {k: v for k, v in state.items() if k not in known}

    @property
    def n_units(self) -> int:
        return len(self.coordinates)


@dataclass
class _NetworkPositions:
    """Stand-in for ``spacetorch``'s ``NetworkPositions`` (a dict of LayerPositions + version)."""

    layer_positions: dict = field(default_factory=dict)
    version: float = 1

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise TopoviewerError(f"unexpected NetworkPositions state of type {type(state).__name__}")
        self.layer_positions = dict(state.get("layer_positions") or {})
        self.version = state.get("version", 1)


# ---------------------------------------------------------------------------- restricted unpickling
#: Modules whose ``LayerPositions`` / ``NetworkPositions`` are mapped to the stand-ins.
#: The mapping never imports them, so listing a module here cannot run its code.
_POSITION_MODULES = (
    "spacetorch.models.positions",
    "spacetorch.positions",
    "spacetorch.utils.positions",
    "spacestream.models.positions",
    "spacestream.core.positions",
    "spacestream.positions",
    "__main__",
)

_SAFE_BUILTINS = {
    "list", "tuple", "dict", "set", "frozenset", "int", "float", "complex", "str", "bytes",
    "bytearray", "bool", "slice", "range", "object",
}


def _sized(kind):
    """``bytes``/``bytearray`` for the unpickler, refusing ``bytes(10**10)`` (a 56-byte file asking for 10 GB)."""

    def make(*args):
        if args and isinstance(args[0], int) and not isinstance(args[0], bool) and args[0] > MAX_ARRAY_BYTES:
            raise TopoviewerError(f"refused {kind.__name__}({args[0]:,}) in a positions pickle: more than "
                                  f"MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES:,}")
        return kind(*args)

    return make


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 pickles), limited to the position stand-ins."""
    if cls not in (LayerPositions, _NetworkPositions) or base is not object or state is not None:
        raise TopoviewerError(f"refused copyreg._reconstructor for {getattr(cls, '__name__', cls)!r}")
    return object.__new__(cls)


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as protocol-2 numpy pickles use it (str → latin-1 bytes), nothing more."""
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591") or not isinstance(obj, str):
        raise TopoviewerError(f"refused _codecs.encode with encoding {encoding!r} in a positions pickle")
    return obj.encode("latin1", errors)


def _numpy_globals() -> dict:
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]
    scalar = np.float64(0).__reduce__()[0]
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer
    table = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = reconstruct
        table[(mod, "scalar")] = scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(mod, "_frombuffer")] = _frombuffer
    # dtype classes of numpy >= 1.25 pickles (numpy.dtypes.Float32DType, ...)
    import numpy.dtypes as npd

    for name in dir(npd):
        if name.endswith("DType"):
            table[("numpy.dtypes", name)] = getattr(npd, name)
    return table


def numpy_safe_globals() -> list:
    """numpy's array/scalar reconstruction globals as ``(object, "module.name")`` pairs, for
    ``torch.serialization.safe_globals`` (training checkpoints often hold numpy scalars)."""
    return [(obj, f"{mod}.{name}") for (mod, name), obj in _numpy_globals().items()]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds position objects and numpy arrays, and nothing else."""

    _numpy = None

    def __init__(self, file, source: str = "the file"):
        super().__init__(file)
        self.source = source
        if RestrictedUnpickler._numpy is None:
            RestrictedUnpickler._numpy = _numpy_globals()

    def find_class(self, module, name):
        if name == "LayerPositions" and (module in _POSITION_MODULES or module.endswith(".positions")):
            return LayerPositions
        if name == "NetworkPositions" and (module in _POSITION_MODULES or module.endswith(".positions")):
            return _NetworkPositions
        if (module, name) in self._numpy:
            return self._numpy[(module, name)]
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            import builtins

            return _sized(getattr(builtins, name)) if name in ("bytes", "bytearray") else getattr(builtins, name)
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module == "copyreg" and name == "_reconstructor":
            return _reconstructor
        raise TopoviewerError(
            f"refused to load {self.source}: it asks for {module}.{name}, which is not a position class, "
            "a numpy array or a plain value (positions pickles may hold only "
            "spacetorch LayerPositions and numpy arrays); convert it to .npz to be safe"
        )

    def persistent_load(self, pid):
        raise TopoviewerError(
            f"refused to load {self.source}: it holds external (persistent) objects such as torch storages; "
            "save the positions as numpy arrays (.npz)"
        )


def safe_unpickle(path):
    """Unpickle a positions ``.pkl`` with :class:`RestrictedUnpickler` (clear errors, never code)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TopoviewerError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except TopoviewerError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, UnicodeDecodeError) as exc:
        raise TopoviewerError(f"{path} is not a readable positions pickle ({type(exc).__name__}: {exc}); "
                              "the file may be truncated") from None


# ---------------------------------------------------------------------------- one layer
def _scalar(x):
    x = np.asarray(x)
    return x[()] if x.ndim == 0 else x


def _open_npz(path):
    import zipfile

    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TopoviewerError(f"{path} is not a readable .npz file ({exc}); the file may be truncated") from None


def _declared_bytes(npz, key) -> int:
    """Size of an .npz member from its .npy header, read without loading the array."""
    with npz.zip.open(f"{key}.npy") as fh:
        fmt = np.lib.format
        read = fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh, max_header_size=100_000)
    return math.prod(shape) * dtype.itemsize


def _read_key(npz, key, path):
    try:
        size = _declared_bytes(npz, key)
    except Exception as exc:  # noqa: BLE001 - a damaged member header
        raise TopoviewerError(f"{path}: array {key!r} is unreadable ({type(exc).__name__}: {exc}); "
                              "the file may be truncated") from None
    if size > MAX_ARRAY_BYTES:
        raise TopoviewerError(f"{path}: array {key!r} declares {size:,} bytes; at most MAX_ARRAY_BYTES = "
                              f"{MAX_ARRAY_BYTES:,} are read (the file is damaged or not positions)")
    try:
        return npz[key]
    except ValueError as exc:  # object arrays need pickle: refused
        raise TopoviewerError(f"{path}: array {key!r} needs pickle to load ({exc}); refused") from None
    except Exception as exc:  # noqa: BLE001 - zipfile.BadZipFile, zlib.error, EOFError on truncated members
        raise TopoviewerError(f"{path}: array {key!r} is unreadable ({type(exc).__name__}: {exc}); "
                              "the file may be truncated") from None


def load_layer_positions(path, *, neighborhoods: bool = False) -> LayerPositions:
    """One layer's positions from a ``.npz`` or a ``.pkl`` (see the module docstring).

    ``neighborhoods=False`` (default) skips ``neighborhood_indices`` (never read from an .npz).
    """
    path = Path(path)
    if not path.is_file():
        raise TopoviewerError(f"no such positions file: {path}")
    if path.suffix == ".npz":
        with _open_npz(path) as npz:
            keys = set(npz.files)
            if "coordinates" not in keys:
                raise TopoviewerError(
                    f"{path}: expected an array 'coordinates' (N, 2) in mm; found keys {sorted(keys)}"
                )
            coords = _read_key(npz, "coordinates", path)
            name = str(_scalar(_read_key(npz, "name", path))) if "name" in keys else path.stem
            dims = _check_dims(_read_key(npz, "dims", path), path) if "dims" in keys else ()
            width = _scalar(_read_key(npz, "neighborhood_width", path)) if "neighborhood_width" in keys else None
            nbh = _read_key(npz, "neighborhood_indices", path) if neighborhoods and "neighborhood_indices" in keys else None
        lp = LayerPositions(name, dims, coords, nbh, width)
    elif path.suffix == ".pkl":
        obj = safe_unpickle(path)
        if not isinstance(obj, LayerPositions):
            raise TopoviewerError(
                f"{path}: expected a pickled LayerPositions, found {type(obj).__name__}"
            )
        lp = obj
        lp.dims = _check_dims(lp.dims, path) if lp.dims is not None else ()
        if not neighborhoods:
            lp.neighborhood_indices = None
        lp.name = str(lp.name) if lp.name else path.stem
    else:
        raise TopoviewerError(f"{path}: positions files must end in .npz or .pkl")
    if lp.neighborhood_width is not None:
        lp.neighborhood_width = float(_check_number(_scalar(lp.neighborhood_width), f"{path}: neighborhood_width",
                                                    low=0))
    lp.coordinates = _check_coordinates(lp.coordinates, path)
    if lp.dims and math.prod(lp.dims) != len(lp.coordinates):
        raise TopoviewerError(
            f"{path}: dims {lp.dims} hold {math.prod(lp.dims)} units but there are {len(lp.coordinates)} coordinates"
        )
    return lp


def _check_coordinates(coords, path) -> np.ndarray:
    arr = np.asarray(coords)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TopoviewerError(f"{path}: coordinates must be numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        raise TopoviewerError(f"{path}: coordinates must be an (N, 2) array of x, y in mm, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise TopoviewerError(f"{path}: coordinates contain NaN or infinity")
    return _check_range(arr, path)


# ---------------------------------------------------------------------------- folders and files
def is_positions_folder(path, layers=None) -> bool:
    """True when ``path`` is a folder holding at least one ``<layer>.npz|.pkl`` of ``layers``."""
    path = Path(path)
    if not path.is_dir():
        return False
    names = layers or ("layer1.0", "layer4.1")
    return any((path / f"{n}{s}").is_file() for n in names for s in POSITION_SUFFIXES)


def read_version(folder) -> int:
    """The folder's positions version, read as the authors' ``NetworkPositions.load_from_dir`` does.

    No ``version.txt`` → 1; otherwise ``int`` of its first line (surrounding whitespace allowed).
    Anything else (empty, ``2.0``, text) is refused: the authors' code fails on it too.
    """
    vpath = Path(folder) / "version.txt"
    if not vpath.is_file():
        return 1
    try:
        with vpath.open("rb") as fh:
            first = fh.readline(64)
    except OSError as exc:
        raise TopoviewerError(f"cannot read {vpath}: {exc.strerror or exc}") from None
    text = first.decode("utf-8", errors="replace")
    try:
        return int(text)
    except ValueError:
        raise TopoviewerError(f"{vpath}: expected one integer on the first line (the positions version), "
                              f"found {text.strip()[:40]!r}") from None


def load_positions_folder(folder, layers) -> tuple[dict[str, LayerPositions], int]:
    """Positions of ``layers`` from a positions folder: ``({layer: LayerPositions}, version)``.

    ``<layer>.npz`` is preferred to ``<layer>.pkl`` when both exist (no unpickling).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TopoviewerError(f"positions folder not found: {folder}")
    version = read_version(folder)  # cheap, and refused before any layer is read
    out, missing = {}, []
    for layer in layers:
        for suffix in POSITION_SUFFIXES:
            f = folder / f"{layer}{suffix}"
            if f.is_file():
                out[layer] = load_layer_positions(f)
                break
        else:
            missing.append(layer)
    if missing:
        present = sorted(p.name for p in folder.iterdir() if p.suffix in POSITION_SUFFIXES)[:12]
        raise TopoviewerError(
            f"{folder}: no positions for layer(s) {', '.join(missing)} (expected files <layer>.npz or "
            f"<layer>.pkl; found {present or 'none'})"
        )
    return out, version


def load_positions(source, layers) -> tuple[dict[str, LayerPositions], int]:
    """Positions for ``layers`` from a folder, a per-layer file, or one multi-layer ``.npz``.

    A single ``.npz`` may hold either ``coordinates`` (one layer: allowed only when exactly
    one layer is wanted or its ``name`` says which) or one ``<layer>`` array per layer
    (optionally ``<layer>.dims``). Returns ``({layer: LayerPositions}, version)``.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        return load_positions_folder(source, layers)
    if not source.exists():
        raise TopoviewerError(f"positions not found: {source}")
    if source.suffix == ".pkl":
        lp = load_layer_positions(source)
        return _single(lp, layers, source), 1
    if source.suffix != ".npz":
        raise TopoviewerError(f"{source}: expected a positions folder, a .npz or a .pkl file")
    with _open_npz(source) as npz:
        keys = set(npz.files)
    if "coordinates" in keys:
        return _single(load_layer_positions(source), layers, source), 1
    out, missing = {}, []
    with _open_npz(source) as npz:
        for layer in layers:
            if layer not in keys:
                missing.append(layer)
                continue
            coords = _check_coordinates(_read_key(npz, layer, source), f"{source}[{layer}]")
            dkey = f"{layer}.dims" if f"{layer}.dims" in keys else (f"{layer}_dims" if f"{layer}_dims" in keys else None)
            dims = _check_dims(_read_key(npz, dkey, source), source) if dkey else ()
            if dims and math.prod(dims) != len(coords):
                raise TopoviewerError(f"{source}: dims {dims} of {layer!r} do not hold {len(coords)} units")
            out[layer] = LayerPositions(layer, dims, coords)
    if missing:
        raise TopoviewerError(
            f"{source}: no coordinates for layer(s) {', '.join(missing)}; expected one (N, 2) array per layer "
            f"named after it (found {sorted(keys)[:12]})"
        )
    return out, 1


def _single(lp: LayerPositions, layers, source) -> dict:
    if lp.name in layers:
        return {lp.name: lp}
    if len(layers) == 1:
        return {layers[0]: lp}
    raise TopoviewerError(
        f"{source} holds the positions of one layer ({lp.name!r}) but this model needs {len(layers)} "
        f"({', '.join(layers)}); pass a folder with one file per layer"
    )


# ---------------------------------------------------------------------------- generated layouts
def retinotopic_positions(dims, extent_mm: float, seed: int = 0) -> np.ndarray:
    """TDANN's retinotopic initialisation: (N, 2) x, y positions for a (C, H, W) layer.

    Each spatial location (h, w) owns a square cell of the ``extent_mm`` × ``extent_mm``
    sheet (x ↔ w, y ↔ h); its C channels are scattered uniformly inside that cell. Unit
    i is the C-order flat index of (c, h, w). (The published positions were further
    optimised by swaps; this is the starting layout, used for synthetic files and as an
    untrained default.)
    """
    c, h, w = (int(d) for d in dims)
    rng = np.random.default_rng(seed)
    cell_x, cell_y = extent_mm / w, extent_mm / h
    hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x0 = np.broadcast_to((ww * cell_x)[None], (c, h, w)).ravel()
    y0 = np.broadcast_to((hh * cell_y)[None], (c, h, w)).ravel()
    jitter = rng.uniform(0.0, 1.0, size=(c * h * w, 2))
    return np.column_stack([x0 + jitter[:, 0] * cell_x, y0 + jitter[:, 1] * cell_y])


# ---------------------------------------------------------------------------- positions → sheets
def sheets_from_positions(layers, dims, positions: dict, *, source="", areas: dict | None = None,
                          scale: str = "training", factors: dict | None = None) -> tuple[list, list]:
    """Sheets for ``layers`` from loaded positions, checked against the model's ``dims``.

    A layer's positions hold either one unit per activation value (N = C·H·W → ``"chw"``)
    or one per channel (N = C → ``"channel"``, user coordinates for a channel sheet).
    ``areas`` (layer → cortical area, e.g. the TDANN's ResNet-18 blocks) labels each sheet with
    its area and ``scale``; ``factors`` (area → multiplier, e.g. training mm → paper mm) rescales
    the coordinates. Returns ``(sheets, unit_modes)``.
    """
    sheets, modes = [], []
    for layer in layers:
        lp = positions[layer]
        c, h, w = dims[layer]
        n = len(lp.coordinates)
        if lp.dims and tuple(lp.dims) not in ((c, h, w), (c,)):
            raise TopoviewerError(
                f"{source}: positions of {layer} have dims {tuple(lp.dims)} but the model's {layer} output at "
                f"224×224 is {(c, h, w)}; these positions belong to another model"
            )
        if n == c * h * w:
            modes.append("chw")
        elif n == c:
            modes.append("channel")
        else:
            raise TopoviewerError(
                f"{source}: {layer} has {n} positions but the model's {layer} output has {c * h * w} units "
                f"({c}×{h}×{w}) or {c} channels"
            )
        alias = (areas or {}).get(layer, "")
        factor = (factors or {}).get(alias, 1.0) if alias else 1.0
        pos = np.asarray(lp.coordinates, dtype=np.float64) * factor
        origin, extent = sheet_bounds(pos)
        label = ", ".join(p for p in (alias, f"{scale} mm" if alias else "") if p)
        sheets.append(Sheet(layer, pos, extent, origin, unit="mm", label=label))
    return sheets, modes


def sheet_bounds(pos: np.ndarray):
    """Sheet origin and extent: from 0 when the layout starts near 0 (TDANN), else from the minimum."""
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    origin = np.where((lo >= 0) & (lo <= 0.1 * span), 0.0, lo)
    extent = np.maximum(hi - origin, 1e-9)
    # a hair of margin so units on the far edge fall inside the last pixel
    return tuple(origin), tuple(extent * (1 + 1e-9) + 1e-12)
