"""Train the converged digits benchmark's suites in the background, in priority order; resumable (stored runs are skipped).

    nohup python tools/run_converged.py --workers 2 > runs/converged.log 2>&1 &
    python tools/run_converged.py --status          # how many results each suite has, and the core-hours so far

Order: the fast path's quality check (one fp32 run), Figure 5's ViT grid for seeds 0–2 (both schedules, seed by seed),
Table 2's γ, beyond the paper and Figure 2's conflict (so that every ViT page has three seeds first), seeds 3 and 4 of
the ViT grid, the 4800-step runs of const and min-SNR-5, then the UNet grid (fp32: a step of 64 took 137 ms on one
core, against 61 ms for the ViT in bf16). Each result file lands in book/results/<suite>/ as soon as its run ends; a
run stopped by SIGTERM or Ctrl-C stores nothing and resumes from its checkpoint on the next call.
"""
import argparse
import json
import sys

COMMAND = "python tools/run_converged.py"


def suites():
    "The suites in the order they are trained: {name: specs}."
    from minsnr.experiments import (converged_conflict_specs, precision_check_specs, unet_grid_specs, vit_beyond_specs,
                                    vit_gamma_specs, vit_grid_specs, vit_long_specs)
    return {"precision": precision_check_specs(), "vit grid 0-2": vit_grid_specs(seeds=(0, 1, 2)), "vit gamma": vit_gamma_specs(), "vit beyond": vit_beyond_specs(),
            "vit conflict": converged_conflict_specs(), "vit grid 3-4": vit_grid_specs(seeds=(3, 4)),
            "vit long": vit_long_specs(), "unet grid": unet_grid_specs()}


def status(results_dir="book/results"):
    "Per suite: stored results / specs, and the training core-hours of the stored ones."
    from minsnr.experiments import load_result
    total = 0.0
    for name, specs in suites().items():
        stored = [r for r in (load_result(s, results_dir) for s in specs) if r is not None]
        hours = sum(r.get("wall_s", 0) * r.get("threads", 1) for r in stored) / 3600
        total += hours
        print(f"{name:14s} {len(stored):4d} / {len(specs):4d}   {hours:6.2f} core-hours")
    print(f"{'all':14s} {'':13s} {total:6.2f} core-hours")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="runs trained at the same time (one core each)")
    parser.add_argument("--only", nargs="*", help="train only these suites (names as --status prints them)")
    parser.add_argument("--status", action="store_true", help="print what is stored and exit")
    args = parser.parse_args(argv)
    if args.status: return status()
    import torch
    from minsnr.experiments import run_suite
    torch.set_num_threads(1)
    chosen = suites()
    unknown = sorted(set(args.only or ()) - set(chosen))
    if unknown: parser.error(f"unknown suite(s) {unknown}; choose from {list(chosen)}")
    for name, specs in chosen.items():
        if args.only and name not in args.only: continue
        print(f"{name}: {len(specs)} specs", flush=True)
        run_suite(specs, workers=args.workers, command=COMMAND)
        print(json.dumps({"suite": name, "done": True}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
