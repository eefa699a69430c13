"""Model files: topoviewer's own format and safe loading of foreign checkpoints.

Own format: one ``.safetensors`` file. Tensors ``net.<param>`` hold the weights,
``positions.<sheet>`` the unit positions; the safetensors metadata key ``topoviewer``
holds a JSON header (architecture and config, sheets, losses and weights used,
training provenance). Optional ``optim.*`` tensors plus a ``training`` header entry make
the same file a resumable training checkpoint. Nothing is ever unpickled.

Foreign ``.pt/.pth/.ckpt/.torch`` pickles are read only with
``torch.load(weights_only=True)``; anything that needs other classes is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import TopoviewerError
from .sheet import Sheet
from .validate import input_file, model_header, parameter_count, tmp_prefix, write_error

__all__ = ["save_model", "load_model", "load", "safe_torch_load", "read_header", "read_sheets", "atomic_write", "sample_path",
           "file_sha256"]

FORMAT = "topoviewer-model"
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".torch", ".bin", ".pkl")


def sample_path() -> Path:
    """Path of the embedded default model (``MODEL=sample``)."""
    from importlib import resources

    try:
        path = Path(str(resources.files("topoviewer.sample_data") / "default.safetensors"))
    except ModuleNotFoundError:  # running from a source tree without installation
        path = Path(__file__).resolve().parent.parent / "sample_data" / "default.safetensors"
    if not path.exists():
        raise TopoviewerError(f"the embedded default model is missing ({path}); reinstall topoviewer")
    return path


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)`` then atomically rename onto ``path``: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            write(tmp)
        except OSError as exc:
            raise write_error(path, exc) from None
        except Exception as exc:  # safetensors reports a full disk as its own SafetensorError
            if type(exc).__name__ != "SafetensorError":
                raise
            raise write_error(path, exc) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a saved file gets ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------------- own format
def save_model(model, path, *, extra_tensors: dict | None = None, training: dict | None = None) -> Path:
    """Write ``model`` to ``path`` in the own format, atomically.

    ``extra_tensors`` (e.g. optimizer state, keys starting ``optim.``) and ``training``
    (a JSON-able dict) turn the file into a resumable checkpoint.
    """
    import torch
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().to("cpu").contiguous() for k, v in model.net.state_dict().items()}
    for s in model.sheets:
        tensors[f"positions.{s.name}"] = torch.from_numpy(np.ascontiguousarray(s.positions))
    tensors.update({k: v.detach().to("cpu").contiguous() for k, v in (extra_tensors or {}).items()})
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": model.name,
        "arch": model.arch,
        "config": model.config,
        "classes": list(model.classes),
        "sheets": [
            {
                "name": s.name, "label": s.label, "extent_mm": list(s.extent_mm), "origin_mm": list(s.origin_mm),
                "unit": s.unit, "grid_shape": list(s.grid_shape) if s.grid_shape else None,
            }
            for s in model.sheets
        ],
        "meta": model.meta,
    }
    if training is not None:
        header["training"] = training
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"topoviewer": json.dumps(header)}))


def read_header(path) -> dict:
    """The JSON header of an own-format file (TopoviewerError if it is not one)."""
    from safetensors import safe_open

    path = _existing(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own types for truncated/garbage files
        raise TopoviewerError(f"{path} is not a readable safetensors file ({exc})") from None
    if "topoviewer" not in meta:
        raise TopoviewerError(f"{path} is a safetensors file but not a topoviewer model (no 'topoviewer' header)")
    try:
        header = json.loads(meta["topoviewer"])
    except json.JSONDecodeError as exc:
        raise TopoviewerError(f"{path}: corrupt topoviewer header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise TopoviewerError(f"{path}: expected format {FORMAT!r}, found {found!r}")
    return model_header(header, path)


def load_tensors(path, prefix: str = "", framework: str = "pt") -> dict:
    """All tensors of a safetensors file whose key starts with ``prefix`` (prefix stripped).

    ``framework="numpy"`` gives numpy arrays and needs no torch.
    """
    from safetensors import safe_open

    out = {}
    try:
        with safe_open(str(path), framework=framework) as f:
            for key in f.keys():
                if key.startswith(prefix):
                    out[key[len(prefix):]] = f.get_tensor(key)
    except TopoviewerError:
        raise
    except Exception as exc:
        raise TopoviewerError(f"{path}: could not read tensors ({exc}); the file may be truncated") from None
    return out


def read_sheets(path) -> tuple[dict, list]:
    """The header and the sheets of an own-format model file, without building the network.

    Reads only the JSON header and the positions (numpy; no torch import): enough to place and
    draw a model's maps before the model itself is loaded (the viewer's first picture).
    """
    header = read_header(path)
    positions = load_tensors(path, "positions.", framework="numpy")
    sheets = []
    for spec in header["sheets"]:
        if spec["name"] not in positions:
            raise TopoviewerError(f"{path}: positions of sheet {spec['name']!r} are missing")
        sheets.append(
            Sheet(
                spec["name"], positions[spec["name"]], tuple(spec["extent_mm"]), tuple(spec["origin_mm"]),
                unit=spec.get("unit", "mm"), grid_shape=tuple(spec["grid_shape"]) if spec.get("grid_shape") else None,
                label=spec.get("label", ""),
            )
        )
    return header, sheets


def load_model(path, device: str = "cpu", *, dry_build: bool = True):
    """Load an own-format model file; weights are checked for NaN/inf and shape.

    ``dry_build=False`` skips building the architecture on the meta device first (the guard against
    damaged or hostile headers, :func:`_dry_build`); only for the model embedded in the package, whose
    file is tested with it — it saves the seconds torch takes to import its meta kernels at startup.
    """
    from .families import build, check_finite

    header, sheets = read_sheets(path)
    if dry_build:
        _dry_build(header, sheets, path)
    model = build(header["arch"], header["config"], sheets=sheets)
    state = load_tensors(path, "net.")
    check_finite(state, path)
    try:
        model.net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise TopoviewerError(f"{path}: weights do not fit architecture {header['arch']!r}: {first}") from None
    model.net.eval()
    model.name = header.get("name") or Path(path).stem
    model.meta = header.get("meta") or {}
    model.classes = header.get("classes") or []
    return model.to(device)


#: safetensors dtypes a floating-point weight may be stored as.
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


def _dry_build(header, sheets, path) -> None:
    """Build the header's architecture on torch's meta device (no memory) and run one image through it:
    a config that cannot be built, is too large or does not fit the stored weights is refused first."""
    import torch
    from safetensors import safe_open

    from .families import TRAINABLE, build

    arch = header["arch"]
    try:
        with torch.device("meta"):
            model = build(arch, header["config"], sheets=sheets)
            params = model.net.state_dict()
            parameter_count(sum(p.numel() for p in params.values()), path, arch)
            with safe_open(str(path), framework="pt") as f:
                stored = {k[4:]: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                          for k in f.keys() if k.startswith("net.")}
            for key, p in params.items():
                shape, dtype = stored.get(key, (tuple(p.shape), None))
                if tuple(p.shape) != shape:
                    raise TopoviewerError(f"{path}: weights do not fit architecture {arch!r}: {key} is stored with "
                                          f"shape {list(shape)}, the header's config needs {list(p.shape)}")
                if p.is_floating_point() and dtype is not None and dtype not in _FLOAT_DTYPES:
                    raise TopoviewerError(f"{path}: weight {key!r} is stored as {dtype}; expected floating point "
                                          f"({', '.join(_FLOAT_DTYPES)}) — the file is damaged")
            if arch in TRAINABLE:  # nets that take images directly
                model.net.eval()
                model.net(torch.zeros(1, model.in_channels, model.input_size, model.input_size))
    except TopoviewerError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a damaged config is the file's fault
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise TopoviewerError(f"{path}: the header's {arch!r} config cannot be built ({type(exc).__name__}: {first})") from None


# ---------------------------------------------------------------------- foreign files
def safe_torch_load(path, safe_globals=()):
    """``torch.load(weights_only=True)``, with errors turned into one clear message.

    A pickle that needs any class outside torch's allow-list (plus ``safe_globals``)
    is refused before anything from it runs.
    """
    import pickle

    import torch

    path = _existing(path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).split("\n")
        culprit = next((line.strip() for line in detail if "GLOBAL" in line or "Unsupported" in line), detail[0])
        raise TopoviewerError(
            f"refused to load {path}: it contains pickled code or objects that are not plain tensors ({culprit}). "
            "Only weights-only checkpoints can be opened."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a damaged zip or pickle fails in many ways (KeyError, IndexError…)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise TopoviewerError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {first})") from None


def load(source, device: str = "cpu", **options):
    """Open a model: ``"sample"`` (the embedded default) or a path to a model file.

    This is the one entry point the CLI and the GUI use. Format detection: an own-format
    ``.safetensors`` file, or a foreign checkpoint handled by a registered family.
    """
    if str(source) == "sample":
        return load_model(sample_path(), device=device, dry_build=False)  # shipped and tested with the package
    path = input_file(source, "model file (.safetensors, .pt, .pth, .ckpt, .torch)")
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) < 8:
        raise TopoviewerError(f"{path} is empty or truncated; expected a model file")
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        return load_model(path, device=device)
    if path.suffix.lower() in PICKLE_SUFFIXES or head[:2] == b"PK" or head[:1] == b"\x80":
        from .families import foreign_safe_globals, load_foreign

        obj = safe_torch_load(path, safe_globals=foreign_safe_globals())
        return load_foreign(obj, path, device=device, **options)
    raise TopoviewerError(
        f"{path}: unrecognised model file; expected a topoviewer .safetensors model or a PyTorch checkpoint"
    )


def _looks_like_safetensors(head: bytes) -> bool:
    n = int.from_bytes(head[:8], "little")
    return 0 < n < 100_000_000 and head[8:9] == b"{"


def _existing(path) -> Path:
    return input_file(path)


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks (model files: the analysis cache key, workspaces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
