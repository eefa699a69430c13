"""The training engine: a generator of progress events, used by the CLI and the GUI.

``train(config, out)`` yields a :class:`Progress` after every step and returns the
trained :class:`~topoviewer.model.TopoModel`. Every ``checkpoint_every`` steps (and at
the end) the model, optimizer state and step are written atomically to ``out`` in the
own format, so an abort keeps the last checkpoint and ``resume=True`` continues
*exactly*: batch order and augmentation are drawn from RNGs seeded by ``(seed, step)``.
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
    per_category: int = 500
    val_per_category: int = 50
    arch_config: dict = field(default_factory=dict)
    #: Relative sampling frequency per diet category (default 1), e.g. {"faces": 3.0}:
    #: faces are frequent in primate visual experience (a recipe choice, documented).
    category_frequency: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, source) -> "TrainConfig":
        """A config from a recipe: a JSON object of TrainConfig fields.

        ``source`` is a dict, a path to a JSON file, or ``"sample"`` for the recipe of the
        embedded default model (shipped inside the package). Fields a recipe leaves out
        keep their defaults; unknown fields are refused with their names.
        """
        import json

        if isinstance(source, dict):
            data, where = dict(source), "recipe"
        else:
            path = recipe_path() if str(source) == "sample" else source
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
        for name in ("steps", "batch_size", "checkpoint_every", "per_category"):
            if getattr(self, name) < 1:
                raise TopoviewerError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TopoviewerError(f"learning rate must be positive, got {self.lr}")
        return self


def recipe_path():
    """The recipe of the embedded default model, inside the installed package."""
    from importlib import resources

    return resources.files("topoviewer.sample_data") / "recipe.json"


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


def _dataset(model, cfg: TrainConfig, split: str):
    import torch

    from .stimuli import training_diet

    per = cfg.per_category if split == "train" else cfg.val_per_category
    data = training_diet(split, per_category=per, size=model.input_size, seed=cfg.seed)
    x = torch.cat([model.preprocess(data.images[i : i + 1024]) for i in range(0, len(data), 1024)])
    return x, torch.as_tensor(data.labels, device=x.device), list(data.categories)


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


def evaluate(model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on preprocessed inputs."""
    import torch

    model.net.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            logits, _ = model.net(x[i : i + batch_size])
            correct += int((logits.argmax(1) == y[i : i + batch_size]).sum())
    return correct / max(1, len(x))


def train(config: TrainConfig, out, *, resume: bool = False, steps: int | None = None, stop=None
          ) -> Generator[Progress, None, object]:
    """Train a topographic model; yields :class:`Progress`, returns the model.

    With ``resume=True`` the run continues from the checkpoint in ``out`` with its saved
    config — its own steps and learning-rate schedule unless ``steps`` is given.
    While it runs, ``<out>.lock`` is held (a second writer of ``out`` is refused) and
    temporary files a killed earlier writer of ``out`` left are removed first.

    ``stop`` (e.g. a :class:`threading.Event`) asks for a graceful stop: once it is set, the
    current step finishes, a resumable checkpoint of that step is written atomically to
    ``out`` (also before the first regular checkpoint) and the model is returned.
    """
    from .validate import output_lock, remove_stale_tmp

    with output_lock(out):
        remove_stale_tmp(out)
        return (yield from _train(config, Path(out), resume=resume, steps=steps, stop=stop))


def _train(config: TrainConfig, out: Path, *, resume: bool, steps: int | None, stop=None):
    import torch
    import torch.nn.functional as F

    from .families import build
    from .io import load_model, load_tensors, read_header, save_model
    from .losses import spatial_loss
    from .model import resolve_device

    out = Path(out)
    cfg = config.validate()
    start_step = 0
    if resume:
        if not out.exists():
            raise TopoviewerError(f"--resume: no checkpoint at {out}; start a run with --out {out} first")
        from .validate import resume_state

        training = resume_state(read_header(out), out, [f.name for f in fields(TrainConfig)])
        try:
            saved = TrainConfig(**training["config"])
            saved.steps = saved.steps if steps is None else int(steps)
            saved.device = cfg.device
            cfg = saved.validate()
        except TypeError as exc:
            raise TopoviewerError(f"--resume: {out}: the stored training config is damaged ({exc})") from None
        start_step = training["step"]
        if start_step >= cfg.steps:
            raise TopoviewerError(f"--resume: {out} stopped at step {start_step}; pass --steps larger than that "
                                  "to train further")
        model = load_model(out)
        optim_state = load_tensors(out, "optim.")
        if not optim_state and start_step > 0:
            raise TopoviewerError(f"--resume: {out} has no optimizer tensors (optim.*); the run cannot be "
                                  "continued exactly — start a new run")
    else:
        from .stimuli import DIET_CATEGORIES

        classes = list(DIET_CATEGORIES)
        torch.manual_seed(cfg.seed)  # initial weights depend on the seed only
        model = build(cfg.arch, {**cfg.arch_config, "n_classes": len(classes), "classes": classes})
    from .validate import free_space

    weights = sum(t.numel() * t.element_size() for t in model.net.state_dict().values())
    free_space(out.parent, 2 * weights * (3 if cfg.optimizer == "adam" else 2))  # checkpoint + its temp copy
    device = resolve_device(cfg.device)
    model.to(device)

    x_train, y_train, classes = _dataset(model, cfg, "train")
    x_val, y_val, _ = _dataset(model, cfg, "val")
    if len(model.classes) != len(classes):
        raise TopoviewerError(f"{out} was trained on {len(model.classes)} categories; the diet has {len(classes)}")

    weight = cfg.resolved_weight()
    unknown = set(cfg.category_frequency) - set(classes)
    if unknown:
        raise TopoviewerError(f"category_frequency names unknown categories {sorted(unknown)}; the diet has {classes}")
    freq = np.array([cfg.category_frequency.get(c, 1.0) for c in classes], dtype=np.float64)
    sample_p = freq[y_train.cpu().numpy()]
    sample_p /= sample_p.sum()
    losses = []
    if cfg.loss != "none":
        losses = [
            (k, spatial_loss(cfg.loss, s, correlation_length=cfg.correlation_length_mm))
            for k, s in enumerate(model.sheets)
        ]
    opt = _optimizer(model.net, cfg)
    if resume:
        try:
            _restore_optimizer(opt, optim_state, training["optimizer"])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise TopoviewerError(f"--resume: {out}: the stored optimizer state does not fit the model "
                                  f"({type(exc).__name__}: {exc})") from None

    def checkpoint(step: int, val_acc: float | None) -> str:
        """Atomic save; the final one is a plain model file (no optimizer state: small, not resumable)."""
        from .stimuli.diet import DIET_VERSION

        model.meta = {
            "training_data": f"{DIET_VERSION}: {len(classes)} categories × {cfg.per_category} images, procedural "
                             "(faces, bodies, places, objects, words, …) plus natural-photo clutter; no photograph of a face",
            "training": {
                "loss": cfg.loss, "weight": weight, "correlation_length_mm": cfg.correlation_length_mm,
                "steps": step, "seed": cfg.seed, "data": f"training_diet(per_category={cfg.per_category})",
                "val_accuracy": val_acc, "config": asdict(cfg),
            },
            "version": __version__,
        }
        if step >= cfg.steps:
            save_model(model, out)
        else:
            tensors, info = _optimizer_tensors(opt)
            save_model(model, out, extra_tensors=tensors, training={
                "step": step, "config": asdict(cfg), "optimizer": info,
            })
        return str(out)

    def snapshot():
        """The model as it is now, detached from the run (the run is suspended at its yield meanwhile)."""
        copy = deepcopy(model)
        copy.net.eval()
        return copy

    gen = torch.Generator(device="cpu")
    t_last, n_last = time.perf_counter(), 0
    for step in range(start_step, cfg.steps):
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        gen.manual_seed(cfg.seed * 7_919 + step)
        idx = torch.as_tensor(rng.choice(len(x_train), size=cfg.batch_size, p=sample_p), device=device)
        xb, yb = _augment(x_train[idx], rng), y_train[idx]
        lr = _learning_rate(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        model.net.train()
        logits, acts = model.net(xb)
        task = F.cross_entropy(logits, yb)
        spatial = torch.zeros((), device=device)
        with torch.set_grad_enabled(weight != 0):  # a control (weight 0) only logs its spatial loss
            for k, loss in losses:
                target = model.units(k, acts[k]) if loss.needs == "responses" else model.net.sheet_weight(k)
                spatial = spatial + loss(target, generator=gen)
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
        n_last += len(xb)
        done = step + 1
        ckpt, val_acc = None, None
        stopping = stop is not None and stop.is_set()
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or stopping:
            model.net.eval()
            val_acc = evaluate(model, x_val, y_val)
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

