"""The tuning runs of the converged digits benchmark (`minsnr.experiments.tuning_specs`: suite 'tuning', seed 100, a
seed no table of the book reports).

    python tools/tune_digits.py T3 T4      # the named runs (default: all); resumable like every suite
    python tools/tune_digits.py --list     # what each run changes in minsnr.experiments.TUNING_BASE
"""
import argparse
import sys

from minsnr.experiments import TUNING_VARIANTS, run_suite, tuning_specs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"runs to train (default: all of {', '.join(TUNING_VARIANTS)})")
    parser.add_argument("--list", action="store_true", help="print what each run changes and exit")
    parser.add_argument("--workers", type=int, default=1, help="runs trained at the same time (one core each)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in TUNING_VARIANTS]
    if unknown: parser.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(TUNING_VARIANTS)}")
    if args.list:
        for name, change in TUNING_VARIANTS.items(): print(name, change or "(the base recipe)")
        return
    import torch
    torch.set_num_threads(1)
    names = args.names or list(TUNING_VARIANTS)
    results = run_suite(tuning_specs(names), workers=args.workers, command="python tools/tune_digits.py " + " ".join(names))
    for name, result in zip(names, results):
        print(name, [(e["step"], round(e["fd"], 1), round(e["class_acc"], 2)) for e in result["evals"]], flush=True)


if __name__ == "__main__":
    sys.exit(main())
