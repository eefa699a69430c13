"""One validation layer for everything a user can type or drop (docs/errors.md).

Every check raises :class:`~topoviewer.errors.TopoviewerError` with one line that says
what was expected; resource guards name their limit. The checks are grouped by boundary:

* **input files** — :func:`input_file` (exists, a regular file, readable: FIFOs and
  devices are refused before anything opens them);
* **output paths** — :func:`output_file`, :func:`output_dir`, :func:`output_lock`,
  :func:`remove_stale_tmp` (never replace a file that is not this tool's own output
  without ``--force``; writable, name short enough for the temporary name, one writer);
* **numbers** — :func:`number`, :func:`seed`, :func:`device_name` (CLI arguments);
* **resources** — :func:`voxel_grid`, :func:`figure_pixels`, :func:`parameter_count`;
* **file contents** — :func:`model_header`, :func:`resume_state`, :func:`coordinates`,
  :func:`dims`, :func:`stimulus_categories`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np

from .errors import TopoviewerError

__all__ = [
    "MAX_ARRAY_BYTES", "MAX_FIGURE_PIXELS", "MAX_PARAMETERS", "MAX_VOXELS", "MAX_VOXEL_WEIGHTS", "COORD_SPAN_MM", "MAX_INPUT_SIZE",
    "input_file", "free_space", "output_file", "output_dir", "output_lock", "remove_stale_tmp", "tmp_prefix", "number", "seed",
    "device_name", "voxel_grid", "figure_pixels", "parameter_count", "model_header", "resume_state", "coordinates",
    "dims", "stimulus_categories", "is_own_model", "is_own_analysis", "write_error",
]

#: Largest figure (width × height pixels) that is drawn: 100 megapixels (~400 MB RGBA).
MAX_FIGURE_PIXELS = 100_000_000
#: Largest simulated-fMRI grid per sheet (voxels): 256 × 256 (a 0.04 mm grid on a 10 mm sheet).
MAX_VOXELS = 65_536
#: Largest number of Gaussian voxel weights (voxels × units within 4σ) per sheet (~1.2 GB).
MAX_VOXEL_WEIGHTS = 100_000_000
#: Largest model that is built from a file header (parameters; 2 × 10⁹ ≈ 8 GB of float32).
MAX_PARAMETERS = 2_000_000_000
#: Largest array a positions file may declare (bytes); checked before it is read.
MAX_ARRAY_BYTES = 1_000_000_000
#: Largest input image edge a header may ask for (pixels).
MAX_INPUT_SIZE = 4096
#: Unit positions are millimetres: a sheet spans between these (mm); |coordinate| ≤ 10⁴ mm.
COORD_SPAN_MM = (1e-3, 1000.0)
COORD_MAX_ABS_MM = 1e4
#: Longest file name most file systems take (bytes).
NAME_MAX = 255
#: Bytes :func:`topoviewer.io.atomic_write` adds to a name: ``.<name>.`` + 8 random + ``.tmp``.
TMP_EXTRA = 1 + 1 + 8 + 4
SEED_MAX = 2**32 - 1


# ---------------------------------------------------------------------------- input files
def input_file(path, what: str = "model file") -> Path:
    """``path`` as a regular, readable file (a FIFO would block forever when opened)."""
    path = expand(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TopoviewerError(f"no such file: {path}") from None
    except OSError as exc:
        raise TopoviewerError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise TopoviewerError(f"{path} is a folder; expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise TopoviewerError(f"{path} is not a regular file (a pipe, socket or device); expected a {what}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TopoviewerError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


def expand(path) -> Path:
    """``Path(path).expanduser()``, refusing an empty path and a ``~`` that cannot be expanded."""
    text = os.fspath(path)
    if not str(text).strip():
        raise TopoviewerError("expected a file path, got an empty string")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise TopoviewerError(f"cannot expand {text!r}: no home directory is known (set HOME)") from None


# ---------------------------------------------------------------------------- output paths
def tmp_prefix(path: Path) -> str:
    """The prefix of :func:`topoviewer.io.atomic_write`'s temporary files for ``path``."""
    return f".{path.name}."


def output_file(path, *, force: bool = False, own=None, what: str = "--out", hint=None) -> Path:
    """Check an output file before any work: returns the expanded path.

    Refuses a folder, a path under a file, a non-writable folder, a name that with the
    temporary suffix exceeds 255 bytes, and an existing file unless ``own(path)`` says it
    is this tool's own output or ``force`` (``hint(path)`` adds advice to that refusal).
    """
    path = expand(path)
    if path.name in ("", ".", ".."):
        raise TopoviewerError(f"{what} {path}: expected a file name, not a folder")
    _name_fits(path.name, what)
    if path.is_dir():
        raise TopoviewerError(f"{what} {path} is a folder; expected a file name")
    if path.exists() or path.is_symlink():
        mode = path.lstat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) or (stat.S_ISLNK(mode) and not path.is_file()):
            raise TopoviewerError(f"{what} {path} exists and is not a regular file; choose another name")
        if not force and not (own is not None and own(path)):
            raise TopoviewerError(
                f"{what} {path} already exists and is not this command's own output{hint(path) if hint else ''}; "
                "pass --force to replace it"
            )
    _writable_folder(path.parent, what)
    return path


def output_dir(path, names, *, force: bool = False, own=None, what: str = "--out") -> Path:
    """Check an output folder and the ``names`` that will be written in it (see :func:`output_file`)."""
    path = expand(path)
    if path.exists() and not path.is_dir():
        raise TopoviewerError(f"{what} {path} exists and is not a folder; expected an output folder")
    _writable_folder(path, what)
    for name in names:
        output_file(path / name, force=force, own=own, what=what)
    return path


def _name_fits(name: str, what: str):
    try:
        n = len(os.fsencode(name))
    except UnicodeError:
        raise TopoviewerError(f"{what}: the file name {name!r} cannot be encoded for this file system") from None
    if n + TMP_EXTRA > NAME_MAX:
        raise TopoviewerError(
            f"{what}: the file name is {n} bytes; at most {NAME_MAX - TMP_EXTRA} bytes are allowed "
            f"({NAME_MAX} minus {TMP_EXTRA} for the temporary file written first)"
        )


def _writable_folder(folder: Path, what: str):
    """The folder (or, when it does not exist yet, its nearest existing parent) must be a writable folder."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():
            break
        probe = probe.parent
    if not probe.is_dir():
        raise TopoviewerError(f"{what}: {probe} is not a folder, so nothing can be written under it")
    if probe == folder:
        try:  # the exact test: create (and remove) a temporary file where the output goes
            import tempfile

            fd, tmp = tempfile.mkstemp(prefix=".topoviewer-probe.", suffix=".tmp", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise TopoviewerError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
    elif not os.access(probe, os.W_OK | os.X_OK):
        raise TopoviewerError(f"{what}: cannot create folders in {probe} (permission denied)")


def free_space(folder, need_bytes: int, what: str = "--out"):
    """Refuse to start when ``folder``'s file system has less than ``need_bytes`` free."""
    if not need_bytes:
        return
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need_bytes:
        raise TopoviewerError(
            f"{what}: {folder} has {free / 1e6:.1f} MB free; about {need_bytes / 1e6:.1f} MB are needed"
        )


@contextlib.contextmanager
def output_lock(path):
    """Hold ``<path>.lock`` (``fcntl.flock``) while writing ``path``: a second writer is refused."""
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TopoviewerError(f"cannot create the folder {path.parent} ({exc.strerror or exc})") from None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise TopoviewerError(f"cannot create the lock file {lock} ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise TopoviewerError(
                f"another topoviewer run is writing {path} (it holds {lock}); wait for it or choose another --out"
            ) from None
        try:  # the holder may have removed the lock file between our open and flock: retry on the new one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def remove_stale_tmp(path) -> list:
    """Remove ``.<name>.*.tmp`` files an earlier, killed writer of ``path`` left (call under the lock)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(re.escape(tmp_prefix(path)) + r"[A-Za-z0-9_]{8}\.tmp\Z")
    removed = []
    for p in path.parent.iterdir():
        if pattern.match(p.name) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def is_own_model(path) -> bool:
    """True when ``path`` is a topoviewer model file (its header parses)."""
    from .io import read_header

    try:
        read_header(path)
    except TopoviewerError:
        return False
    return True


_ANALYSIS_KEYS = re.compile(r"((dprime|voxel_t)_.+|responses|labels|categories|positions)\Z")


def is_own_analysis(path) -> bool:
    """True for a file an earlier ``topoviewer analyze`` wrote (summary.json, a suite's JSON or a maps/responses .npz)."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            if path.stat().st_size > 50_000_000:
                return False
            data = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(data, dict) and ({"model", "stimuli", "sheets", "categories"} <= set(data)
                                               or {"suite", "model", "sheets"} <= set(data))
        with np.load(path, allow_pickle=False) as npz:
            return bool(npz.files) and all(_ANALYSIS_KEYS.match(k) for k in npz.files)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def write_error(path, exc) -> TopoviewerError:
    """One line for a failed write (disk full, file-size limit, permissions)."""
    text = str(exc).strip()
    detail = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
    hint = ""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or "No space" in str(exc):
        hint = "; free some space (or raise the file-size limit) and run again"
    return TopoviewerError(f"could not write {path}: {detail}{hint}; nothing was replaced")


# ---------------------------------------------------------------------------- numbers
def number(text, name: str, *, low=None, high=None, low_open: bool = False, integer: bool = False):
    """Parse a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    try:
        value = int(text, 10) if integer and isinstance(text, str) else (int(text) if integer else float(text))
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise TopoviewerError(f"{name}: expected {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise TopoviewerError(f"{name}: expected a finite number, got {text!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        fmt = "d" if integer else "g"
        lo = "" if low is None else (f"> {low:{fmt}}" if low_open else f"≥ {low:{fmt}}")
        hi = "" if high is None else f"≤ {high:{fmt}}"
        raise TopoviewerError(f"{name}: expected a number {' and '.join(x for x in (lo, hi) if x)}, got {text!r}")
    return value


def seed(text, name: str = "--seed") -> int:
    return number(text, name, low=0, high=SEED_MAX, integer=True)


#: The device names offered in choices (``device_name`` also takes cuda:N).
DEVICES = ("auto", "cpu", "cuda")
_DEVICE = re.compile(r"(auto|cpu|cuda(:\d{1,3})?)\Z")


def device_name(text) -> str:
    """auto, cpu, cuda or cuda:N (whether CUDA exists is checked when the device is used)."""
    if not isinstance(text, str) or not _DEVICE.match(text):
        raise TopoviewerError(f"--device: expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


# ---------------------------------------------------------------------------- resources
def voxel_grid(sheet, voxel_mm: float, fwhm_mm: float):
    """Refuse a simulated-fMRI grid that would not fit in memory (before it is built)."""
    w, h = sheet.extent_mm
    n = math.ceil(w / voxel_mm) * math.ceil(h / voxel_mm)
    if n > MAX_VOXELS:
        finest = math.sqrt(w * h / MAX_VOXELS)
        raise TopoviewerError(
            f"--voxel {voxel_mm:g} mm gives {n:,} voxels on sheet {sheet.name!r} ({w:g} × {h:g} mm); at most "
            f"{MAX_VOXELS:,} (MAX_VOXELS) are allowed: use --voxel ≥ {finest:.3g}"
        )
    sigma = fwhm_mm / math.sqrt(8 * math.log(2))
    covered = min(1.0, math.pi * (4 * sigma) ** 2 / max(w * h, 1e-12))
    weights = n * sheet.n_units * covered
    if weights > MAX_VOXEL_WEIGHTS:
        raise TopoviewerError(
            f"--voxel {voxel_mm:g} mm with --fwhm {fwhm_mm:g} mm needs about {weights:,.0f} voxel weights on sheet "
            f"{sheet.name!r}; at most {MAX_VOXEL_WEIGHTS:,} (MAX_VOXEL_WEIGHTS): use a larger --voxel or smaller --fwhm"
        )


def figure_pixels(width_in: float, height_in: float, dpi: float):
    n = width_in * dpi * height_in * dpi
    if n > MAX_FIGURE_PIXELS:
        top = math.sqrt(MAX_FIGURE_PIXELS / (width_in * height_in))
        raise TopoviewerError(
            f"--dpi {dpi:g} gives a {width_in * dpi:,.0f} × {height_in * dpi:,.0f} pixel figure; at most "
            f"{MAX_FIGURE_PIXELS:,} pixels (MAX_FIGURE_PIXELS): use --dpi ≤ {int(top)}"
        )


def parameter_count(n: int, path, arch: str):
    if n > MAX_PARAMETERS:
        raise TopoviewerError(
            f"{path}: the header's {arch!r} config describes {n:,} parameters; at most {MAX_PARAMETERS:,} "
            "(MAX_PARAMETERS) are built — the header is damaged or not meant for topoviewer"
        )


# ---------------------------------------------------------------------------- file contents
def _pair(value, *, positive: bool) -> bool:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return False
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    return ok and (not positive or all(v > 0 for v in value))


def model_header(header, path) -> dict:
    """The schema of an own-format header (see docs/formats.md): one line per problem."""
    if not isinstance(header, dict):
        raise TopoviewerError(f"{path}: the topoviewer header must be a JSON object, found {type(header).__name__}")
    for key, kind, label in (("arch", str, "a string"), ("config", dict, "an object"), ("sheets", list, "a list")):
        if key not in header:
            raise TopoviewerError(f"{path}: the topoviewer header has no {key!r} entry (expected {label})")
        if not isinstance(header[key], kind):
            raise TopoviewerError(f"{path}: header {key!r} must be {label}, found {type(header[key]).__name__}")
    for key, kind, label in (("classes", list, "a list of names"), ("name", str, "a string"),
                             ("meta", dict, "an object"), ("training", dict, "an object")):
        if header.get(key) is not None and not isinstance(header[key], kind):
            raise TopoviewerError(f"{path}: header {key!r} must be {label}, found {type(header[key]).__name__}")
    if not all(isinstance(c, str) for c in header.get("classes") or []):
        raise TopoviewerError(f"{path}: header 'classes' must be a list of names (strings)")
    if not header["sheets"]:
        raise TopoviewerError(f"{path}: header 'sheets' is empty; expected one entry per cortical sheet")
    for i, s in enumerate(header["sheets"]):
        where = f"{path}: header sheet {i}"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"]:
            raise TopoviewerError(f"{where} must be an object with a 'name' string")
        if not _pair(s.get("extent_mm"), positive=True):
            raise TopoviewerError(f"{where} ({s['name']!r}): 'extent_mm' must be two positive numbers, "
                                  f"found {s.get('extent_mm')!r}")
        if not _pair(s.get("origin_mm"), positive=False):
            raise TopoviewerError(f"{where} ({s['name']!r}): 'origin_mm' must be two numbers, found {s.get('origin_mm')!r}")
        g = s.get("grid_shape")
        if g is not None and not (isinstance(g, list) and len(g) == 2
                                  and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in g)):
            raise TopoviewerError(f"{where} ({s['name']!r}): 'grid_shape' must be null or two positive integers")
        for key in ("label", "unit"):
            if s.get(key) is not None and not isinstance(s[key], str):
                raise TopoviewerError(f"{where} ({s['name']!r}): {key!r} must be a string")
    size = header["config"].get("input_size")
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= MAX_INPUT_SIZE):
        raise TopoviewerError(f"{path}: config 'input_size' must be an integer in 1..{MAX_INPUT_SIZE}, found {size!r}")
    return header


def resume_state(header, path, fields) -> dict:
    """The ``training`` entry of a resumable checkpoint (step, config, optimizer, world size)."""
    training = header.get("training")
    if not training:
        raise TopoviewerError(f"--resume: {path} is a finished model without training state")
    step = training.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise TopoviewerError(f"--resume: {path}: training 'step' must be a non-negative integer, found {step!r}")
    cfg = training.get("config")
    if not isinstance(cfg, dict):
        raise TopoviewerError(f"--resume: {path}: training 'config' is missing or not an object")
    unknown = sorted(set(cfg) - set(fields))
    if unknown:
        raise TopoviewerError(f"--resume: {path}: unknown training config key(s) {', '.join(unknown)}; "
                              f"expected: {', '.join(fields)}")
    size = training.get("world_size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise TopoviewerError(f"--resume: {path}: training 'world_size' must be a positive integer, found {size!r}")
    opt = training.get("optimizer")
    if not isinstance(opt, dict) or not isinstance(opt.get("param_groups"), list) or not opt["param_groups"]:
        raise TopoviewerError(f"--resume: {path}: the optimizer state is missing (no param_groups); "
                              "the checkpoint cannot be continued exactly — start a new run")
    return training


def dims(value, path) -> tuple:
    """Layer dims (C, H, W): positive integers."""
    arr = np.ravel(np.asarray(value))
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TopoviewerError(f"{path}: 'dims' must be positive integers (C, H, W), found {value!r:.60}")
    if arr.size > 8 or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 1) \
            or np.any(arr > 2**31):
        raise TopoviewerError(f"{path}: 'dims' must be positive integers (C, H, W), found {arr.tolist()!r:.60}")
    return tuple(int(d) for d in arr)


def coordinates(arr: np.ndarray, path) -> np.ndarray:
    """Unit positions are millimetres of a cortical sheet: spread between 1 µm and 1 m."""
    lo_span, hi_span = COORD_SPAN_MM
    peak = float(np.abs(arr).max())
    if peak > COORD_MAX_ABS_MM:
        raise TopoviewerError(
            f"{path}: coordinates reach {peak:.3g}; expected millimetres with |x|, |y| ≤ {COORD_MAX_ABS_MM:g} "
            "(micrometres? divide by 1000)"
        )
    span = float(np.max(arr.max(axis=0) - arr.min(axis=0)))
    if span == 0:
        raise TopoviewerError(f"{path}: all {len(arr)} units are at the same position; expected distinct positions in mm")
    if not lo_span <= span <= hi_span:
        hint = " (micrometres? divide by 1000)" if span > hi_span else ""
        raise TopoviewerError(
            f"{path}: coordinates span {span:.3g} mm; expected a sheet between {lo_span:g} and {hi_span:g} mm{hint}"
        )
    return arr


def stimulus_categories(stimuli, needed=(), min_categories: int = 2, what: str = "this analysis"):
    """A stimulus set must hold ≥ 2 categories and every category ``needed``."""
    cats = list(stimuli.categories)
    if len(cats) < min_categories:
        raise TopoviewerError(
            f"{stimuli.name}: {what} needs at least {min_categories} categories (DIR/<category>/*.png), found {cats}"
        )
    missing = [c for c in needed if c not in cats]
    if missing:
        raise TopoviewerError(
            f"{stimuli.name}: {what} needs the categor{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)}; the set has {', '.join(cats)}"
        )
