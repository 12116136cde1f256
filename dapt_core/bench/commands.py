"""The `dapt bench` command line: the sweep, `dg` and `report` subcommands and their options."""

from __future__ import annotations

import argparse

from ..engine.methods import METHODS, TEMPLATE_SET_NAMES, TuningConfig
from .dg import cmd_dg
from .results import DEFAULT_BENCH_BACKBONE, DEFAULT_SEEDS, DG_SHOTS
from .runner import cmd_bench
from .tables import cmd_report

# ------------------------------------------------------------------------------------- command line
EXAMPLES = """\
examples:
  dapt bench --data-root /data --dataset DTD --shots 16 --seeds 1 2 3 --method dapt --out runs/
  torchrun --nproc_per_node 4 -m dapt_core.cli bench --data-root /data --dataset ImageNet --shots 16 --out runs/
  dapt bench dg --data-root /data --out runs/ --method dapt
  dapt bench report runs/
"""


def register(commands, common) -> None:
    """Add `dapt bench` (the sweep) with its sub-commands `report` and `dg` to the dapt command line."""
    from ..data.datasets import DATASETS, DOMAIN_SHIFT_TARGETS

    bench = commands.add_parser(
        "bench", parents=[common], help="paper benchmarks: few-shot sweeps, domain generalisation, report",
        description="Tune and score one or more seeds on a benchmark data set with the recipe's preset for it; "
                    "finished seeds are skipped. Under torchrun the run is data-parallel.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--data-root", help="folder holding the data sets in CoOp's layout (DATASETS.md)")
    bench.add_argument("--dataset", nargs="+", metavar="NAME",
                       help=f"one or more of: {', '.join(n for n in DATASETS if n not in DOMAIN_SHIFT_TARGETS)}")
    bench.add_argument("--shots", type=int, nargs="+", default=[DG_SHOTS], help="shots per class (default 16)")
    bench.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="default: 1 2 3")
    bench.add_argument("--method", nargs="+", default=[TuningConfig.method], choices=list(METHODS), metavar="METHOD",
                       help=f"one or more of {', '.join(METHODS)} (default {TuningConfig.method})")
    bench.add_argument("--backbone", default=DEFAULT_BENCH_BACKBONE, help="default: %(default)s")
    bench.add_argument("--out", help="results folder; rerunning with the same folder resumes")
    overrides = bench.add_argument_group("overrides of the preset (default: the recipe's value for the data set)")
    overrides.add_argument("--epochs", type=int)
    overrides.add_argument("--lr", type=float)
    overrides.add_argument("--beta-v", type=float, help="weight of intra-dispersion (dapt)")
    overrides.add_argument("--beta-t", type=float, help="weight of inter-dispersion (dapt)")
    overrides.add_argument("--batch-size", type=int, help="global training batch (default 32)")
    overrides.add_argument("--eval-batch-size", type=int, help="test batch (default 100)")
    overrides.add_argument("--n-ctx", type=int)
    overrides.add_argument("--n-vis", type=int)
    overrides.add_argument("--deep", action="store_true", help="deep visual prompt")
    overrides.add_argument("--templates", choices=TEMPLATE_SET_NAMES, help="zero-shot template set")
    _add_machine_options(bench)
    bench.set_defaults(handler=cmd_bench)

    sub = bench.add_subparsers(title="sub-commands", dest="bench_command", metavar="{report,dg}")
    report = sub.add_parser("report", parents=[common], help="Markdown and CSV tables of a results folder",
                            description="Mean and standard deviation over seeds per data set, the average over "
                                        "data sets, methods side by side.")
    report.add_argument("results_dir", help="the --out folder of dapt bench")
    report.add_argument("--markdown", help="where to write the Markdown table (default DIR/report.md)")
    report.add_argument("--csv", help="where to write the CSV table (default DIR/report.csv)")
    report.set_defaults(handler=cmd_report)

    dg = sub.add_parser("dg", parents=[common], help="evaluate ImageNet prompts on ImageNet-V2, -Sketch, -A, -R",
                        description="Score the prompts `dapt bench --dataset ImageNet` tuned (read from "
                                    "OUT/ImageNet/<method>/<K>shot/) on the four variants, without tuning on them. "
                                    "ImageNet-A and -R use the class embeddings of their 200 classes only.")
    dg.add_argument("--data-root", required=True)
    dg.add_argument("--out", required=True, help="the results folder holding the ImageNet runs; results go there")
    dg.add_argument("--method", nargs="+", default=[TuningConfig.method], choices=list(METHODS), metavar="METHOD")
    dg.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    dg.add_argument("--shots", type=int, default=DG_SHOTS, help="shots of the ImageNet runs (default 16)")
    dg.add_argument("--targets", nargs="+", metavar="NAME", help=f"default: {' '.join(DOMAIN_SHIFT_TARGETS)}")
    dg.add_argument("--backbone", help="default: the one the prompt files name")
    dg.add_argument("--eval-batch-size", type=int, help="default: the tuning run's (100)")
    _add_machine_options(dg)
    dg.set_defaults(handler=cmd_dg)


def _add_machine_options(parser) -> None:
    parser.add_argument("--device", help="cuda | cuda:N | cpu (default: best available; under torchrun "
                                         "cuda:LOCAL_RANK)")
    parser.add_argument("--workers", type=int, help="data-loading processes per rank (default: from the CPU count)")
