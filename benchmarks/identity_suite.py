"""The identity suite before and after its decoding was made fast, side by side in one run.

``reference`` is the former ``analysis.identity.decode``: per fold, scikit-learn's
``StandardScaler`` + ``LinearSVC`` on every unit, the folds one after the other (its solver seed
was numpy's global random state; here it is the decoding seed, as now). ``current`` is
:func:`topoviewer.analysis.identity.decode` (the dual problem in the training images' span,
folds in threads) inside :func:`topoviewer.suites.identity_suite` (equal unit subsets decoded
once). Both run the whole suite on the same images; the script prints both times, the load
and the largest accuracy difference over every sheet, set and unit subset.

    .venv/bin/python benchmarks/identity_suite.py                 # default model, 20 identities × 10 images
    .venv/bin/python benchmarks/identity_suite.py --identities 10 --transforms mooney,invert
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def reference_decode(responses, labels, units=None, folds=5, seed=0, C=1.0, workers=None):
    """The former decoding (see the module docstring)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from topoviewer.analysis.identity import SVM_MAX_ITER, Decoding, _labels

    r = np.asarray(responses, np.float64)
    names, y = _labels(labels, len(r), "label")
    x = r if units is None else r[:, np.asarray(units)]
    if x.shape[1] == 0:
        return Decoding(None, np.zeros(0), 1.0 / len(names), 0)
    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        clf = make_pipeline(StandardScaler(), LinearSVC(C=C, max_iter=SVM_MAX_ITER, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x[train], y[train])
        scores.append(float((clf.predict(x[test]) == y[test]).mean()))
    scores = np.array(scores)
    return Decoding(float(scores.mean()), scores, 1.0 / len(names), int(x.shape[1]))


def accuracies(result) -> dict:
    return {(sheet, k, sub): v["accuracy"] for sheet, s in result["sheets"].items()
            for k, d in s["decoding"].items() for sub, v in d.items()}


def main():
    import torch

    from topoviewer.analysis import identity
    from topoviewer.io import load
    from topoviewer.stimuli.faces import face_identities
    from topoviewer.suites import identity_suite

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sample")
    p.add_argument("--identities", type=int, default=20)
    p.add_argument("--per-identity", type=int, default=10)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--transforms", default="", help="comma-separated transforms (default: none)")
    p.add_argument("--skip-reference", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = load(args.model)
    stimuli = face_identities(size=max(32, model.input_size), identities=args.identities,
                              per_identity=args.per_identity, seed=1234)
    transforms = tuple(t for t in args.transforms.split(",") if t)
    print(f"{model.name}: {args.identities} identities × {args.per_identity} images, {args.folds} folds, "
          f"transforms {transforms or 'none'}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    runs = {}
    for label in ("current",) + (() if args.skip_reference else ("reference",)):
        current = identity.decode
        if label == "reference":
            identity.decode = reference_decode
        try:
            t = time.perf_counter()
            runs[label] = identity_suite(model, stimuli, transforms=transforms, folds=args.folds)
            print(f"{label}: {time.perf_counter() - t:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            identity.decode = current
    if "reference" in runs:
        a, b = accuracies(runs["current"]), accuracies(runs["reference"])
        diff = [abs(a[k] - b[k]) for k in a if a[k] is not None]
        print(f"{len(diff)} accuracies, {sum(d > 0 for d in diff)} differ, largest difference {max(diff):.3g}; "
              f"None in the same places: {all((a[k] is None) == (b[k] is None) for k in a)}")


if __name__ == "__main__":
    main()
