"""The training engine: a generator of progress events, used by the CLI and the GUI.

``train(config, out)`` yields a :class:`Progress` after every step and returns the
trained :class:`~topoviewer.model.TopoModel`. Every ``checkpoint_every`` steps (and at
the end) the model, optimizer state and step are written atomically to ``out`` in the
own format, so an abort keeps the last checkpoint and ``resume=True`` continues
*exactly*: batch order and augmentation are drawn from RNGs seeded by ``(seed, step)``.
The finished file keeps its training state too, so ``resume=True`` with more ``steps``
extends a finished run (the learning-rate schedule is laid over the new total).

Data: the procedural diet (in memory), or image files (``config.data``: a folder with one
sub-folder per class, or a file list) streamed by :mod:`topoviewer.data`. ``config.init``
starts from any model :func:`topoviewer.io.load` opens. Started by torchrun (``WORLD_SIZE`` > 1)
it trains data-parallel (:mod:`topoviewer.distributed`); on CUDA in bf16 autocast with
channels_last weights (``precision``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from copy import deepcopy
from typing import Callable, Generator

import numpy as np

from . import defaults
from . import __version__
from .errors import TopoviewerError

__all__ = ["TrainConfig", "Progress", "train", "DEFAULT_WEIGHT", "recipe_path"]

#: Default weight per loss: α per sheet for absolute/relative (docs/science.md; methods §2), τ for TopoLoss.
DEFAULT_WEIGHT = {"absolute": defaults.SPATIAL_ALPHA, "relative": defaults.SPATIAL_ALPHA, "topoloss": 10.0, "none": 0.0}


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in the model file)."""

    arch: str = "tdann_small"
    loss: str = "absolute"
    weight: float | None = None  # α per sheet (absolute/relative) or τ (topoloss); None → DEFAULT_WEIGHT
    steps: int = 2000
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup: float = 0.1
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 250
    correlation_length_mm: float = defaults.CORRELATION_LENGTH_MM
    #: Units in one sampled neighbourhood of the relative loss: the scale over which it asks correlations to
    #: fall with distance (a small neighbourhood on a large sheet lets the map repeat: sample-v1's early sheet).
    neighbourhood_units: int = defaults.NEIGHBOURHOOD_UNITS
    per_category: int = 500
    val_per_category: int = 50
    arch_config: dict = field(default_factory=dict)
    #: Relative sampling frequency per diet category (default 1), e.g. {"faces": 3.0}:
    #: faces are frequent in primate visual experience (a recipe choice, documented).
    category_frequency: dict = field(default_factory=dict)
    #: Settings of the procedural diet over its defaults (``topoviewer.stimuli.diet.DIET_OPTIONS``), e.g.
    #: {"real_faces": 0.6}: the share of faces that are augmented crops of photographed faces.
    diet: dict = field(default_factory=dict)
    #: Image files to train on: a folder DIR/<class>/<image> or a text file list (topoviewer.data);
    #: None → the procedural diet. ``val_per_category`` images per class (at most 1/5) are held out.
    data: str | None = None
    #: A model file (any model topoviewer opens) whose weights and sheets the run starts from;
    #: its head is rebuilt for the data's classes when they differ.
    init: str | None = None
    #: Loader processes decoding image files (0: in the training process); does not change the result.
    workers: int = 2
    #: Random square crops cover this range of fractions of an image's area (image-file data).
    crop_scale: list = field(default_factory=lambda: [0.08, 1.0])
    #: "global": with several processes the spatial loss sees the all-gathered batch; "local": each its own.
    spatial_batch: str = "global"
    #: "auto": bf16 autocast (and channels_last) on CUDA, float32 elsewhere; "float32" always float32;
    #: "float64": weights and arithmetic in float64 (slow; for numerical checks).
    precision: str = "auto"

    @classmethod
    def from_json(cls, source) -> "TrainConfig":
        """A config from a recipe: a JSON object of TrainConfig fields.

        ``source`` is a dict, a path to a JSON file, or the name of an embedded model (``"sample"``,
        ``"sample-v1"``) for the recipe that trained it (shipped inside the package). Fields a recipe leaves out
        keep their defaults; unknown fields are refused with their names.
        """
        import json

        if isinstance(source, dict):
            data, where = dict(source), "recipe"
        else:
            from .io import is_sample

            path = recipe_path(source) if is_sample(source) else source
            where = str(path)
            try:
                data = json.loads(path.read_text() if hasattr(path, "read_text") else Path(path).read_text())
            except (OSError, ValueError) as exc:
                raise TopoviewerError(f"{where}: not a readable training recipe ({exc})") from None
        if not isinstance(data, dict):
            raise TopoviewerError(f"{where}: a training recipe is a JSON object of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TopoviewerError(f"{where}: unknown recipe setting(s) {', '.join(unknown)}; "
                                  f"expected some of: {', '.join(sorted(known))}")
        return cls(**data)

    def to_json(self) -> dict:
        """The config as a JSON-able dict (what :meth:`from_json` reads and model files store)."""
        return asdict(self)

    def resolved_weight(self) -> float:
        return DEFAULT_WEIGHT[self.loss] if self.weight is None else float(self.weight)

    def validate(self) -> "TrainConfig":
        if self.loss not in DEFAULT_WEIGHT:
            raise TopoviewerError(f"unknown loss {self.loss!r}; expected one of: {', '.join(DEFAULT_WEIGHT)}")
        if self.optimizer not in ("adam", "sgd"):
            raise TopoviewerError(f"unknown optimizer {self.optimizer!r}; expected adam or sgd")
        for name in ("steps", "batch_size", "checkpoint_every", "per_category", "neighbourhood_units"):
            if getattr(self, name) < 1:
                raise TopoviewerError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TopoviewerError(f"learning rate must be positive, got {self.lr}")
        if self.spatial_batch not in ("global", "local"):
            raise TopoviewerError(f"spatial_batch must be 'global' or 'local', got {self.spatial_batch!r}")
        if self.precision not in ("auto", "float32", "float64"):
            raise TopoviewerError(f"precision must be 'auto', 'float32' or 'float64', got {self.precision!r}")
        if self.workers < 0:
            raise TopoviewerError(f"workers must be 0 or more, got {self.workers}")
        scale = self.crop_scale
        if not (isinstance(scale, (list, tuple)) and len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
            raise TopoviewerError(f"crop_scale must be [low, high] with 0 < low ≤ high ≤ 1, got {self.crop_scale}")
        if self.data and self.category_frequency:
            raise TopoviewerError("category_frequency applies to the procedural diet only, not to --data images")
        return self


def recipe_path(name: str = "sample"):
    """The recipe of an embedded model (:data:`topoviewer.io.SAMPLES`), inside the installed package."""
    from .io import SAMPLES, sample_data_file

    return sample_data_file(SAMPLES[name][1])


@dataclass
class Progress:
    """One training event."""

    step: int
    steps: int
    task_loss: float
    spatial_loss: float
    accuracy: float
    images_per_s: float
    lr: float
    checkpoint: str | None = None
    val_accuracy: float | None = None
    #: ``snapshot()`` → an in-memory copy of the model at this step (eval mode), for live views that
    #: refresh faster than checkpoints are written; call it before asking the generator for the next step.
    snapshot: Callable[[], object] | None = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.step >= self.steps


def _learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay to zero (a one-cycle schedule without state)."""
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


class _Diet:
    """The procedural diet, in memory: the global batch of a step drawn by ``rng(seed, step)``."""

    def __init__(self, model, cfg: TrainConfig, world):
        from .stimuli.diet import DIET_VERSION, diet_options
        from .stimuli.photos import FACE_PHOTOS

        self.cfg, self.world = cfg, world
        opts = diet_options(cfg.diet)  # refuses unknown settings before the diet is drawn
        self.x, self.y, self.classes = self._split(model, cfg, "train")
        self.x_val, self.y_val, _ = self._split(model, cfg, "val")
        unknown = set(cfg.category_frequency) - set(self.classes)
        if unknown:
            raise TopoviewerError(f"category_frequency names unknown categories {sorted(unknown)}; "
                                  f"the diet has {self.classes}")
        freq = np.array([cfg.category_frequency.get(c, 1.0) for c in self.classes], dtype=np.float64)
        self.p = freq[self.y.cpu().numpy()]
        self.p /= self.p.sum()
        self.skipped: dict = {}
        faces = ("no photograph of a face" if not opts["real_faces"] else
                 f"{opts['real_faces']:.0%} of the faces are augmented crops of {len(FACE_PHOTOS)} photographed faces "
                 f"({', '.join(p[1] for p in FACE_PHOTOS)}; none from LFW)"
                 + (f", reshaped by up to {opts['real_face_warp']:.0%}" if opts["real_face_warp"] else ""))
        self.description = (f"{DIET_VERSION}: {len(self.classes)} categories × {cfg.per_category} images, procedural "
                            f"(faces, bodies, places, objects, words, …) plus natural-photo clutter; {faces}")
        settings = "".join(f", {k}={v}" for k, v in sorted(cfg.diet.items()))
        self.provenance = f"training_diet(per_category={cfg.per_category}{settings})"

    @staticmethod
    def _split(model, cfg, split):
        import torch

        from .stimuli import DIET_CATEGORIES, training_diet
        from .validate import MAX_ARRAY_BYTES

        per = cfg.per_category if split == "train" else cfg.val_per_category
        need = per * len(DIET_CATEGORIES) * model.in_channels * model.input_size ** 2 * 4
        if need > MAX_ARRAY_BYTES:
            raise TopoviewerError(
                f"the procedural diet at {model.input_size} px ({per} images × {len(DIET_CATEGORIES)} categories) would "
                f"take {need / 2**30:.1f} GiB in memory, more than {MAX_ARRAY_BYTES / 2**30:.1f} GiB (MAX_ARRAY_BYTES); "
                "train on image files (--data DIR), fewer images (--per-category) or a smaller input_size")
        data = training_diet(split, per_category=per, size=model.input_size, seed=cfg.seed, options=cfg.diet)
        x = torch.cat([model.preprocess(data.images[i : i + 1024]) for i in range(0, len(data), 1024)])
        return x, torch.as_tensor(data.labels, device=x.device), list(data.categories)

    def batches(self, start: int, stop: int):
        import torch

        cfg, world = self.cfg, self.world
        local = cfg.batch_size // world.size
        if cfg.batch_size % world.size:
            raise TopoviewerError(f"--batch-size {cfg.batch_size} must be divisible by the number of processes "
                                  f"({world.size})")
        for step in range(start, stop):
            rng = np.random.default_rng([cfg.seed, step])
            idx = torch.as_tensor(rng.choice(len(self.x), size=cfg.batch_size, p=self.p), device=self.x.device)
            part = slice(world.rank * local, (world.rank + 1) * local)
            yield _augment(self.x[idx], rng)[part], self.y[idx][part]

    def validation(self, batch_size: int = 512):
        for i in range(0, len(self.x_val), batch_size):
            yield self.x_val[i : i + batch_size], self.y_val[i : i + batch_size]


class _Files:
    """Image files (:mod:`topoviewer.data`): streamed, decoded and augmented in loader processes."""

    def __init__(self, images, model, cfg: TrainConfig, world, device: str):
        from .data import split_validation

        self.images, self.model, self.cfg, self.world, self.device = images, model, cfg, world, device
        self.classes = list(images.classes)
        self.train_idx, self.val_idx = split_validation(images.labels, cfg.val_per_category, cfg.seed)
        self.skipped: dict = {}
        self.description = (f"{images.describe()}; {len(self.train_idx)} for training, {len(self.val_idx)} held out "
                            f"for validation (≤ {cfg.val_per_category} per class, seed {cfg.seed})")
        self.provenance = f"image files ({images.source})"

    def _dataset(self, index):
        from .data import ImageDataset

        m = self.model
        return ImageDataset(self.images, index, m.input_size, m.in_channels, m.resize_size, self.cfg.crop_scale)

    def _stream(self, dataset, batches):
        from .data import loader

        for x, y, skipped in loader(dataset, batches, self.cfg.workers, pin_memory=self.device.startswith("cuda")):
            for reason in skipped:
                self.skipped.setdefault(reason, None)
            if x is None:
                raise TopoviewerError(y)
            yield self.model.normalise(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    def batches(self, start: int, stop: int):
        from .data import StepBatches

        cfg, world = self.cfg, self.world
        sampler = StepBatches(len(self.train_idx), cfg.batch_size, cfg.seed, start, stop, world.rank, world.size)
        return self._stream(self._dataset(self.train_idx), sampler)

    def validation(self, batch_size: int = 256):
        n = len(self.val_idx)
        chunks = [[(i, None) for i in range(a, min(a + batch_size, n))] for a in range(0, n, batch_size)]
        return self._stream(self._dataset(self.val_idx), chunks)


def _augment(x, rng: np.random.Generator):
    """Random horizontal flips (per image) and one random shift of up to 1/8 of the size."""
    import torch

    flip = torch.as_tensor(rng.random(len(x)) < 0.5, device=x.device)
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = max(1, x.shape[-1] // 8)
    dy, dx = rng.integers(-pad, pad + 1, size=2)
    return torch.roll(x, shifts=(int(dy), int(dx)), dims=(-2, -1))


def _optimizer(net, cfg: TrainConfig):
    import torch

    if cfg.optimizer == "adam":
        return torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _optimizer_tensors(opt) -> tuple[dict, dict]:
    """Optimizer state → (flat tensors ``optim.<i>.<key>``, JSON-able rest)."""
    import torch

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for i, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{i}.{key}"] = val
            else:
                scalars[f"{i}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt, tensors: dict, info: dict):
    state: dict = {}
    for key, val in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = val
    for key, val in info.get("scalars", {}).items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def evaluate(model, batches) -> float:
    """Top-1 accuracy of ``model`` over ``(inputs, labels)`` batches of preprocessed inputs."""
    import torch

    model.net.eval()
    correct = total = 0
    with torch.inference_mode():
        for x, y in batches:
            logits, _ = model.net(x)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
    return correct / max(1, total)


#: Settings a resumed run cannot change: the checkpoint's model and optimizer state depend on them.
FIXED_ON_RESUME = ("arch", "arch_config", "optimizer")
#: Settings that do not change what a run computes (never reported as changes).
RUNTIME_ONLY = ("device", "workers", "init")


def resume_changes(saved: TrainConfig, config: TrainConfig, world_sizes: tuple[int, int] = (1, 1)) -> list[str]:
    """What ``config`` changes in the run that ``saved`` describes, as ``"lr 0.003 → 0.01"`` lines.

    Changes of :data:`FIXED_ON_RESUME` are refused (TopoviewerError naming them); settings in
    :data:`RUNTIME_ONLY` are not reported. ``world_sizes``: the numbers of processes that wrote the
    checkpoint and that continue it; a change is reported (``"world size 2 → 1"``) but changes no
    result, since every step's global batch is the same on any number of processes.
    """
    old, new = asdict(saved), asdict(config)
    fixed = [f"{k} (the run's {old[k]!r}, given {new[k]!r})" for k in FIXED_ON_RESUME if old[k] != new[k]]
    if fixed:
        raise TopoviewerError(f"--resume cannot change {', '.join(fixed)}: the checkpoint's model and optimizer "
                              "state depend on it; start a new run (--init MODEL starts from its weights)")
    changed = [f"{k} {old[k]!r} → {new[k]!r}" for k in old
               if k not in FIXED_ON_RESUME + RUNTIME_ONLY and old[k] != new[k]]
    if world_sizes[0] != world_sizes[1]:
        changed.append(f"world size {world_sizes[0]} → {world_sizes[1]}")
    return changed


def resume_config(out, changes: dict | None = None) -> TrainConfig:
    """The config of the run checkpointed in ``out`` with ``changes`` (TrainConfig fields) applied."""
    import dataclasses

    from .io import read_header
    from .validate import resume_state

    training = resume_state(read_header(out), out, [f.name for f in fields(TrainConfig)])
    try:
        saved = TrainConfig(**training["config"]).validate()
    except TypeError as exc:
        raise TopoviewerError(f"--resume: {out}: the stored training config is damaged ({exc})") from None
    return dataclasses.replace(saved, **(changes or {}))


def train(config: TrainConfig, out, *, resume: bool = False, steps: int | None = None, stop=None
          ) -> Generator[Progress, None, object]:
    """Train a topographic model; yields :class:`Progress`, returns the model.

    With ``resume=True`` the run continues from the checkpoint in ``out`` — an interrupted one, or
    a finished one given more ``steps`` (or ``config.steps``). ``config`` is the run's saved config
    (:func:`resume_config`) with any changes :func:`resume_changes` allows.
    While it runs, ``<out>.lock`` is held (a second writer of ``out`` is refused) and
    temporary files a killed earlier writer of ``out`` left are removed first.

    ``stop`` (e.g. a :class:`threading.Event`) asks for a graceful stop: once it is set, the
    current step finishes, a resumable checkpoint of that step is written atomically to
    ``out`` (also before the first regular checkpoint) and the model is returned.

    Started by torchrun, every process calls this; process 0 holds the lock and writes ``out``.
    """
    from .distributed import join
    from .model import resolve_device
    from .validate import output_lock, remove_stale_tmp

    world = join(resolve_device(config.device))
    try:
        if not world.main:
            return (yield from _train(config, Path(out), resume=resume, steps=steps, stop=stop, world=world))
        with output_lock(out):
            remove_stale_tmp(out)
            return (yield from _train(config, Path(out), resume=resume, steps=steps, stop=stop, world=world))
    finally:
        world.leave()


def _initial_model(cfg: TrainConfig, classes: list):
    """A fresh model of ``cfg.arch``, or ``cfg.init``'s weights and sheets with a head for ``classes``
    (returned with the config that rebuilds it)."""
    import dataclasses

    import torch

    from .families import build, classifier_config, fresh_classifier

    torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
    if not cfg.init:
        return fresh_classifier(cfg.arch, cfg.arch_config, classes), cfg
    from .io import load

    base = load(cfg.init)
    config = classifier_config(base, classes)
    model = build(base.arch, config, sheets=base.sheets)
    own, theirs = model.net.state_dict(), base.net.state_dict()
    model.net.load_state_dict({k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape},
                              strict=False)
    model.meta = {"init": {"model": str(cfg.init), "fresh": sorted(k for k in own if k not in theirs
                                                                    or own[k].shape != theirs[k].shape)}}
    return model, dataclasses.replace(cfg, arch=base.arch, arch_config={k: v for k, v in config.items()
                                                                        if k != "classes"})


def _train(config: TrainConfig, out: Path, *, resume: bool, steps: int | None, stop, world):
    import contextlib

    import torch
    import torch.nn.functional as F

    from .distributed import any_process, gather, global_batch_norm
    from .io import load_model, load_tensors
    from .losses import spatial_loss
    from .model import resolve_device

    out = Path(out)
    cfg = config if steps is None else TrainConfig(**{**asdict(config), "steps": int(steps)})
    cfg = cfg.validate()
    start_step = 0
    if resume:
        if not out.exists():
            raise TopoviewerError(f"--resume: no checkpoint at {out}; start a run with --out {out} first")
        from .io import read_header

        resume_changes(resume_config(out), cfg)
        start_step = read_header(out)["training"]["step"]
        if start_step >= cfg.steps:
            raise TopoviewerError(f"--resume: {out} stopped at step {start_step}; pass --steps larger than that "
                                  "to train further")
        model = load_model(out)
        optim_state = load_tensors(out, "optim.")
        if not optim_state and start_step > 0:
            raise TopoviewerError(f"--resume: {out} has no optimizer tensors (optim.*); the run cannot be "
                                  "continued exactly — start a new run")
        init_meta = model.meta.get("init")
    images = None
    if cfg.data:
        from .data import read_image_list

        images = read_image_list(cfg.data)
        classes = list(images.classes)
    else:
        from .stimuli import DIET_CATEGORIES

        classes = list(DIET_CATEGORIES)
    if resume:
        if list(model.classes) != classes:
            raise TopoviewerError(f"--resume: {out} was trained on the classes {model.classes}; the data has {classes}")
    else:
        model, cfg = _initial_model(cfg, classes)
        init_meta = model.meta.get("init")
    from .validate import free_space

    weights = sum(t.numel() * t.element_size() for t in model.net.state_dict().values())
    if world.main:
        free_space(out.parent, 2 * weights * (3 if cfg.optimizer == "adam" else 2))  # checkpoint + its temp copy
    device = resolve_device(cfg.device)
    if device == "cuda" and world.size > 1:
        device = f"cuda:{world.local_rank}"
        torch.cuda.set_device(device)
    model.to(device)
    cuda = device.startswith("cuda")
    bf16 = cuda and cfg.precision == "auto" and torch.cuda.is_bf16_supported()
    if cuda:
        model.net.to(memory_format=torch.channels_last)
    dtype = torch.float64 if cfg.precision == "float64" else torch.float32
    model.net.to(dtype)
    data = _Files(images, model, cfg, world, device) if images is not None else _Diet(model, cfg, world)

    weight = cfg.resolved_weight()
    losses = []
    if cfg.loss != "none":
        losses = [
            (k, spatial_loss(cfg.loss, s, correlation_length=cfg.correlation_length_mm,
                             neighbourhood_units=cfg.neighbourhood_units))
            for k, s in enumerate(model.sheets)
        ]
    net = model.net
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        global_batch_norm(model.net)
        net = DistributedDataParallel(model.net, device_ids=[torch.device(device).index] if cuda else None,
                                      broadcast_buffers=False)
    gathered = world.size > 1 and cfg.spatial_batch == "global"
    opt = _optimizer(model.net, cfg)
    if resume:
        try:
            _restore_optimizer(opt, optim_state, read_header(out)["training"]["optimizer"])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise TopoviewerError(f"--resume: {out}: the stored optimizer state does not fit the model "
                                  f"({type(exc).__name__}: {exc})") from None

    def checkpoint(step: int, val_acc: float | None) -> str:
        """Atomic save with the optimizer state: resumable, and extendable once finished."""
        skipped = sorted(data.skipped)
        model.meta = {
            "training_data": data.description + (f"; {len(skipped)} unreadable images skipped" if skipped else ""),
            "training": {
                "loss": cfg.loss, "weight": weight, "correlation_length_mm": cfg.correlation_length_mm,
                "steps": step, "seed": cfg.seed, "data": data.provenance,
                "val_accuracy": val_acc, "config": asdict(cfg),
                **({"skipped_images": {"count": len(skipped), "first": skipped[:10]}} if skipped else {}),
            },
            **({"init": init_meta} if init_meta else {}),
            "version": __version__,
        }
        tensors, info = _optimizer_tensors(opt)
        save_model(model, out, extra_tensors=tensors, training={"step": step, "config": asdict(cfg), "optimizer": info,
                                                                "world_size": world.size})
        return str(out)

    from .io import save_model

    def snapshot():
        """The model as it is now, detached from the run (the run is suspended at its yield meanwhile)."""
        copy = deepcopy(model)
        copy.net.eval()
        return copy

    gen = torch.Generator(device="cpu")
    t_last, n_last = time.perf_counter(), 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    for step, (xb, yb) in zip(range(start_step, cfg.steps), data.batches(start_step, cfg.steps)):
        xb = xb.to(dtype)
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        gen.manual_seed(cfg.seed * 7_919 + step)
        if cuda:
            xb = xb.contiguous(memory_format=torch.channels_last)
        lr = _learning_rate(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        model.net.train()
        with autocast:
            logits, acts = net(xb)
        logits = logits.to(dtype)
        task = F.cross_entropy(logits, yb)
        spatial = torch.zeros((), device=device)
        with torch.set_grad_enabled(weight != 0):  # a control (weight 0) only logs its spatial loss
            for k, loss in losses:
                if loss.needs == "responses":  # the step's units first: only they are converted and gathered
                    target, units = loss.select(model.units(k, acts[k]), generator=gen)
                    target = target.to(dtype)
                    spatial = spatial + loss.evaluate(gather(target) if gathered else target, units)
                else:
                    spatial = spatial + loss(model.net.sheet_weight(k), generator=gen)
        if cfg.loss == "topoloss" and losses:
            spatial = spatial / len(losses)  # TopoLoss is averaged over layers (as the topoloss package)
        total = task + weight * spatial
        if not torch.isfinite(total):
            raise TopoviewerError(
                f"training diverged at step {step} (loss is NaN/inf); the last checkpoint in {out} is intact — "
                "lower --lr or the loss weight"
            )
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        n_last += len(xb) * world.size
        done = step + 1
        ckpt, val_acc = None, None
        stopping = any_process(stop is not None and stop.is_set(), world, device)
        if world.main and (done % cfg.checkpoint_every == 0 or done == cfg.steps or stopping):
            val_acc = evaluate(model, ((x.to(dtype), y) for x, y in data.validation()))
            ckpt = checkpoint(done, val_acc)
        now = time.perf_counter()
        rate = n_last / max(now - t_last, 1e-9)
        if now - t_last > 2.0:
            t_last, n_last = now, 0
        yield Progress(
            done, cfg.steps, task.item(), spatial.item(), (logits.argmax(1) == yb).float().mean().item(),
            rate, lr, ckpt, val_acc, snapshot,
        )
        if stopping:
            break
    model.net.eval()
    return model
