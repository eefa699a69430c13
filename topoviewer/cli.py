"""The ``topoviewer`` command: a thin skin over the core library.

User mistakes (bad files, unknown layers, wrong values) end with exit code 2 and one
line on stderr saying what was expected; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import traceback
from pathlib import Path

import numpy as np

from . import defaults
from . import validate
from .errors import TopoviewerError
from .suites import SUITES

MODEL_HELP = "'sample' (the embedded default model), 'sample-v1' (the embedded model with a V1-like sheet) or a path to a model file"


def _load(args):
    from .io import load

    options = {k: getattr(args, k) for k in ("positions", "scale") if getattr(args, k, None) is not None}
    return load(args.model, device=getattr(args, "device", "cpu") or "cpu", **options)


def _stimuli(args, model, default="localizer"):
    from .pipeline import default_stimuli, model_gratings
    from .stimuli import face_identities, face_views, lfw, load_folder, transform

    name, size = args.stimuli or default, max(32, model.input_size)
    if name == "localizer":
        stimuli = default_stimuli(model, seed=args.stimuli_seed)
    elif name == "lfw":
        stimuli = lfw(size=size)
    elif name == "gratings":
        stimuli = model_gratings(model, fov_deg=getattr(args, "fov_deg", None))
    elif name == "face-views":
        stimuli = face_views(size=size, seed=args.stimuli_seed)
    elif name == "face-identities":
        stimuli = face_identities(size=size, seed=args.stimuli_seed)
    else:
        stimuli = load_folder(name, size=size)
    return transform(stimuli, args.transform) if getattr(args, "transform", None) else stimuli


def _threshold_arg(text):
    if text == "calibrated":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'calibrated', got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'calibrated', got {text!r}")
    return value


def _checked(check):
    """An argparse ``type`` from a :mod:`topoviewer.validate` check (its message becomes argparse's)."""

    def parse(text):
        try:
            return check(text)
        except TopoviewerError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    parse.__name__ = getattr(check, "__name__", "value")
    return parse


def _positive(name, high, integer=False):
    return _checked(lambda t: validate.number(t, name, low=0, low_open=True, high=high, integer=integer))


def _count(name, low, high):
    return _checked(lambda t: validate.number(t, name, low=low, high=high, integer=True))


def _finite(name, low=None, high=None):
    return _checked(lambda t: validate.number(t, name, low=low, high=high))


SEED = _checked(validate.seed)
NULL = _count("--null", 0, 100_000)
DEVICE = _checked(validate.device_name)


def _print_json(obj):
    print(json.dumps(obj, indent=2))


def cmd_info(args):
    model = _load(args)
    info = model.describe()
    for key in ("training_data", "validation"):
        if model.meta.get(key):
            info[key] = model.meta[key]
    if args.json:
        _print_json(info)
        return
    print(f"{info['name']}  ({info['arch']}, {info['input']['size']} px, {info['input']['channels']} channel(s))")
    for s in info["sheets"]:
        label = f" ({s['label']})" if s["label"] else ""
        print(f"  {s['name']}{label}: {s['units']} units on {s['extent_mm'][0]:g} × {s['extent_mm'][1]:g} {s['unit']}")
    from .analysis.photos import provenance

    data, validation = provenance(model.meta)
    if data:
        print(f"  trained on: {data}")
    if validation:
        print(f"  {validation}")


def cmd_analyze(args):
    from .io import atomic_write
    from .pipeline import iter_analysis

    if args.suite:
        return _analyze_suite(args)
    model = _load(args)
    names = ["summary.json"] + [f"{_safe(n)}.npz" for n in model.sheet_names]
    if args.save_responses:
        names += [f"responses_{_safe(n)}.npz" for n in model.sheet_names]
    out = validate.output_dir(args.out, names, force=args.force, own=validate.is_own_analysis)
    for sheet in model.sheets:
        validate.voxel_grid(sheet, args.voxel, args.fwhm)
    stimuli = _stimuli(args, model)
    validate.stimulus_categories(stimuli, what="analyze")
    result = _run_with_progress(
        iter_analysis(model, stimuli, fwhm_mm=args.fwhm, voxel_mm=args.voxel, seed=args.seed,
                      threshold=args.threshold, gain=args.gain, null=args.null, null_seed=args.null_seed,
                      patch_criterion=args.patch_criterion),
        quiet=args.json, desc="analyze",
    )
    summary = result.summary()
    for name, maps in result.sheets.items():
        arrays = {f"dprime_{c}": v for c, v in maps.dprime.items()}
        arrays.update({f"voxel_t_{c}": v for c, v in maps.voxel_t.items()})
        if maps.early is not None:
            arrays.update(maps.early.arrays())
        atomic_write(out / f"{_safe(name)}.npz", lambda tmp, a=arrays: _savez(tmp, a))
        if args.save_responses:
            sheet = model.sheet(name)
            payload = {
                "responses": result.responses[name], "labels": result.labels,
                "categories": np.array(result.categories), "positions": sheet.positions,
            }
            atomic_write(out / f"responses_{_safe(name)}.npz", lambda tmp, a=payload: _savez(tmp, a))
    text = json.dumps(summary, indent=2)
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(text))
    if args.json:
        print(text)
    else:
        _print_summary(summary, out)


def _analyze_suite(args):
    from . import suites
    from .io import atomic_write

    model = _load(args)
    name = f"suite_{args.suite}.json"
    out = validate.output_dir(args.out, [name], force=args.force, own=validate.is_own_analysis)
    stimuli = _stimuli(args, model, default=suites.SUITE_STIMULI[args.suite])
    result = suites.run_suite(args.suite, model, stimuli, stimuli_seed=args.stimuli_seed, folds=args.folds,
                              seed=args.seed, n_random=args.random_lesions, control=args.lesion_control,
                              decode_identities=args.decode_identities)
    text = json.dumps(result, indent=2)
    atomic_write(out / name, lambda tmp: Path(tmp).write_text(text))
    if args.json:
        print(text)
        return
    print(f"{result['model']} on {result['stimuli']} ({args.suite} suite)")
    for sheet, s in result["sheets"].items():
        print(f"  {sheet}: " + _suite_line(args.suite, s))
    print(f"wrote {out / name}")


def _fmt(v, spec=".3f"):
    return "—" if v is None else format(v, spec)


def _suite_line(suite, s) -> str:
    if suite == "invariance":
        def line(v):
            pop = v["population"]
            return (f"identity tuning width {_fmt(v['identity_width_mean'], '.2f')}, orientation depth SD "
                    f"{_fmt(v['orientation_depth_sd'])}; population indices: identity {_fmt(pop['identity'])}, "
                    f"view {_fmt(pop['view'])}, mirror {_fmt(pop['mirror'])}")
        patch = s.get("face_patch")
        return line(s) + ("" if patch is None else f"\n    face patch ({patch['units']} units): {line(patch)}")
    if suite == "identity":
        dec = s["decoding"]["original"]
        acc = ", ".join(f"{k} {_fmt(v['accuracy'], '.2f')}" for k, v in dec.items())
        region = s["region_coding"]["feature_mi"]
        return (f"selective {100 * s['selective']:.1f}% (SI {100 * s['single_identity']:.1f}%, "
                f"MI {100 * s['multiple_identity']:.1f}%, of which region-based "
                f"{'—' if region is None else f'{100 * region:.0f}%'}); identity decoding: {acc}")
    cats = ", ".join(f"{c} {v['before']:.2f}→{v['after']:.2f} (random {_fmt(v['random_mean'], '.2f')}, "
                     f"p = {_fmt(v['p'], '.2g')})" for c, v in s["categories"].items())
    line = f"{s['units']} patch units silenced (random {s['control']}): accuracy {cats}"
    if "decoding" in s:
        d = s["decoding"]
        line += (f"\n    identity decoding from {d['read_out']}: {d['before']:.2f}→{d['after']:.2f} (random "
                 f"{_fmt(d['random_mean'], '.2f')}, p = {_fmt(d['p'], '.2g')}, chance {d['chance']:.2f})")
    return line


def cmd_match(args):
    from . import suites

    model = _load(args)
    stimuli = _stimuli(args, model)
    neural = suites.load_neural(args.neural, len(stimuli))
    result = suites.match_suite(model, stimuli, neural, sheets=args.layer, n_permutations=args.permutations,
                                seed=args.seed)
    if args.json:
        _print_json(result)
        return
    print(f"{len(result['neurons'])} neurons matched to {result['model']} on {result['stimuli']}")
    for n in result["neurons"]:
        where = "no unit (constant responses)" if n["unit"] is None else (
            f"{n['sheet']} unit {n['unit']} at ({n['position_mm'][0]:.2f}, {n['position_mm'][1]:.2f}) mm")
        print(f"  neuron {n['neuron']}: {where}, r = {_fmt(n['r'])}, noise ceiling {_fmt(n['noise_ceiling'])}, "
              f"p = {_fmt(n['p'], '.3g')}")


def _savez(tmp, arrays):
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def _print_summary(summary, out):
    print(f"{summary['model']} on {summary['stimuli']}")
    for name, s in summary["sheets"].items():
        pad = " " * len(name)
        if "gratings" in s:
            _print_early(name, pad, s["gratings"])
            continue
        null = s.get("null", {}).get("categories", {})

        def p_of(c, key):
            p = null.get(c, {}).get(key, {}).get("p")
            return "" if p is None else f" (p = {p:.3g})"

        frac = ", ".join(f"{c} {100 * v:.1f}%" for c, v in s["fraction_selective"].items())
        patch = ", ".join(f"{c} {v}{'*' if s['patch'][c] else ''}{p_of(c, 'largest_patch_voxels')}"
                          for c, v in s["largest_patch_voxels"].items())
        print(f"  {name}: selective units (d′ > {s['dprime_threshold']['rule']}): {frac}")
        rule = s["patch_criterion"]["rule"]
        print(f"  {pad}  largest cluster (voxels, t > {defaults.VOXEL_T_THRESHOLD:g}; * = patch, {rule} rule): {patch}")
        if "purity_curve" in s:
            pur = " ".join("—" if p is None else f"{p:.2f}" for p in s["purity_curve"]["purity"][:6])
            extra = ""
            if "purity_1_2mm" in s.get("null", {}):
                n = s["null"]["purity_1_2mm"]
                extra = f"; at 1–2 mm p = {n['p']:.3g} (null 95th percentile {n['null_p95']:.2f})"
            print(f"  {pad}  face purity by distance (1 mm bins): {pur}{extra}")
        if "null" in s:
            print(f"  {pad}  spatial null: {s['null']['n_shuffles']} position shuffles (p-values one-sided)")
    print(f"wrote {out / 'summary.json'} and one .npz of maps per sheet")


def _print_early(name, pad, g):
    o, m = g["orientation"], g["orientation_map"]

    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    print(f"  {name}: {g['responsive_units']} tuned units; mean OSI {num(o['mean_osi'], '.2f')}, neighbour agreement "
          f"{num(o['neighbour_agreement'], '.2f')}, cardinal bias {num(o['cardinal_bias']['bias'], '+.2f')}")
    columns = ("not periodic (no column spacing)" if m["column_spacing_mm"] is None else
               f"column spacing {m['column_spacing_mm']:.3g} mm, {num(m['pinwheel_density'], '.2f')} pinwheels per spacing²")
    print(f"  {pad}  orientation map: {m['pinwheels']} pinwheel{'' if m['pinwheels'] == 1 else 's'}; {columns}")
    colour = g["colour"]
    text = f"mean selectivity {num(colour['mean_selectivity'], '.2f')}" if colour["applicable"] else colour["reason"]
    print(f"  {pad}  colour: {text}")


def cmd_stimulate(args):
    from .pipeline import Stimulator

    model = _load(args)
    stim = Stimulator(model, args.layer, seed=args.seed, outside_rule=args.outside_rule)
    if args.at is not None:
        site = tuple(args.at)
    else:
        site = stim.site(args.site, radius_mm=args.radius_mm)
    result = stim.stimulate(site, radius_mm=args.radius_mm, sigma_mm=args.sigma_mm, decay=args.decay,
                            site=args.site or "at")
    public = result.to_json()
    if args.site == "outside":
        public["outside_rule"] = args.outside_rule
    if args.json:
        _print_json(public)
        return
    clipped = " (clipped by the sheet edge)" if public["clipped"] else ""
    print(
        f"stimulated {public['stimulated_units']} units of {public['layer']} at "
        f"({public['site_mm'][0]:.2f}, {public['site_mm'][1]:.2f}) mm, radius {public['radius_mm']:g} mm{clipped}\n"
        f"{public['next_layer']} face patch ({public['next_patch_units']} units): mean activation "
        f"{public['next_patch_mean']:.4f}, Δ {public['next_patch_delta']:+.4f} from the baseline "
        f"{public['baseline']:.4f} ({public['layer']} silent); whole sheet {public['next_mean']:.4f}"
    )


#: The ``train`` options that set TrainConfig fields (option dest → field); unset options keep the
#: recipe's (or TrainConfig's) value.
TRAIN_OPTIONS = {
    "arch": "arch", "loss": "loss", "weight": "weight", "steps": "steps", "batch_size": "batch_size", "lr": "lr",
    "optimizer": "optimizer", "device": "device", "seed": "seed", "checkpoint_every": "checkpoint_every",
    "correlation_length": "correlation_length_mm", "per_category": "per_category", "data": "data", "init": "init",
    "workers": "workers", "val_per_category": "val_per_category", "warmup": "warmup",
}


def _resume_hint(path) -> str:
    return " (it is a topoviewer model: to continue its run pass --resume)" if validate.is_own_model(path) else ""


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send), handled like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def cmd_train(args):
    import dataclasses
    import os

    from .io import is_sample
    from .training import TrainConfig, resume_changes, resume_config, train

    if args.nproc:
        from .distributed import launch

        return launch(args.nproc, _without_nproc(args.argv))
    main_process = os.environ.get("RANK", "0") == "0"
    for option in ("data", "init"):  # stored in the model file: absolute, so --resume works from anywhere
        value = getattr(args, option)
        if value is not None and not is_sample(value):
            setattr(args, option, str(Path(value).expanduser().resolve()))
    given = {field: getattr(args, dest) for dest, field in TRAIN_OPTIONS.items() if getattr(args, dest) is not None}
    if args.recipe:
        given = {**TrainConfig.from_json(args.recipe).to_json(), **given}
    if args.resume:
        if not Path(args.out).expanduser().exists():
            raise TopoviewerError(f"--resume: no checkpoint at {args.out}; start a run with --out {args.out} first")
        out = validate.input_file(args.out, "training checkpoint (--resume continues --out)")
        cfg = resume_config(out, given)
        from .io import read_header

        world_sizes = (read_header(out)["training"].get("world_size", 1), int(os.environ.get("WORLD_SIZE", "1")))
        changed = resume_changes(resume_config(out), cfg, world_sizes)
        if changed and main_process:
            print(f"topoviewer: resuming {out} with changed settings: {'; '.join(changed)}", file=sys.stderr)
    else:
        out = (validate.output_file(args.out, force=args.force, what="--out", hint=_resume_hint) if main_process
               else validate.expand(args.out))
        cfg = dataclasses.replace(TrainConfig(), **given)
    gen = train(cfg, out, resume=args.resume)
    seen = {"step": None, "checkpoint": None}
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        model = _run_training(gen, quiet=args.quiet or not main_process, seen=seen)
    except KeyboardInterrupt as exc:
        gen.close()
        if main_process:
            print(f"\ntopoviewer: {_interrupt_message(args, out, seen, cfg.checkpoint_every)}", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not main_process:
        return 0
    training = model.meta.get("training", {})
    skipped = training.get("skipped_images")
    if skipped:
        print(f"topoviewer: skipped {skipped['count']} unreadable image(s), e.g. {skipped['first'][0]}", file=sys.stderr)
    acc = training.get("val_accuracy")
    print(f"saved {out}" + (f" (validation accuracy {acc:.3f})" if acc is not None else ""))


def _without_nproc(argv: list) -> list:
    """The command line without its ``--nproc N`` (what every torchrun process runs)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _interrupt_message(args, out, seen, every) -> str:
    """What an interrupted run left behind, truthfully."""
    at = f"interrupted at step {seen['step']}" if seen["step"] is not None else "interrupted before the first step"
    if seen["checkpoint"] is not None:
        return f"{at}: the checkpoint of step {seen['checkpoint']} in {out} is intact; continue with --resume"
    if args.resume:
        return f"{at}: {out} still holds the checkpoint this run resumed from; continue with --resume"
    kept = f"; the existing {out} was not touched" if out.exists() else ""
    return (f"{at}, before the first checkpoint: nothing was saved{kept}. Checkpoints are written every "
            f"{every} steps; lower --checkpoint-every to save sooner")


def _run_training(gen, quiet=False, seen=None):
    from tqdm import tqdm

    seen = {} if seen is None else seen
    bar = None
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            if bar:
                bar.close()
            return stop.value
        seen["step"] = p.step
        if p.checkpoint:
            seen["checkpoint"] = p.step
        if bar is None and not quiet:
            bar = tqdm(total=p.steps, initial=p.step - 1, unit="step", file=sys.stderr, dynamic_ncols=True, disable=None)
        if bar:
            bar.update(1)
            bar.set_postfix(task=f"{p.task_loss:.3f}", spatial=f"{p.spatial_loss:.3f}", acc=f"{p.accuracy:.2f}",
                            img_s=f"{p.images_per_s:.0f}", refresh=False)
            if p.val_accuracy is not None:
                bar.write(f"step {p.step}: checkpoint saved, validation accuracy {p.val_accuracy:.3f}")


def _run_with_progress(gen, quiet=False, desc=""):
    from tqdm import tqdm

    bars = {}
    while True:
        try:
            stage, done, total = next(gen)
        except StopIteration as stop:
            for b in bars.values():
                b.close()
            return stop.value
        if quiet:
            continue
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=f"{desc} {stage}", file=sys.stderr, leave=False, disable=None)
        bars[stage].n = done
        bars[stage].refresh()


def cmd_figure(args):
    from .figures import figure_format, model_figure

    out = validate.output_file(args.out, force=args.force, what="--out")
    if out.suffix.lower() in HTML_SUFFIXES:  # the interactive page: what `share` writes
        return _share(args, out)
    try:
        figure_format(out)
    except TopoviewerError as exc:
        raise TopoviewerError(f"{exc}, or .html for the interactive page") from None
    model = _load(args)
    stimuli = _stimuli(args, model)
    if args.stimuli != "gratings":
        validate.stimulus_categories(stimuli, needed=(args.category,), what="figure --category")
    path = model_figure(model, stimuli, out, category=args.category, dpi=args.dpi, null=args.null)
    print(f"wrote {path}")


#: Suffixes of the interactive page (``share``, and ``figure --out FILE.html``).
HTML_SUFFIXES = (".html", ".htm")


def cmd_share(args):
    from .share import check_suffix

    out = validate.output_file(args.out, force=args.force, what="--out")
    check_suffix(out)
    return _share(args, out)


def _share(args, out):
    from .share import model_share, read_images

    model = _load(args)
    options = {}
    if args.command == "share":
        options["site_step_mm"] = args.site_step
        if args.images is not None:
            options["images"], options["image_names"] = read_images(args.images, max(32, model.input_size))
    stimuli = _stimuli(args, model)
    validate.stimulus_categories(stimuli, needed=(args.category,), what=f"{args.command} --category")
    path, precomputed = model_share(model, stimuli, out, category=args.category, **options)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {precomputed})")


def cmd_calibrate(args):
    from .analysis import calibrate_threshold

    model = _load(args)
    stimuli = _stimuli(args, model)
    validate.stimulus_categories(stimuli, needed=(args.category,), what="calibrate --category")
    layer = model.sheet(args.layer).name if args.layer else model.sheet_names[0]
    resp = model.responses(stimuli.images, [layer])[layer]
    cal = calibrate_threshold(resp, stimuli.labels, stimuli.categories, args.category, gain=args.gain,
                              neural_threshold=args.neural_threshold, seed=args.seed)
    result = {"layer": layer, "category": args.category, "gain": args.gain, "neural_threshold": args.neural_threshold,
              "model_threshold": cal.threshold, "slope": cal.slope, "intercept": cal.intercept}
    if args.json:
        _print_json(result)
    else:
        print(f"{layer}: d′_noisy = {cal.slope:.3f}·d′ + {cal.intercept:.3f}; the neural threshold "
              f"{args.neural_threshold} corresponds to model d′ > {cal.threshold:.3f} (default {defaults.DPRIME_THRESHOLD})")


def cmd_hallmarks(args):
    import dataclasses

    from .io import is_sample
    from .report import MAIN_PROTOCOL, run_hallmarks, summarise
    from .training import TrainConfig

    recipe = TrainConfig.from_json(args.recipe)
    if args.steps:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    if args.early:
        from .report import early_summary, run_early

        name = args.recipe if is_sample(args.recipe) else Path(args.recipe).stem
        s = early_summary(run_early(recipe, seeds=args.seeds, controls=args.controls, out=args.out,
                                    models_dir=args.models, jobs=args.jobs, name=name))
        print(json.dumps({g: {sheet: {k: d[k] for k in ("agreement", "shuffled_agreement", "periodic_runs", "spacing",
                                                        "density")} for sheet, d in v["sheets"].items()}
                          for g, v in s.items()}))
        print(f"wrote the early visual sheet section of {Path(args.out) / 'hallmarks.md'}")
        return 0
    results = run_hallmarks(recipe, seeds=args.seeds, controls=args.controls, out=args.out,
                            models_dir=args.models, jobs=args.jobs)
    s = summarise(results)
    main = {g: {"n": d["n"], "face_patch_runs": d["face_patch_runs"],
                "face_patch_null95_runs": d["face_patch_null95_runs"],
                "stimulation_delta_t": d["stimulation"].get(MAIN_PROTOCOL, {}).get("t"),
                "stimulation_delta_p": d["stimulation"].get(MAIN_PROTOCOL, {}).get("p")} for g, d in s.items()}
    print(json.dumps(main))
    print(f"wrote {Path(args.out) / 'hallmarks.md'}")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's rule for mistakes: one line on stderr, exit code 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"topoviewer: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .stimuli.faces import TRANSFORMS

    p = _Parser(prog="topoviewer", description="Look inside topographic deep neural networks.")
    p.add_argument("--version", action="version", version=f"topoviewer {__version__}")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an unexpected error")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser

    def add(*a, **k):  # every command also takes --debug after its name
        sp = add_parser(*a, **k)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    sub.add_parser = add

    def model_arg(sp):
        sp.add_argument("model", metavar="MODEL", help=MODEL_HELP)
        sp.add_argument("--device", default="cpu", type=DEVICE, help="auto, cpu, cuda or cuda:N (default: cpu)")
        sp.add_argument("--positions", metavar="DIR",
                        help="positions folder (TDANN) or coordinates .npz for a foreign checkpoint "
                             "(default: guessed next to the checkpoint)")
        sp.add_argument("--scale", choices=["training", "paper"],
                        help="TDANN positions in training-time mm or the paper's rescaled mm (default: paper); "
                             "a folder whose version.txt is not 1 is used as stored, as the authors do")

    def stimuli_arg(sp):
        sp.add_argument("--stimuli", default=None,
                        help="'localizer' (procedural; the default), 'lfw' (LFW-subset photographs: faces / "
                             "non-faces), 'gratings' (sine gratings: orientation, SF, colour maps and pinwheels), "
                             "'face-views' (25 identities × 9 head orientations), 'face-identities' "
                             "(50 identities × 10 images) or DIR/<category>/*.png")
        sp.add_argument("--stimuli-seed", type=SEED, default=1234, help="seed of the procedural stimuli")
        sp.add_argument("--transform", choices=TRANSFORMS,
                        help="transform every stimulus image: two-tone Mooney, upside down, cartoon (flat "
                             "shading, dark outlines) or blurred")

    sp = sub.add_parser("info", help="list a model's sheets")
    model_arg(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("analyze", help="selectivity, fMRI, patches, purity and cluster strength per sheet")
    model_arg(sp)
    stimuli_arg(sp)
    sp.add_argument("--out", default="topoviewer-analysis", help="output folder (default: %(default)s)")
    sp.add_argument("--force", action="store_true", help="replace files in --out that are not an earlier analysis")
    sp.add_argument("--save-responses", action="store_true", help="also write responses_<sheet>.npz")
    sp.add_argument("--fwhm", type=_positive("--fwhm", 1000.0), default=defaults.FWHM_MM,
                    help="fMRI smoothing FWHM in mm")
    sp.add_argument("--voxel", type=_positive("--voxel", 1000.0), default=defaults.VOXEL_MM,
                    help="fMRI voxel size in mm")
    sp.add_argument("--seed", type=SEED, default=0, help="seed of the split halves (cluster strength)")
    sp.add_argument("--threshold", default=str(defaults.DPRIME_THRESHOLD), type=_threshold_arg,
                    help="d′ threshold of a selective unit: a number or 'calibrated' (Poisson noise calibration "
                         "of the neural 0.65, per sheet and category; default: %(default)s)")
    sp.add_argument("--gain", type=_positive("--gain", 1e6), default=1.0,
                    help="Poisson counts per unit of response for --threshold calibrated (default: %(default)s)")
    sp.add_argument("--null", type=NULL, default=0, metavar="N",
                    help="spatial null: shuffle unit positions N times and give p-values (default: none)")
    sp.add_argument("--null-seed", type=SEED, default=0, help="seed of the position shuffles")
    sp.add_argument("--patch-criterion", choices=["paper", "null95"], default="paper",
                    help="paper: ≥ 10 voxels at t > 10; null95: also larger than the null's 95th percentile "
                         "(runs 100 shuffles unless --null is given)")
    sp.add_argument("--fov-deg", type=_positive("--fov-deg", 360.0), default=None,
                    help="width of the model's input in degrees of visual angle: --stimuli gratings then also "
                         "reports spatial frequencies in cycles/degree")
    sp.add_argument("--suite", choices=list(SUITES),
                    help="instead of the patch analysis: viewpoint invariance (face-views), identity-selective "
                         "units and decoding (face-identities) or face-patch lesions (localizer); prints its "
                         "results and writes them to OUT/suite_<name>.json")
    sp.add_argument("--folds", type=_count("--folds", 2, 100), default=5, help="cross-validation folds (identity)")
    sp.add_argument("--random-lesions", type=_count("--random-lesions", 0, 10_000), default=10,
                    help="size-matched random lesions (lesion suite)")
    sp.add_argument("--lesion-control", choices=["region", "units"], default="region",
                    help="random lesions: contiguous regions of the patch's size, or random units (lesion suite)")
    sp.add_argument("--decode-identities", type=_count("--decode-identities", 0, 1000), default=0, metavar="N",
                    help="lesion suite: also decode N face-identities (10 images each) from the last sheet with "
                         "each patch silenced, against 3 random lesions (0: off)")
    sp.add_argument("--json", action="store_true", help="print summary.json (or the suite's results)")
    sp.set_defaults(func=cmd_analyze)

    sp = sub.add_parser("match", help="match recorded neurons to their best model units")
    model_arg(sp)
    stimuli_arg(sp)
    sp.add_argument("--neural", required=True, metavar="FILE",
                    help=".npz or .csv of (stimuli × neurons[ × repetitions]) responses, rows in the stimuli's "
                         "sorted file-name order")
    sp.add_argument("--permutations", type=_count("--permutations", 0, 100_000), default=1000,
                    help="stimulus shuffles of the permutation p-value")
    sp.add_argument("--layer", nargs="+", metavar="SHEET", help="sheets whose units are candidates (default: all)")
    sp.add_argument("--seed", type=SEED, default=0, help="seed of the shuffles")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_match)

    sp = sub.add_parser("stimulate", help="microstimulate a disc and propagate to the next sheet")
    model_arg(sp)
    sp.add_argument("--layer", help="stimulated sheet (default: the first)")
    where = sp.add_mutually_exclusive_group(required=True)
    where.add_argument("--at", nargs=2, type=_finite("--at"), metavar=("X", "Y"), help="site in mm")
    where.add_argument("--site", choices=["inside", "outside"], help="the face-patch centre or a random outside site")
    sp.add_argument("--radius-mm", type=_positive("--radius-mm", 1000.0), default=defaults.STIM_RADIUS_MM)
    sp.add_argument("--sigma-mm", type=_positive("--sigma-mm", 1000.0), default=defaults.STIM_SIGMA_MM,
                    help="σ of the Gaussian decay")
    sp.add_argument("--decay", choices=["peak1", "normal_density"], default=defaults.STIM_DECAY,
                    help="decay scale: exp(−d²/2σ²) (peak 1) or the normal density (peak 0.399/σ)")
    sp.add_argument("--outside-rule", choices=["paper", "strict"], default=defaults.STIM_OUTSIDE_RULE,
                    help="paper: the site's centre outside every patch; strict: the whole disc clear of patches")
    sp.add_argument("--seed", type=SEED, default=0)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_stimulate)

    sp = sub.add_parser("train", help="train a topographic model on the procedural diet or an image folder")
    from .families import TRAINABLE
    from .training import DEFAULT_WEIGHT, TrainConfig

    base = TrainConfig()

    def opt(flag, *aliases, help, **kw):  # every default is TrainConfig's (or the recipe's)
        field = TRAIN_OPTIONS[flag.lstrip("-").replace("-", "_")]
        sp.add_argument(flag, *aliases, default=None, help=f"{help} (default: {getattr(base, field)})", **kw)

    opt("--arch", help=" or ".join((", ".join(TRAINABLE[:-1]), TRAINABLE[-1])))
    opt("--loss", choices=list(DEFAULT_WEIGHT), help="spatial loss")
    opt("--weight", "--alpha", type=_finite("--weight", 0.0, 1e6),
        help="spatial loss weight: α per sheet, τ for TopoLoss; None = 0.25 / τ 10")
    opt("--steps", type=_count("--steps", 1, 10**9), help="training steps; with --resume: the interrupted run's own")
    opt("--batch-size", type=_count("--batch-size", 1, 65536), help="images per step")
    opt("--lr", type=_positive("--lr", 100.0), help="peak learning rate")
    opt("--warmup", type=_finite("--warmup", 0.0, 1.0),
        help="fraction of the steps over which the learning rate rises linearly to --lr (then a cosine decay)")
    opt("--optimizer", choices=["adam", "sgd"], help="optimizer")
    opt("--device", type=DEVICE, help="auto (CUDA when present), cpu, cuda or cuda:N")
    opt("--seed", type=SEED, help="seed of weights, batches and augmentation")
    opt("--checkpoint-every", type=_count("--checkpoint-every", 1, 10**9), help="steps between checkpoints")
    opt("--correlation-length", type=_positive("--correlation-length", 1000.0), help="λ of the target 1/(d/λ + 1), mm")
    opt("--per-category", type=_count("--per-category", 1, 100_000), help="diet: training images per category")
    opt("--val-per-category", type=_count("--val-per-category", 0, 100_000),
        help="validation images per category (image data: held out, at most 1/5 of a class)")
    opt("--data", help="train on image files: a folder DIR/<class>/<image> or a text list of PATH[<TAB>CLASS] "
        "lines, instead of the procedural diet")
    opt("--init", help="start from this model's weights and sheets (any model topoviewer opens, or 'sample'/'sample-v1'); "
        "its head is rebuilt for the data's classes")
    opt("--workers", type=_count("--workers", 0, 256), help="loader processes decoding --data images")
    sp.add_argument("--nproc", type=_count("--nproc", 1, 1024), default=None,
                    help="train data-parallel in N processes on this machine (torchrun; gloo on CPU, NCCL on GPUs)")
    sp.add_argument("--recipe", help="a recipe JSON of training settings, or 'sample' / 'sample-v1' (the embedded "
                    "models' recipes); "
                    "options given on the command line override it")
    sp.add_argument("--resume", action="store_true",
                    help="continue the run in --out (interrupted, or finished: give a larger --steps); "
                    "options given change its settings, and what changed is printed")
    sp.add_argument("--quiet", action="store_true")
    sp.add_argument("--out", required=True, help="model file to write (.safetensors)")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("calibrate", help="Poisson-noise calibration of the model d′ threshold (Lee 2020)")
    model_arg(sp)
    stimuli_arg(sp)
    sp.add_argument("--layer", help="sheet (default: the first)")
    sp.add_argument("--category", default="faces")
    sp.add_argument("--gain", type=_positive("--gain", 1e6), default=1.0, help="Poisson counts per unit of response")
    sp.add_argument("--neural-threshold", type=_finite("--neural-threshold", -100.0, 100.0),
                    default=defaults.NEURAL_DPRIME_THRESHOLD)
    sp.add_argument("--seed", type=SEED, default=0)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_calibrate)

    sp = sub.add_parser("hallmarks", help="train seeds and controls with a recipe and write the hallmark report")
    sp.add_argument("--recipe", default="sample", help="a recipe JSON, or 'sample' (the default model's; default) "
                    "or 'sample-v1'")
    sp.add_argument("--seeds", type=_count("--seeds", 0, 1000), default=5, help="topographic seeds")
    sp.add_argument("--controls", type=_count("--controls", 0, 1000), default=3,
                    help="non-topographic controls (spatial weight 0)")
    sp.add_argument("--steps", type=_count("--steps", 1, 10**9), default=None, help="override the recipe's steps")
    sp.add_argument("--jobs", type=_count("--jobs", 1, 256), default=2,
                    help="models trained in parallel (one thread each)")
    sp.add_argument("--models", default=None, help="folder for the trained models (reused if present)")
    sp.add_argument("--early", action="store_true",
                    help="measure the orientation maps of an early sheet on gratings (e.g. --recipe sample-v1) and "
                    "write only the report's early visual sheet section")
    sp.add_argument("--out", default="docs")
    sp.set_defaults(func=cmd_hallmarks)

    sp = sub.add_parser("figure", help="publication figure of every sheet's maps")
    model_arg(sp)
    stimuli_arg(sp)
    sp.add_argument("--out", required=True,
                    help="FILE.png, .svg or .pdf; or FILE.html: the interactive page of `share` (its defaults)")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")
    sp.add_argument("--category", default="faces")
    sp.add_argument("--dpi", type=_count("--dpi", 10, 2400), default=200)
    sp.add_argument("--null", type=NULL, default=0, metavar="N",
                    help="draw the spatial null's 5–95 %% purity band from N position shuffles")
    sp.set_defaults(func=cmd_figure)

    sp = sub.add_parser("share", help="one self-contained HTML page of every sheet (hover, switch, click to stimulate)")
    model_arg(sp)
    stimuli_arg(sp)
    sp.add_argument("--out", default="topoviewer.html", help="FILE.html to write (default: %(default)s)")
    sp.add_argument("--force", action="store_true", help="replace an existing --out file")
    sp.add_argument("--category", default="faces", help="the category shown first (default: %(default)s)")
    sp.add_argument("--images", metavar="DIR", help="a folder of pictures whose activation maps the page offers")
    sp.add_argument("--site-step", type=_positive("--site-step", 1000.0), default=0.5, metavar="MM",
                    help="spacing of the precomputed stimulation sites (grows if the page would pass ~20 MB; "
                         "default: %(default)s)")
    sp.set_defaults(func=cmd_share)
    return p


def main(argv=None) -> int:
    """Run one command. Exit codes: 0 success, 2 a user mistake (one line saying what was expected),
    1 any other failure (one line; ``--debug`` prints the traceback), 130/143 interrupted (SIGINT/SIGTERM)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except TopoviewerError as exc:
        print(f"topoviewer: error: {_one_line(exc)}", file=sys.stderr)
        if getattr(args, "debug", False):
            traceback.print_exc()
        return 2
    except KeyboardInterrupt:
        print("topoviewer: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("topoviewer: error: out of memory; try a smaller model, fewer stimuli or coarser --voxel",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if getattr(args, "debug", False):
            traceback.print_exc()
        hint = "" if getattr(args, "debug", False) else " (run with --debug for the traceback)"
        print(f"topoviewer: error: unexpected {type(exc).__name__}: {_one_line(exc)}{hint}", file=sys.stderr)
        return 1


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())
