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
from .deploy.pass_fail import DEFAULT_ESCAPE_RATE, check_escape_rate, guess_good_class
from .engine.backbone_specs import LOCAL_DIR_PREFIX
from .engine.methods import (
    AUGMENTATION_PRESETS,
    DEFAULT_PRESET,
    DEFAULT_SHOTS,
    LR_CHOICES,
    LR_SCALED,
    METHODS_RECOMMENDED_FIRST,
    TEMPLATE_SET_NAMES,
    TuningConfig,
)
from .errors import ConfigError, DaptError, DataError
from .studio.storage import DEFAULT_ROOT, WORKSPACE_ENV

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
                      help=f"demo | NAME:TAG | NAME:/path/to/weights | {LOCAL_DIR_PREFIX}/path (default: %(default)s, "
                           "falling back to demo where its weights cannot be had)")
    tune.add_argument("--method", default=TuningConfig.method, choices=METHODS_RECOMMENDED_FIRST)
    tune.add_argument("--shots", type=int, default=DEFAULT_SHOTS,
                      help="training images per class (default: %(default)s)")
    tune.add_argument("--epochs", type=int, help="default: the recipe's count for the shots")
    tune.add_argument("--lr", type=_lr_value,
                      help="learning rate, or how to choose it: 'scaled' (the recipe's 0.002 for this backbone's "
                           "logit scale; the default of the inspection preset), 'quick' (3 short trial runs on the "
                           "training images, about 0.45 of a run more) or 'auto' (5 rates x 2-fold "
                           "cross-validation, about 2.5 runs) (default of the recipe preset: the recipe's 0.002)")
    tune.add_argument("--lr-grid", type=float, nargs="+", help="candidates for --lr auto")
    tune.add_argument("--beta-v", type=float, help="weight of intra-dispersion (dapt)")
    tune.add_argument("--beta-t", type=float, help="weight of inter-dispersion (dapt)")
    tune.add_argument("--n-ctx", type=int, help=f"text context vectors (default {TuningConfig.n_ctx})")
    tune.add_argument("--n-vis", type=int, help=f"visual prompt tokens (default {TuningConfig.n_vis})")
    tune.add_argument("--deep", action="store_true", help="deep visual prompt (fresh tokens at every layer)")
    tune.add_argument("--preset", choices=AUGMENTATION_PRESETS, default=DEFAULT_PRESET,
                      help="training augmentation: inspection (crops keep at least half of the photo) or the "
                           "paper's recipe (crops down to 8%%) (default: %(default)s)")
    tune.add_argument("--rotations", action="store_true",
                      help="orientation does not matter: training views may be turned by 90 degrees "
                           "(inspection preset)")
    tune.add_argument("--estimate", action="store_true",
                      help="only say how long the run would take on this machine (a few real steps are timed, "
                           "then counted; kept per backbone and device in the cache folder) and stop")
    tune.add_argument("--budget", type=float, metavar="MINUTES",
                      help="end the whole run within this many minutes on this machine: as many of the recipe's "
                           "epochs as fit, with the learning-rate schedule laid over them, and a deadline that "
                           "stops training in time for the evaluation")
    tune.add_argument("--tiles", default="off",
                      help="also look at each photo in square tiles at (or near) its own resolution, so small "
                           "defects on large photos are not shrunk away: off (default), auto (tiles of twice "
                           "the model's input on photos larger than that), a grid ROWSxCOLS, or a tile side in "
                           "pixels; a photo's class comes from its tiles by the rule in the README")
    tune.add_argument("--tile-overlap", type=float, default=TuningConfig.tile_overlap,
                      help="the share of a tile that neighbouring tiles share (default: %(default)s)")
    tune.add_argument("--templates", choices=TEMPLATE_SET_NAMES,
                      help="zero-shot templates (the 'before' classifier): photo = the single 'a photo of a {}.', "
                           "openai = CLIP's 80, simple = 7 of them, auto = the backbone's own or else openai "
                           "(default); computed once per backbone and class list, then read from the cache folder "
                           "($DAPT_CACHE_DIR, default ~/.cache/dapt)")
    tune.add_argument("--seed", type=int, default=TuningConfig.seed)
    tune.add_argument("--good-class", metavar="NAME",
                      help="the class that means a good part, or 'none' for a task without pass/fail (default: "
                           "guessed from the names: no defect, OK, good, 良品, ...); escapes and overkill are "
                           "counted against it and a pass threshold is placed")
    tune.add_argument("--escape-rate", type=float, default=DEFAULT_ESCAPE_RATE,
                      help="the share of defective parts the line may let through; the pass threshold is placed "
                           "on the held-out photos for it (default: %(default)s)")
    tune.add_argument("--device", default=None, help="cuda | cuda:N | mps | cpu (default: best available)")
    tune.add_argument("--no-check", action="store_true",
                      help="skip the check before training of how well the frozen model tells the classes apart "
                           "(see 'dapt check')")
    tune.add_argument("--out", help="prompt file to write (.safetensors); needed unless --estimate")
    tune.add_argument("--from", dest="start_from", metavar="PROMPT_FILE",
                      help="continue from a prompt file tuned on the same backbone and method, with classes or "
                           "photos added: its prompts are the start, and a quarter of the recipe's epochs follow "
                           "(no warm-up); the new file records the one it started from (name and sha256)")
    tune.add_argument("--json", dest="json_out", help="write the metrics as JSON here ('-' for stdout)")
    tune.set_defaults(handler=cmd_tune)

    evaluate = commands.add_parser("eval", parents=[common], help="score a prompt file on a folder of images")
    evaluate.add_argument("prompt_file")
    evaluate.add_argument("data_dir", help="one folder per class (or test/ with one folder per class)")
    evaluate.add_argument("--device", default=None)
    evaluate.add_argument("--json", dest="json_out", help="write the metrics as JSON here ('-' for stdout)")
    evaluate.set_defaults(handler=cmd_eval)

    predict = commands.add_parser(
        "predict", parents=[common], help="classify photos or folders of photos with a prompt file or its .onnx export",
        description="Classify photos with a prompt file (or the .onnx file exported from it, run with ONNX Runtime "
                    "alone). Folders are walked recursively. Each photo gets a class, a calibrated probability, "
                    "an unknown flag (unlike the training photos) and, with --coverage, a prediction set.")
    predict.add_argument("prompt_file", help="a prompt file (.safetensors) or an exported .onnx file")
    predict.add_argument("images", nargs="+", help="photos and/or folders of photos")
    predict.add_argument("--csv", dest="csv_out", help="write one row per photo here")
    predict.add_argument("--coverage", type=float,
                         help="also give the set of classes that holds the true class with this probability, e.g. 0.95")
    predict.add_argument("--reject-rate", type=float,
                         help="flag as unknown at most this share of photos like the held-out ones "
                              "(default: the file's, 0.05 unless tuned otherwise)")
    predict.add_argument("--unknown-threshold", type=float, help="flag photos whose novelty is above this instead")
    predict.add_argument("--escape-rate", type=float,
                         help="place the pass threshold for this share of defective parts let through instead of "
                              "the file's (files whose task has a good class)")
    predict.add_argument("--heatmaps", metavar="OUT_DIR",
                         help="write one PNG per photo here: the photo with where the defect evidence lies drawn "
                              "over it and a box around the hot region (files tuned with --tiles only)")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--device", default=None)
    predict.add_argument("--json", action="store_true", help="print JSON instead of lines")
    predict.set_defaults(handler=cmd_predict)

    drift = commands.add_parser(
        "drift", parents=[common], help="are new photos still like the photos the prompt file was calibrated on?",
        description="Cut new photos (in name or file-time order) into windows and compare each with the held-out "
                    "photos the prompt file was calibrated on: the share flagged unknown against its calibrated "
                    "rate, and the photos' features against the file's reference sample (MMD, permutation test). "
                    "A window is flagged at 1%% false alarms; 'drift' overall at 1%% for the whole folder.")
    drift.add_argument("prompt_file", help="a prompt file (.safetensors), or the .onnx file exported from one (with "
                                           "its .json beside it; ONNX Runtime encodes the photos, no torch model)")
    drift.add_argument("photos", help="a folder of photos (walked recursively), or a CSV from `dapt predict --csv` "
                                      "(the unknown share only)")
    drift.add_argument("--window", type=int, default=50, help="photos per window (default 50)")
    drift.add_argument("--order", choices=("name", "time"), default="name",
                       help="order of the photos: by name (default) or by file time")
    drift.add_argument("--chart", metavar="OUT", help="write the windows chart here (.html or .png)")
    drift.add_argument("--batch-size", type=int, default=32)
    drift.add_argument("--device", default=None)
    drift.add_argument("--json", action="store_true", help="print the report as JSON")
    drift.set_defaults(handler=cmd_drift)

    info = commands.add_parser("info", parents=[common], help="show what a prompt file holds")
    info.add_argument("prompt_file")
    info.add_argument("--json", action="store_true", help="print the whole header as JSON")
    info.add_argument("--bench", action="store_true",
                      help="also measure ms per photo (batch 1 and 32) and peak memory, torch and ONNX, "
                           "on this machine")
    info.add_argument("--device", default=None, help="device for the torch measurement (default: best available)")
    info.add_argument("--threads", type=int, help="CPU threads for the measurement (default: the libraries' own)")
    info.add_argument("--photo-size", metavar="WIDTHxHEIGHT",
                      help="for a file tuned with tiles: the photos' size, which sets how many tiles each photo "
                           "has (default 1024x1024)")
    info.set_defaults(handler=cmd_info)

    export = commands.add_parser("export", parents=[common], help="export a prompt file for a line PC")
    export_formats = export.add_subparsers(title="formats", metavar="FORMAT")
    onnx = export_formats.add_parser(
        "onnx", parents=[common], help="one ONNX graph plus a JSON sidecar, to run without Python or torch",
        description="Write OUT.onnx (image tensor in; logits, calibrated probabilities, features and the novelty "
                    "score out; prompts and class embeddings baked in) and OUT.json (preprocessing, class names, "
                    "unknown threshold). Needs the onnx extra: pip install 'dapt-studio[onnx]'.")
    onnx.add_argument("prompt_file")
    onnx.add_argument("out", help="the .onnx file to write; the .json goes beside it")
    onnx.set_defaults(handler=cmd_export_onnx)

    scan = commands.add_parser("scan", parents=[common], help="list usable and skipped images of a folder")
    scan.add_argument("data_dir")
    scan.add_argument("--json", action="store_true")
    scan.set_defaults(handler=cmd_scan)

    check = commands.add_parser(
        "check", parents=[common], help="before tuning: can this backbone tell the classes apart at all?",
        description="Classify each training photo by the nearest class mean of the others (leave-one-out) on the "
                    "backbone's frozen image features, and say how that compares with chance, which classes it "
                    "mixes up, how well good and defective parts are told apart, and what to try. Takes seconds; "
                    "the features are cached ($DAPT_CACHE_DIR, default ~/.cache/dapt), so a second check is "
                    "instant.")
    check.add_argument("data_dir", help="one folder per class, or train/ and test/ each holding one per class")
    check.add_argument("--backbone", default=DEFAULT_BACKBONE,
                       help="as for tune (default: %(default)s, falling back to demo where its weights cannot be had)")
    check.add_argument("--shots", type=int, default=DEFAULT_SHOTS,
                       help="training images per class, drawn as tune draws them (default: %(default)s)")
    check.add_argument("--seed", type=int, default=TuningConfig.seed)
    check.add_argument("--good-class", metavar="NAME|none",
                       help="the class that means a good part, for the good-vs-defective numbers; 'none' for a task "
                            "without one (default: guessed from names such as good, OK, no defect, 良品)")
    check.add_argument("--device", default=None)
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=cmd_check)

    review = commands.add_parser(
        "review", parents=[common], help="look for labels that look wrong, duplicates, leaks and outliers",
        description="Read every labelled photo's frozen image features and report photos whose label looks wrong "
                    "(their nearest photos and the class means point to another class), exact and near "
                    "duplicates (within a class, across classes, and between train/ and test/: a leak), and "
                    "outliers. Nothing is changed. The features are cached as for `dapt check`.")
    review.add_argument("data_dir", help="one folder per class, or train/ and test/ each holding one per class")
    review.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help="as for tune (default: %(default)s, falling back to demo where its weights cannot be "
                             "had)")
    review.add_argument("--device", default=None)
    review.add_argument("--json", action="store_true", help="print the findings as JSON")
    review.set_defaults(handler=cmd_review)

    next_ = commands.add_parser(
        "next", parents=[common], help="rank unlabelled photos by what labelling them would teach",
        description="Read the frozen image features of a folder of unlabelled photos and list the ones worth "
                    "labelling first. Without a prompt file: typical photos of groups nobody has labelled yet, "
                    "largest group first (with few labels, typical and diverse photos teach most). With --from: "
                    "the photos the tuned model calls unknown or hesitates over, one per group. Nothing is "
                    "changed. The features are cached as for `dapt check`.")
    next_.add_argument("unlabelled_dir", help="a folder of unlabelled photos (searched recursively)")
    next_.add_argument("--labelled", metavar="DIR",
                       help="the photos labelled already (one folder per class, or train/ and test/): their groups "
                            "count as covered, and the same files are left out")
    next_.add_argument("--from", dest="prompt_file", metavar="PROMPT_FILE",
                       help="a tuned prompt file: rank by the model's doubt (unknown, then smallest margin)")
    next_.add_argument("--by", choices=("auto", "typical", "uncertain"), default="auto",
                       help="the ranking (default: uncertain with --from, else typical)")
    next_.add_argument("--count", type=int, default=20, help="how many photos to list (default: %(default)s)")
    next_.add_argument("--seed", type=int, default=0, help="the seed of the clustering (default: %(default)s)")
    next_.add_argument("--backbone", default=DEFAULT_BACKBONE,
                       help="as for tune, without --from (default: %(default)s, falling back to demo where its "
                            "weights cannot be had); with --from, the prompt file's")
    next_.add_argument("--device", default=None)
    next_.add_argument("--json", action="store_true", help="print the ranking as JSON")
    next_.set_defaults(handler=cmd_next)

    from .demo.demo_task import DEFAULT_TASK, TASKS

    demo = commands.add_parser("demo-data", parents=[common], help="write the demo inspection task")
    demo.add_argument("out_dir")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--task", default=DEFAULT_TASK, choices=sorted(TASKS),
                      help="which task: the demo task (%(default)s), the second task with another held-out "
                           "material (ceramic), a hard task the demo model barely sees (textile, textile-faint), "
                           "or 1024-px photos with small defects and their boxes, for tiles and heatmaps (highres)")
    demo.set_defaults(handler=cmd_demo_data)

    from .bench.commands import register as register_bench
    register_bench(commands, common)

    from .app_launcher import register as register_app  # `dapt app`: serve the Streamlit app
    register_app(commands, common)

    users = commands.add_parser(
        "users", parents=[common], help="accounts that may open the app (needed to serve it on a network)",
        description="Local accounts for the app, kept as argon2id hashes in the workspace's users.json. Once one "
                    "exists, everyone signs in; serving the app on a network address needs one.")
    users.add_argument("action", choices=("add", "remove", "list"))
    users.add_argument("name", nargs="?", help="the account's name (add, remove)")
    users.add_argument("--workspace", metavar="DIR",
                       help=f"the app's workspace folder (default: ${WORKSPACE_ENV}, else ./workspace)")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input (one line) instead of asking for it")
    users.add_argument("--replace", action="store_true", help="add: give an existing account a new password")
    users.add_argument("--keep-memberships", action="store_true",
                       help="add: the name is already a member of projects (an account removed earlier, or a user "
                            "of the identity provider): the new account takes over those roles")
    users.set_defaults(handler=cmd_users)

    projects = commands.add_parser(
        "projects", parents=[common], help="who may see and change each project of the app (owners and members)",
        description="Members of the app's projects and their roles: owner (everything), editor (photos, classes, "
                    "tuning) and viewer (look and download). Projects made before sign-in was turned on have no "
                    "owner, and nobody signed in sees them until one is granted here.")
    projects.add_argument("action", choices=("list", "grant", "revoke"))
    projects.add_argument("project", nargs="?", help="the project's id or name (grant, revoke)")
    projects.add_argument("user", nargs="?", help="the name the person signs in with (grant, revoke)")
    projects.add_argument("role", nargs="?", choices=("owner", "editor", "viewer"), help="grant: the role")
    projects.add_argument("--workspace", metavar="DIR",
                          help=f"the app's workspace folder (default: ${WORKSPACE_ENV}, else ./workspace)")
    projects.set_defaults(handler=cmd_projects)
    return parser


# ------------------------------------------------------------------------------- commands
def cmd_tune(args) -> int:
    from .data.folders import load_split
    from .engine.budget import plan_budget
    from .engine.estimate import estimate_run
    from .engine.tuning_run import tune_and_evaluate

    if not args.out and not args.estimate:
        raise ConfigError("Say where to write the prompt file: --out FILE.safetensors (or --estimate to only see "
                          "how long the run would take).")
    choose_lr = args.lr if isinstance(args.lr, str) else None
    if args.lr is None and args.preset == "inspection" and args.method != "zeroshot":
        choose_lr = LR_SCALED
    settings = {key: value for key, value in {
        "method": args.method, "epochs": args.epochs, "lr": None if choose_lr else args.lr, "beta_v": args.beta_v,
        "beta_t": args.beta_t, "n_ctx": args.n_ctx, "n_vis": args.n_vis, "templates": args.templates,
        "seed": args.seed, "preset": args.preset, "rotations": args.rotations, "tiles": args.tiles,
        "tile_overlap": args.tile_overlap}.items() if value is not None}
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
    good_class = _good_class(args.good_class, split.classnames)
    check_escape_rate(args.escape_rate)
    backbone = _load_backbone_for(args.backbone, args.device)
    good = split.classnames.index(good_class) if good_class else None
    start = None
    if args.start_from:  # checked and laid on the warm schedule before the estimate (engine/warm_start.py)
        from .engine.warm_start import prepare
        warm = prepare(args.start_from, backbone, config, split.classnames, split.train, args.shots, choose_lr)
        start, config, choose_lr = warm.start, warm.config, warm.lr_choice
        added = ", ".join(warm.record["new_classes"]) or "none"
        print(f"warm start from {start.name} (new classes: {added}; {config.epochs} epochs, no warm-up)",
              file=sys.stderr)
    estimate = estimate_run(backbone, split, config, shots=args.shots, lr_choice=choose_lr, good=good)
    print(f"time estimate on this machine ({backbone.device}): {estimate.describe()}", file=sys.stderr)
    if args.budget is not None and config.trains:
        plan = plan_budget(estimate, args.budget, warmup_epochs=config.warmup_epochs)
        print(f"budget: {plan.describe()}", file=sys.stderr)
    if args.estimate:
        if args.json_out:
            write_json({"time_estimate": estimate.to_dict()}, args.json_out)
        return 0
    if not args.no_check:  # before minutes of training: can the frozen model see the difference at all?
        _check_before_tuning(backbone, split, good_class)

    def show_selection(selection) -> None:
        for score in selection.scores:
            print(f"lr {score['lr']:.3g}: {_pct(score['accuracy'])} accuracy on held-out training images",
                  file=sys.stderr)
        print(f"chosen lr: {selection.lr:.3g} ({choose_lr}, {selection.seconds:.0f} s)", file=sys.stderr)

    with _ProgressBar() as bar:
        run = tune_and_evaluate(backbone, split, config, shots=args.shots, lr_choice=choose_lr,
                                lr_grid=tuple(args.lr_grid) if args.lr_grid else None, good_class=good_class,
                                escape_rate=args.escape_rate, budget_minutes=args.budget, estimate=estimate,
                                on_progress=bar.update, on_selection=show_selection, init_from=start)
    out = run.result.save_prompt_file(args.out, run.prompt_extra())
    metrics = run.metrics()
    if args.json_out:
        write_json(metrics, args.json_out)
    if args.json_out != "-":
        _print_summary(metrics)
        _print_health(metrics)
        _print_calibration(metrics.get("calibration"))
        print(f"prompt file: {out}")
    return 0


def cmd_eval(args) -> int:
    from .data.folders import scan_folder
    from .engine.evaluation import comparison_metrics, evaluation_batches
    from .engine.inference import Classifier
    from .engine.zeroshot import describe_templates

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
    bar = tqdm(total=evaluation_batches(classifier.model, len(items)), desc="evaluating", unit="batch",
               file=sys.stderr, leave=False)
    before, after = classifier.evaluate(items, on_batch=lambda *_: bar.update())
    bar.close()
    novelty = None if classifier.novelty is None else classifier.novelty.score(after.features.float()).numpy()
    metrics = {
        "prompt_file": str(args.prompt_file), "backbone": classifier.model.backbone.spec,
        **comparison_metrics(before, after, classifier.good_class),
        "operating_point": classifier.count_at_operating_point(after, novelty),
        "zero_shot_templates": describe_templates(classifier.model.backbone, classifier.templates),
        "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped + after.skipped],
        "calibration": None if classifier.calibration is None else classifier.calibration.count_on(
            after.logits.numpy(), after.labels.numpy(), novelty),
    }
    if args.json_out:
        write_json(metrics, args.json_out)
    if args.json_out != "-":
        _print_summary(metrics)
        _print_counted_operating_point(metrics["operating_point"], classifier)
        _print_counted_calibration(metrics["calibration"], classifier.calibration)
    return 0


def cmd_predict(args) -> int:
    from .deploy.batch_predict import expand_inputs, predict_paths, write_csv, write_heatmaps
    from .deploy.conformal import check_coverage
    from .deploy.heatmaps import NO_TILES_NO_HEATMAPS
    from .deploy.prediction import Decision

    if args.coverage is not None:
        check_coverage(args.coverage)
    if args.batch_size < 1:
        raise DataError("--batch-size must be at least 1.")
    engine = load_engine(args.prompt_file, args.device)
    decision = Decision(engine.classnames, engine.calibration, args.coverage, args.unknown_threshold,
                        args.reject_rate, args.escape_rate)
    decision.pass_cut()  # a bad --escape-rate too
    decision.threshold()  # a bad --reject-rate is a usage error before any photo is read
    paths, missing = expand_inputs(args.images)
    if not paths:
        raise DataError(f"No image files found in {', '.join(args.images)} (images end in .jpg, .png, .bmp, .tif, "
                        f".webp or .gif).")
    bar = tqdm(total=len(paths), desc="predicting", unit="photo", file=sys.stderr, leave=False)
    if args.heatmaps and not engine.tiling.on:
        raise ConfigError(NO_TILES_NO_HEATMAPS)
    result = predict_paths(lambda images: engine.predict(images, decision, heatmaps=bool(args.heatmaps)), paths,
                           batch_size=args.batch_size, on_progress=lambda done, total: bar.update(done - bar.n))
    bar.close()
    if args.heatmaps:
        written = write_heatmaps(result.rows, args.heatmaps)
        print(f"wrote {written} heatmap(s) to {args.heatmaps}", file=sys.stderr)
    result.skipped[:0] = missing
    if args.csv_out:
        write_csv(result, args.csv_out)
    if args.json:
        print(json.dumps({"predictions": [{"path": path, **p.to_dict()} for path, p in result.rows],
                          "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
                          "photos_per_second": result.photos_per_second, "notes": decision.describe()},
                         indent=2, ensure_ascii=False))
    elif not args.csv_out:
        for path, p in result.rows:
            verdict = "" if p.verdict is None else f"{p.verdict.upper()}\t"
            flag = "\tUNKNOWN" if p.unknown else ""
            members = "" if p.prediction_set is None else "\t{" + ", ".join(p.prediction_set) + "}"
            print(f"{path}\t{verdict}{p.label}\t{p.score:.3f}{flag}{members}")
    for line in decision.describe():
        print(f"note: {line}", file=sys.stderr)
    for skipped in result.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    unknown = sum(1 for _, p in result.rows if p.unknown)
    failed = sum(1 for _, p in result.rows if p.verdict == "fail")
    verdicts = "" if decision.operating_point is None else f"{failed} failed, "
    print(f"{len(result.rows)} photo(s) classified, {verdicts}{unknown} unknown, {len(result.skipped)} skipped; "
          f"{result.photos_per_second:.1f} photos/s" + (f"; wrote {args.csv_out}" if args.csv_out else ""),
          file=sys.stderr)
    return 0


def cmd_drift(args) -> int:
    from .deploy import drift
    from .deploy.batch_predict import image_files

    if Path(args.prompt_file).suffix.lower() == ".onnx":  # the line PC's own runtime: no torch imported
        from .deploy.onnx_runner import OnnxClassifier

        file, classifier_for = OnnxClassifier(args.prompt_file), None  # it encodes the photos itself
    else:
        from .engine import prompt_file
        from .engine.inference import Classifier

        file = prompt_file.load(args.prompt_file)

        def classifier_for(loaded):
            return Classifier.from_prompt_file(loaded, device=args.device)
    if Path(args.photos).suffix.lower() == ".csv":
        photos = args.photos
    else:
        photos = image_files(args.photos)
        if not photos:
            raise DataError(f"No image files found in {args.photos}.")
    bar = tqdm(total=None if isinstance(photos, str) else len(photos), desc="encoding", unit="photo",
               file=sys.stderr, leave=False, disable=isinstance(photos, str))
    try:
        report, skipped = drift.check(
            file, photos, order=args.order, window=args.window, batch_size=args.batch_size,
            classifier_for=classifier_for,
            on_progress=lambda done, total: bar.update(done - bar.n))
    finally:
        bar.close()
    if args.chart:
        drift.write_chart(report, args.chart)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for w in report.windows:
            share = "" if w.unknown_share is None else f"\tunknown {w.unknown}/{w.photos} ({w.unknown_share:.0%})"
            features_p = "" if w.p_features is None else f"\tfeatures p={w.p_features:.4f}"
            flag = "FLAGGED" if w.flagged else "ok"
            print(f"window {w.index}\t{w.first} .. {w.last}\t{flag}{share}{features_p}\t{w.verdict}")
        print(report.verdict)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for item in skipped:
        print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
    if args.chart:
        print(f"wrote {args.chart}", file=sys.stderr)
    return 0


def load_engine(path: str, device: str | None = None):
    """The torch Classifier for a prompt file, or the ONNX Runtime runner for an .onnx export."""
    if Path(path).suffix.lower() == ".onnx":
        from .deploy.onnx_runner import OnnxClassifier

        return OnnxClassifier(path)
    from .engine.inference import Classifier

    return Classifier.load(path, device=device)


def cmd_info(args) -> int:
    from .engine import prompt_file

    file = prompt_file.load(args.prompt_file)
    header = file.header
    if args.json and not args.bench:
        print(json.dumps(header, indent=2, ensure_ascii=False))
        return 0
    if args.bench:
        return _bench(args)
    metrics = header.get("metrics", {})
    config = header["config"]
    print(f"prompt file   {args.prompt_file} (format {header['format_version']}.{header.get('format_minor', 0)}, "
          f"dapt {header.get('dapt_core_version')})")
    print(f"created       {header.get('created')}")
    print(f"backbone      {header['backbone']['spec']} ({header['backbone'].get('weights')})")
    print(f"method        {header['method']}  seed {header.get('seed')}  epochs {header.get('epochs')}  "
          f"lr {config.get('lr')}  beta_v {config.get('beta_v')}  beta_t {config.get('beta_t')}")
    print(f"augmentation  {header.get('augmentation', 'recipe (written before augmentation presets)')}")
    print(f"classes       {', '.join(header['classnames'])}")
    print("tensors       " + ", ".join(f"{n} {tuple(t.shape)}" for n, t in sorted(file.tensors.items())))
    print(f"training set  {len(header.get('training_images', []))} images")
    tuned = (metrics.get("pass_fail") or {}).get("after")
    if tuned:  # pass or fail first
        print(f"escapes       {_count(tuned['escapes'])} defective parts called '{metrics['good_class']}' (tuned)")
        print(f"overkill      {_count(tuned['overkill'])} '{metrics['good_class']}' parts called defective (tuned)")
    if metrics:
        chance = "" if metrics.get("chance") is None else f" (chance {_pct(metrics['chance'])})"
        print(f"accuracy      {_pct(metrics.get('zero_shot_accuracy'))} zero-shot -> {_pct(metrics.get('accuracy'))} "
              f"tuned on {metrics.get('n_test')} test images{chance}")
    _print_calibration(header.get("calibration"))
    return 0


def _print_calibration(calibration: dict | None) -> None:
    if not calibration:
        print("calibration   none (no unknown flag or prediction sets; tune again to add them)")
        return
    _print_operating_point(calibration.get("pass_fail"))
    measured = calibration.get("measured", {})
    threshold = calibration.get("unknown_threshold")
    print(f"calibration   on {calibration['held_out_photos']} held-out photos; temperature "
          f"{calibration['temperature']:.3f}; unknown when novelty > "
          f"{'never' if threshold is None else f'{threshold:.4f}'} (reject rate {calibration['reject_rate']:.0%}, "
          f"measured {_pct(measured.get('false_reject_rate'))})")
    for coverage, row in measured.get("coverage", {}).items():
        print(f"  sets at {float(coverage):.0%}: measured coverage {_pct(row['coverage'])}, "
              f"average size {row['mean_set_size']:.2f}")


def _print_counted_operating_point(counted: dict | None, classifier) -> None:
    """`dapt eval`: the file's pass threshold (with its unknown flags) on these photos."""
    if counted is None:
        return
    point = classifier.calibration.operating_point
    print(f"at the file's operating point (pass when P({point.good_class}) > {point.cut():.4f}, placed "
          f"for at most {point.escape_rate:.1%} escapes, unknown photos fail):")
    print(f"  escapes {_count(counted['escapes'])}; overkill {_count(counted['overkill'])}")


def _print_counted_calibration(counted: dict | None, calibration) -> None:
    """`dapt eval`: what the file's unknown threshold and prediction sets give on these photos."""
    if counted is None:
        print("calibration   none in this file (no unknown flag or prediction sets)")
        return
    print(f"unknown       {_pct(counted['false_reject_rate'])} of these {counted['photos']} photos flagged "
          f"(the file's threshold is set for {calibration.reject_rate:.0%}); temperature {calibration.temperature:.3f}")
    for coverage, row in counted["coverage"].items():
        print(f"  sets at {float(coverage):.0%}: coverage {_pct(row['coverage'])} on these photos, "
              f"average size {row['mean_set_size']:.2f}")


def _bench(args) -> int:
    from .deploy.latency import format_table, measure

    photo_size = None
    if args.photo_size:
        parts = args.photo_size.lower().split("x")
        if len(parts) != 2 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
            raise ConfigError(f"--photo-size {args.photo_size!r} is not WIDTHxHEIGHT in pixels, such as 2048x1536.")
        photo_size = (int(parts[0]), int(parts[1]))
    rows = measure(args.prompt_file, device=args.device, threads=args.threads, photo_size=photo_size,
                   on_progress=lambda engine: print(f"measuring {engine} ...", file=sys.stderr))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        print("ms per photo: model time on decoded, resized photos (median of repeated runs); peak memory: the "
              "whole process (Python, libraries, model) measured in a fresh process per engine")
    return 0


def cmd_export_onnx(args) -> int:
    from .deploy.onnx_export import export_onnx
    from .engine.inference import Classifier

    onnx_path, sidecar = export_onnx(Classifier.load(args.prompt_file, device="cpu"), args.out)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 2**20:.1f} MB) and {sidecar}")
    return 0


def cmd_scan(args) -> int:
    from .data.folders import scan_folder

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


def cmd_check(args) -> int:
    from .data.folders import load_split

    split = load_split(args.data_dir, shots=args.shots, seed=args.seed, progress=_scan_bar())
    _report_split(split)
    good_class = _good_class(args.good_class, split.classnames)
    backbone = _load_backbone_for(args.backbone, args.device)
    result = _feasibility(backbone, split, good_class, quiet=args.json)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _load_backbone_for(spec: str, device: str | None):
    """The backbone named by --backbone; the default one falls back to demo (saying so) where its weights
    cannot be had, a named one is an error then."""
    from .engine.backbone import load_backbone, load_backbone_or_demo

    if spec != DEFAULT_BACKBONE:
        return load_backbone(spec, device)
    backbone, notice = load_backbone_or_demo(spec, device)
    if notice:
        print(f"note: {notice}", file=sys.stderr)
    return backbone


def _feasibility(backbone, split, good_class: str | None, *, quiet: bool = False, out=None) -> dict:
    """Run the frozen-feature check on the training photos and print it in words (unless `quiet`)."""
    from .engine.feasibility import check_feasibility, describe

    bar = tqdm(desc="checking", unit="batch", file=sys.stderr, leave=False, disable=quiet)

    def on_batch(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = check_feasibility(backbone, split.classnames, split.train, good_class=good_class, on_batch=on_batch)
    finally:
        bar.close()
    if not quiet:
        out = out or sys.stdout
        print(f"check ({backbone.spec}, {result['seconds']:.1f} s):", file=out)
        for line in describe(result):
            print(f"  {line}", file=out)
    return result


def _check_before_tuning(backbone, split, good_class: str | None) -> None:
    """`dapt check`'s block, on stderr (stdout may carry the metrics JSON); never stops the tuning."""
    try:
        _feasibility(backbone, split, good_class, out=sys.stderr)
    except DaptError as error:
        print(f"note: the check before tuning was skipped: {error}", file=sys.stderr)


def cmd_review(args) -> int:
    """`dapt review DIR`: every photo of the folder (all parts, no draw), reviewed on frozen features."""
    from .data.folders import scan_folder
    from .data.records import LabeledImage
    from .engine.label_review import describe, review_photos, to_json

    scan = scan_folder(args.data_dir, progress=_scan_bar())
    classnames = sorted(scan.classes)
    if len(classnames) < 2:
        raise DataError(f"{scan.root} needs at least two class folders to review their labels.")
    items, parts, names = [], [], []
    for part, by_class in scan.parts.items():
        for class_name, paths in by_class.items():
            for path in paths:
                items.append(LabeledImage(path, classnames.index(class_name)))
                parts.append("" if part == "all" else part)
                names.append(Path(path).relative_to(scan.root).as_posix())
    backbone = _load_backbone_for(args.backbone, args.device)
    bar = tqdm(desc="reviewing", unit="batch", file=sys.stderr, leave=False, disable=args.json)

    def on_batch(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = review_photos(backbone, classnames, items, parts=parts, names=names, on_batch=on_batch)
    finally:
        bar.close()
    result["skipped"] += [{"path": s.path, "reason": s.reason} for s in scan.skipped]
    if args.json:
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False, default=str))
        return 0
    print(f"review ({backbone.spec}, {result['seconds']:.1f} s):")
    for line in describe(result):
        print(f"  {line}")
    return 0


def cmd_users(args) -> int:
    from .studio.accounts import Accounts

    accounts = Accounts(args.workspace or os.environ.get(WORKSPACE_ENV) or DEFAULT_ROOT)
    if args.action == "list":
        names = accounts.names()
        print("\n".join(names) if names else f"no accounts in {accounts.path.parent}")
        return 0
    if not args.name:
        raise ConfigError(f"Say which account: dapt users {args.action} NAME")
    if args.action == "remove":
        accounts.remove(args.name)
        print(f"removed '{args.name}'")
        return 0
    if args.name not in accounts.names() and not args.keep_memberships:
        _refuse_inherited_memberships(accounts.path.parent, args.name)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass(f"password for '{args.name}': ")
        if getpass.getpass("the same password again: ") != password:
            raise ConfigError("The two passwords differ; nothing was changed.")
    accounts.add(args.name, password, replace=args.replace)
    print(f"account '{args.name}' saved in {accounts.path}; the app asks for it from the next page load")
    return 0


def _refuse_inherited_memberships(workspace_root: Path, name: str) -> None:
    """Projects know their members by name alone, so a new account named like a member would inherit that
    member's roles: say which, and how to go on, before creating it."""
    from .studio.access import Members
    from .studio.workspace import Workspace

    workspace = Workspace(workspace_root)
    found = ((info, Members(workspace.projects_dir / info.id).role_of(name)) for info in workspace.list_projects())
    roles = [f"{info.name} ({role})" for info, role in found if role is not None]
    if roles:
        raise ConfigError(
            f"'{name}' is already a member of {len(roles)} project(s): {', '.join(roles)}. That may be a user "
            f"of the identity provider (who could no longer sign in once a local account has the name) or an "
            f"account removed earlier. Nothing was changed. Pick another name, or, if this is the same person, "
            f"run again with --keep-memberships to give the new account those roles.")


def cmd_projects(args) -> int:
    """`dapt projects list|grant|revoke`: the members of the app's projects, from the shell. Whoever has a shell
    on the server can read the workspace anyway, so this needs no sign-in; it is how an unowned project gets its
    first owner."""
    import getpass

    from .studio import audit
    from .studio.access import Members
    from .studio.workspace import Workspace

    workspace = Workspace(args.workspace or os.environ.get(WORKSPACE_ENV) or DEFAULT_ROOT)
    listing = workspace.list_projects()
    if args.action == "list":
        for info in listing:
            roles = Members(workspace.projects_dir / info.id).roles()
            members = ", ".join(f"{user} ({role})" for user, role in sorted(roles.items())) or "no owner"
            print(f"{info.id}\t{info.name}\t{members}")
        if not listing:
            print(f"no projects in {workspace.root}")
        return 0
    if not args.project or not args.user or (args.action == "grant" and not args.role):
        raise ConfigError("Say which project and user: dapt projects grant PROJECT USER owner|editor|viewer, "
                          "or dapt projects revoke PROJECT USER (dapt projects list shows the projects).")
    matches = [info for info in listing if args.project in (info.id, info.name)]
    if len(matches) != 1:
        raise ConfigError(f"{'No' if not matches else 'More than one'} project has the id or name '{args.project}'; "
                          "dapt projects list shows them, use the id.")
    folder = workspace.projects_dir / matches[0].id
    # Audited as the shell's user: the change was made outside the app, by whoever could log in to the server.
    by = {"via": "shell", "shell_user": getpass.getuser()}
    if args.action == "grant":
        Members(folder).set(args.user, args.role)
        audit.record(folder, None, audit.MEMBER_SET, member=args.user, role=args.role, **by)
        print(f"{args.user} is now {args.role} of '{matches[0].name}' ({matches[0].id})")
    else:
        Members(folder).remove(args.user)
        audit.record(folder, None, audit.MEMBER_REMOVED, member=args.user, **by)
        print(f"{args.user} is no longer a member of '{matches[0].name}' ({matches[0].id})")
    return 0


def cmd_next(args) -> int:
    """`dapt next DIR`: the unlabelled photos of DIR ranked by what labelling them would teach."""
    from .data.records import LabeledImage
    from .deploy.batch_predict import expand_inputs
    from .engine.backbone import load_backbone
    from .engine.labelling_order import describe, rank_photos, ranking_model, to_json

    if not Path(args.unlabelled_dir).is_dir():
        raise DataError(f"{args.unlabelled_dir} is not a folder.")
    paths, _ = expand_inputs([args.unlabelled_dir])
    if not paths:
        raise DataError(f"No image files found in {args.unlabelled_dir} (images end in .jpg, .png, .bmp, .tif, "
                        f".webp or .gif).")
    labelled = []
    if args.labelled:
        from .data.folders import scan_folder

        scan = scan_folder(args.labelled, progress=_scan_bar())
        classnames = sorted(scan.classes)
        labelled = [LabeledImage(path, classnames.index(name)) for by_class in scan.parts.values()
                    for name, photos in by_class.items() for path in photos]
    mode = None if args.by == "auto" else args.by
    classifier, backbone = ranking_model(args.prompt_file, mode, lambda spec: (
        _load_backbone_for(args.backbone, args.device) if spec is None else load_backbone(spec, args.device)))
    root = Path(args.unlabelled_dir)
    names = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in paths]
    bar = tqdm(desc="reading photos", unit="batch", file=sys.stderr, leave=False, disable=args.json)

    def on_batch(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = rank_photos(backbone, paths, labelled=labelled, classifier=classifier, mode=mode, count=args.count,
                             seed=args.seed, names=names, on_batch=on_batch)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(to_json(result), indent=2, ensure_ascii=False, default=str))
        return 0
    print(f"next ({backbone.spec}, {result['seconds']:.1f} s):")
    for line in describe(result):
        print(f"  {line}")
    for skipped in result["skipped"]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    return 0


def cmd_demo_data(args) -> int:
    from .demo.demo_task import write_demo_task

    summary = write_demo_task(args.out_dir, seed=args.seed, task=args.task)
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return 0


# -------------------------------------------------------------------------------- helpers
def _lr_value(text: str):
    if text in LR_CHOICES:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'scaled', 'quick' or 'auto', got {text!r}") from None


def write_json(data: dict, path: str | None) -> None:
    """Write `data` as JSON to `path`, or to stdout for '-'."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if path in (None, "-"):
        print(text)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")


def _items_for(part: dict, classnames: list[str]):
    from .data.folders import class_prompt_name
    from .data.records import LabeledImage

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
        from .engine.progress import Phase

        if progress.phase != self.phase:
            if self.bar is not None:
                self.bar.close()
            self.phase = progress.phase
            self.bar = tqdm(total=progress.total_steps, desc=progress.phase, unit="step", file=sys.stderr,
                            dynamic_ncols=True)
        if progress.phase == Phase.TRAIN:
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


def _good_class(given: str | None, classnames: list[str]) -> str | None:
    """--good-class: a class name, 'none', or (not given) the guess from the class names, said aloud."""
    if given is not None:
        if given.casefold() == "none":
            return None
        if given not in classnames:
            raise ConfigError(f"--good-class {given!r} is not one of the classes ({', '.join(classnames)}); "
                              f"name the class that means a good part, or 'none'.")
        return given
    guess = guess_good_class(classnames)
    if guess is None:
        print("note: no class name says 'good part' (no defect, OK, good, ...): accuracy only; name one with "
              "--good-class to count escapes and overkill", file=sys.stderr)
    else:
        print(f"note: '{guess}' is taken as the good class (--good-class NAME or none to change it)", file=sys.stderr)
    return guess


def _count(row: dict | None) -> str:
    """'182 of 800 (22.8%, 95% interval 20.1-25.7%)'."""
    if not row or not row.get("of"):
        return "n/a"
    low, high = row["interval"]
    return f"{row['count']} of {row['of']} ({_pct(row['rate'])}, 95% interval {100 * low:.1f}-{100 * high:.1f}%)"


def _print_pass_fail(metrics: dict) -> None:
    """The numbers a line lives by, first: escapes and overkill, zero-shot and tuned, then the operating point."""
    pass_fail = metrics.get("pass_fail")
    if not pass_fail:
        return
    before, after = pass_fail["before"], pass_fail["after"]
    print(f"pass/fail (good class '{pass_fail['good_class']}', a part passing when it is the most probable class):")
    print(f"  escapes, defective parts called good:  zero-shot {_count(before['escapes'])}")
    print(f"                                         tuned     {_count(after['escapes'])}")
    escaped = {name: n for name, n in after["escapes_by_class"].items() if n}
    if escaped:
        print("    tuned escapes by defect: " + ", ".join(f"{name} {n}" for name, n in escaped.items()))
    print(f"  overkill, good parts called defective: zero-shot {_count(before['overkill'])}")
    print(f"                                         tuned     {_count(after['overkill'])}")
    print(f"  defect type right among caught defects: zero-shot {_count(before['defect_type_accuracy'])}")
    print(f"                                          tuned     {_count(after['defect_type_accuracy'])}")


def _print_operating_point(point: dict | None) -> None:
    if not point:
        return
    from .deploy.pass_fail import readiness

    rate = point["escape_rate"]
    if not point["feasible"]:
        print(f"operating point: none: {point['held_out_defective']} defective test photos cannot promise at most "
              f"{rate:.1%} escapes; nothing would pass. Add defective test photos or allow a higher --escape-rate.")
        return
    measured = point.get("measured") or {}
    print(f"operating point for at most {rate:.1%} escapes: pass when P({point['good_class']}) > "
          f"{point['threshold']:.4f} and the photo is not unknown")
    if measured:
        print(f"  measured two-fold on the test photos: escapes {_count(measured['escapes'])}, "
              f"overkill {_count(measured['overkill'])}")
    words = {"not_ready": "not ready for a line: to keep escapes this low it stops half the good parts or more",
             "costly": "costly: it stops one good part in ten or more",
             "workable": "workable: under one good part in ten stopped"}
    verdict = readiness(point)
    if verdict in words:
        print(f"  {words[verdict]}")


def _print_health(metrics: dict) -> None:
    """What the collapse safeguard did and whether the run learned anything, in words."""
    from .engine.run_health import describe
    from .engine.safeguard import describe as describe_safeguard

    for line in describe_safeguard(metrics.get("safeguard")) + describe(metrics["health"]):
        print(line)


def _print_summary(metrics: dict) -> None:
    before, after = metrics["dispersion"]["before"], metrics["dispersion"]["after"]
    _print_pass_fail(metrics)
    chance = metrics.get("chance")
    print(f"accuracy: zero-shot {_pct(metrics['zero_shot_accuracy'])} -> tuned {_pct(metrics['accuracy'])} "
          f"on {metrics.get('n_test')} test images" + ("" if chance is None else f" (chance {_pct(chance)})"))
    templates = metrics.get("zero_shot_templates")
    if templates:
        print(f"zero-shot classifier: template set '{templates['set']}', {templates['count']} template(s), "
              f"e.g. {templates['example']!r}")
    for name, value in metrics["per_class"].items():
        print(f"  {name}: {_pct(value)} (zero-shot {_pct(metrics['zero_shot_per_class'].get(name))})")
    print(f"intra-dispersion (lower = tighter classes): {before['intra']:.4f} -> {after['intra']:.4f}")
    print(f"inter-dispersion (higher = classes further apart): {before['inter']:.4f} -> {after['inter']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
