"""The `dapt` command line: tune, evaluate, predict, inspect prompt files and scan image folders.

A user error (bad folder, missing weights, wrong prompt file) prints one line and exits with
status 2; `--debug` shows the traceback instead. Long work shows tqdm progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from . import __version__
from .errors import DaptError, DataError

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130
# Real CLIP weights are the first choice; where they cannot be had, `tune` falls back to `demo`.
DEFAULT_BACKBONE = os.environ.get("DAPT_BACKBONE", "ViT-B-16:openai")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return args.handler(args) or 0
    except DaptError as error:
        if args.debug:
            raise
        print(f"dapt: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("dapt: cancelled by the user.", file=sys.stderr)
        return EXIT_CANCELLED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dapt", description="Distribution-Aware Prompt Tuning of CLIP.")
    parser.add_argument("--version", action="version", version=f"dapt {__version__}")
    parser.set_defaults(debug=False, handler=None)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    tune = commands.add_parser("tune", parents=[common], help="tune prompts on a folder of labelled images")
    tune.add_argument("data_dir", help="one folder per class, or train/ and test/ each holding one per class")
    tune.add_argument("--backbone", default=DEFAULT_BACKBONE,
                      help="demo | NAME:TAG | NAME:/path/to/weights | local-dir:/path (default: %(default)s, "
                           "falling back to demo where its weights cannot be had)")
    tune.add_argument("--method", default="dapt", choices=["dapt", "coop", "vpt", "zeroshot"])
    tune.add_argument("--shots", type=int, default=16, help="training images per class (default: %(default)s)")
    tune.add_argument("--epochs", type=int, help="default: the recipe's count for the shots")
    tune.add_argument("--lr", type=_lr_value,
                      help="learning rate, or how to choose it from the training images: 'quick' (3 short runs, "
                           "about 0.45 of a run; the default of the inspection preset) or 'auto' (5 rates x 2-fold "
                           "cross-validation, about 2.5 runs) (default of the recipe preset: the recipe's 0.002)")
    tune.add_argument("--lr-grid", type=float, nargs="+", help="candidates for --lr auto")
    tune.add_argument("--beta-v", type=float, help="weight of intra-dispersion (dapt)")
    tune.add_argument("--beta-t", type=float, help="weight of inter-dispersion (dapt)")
    tune.add_argument("--n-ctx", type=int, help="text context vectors (default 16)")
    tune.add_argument("--n-vis", type=int, help="visual prompt tokens (default 16)")
    tune.add_argument("--deep", action="store_true", help="deep visual prompt (fresh tokens at every layer)")
    tune.add_argument("--preset", choices=["inspection", "recipe"], default="inspection",
                      help="training augmentation: inspection (crops keep at least half of the photo) or the "
                           "paper's recipe (crops down to 8%%) (default: %(default)s)")
    tune.add_argument("--rotations", action="store_true",
                      help="orientation does not matter: training views may be turned by 90 degrees (inspection preset)")
    tune.add_argument("--templates", choices=["auto", "openai", "simple", "photo"], help="zero-shot template set")
    tune.add_argument("--seed", type=int, default=1)
    tune.add_argument("--device", default=None, help="cuda | cuda:N | mps | cpu (default: best available)")
    tune.add_argument("--out", required=True, help="prompt file to write (.safetensors)")
    tune.add_argument("--json", dest="json_out", help="write the metrics as JSON here ('-' for stdout)")
    tune.set_defaults(handler=cmd_tune)

    evaluate = commands.add_parser("eval", parents=[common], help="score a prompt file on a folder of images")
    evaluate.add_argument("prompt_file")
    evaluate.add_argument("data_dir", help="one folder per class (or test/ with one folder per class)")
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--json", dest="json_out", help="write the metrics as JSON here ('-' for stdout)")
    evaluate.set_defaults(handler=cmd_eval)

    predict = commands.add_parser("predict", parents=[common], help="classify images with a prompt file")
    predict.add_argument("prompt_file")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--device", default=None)
    predict.add_argument("--json", action="store_true", help="print JSON instead of lines")
    predict.set_defaults(handler=cmd_predict)

    info = commands.add_parser("info", parents=[common], help="show what a prompt file holds")
    info.add_argument("prompt_file")
    info.add_argument("--json", action="store_true", help="print the whole header as JSON")
    info.set_defaults(handler=cmd_info)

    scan = commands.add_parser("scan", parents=[common], help="list usable and skipped images of a folder")
    scan.add_argument("data_dir")
    scan.add_argument("--json", action="store_true")
    scan.set_defaults(handler=cmd_scan)

    demo = commands.add_parser("demo-data", parents=[common], help="write the demo inspection task")
    demo.add_argument("out_dir")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(handler=cmd_demo_data)

    from .bench import register as register_bench
    register_bench(commands, common)
    return parser


# ------------------------------------------------------------------------------- commands
def cmd_tune(args) -> int:
    from .backbone import load_backbone, load_backbone_or_demo
    from .experiment import run_experiment
    from .folders import load_split
    from .methods import TuningConfig

    choose_lr = args.lr if isinstance(args.lr, str) else None
    if args.lr is None and args.preset == "inspection" and args.method != "zeroshot":
        choose_lr = "quick"
    settings = {key: value for key, value in {
        "method": args.method, "epochs": args.epochs, "lr": None if choose_lr else args.lr, "beta_v": args.beta_v,
        "beta_t": args.beta_t, "n_ctx": args.n_ctx, "n_vis": args.n_vis, "templates": args.templates,
        "seed": args.seed, "preset": args.preset, "rotations": args.rotations}.items() if value is not None}
    if args.deep:
        settings["deep_visual"] = True
    config = TuningConfig(**settings)
    try:
        split = load_split(args.data_dir, shots=args.shots, seed=args.seed, progress=_scan_bar())
    except DataError as error:
        if not Path(args.data_dir).is_dir():
            raise
        raise DataError(f"{error}. 'dapt scan {args.data_dir}' lists every file and why it was skipped.") from None
    _report_split(split)
    if args.backbone == DEFAULT_BACKBONE:
        backbone, notice = load_backbone_or_demo(args.backbone, args.device)
        if notice:
            print(f"note: {notice}", file=sys.stderr)
    else:
        backbone = load_backbone(args.backbone, args.device)
    selection = None
    if choose_lr and config.trains:
        from dataclasses import replace

        from .selection import choose_learning_rate
        with _ProgressBar() as bar:
            selection = choose_learning_rate(choose_lr, backbone, split.classnames, split.train, config,
                                             grid=tuple(args.lr_grid) if args.lr_grid else None, shots=args.shots,
                                             on_progress=bar.update)
        for score in selection.scores:
            print(f"lr {score['lr']:.3g}: {_pct(score['accuracy'])} accuracy on held-out training images",
                  file=sys.stderr)
        print(f"chosen lr: {selection.lr:.3g} ({choose_lr}, {selection.seconds:.0f} s)", file=sys.stderr)
        config = replace(config, lr=selection.lr)
    with _ProgressBar() as bar:
        result = run_experiment(backbone, split, config, shots=args.shots, on_progress=bar.update)
    extra = {"lr_selection": selection.to_dict()} if selection else None
    out = result.save_prompt_file(args.out, extra)
    metrics = result.metrics()
    if extra:
        metrics.update(extra)
    if args.json_out:
        write_json(metrics, args.json_out)
    if args.json_out != "-":
        _print_summary(metrics)
        print(f"prompt file: {out}")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import evaluate_before_after
    from .experiment import _json_safe
    from .folders import load_split, scan_folder
    from .inference import Classifier
    from .zeroshot import zero_shot_text_features

    classifier = Classifier.load(args.prompt_file, device=args.device)
    scan = scan_folder(args.data_dir, progress=_scan_bar())
    part = scan.parts.get("test") or scan.parts.get("all") or {}
    items, unknown = _items_for(part, classifier.classnames)
    if unknown:
        raise DataError(
            f"{args.data_dir} has class folder(s) {', '.join(repr(u) for u in unknown)} that the prompt file does "
            f"not know; it was tuned on {', '.join(repr(c) for c in classifier.classnames)}. Rename or remove them.")
    if not items:
        raise DataError(f"{args.data_dir} holds no usable images in folders named after the prompt file's classes "
                        f"({', '.join(classifier.classnames)}).")
    model = classifier.model
    templates = classifier.file.header["config"].get("templates", "auto")
    zero_shot = zero_shot_text_features(model.backbone, classifier.classnames, templates)
    bar = tqdm(desc="evaluating", unit="batch", file=sys.stderr, leave=False)
    before, after = evaluate_before_after(model, zero_shot, items, on_batch=lambda *_: bar.update())
    bar.close()
    metrics = _json_safe({
        "prompt_file": str(args.prompt_file), "backbone": model.backbone.spec, "n_test": len(after.labels),
        "accuracy": after.accuracy, "zero_shot_accuracy": before.accuracy,
        "per_class": after.per_class, "zero_shot_per_class": before.per_class,
        "confusion": {"before": before.confusion.tolist(), "after": after.confusion.tolist()},
        "dispersion": {"before": before.dispersion, "after": after.dispersion},
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped + after.skipped],
    })
    if args.json_out:
        write_json(metrics, args.json_out)
    if args.json_out != "-":
        _print_summary(metrics)
    del load_split
    return 0


def cmd_predict(args) -> int:
    from .errors import ImageRejected
    from .images import load_image
    from .inference import Classifier

    classifier = Classifier.load(args.prompt_file, device=args.device)
    loaded, names, failures = [], [], []
    for path in args.images:
        try:
            loaded.append(load_image(path))
            names.append(path)
        except ImageRejected as error:
            failures.append({"path": path, "reason": str(error)})
    predictions = classifier.predict(loaded) if loaded else []
    rows = [{"path": name, "label": p.label, "score": p.score, "probabilities": p.probabilities}
            for name, p in zip(names, predictions)]
    if args.json:
        print(json.dumps({"predictions": rows, "skipped": failures}, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            print(f"{row['path']}\t{row['label']}\t{row['score']:.3f}")
        for failure in failures:
            print(f"skipped {failure['path']}: {failure['reason']}", file=sys.stderr)
    if not rows:
        raise DataError("None of the given images could be read; see the reasons above.")
    return 0


def cmd_info(args) -> int:
    from . import prompt_file

    file = prompt_file.load(args.prompt_file)
    header = file.header
    if args.json:
        print(json.dumps(header, indent=2, ensure_ascii=False))
        return 0
    metrics = header.get("metrics", {})
    config = header["config"]
    print(f"prompt file   {args.prompt_file} (format {header['format_version']}, dapt {header.get('dapt_core_version')})")
    print(f"created       {header.get('created')}")
    print(f"backbone      {header['backbone']['spec']} ({header['backbone'].get('weights')})")
    print(f"method        {header['method']}  seed {header.get('seed')}  epochs {header.get('epochs')}  "
          f"lr {config.get('lr')}  beta_v {config.get('beta_v')}  beta_t {config.get('beta_t')}")
    print(f"augmentation  {header.get('augmentation', 'recipe (written before augmentation presets)')}")
    print(f"classes       {', '.join(header['classnames'])}")
    print(f"tensors       " + ", ".join(f"{n} {tuple(t.shape)}" for n, t in sorted(file.tensors.items())))
    print(f"training set  {len(header.get('training_images', []))} images")
    if metrics:
        print(f"accuracy      {_pct(metrics.get('zero_shot_accuracy'))} zero-shot -> {_pct(metrics.get('accuracy'))} "
              f"tuned on {metrics.get('n_test')} test images")
    return 0


def cmd_scan(args) -> int:
    from .folders import scan_folder

    scan = scan_folder(args.data_dir, progress=_scan_bar())
    if args.json:
        print(json.dumps({
            "layout": scan.layout,
            "parts": {part: {name: [str(p) for p in paths] for name, paths in classes.items()}
                      for part, classes in scan.parts.items()},
            "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
        }, indent=2, ensure_ascii=False))
        return 0
    for part, classes in scan.parts.items():
        print(f"{part}:")
        for name, paths in classes.items():
            print(f"  {name}: {len(paths)} usable")
    if scan.skipped:
        print(f"skipped {len(scan.skipped)}:")
        for s in scan.skipped:
            print(f"  {s.path}: {s.reason}")
    return 0


def cmd_demo_data(args) -> int:
    from .demo_task import write_demo_task

    summary = write_demo_task(args.out_dir, seed=args.seed)
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


# -------------------------------------------------------------------------------- helpers
def _lr_value(text: str):
    if text in ("auto", "quick"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'quick' or 'auto', got {text!r}") from None


def write_json(data: dict, path: str | None) -> None:
    """Write `data` as JSON to `path`, or to stdout for '-'."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if path in (None, "-"):
        print(text)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def _items_for(part: dict, classnames: list[str]):
    from .data import LabeledImage
    from .folders import class_prompt_name

    index = {name: i for i, name in enumerate(classnames)}
    items, unknown = [], []
    for folder, paths in part.items():
        name = class_prompt_name(folder)
        if name not in index:
            unknown.append(folder)
            continue
        items.extend(LabeledImage(Path(p), index[name]) for p in paths)
    return items, unknown


class _ProgressBar:
    """tqdm over the steps of training, then of evaluation."""

    def __init__(self):
        self.bar = None
        self.phase = None

    def __enter__(self):
        return self

    def update(self, progress) -> None:
        if progress.phase != self.phase:
            if self.bar is not None:
                self.bar.close()
            self.phase = progress.phase
            self.bar = tqdm(total=progress.total_steps, desc=progress.phase, unit="step", file=sys.stderr,
                            dynamic_ncols=True)
        if progress.phase == "train":
            self.bar.set_postfix(epoch=f"{progress.epoch}/{progress.epochs}", loss=f"{progress.loss:.3f}",
                                 acc=f"{progress.train_accuracy:.2f}", refresh=False)
        self.bar.update(progress.step - self.bar.n)  # tqdm rate-limits the redraws itself

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _scan_bar():
    bar = {"tqdm": None}

    def progress(done: int, total: int) -> None:
        if bar["tqdm"] is None:
            bar["tqdm"] = tqdm(total=total, desc="checking images", unit="img", file=sys.stderr, leave=False)
        bar["tqdm"].update(done - bar["tqdm"].n)
        if done >= total:
            bar["tqdm"].close()

    return progress


def _report_split(split) -> None:
    counts = {name: 0 for name in split.classnames}
    for item in split.train:
        counts[split.classnames[item.label]] += 1
    print(f"{len(split.classnames)} classes, {len(split.train)} training and {len(split.test)} test images",
          file=sys.stderr)
    for note in split.notes:
        print(f"note: {note}", file=sys.stderr)
    if split.skipped:
        print(f"skipped {len(split.skipped)} file(s):", file=sys.stderr)
        for s in split.skipped:
            print(f"  {s.path}: {s.reason}", file=sys.stderr)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _print_summary(metrics: dict) -> None:
    before, after = metrics["dispersion"]["before"], metrics["dispersion"]["after"]
    print(f"accuracy: zero-shot {_pct(metrics['zero_shot_accuracy'])} -> tuned {_pct(metrics['accuracy'])} "
          f"on {metrics.get('n_test')} test images")
    for name, value in metrics["per_class"].items():
        print(f"  {name}: {_pct(value)} (zero-shot {_pct(metrics['zero_shot_per_class'].get(name))})")
    print(f"intra-dispersion (lower = tighter classes): {before['intra']:.4f} -> {after['intra']:.4f}")
    print(f"inter-dispersion (higher = classes further apart): {before['inter']:.4f} -> {after['inter']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
