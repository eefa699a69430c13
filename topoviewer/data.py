"""Training data from image files: a folder (one sub-folder per class) or a file list, a held-out
validation split, and a streaming loader whose batches depend only on ``(seed, step)``.

Batches are drawn by :class:`StepBatches`: the global batch of step ``s`` is the positions
``[s·B, (s+1)·B)`` of an endless sequence of epochs, each a permutation of the training images
seeded by ``(seed, epoch)``; each image's crop and flip are seeded by ``(seed, step, position)``.
So a run resumed at any step — with any number of loader workers or processes — sees exactly the
images an uninterrupted run would. With ``world`` processes, process ``rank`` takes the contiguous
slice ``rank·B/world …`` of the global batch (the global batch does not depend on the world size).

Images are decoded by :func:`topoviewer.stimuli.load_image` (any format and mode it reads, with its
decompression-bomb guard) and reach the network through :func:`topoviewer.images.square_input`, the
one image → input path: training images as a random square crop of 8–100 % of the area by default
(never squashed), flipped with probability 1/2 and resized to the input size; validation images
resized and centre-cropped exactly as :meth:`topoviewer.model.TopoModel.preprocess` does. An
unreadable image is skipped — replaced by the next image of the list — and reported; it never
stops a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TopoviewerError
from .images import square_input
from .stimuli.files import _image_files, _listdir, load_image  # imported before loader processes fork

__all__ = ["ImageList", "read_image_list", "split_validation", "StepBatches", "ImageDataset", "loader",
           "MAX_SKIPPED_IN_A_ROW"]

#: An item gives up (and the run stops with an error) after this many unreadable images in a row.
MAX_SKIPPED_IN_A_ROW = 10


@dataclass(eq=False)
class ImageList:
    """Image files with class labels.

    Attributes
    ----------
    files : list of str
    labels : ndarray
        (n,) int64 indices into ``classes``.
    classes : list of str
    source : str
        The folder or list file they came from.
    """

    files: list
    labels: np.ndarray
    classes: list
    source: str

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> str:
        return f"{self.source}: {len(self)} images in {len(self.classes)} classes"


def read_image_list(source) -> ImageList:
    """Read a training image set: a folder ``DIR/<class>/<image>`` or a text file list.

    A folder has one sub-folder per class (sorted by name; hidden entries skipped), each with
    image files (suffixes of :data:`topoviewer.stimuli.files.IMAGE_SUFFIXES`); a class without
    images is an error. A list file has one image per line, ``PATH`` or ``PATH<TAB>CLASS``
    (relative paths are relative to the list's folder; without a class, the image's folder name
    is its class); blank lines and lines starting with ``#`` are skipped. At least two classes.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        folders = sorted(p for p in _listdir(path) if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise TopoviewerError(f"--data {path}: expected one sub-folder per class (DIR/<class>/<image>), found none")
        files, labels = [], []
        for k, folder in enumerate(folders):
            try:
                found = _image_files(folder)
            except TopoviewerError as exc:
                raise TopoviewerError(f"--data: class {folder.name!r} is empty: {exc}") from None
            files += [str(f) for f in found]
            labels += [k] * len(found)
        classes = [f.name for f in folders]
    elif path.is_file():
        files, names = _read_list_file(path)
        classes = sorted(set(names))
        index = {c: k for k, c in enumerate(classes)}
        labels = [index[c] for c in names]
    else:
        raise TopoviewerError(f"--data {path}: expected a folder of class sub-folders or a text file list, "
                              "but it is missing")
    if len(classes) < 2:
        raise TopoviewerError(f"--data {path}: expected at least 2 classes to classify, found {len(classes)}")
    return ImageList(files, np.asarray(labels, np.int64), classes, str(path.resolve()))


def _read_list_file(path: Path) -> tuple[list, list]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TopoviewerError(f"--data {path}: not a readable UTF-8 text file list ({exc})") from None
    files, names = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, label = line.rstrip("\r\n").partition("\t")
        file = (path.parent / name.strip()).resolve() if not Path(name.strip()).is_absolute() else Path(name.strip())
        label = label.strip() or file.parent.name
        if not label:
            raise TopoviewerError(f"--data {path}, line {n}: no class (expected PATH<TAB>CLASS)")
        files.append(str(file))
        names.append(label)
    if not files:
        raise TopoviewerError(f"--data {path}: the list names no images (expected PATH or PATH<TAB>CLASS lines)")
    return files, names


def split_validation(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out split, stratified: ``min(per_class, n_c // 5)`` random images of each class
    (seeded by ``seed``) are validation images, the rest training images; both sorted."""
    rng = np.random.default_rng([seed, 0x5EED])
    train, val = [], []
    for c in range(int(labels.max()) + 1):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(int(per_class), len(idx) // 5)
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


class StepBatches:
    """A batch sampler: for each step in ``[start, stop)``, this process's share of the global batch
    as ``(index, (seed, step, position))`` items (see the module docstring)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise TopoviewerError(f"--batch-size {batch_size} must be divisible by the number of processes ({world})")
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.rank, self.world = rank, world
        self._perms: dict = {}

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.batch(step)

    def batch(self, step: int) -> list:
        local = self.batch_size // self.world
        first = step * self.batch_size + self.rank * local
        positions = np.arange(first, first + local)
        return [(int(self._perm(p // self.n)[p % self.n]), (self.seed, step, int(p))) for p in positions]

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, int(epoch)]).permutation(self.n)
        return self._perms[epoch]


class ImageDataset:
    """Image files → ``(input (C, S, S) in [0, 1], label, skipped)`` for a loader.

    An item is ``(index, seed)``: with a seed, a random square crop of ``crop_scale`` of the area
    and a random flip, resized to ``size``; with ``seed=None``, the evaluation view (shorter side
    to ``shorter``, centre crop). ``skipped`` lists ``"file: reason"`` of unreadable images the
    item passed over (it takes the next image of the list instead).
    """

    def __init__(self, images: ImageList, index: np.ndarray, size: int, channels: int, shorter: float = 0.0,
                 crop_scale=(0.08, 1.0)):
        self.files = [images.files[i] for i in index]
        self.labels = images.labels[index]
        self.size, self.channels, self.shorter = int(size), int(channels), float(shorter)
        self.crop_scale = tuple(float(s) for s in crop_scale)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item):
        index, seed = item
        rng = None if seed is None else np.random.default_rng(list(seed))
        skipped = []
        for k in range(MAX_SKIPPED_IN_A_ROW):
            i = (index + k) % len(self.files)
            try:
                image = load_image(self.files[i], crop=None if rng is None else lambda w, h: self._box(w, h, rng),
                                   keep_uint8=rng is not None)
            except TopoviewerError as exc:
                skipped.append(str(exc))
                continue
            if rng is None:  # the evaluation view
                return square_input(image, self.size, self.channels, self.shorter), int(self.labels[i]), skipped
            if rng.random() < 0.5:
                image = image[:, ::-1]
            return square_input(image, self.size, self.channels), int(self.labels[i]), skipped
        return None, -1, skipped

    def _box(self, w: int, h: int, rng) -> tuple:
        """A random square of ``crop_scale`` of the area (the whole shorter side at most)."""
        side = min(h, w, max(1, round(math.sqrt(h * w * rng.uniform(*self.crop_scale)))))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        return left, top, left + side, top + side


def collate(items):
    """Stack a batch: ``(x, y, skipped)``, or ``(None, reason, skipped)`` when an item found no
    readable image (the training loop stops with that reason)."""
    import torch

    skipped = [s for item in items for s in item[2]]
    if any(item[0] is None for item in items):
        return None, (f"{MAX_SKIPPED_IN_A_ROW} images in a row could not be read ({skipped[-1]}); "
                      "check the --data images"), skipped
    from torch.utils.data import default_collate  # stacks into shared memory in a loader process

    return default_collate([item[0] for item in items]), torch.tensor([item[1] for item in items]), skipped


def loader(dataset: ImageDataset, batches, workers: int, pin_memory: bool = False):
    """A torch ``DataLoader`` over ``batches`` (lists of items), decoding in ``workers`` processes."""
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_sampler=batches, num_workers=int(workers), collate_fn=collate,
                      pin_memory=pin_memory, prefetch_factor=4 if workers else None)
