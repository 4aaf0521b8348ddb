"""The converged digits benchmark's training step in each precision and attention path, as ratios measured in one run.

    OMP_NUM_THREADS=1 python tools/step_ratio.py            # writes book/results/summary/step_ratio.json

The model is the benchmark's (vit_tiny on 8×8 digits, 10 classes, batch 64, one thread); each configuration is
measured `--repeats` times, interleaved with the others so that a change in the machine's load falls on all of them,
and its median images/s is compared with fp32 eager on PyTorch's fused attention (the default path). The convergence
page shows the table.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

CONFIGS = (  # (name, autocast dtype, compile, fused attention)
    ("fp32 eager, fused attention (PyTorch's default)", None, False, True),
    ("fp32 eager, explicit attention", None, False, False),
    ("bf16 eager, fused attention", "bf16", False, True),
    ("bf16 eager, explicit attention (the benchmark)", "bf16", False, False),
    ("bf16 + torch.compile, explicit attention", "bf16", True, False),
)
COMMAND = "OMP_NUM_THREADS=1 python tools/step_ratio.py"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each configuration, interleaved")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement")
    parser.add_argument("--out", default="book/results/summary/step_ratio.json")
    args = parser.parse_args(argv)
    import torch
    from minsnr.backbone import training_throughput
    from minsnr.core import atomic_write_json, cpu_name
    from minsnr.experiments import VIT_DIGITS
    from minsnr.trainer import build_model
    torch.set_num_threads(1)
    dtypes = {None: None, "bf16": torch.bfloat16}
    batch = VIT_DIGITS["global_batch"]
    seen = {name: [] for name, *_ in CONFIGS}
    start = time.perf_counter()
    for _ in range(args.repeats):
        for name, dtype, compiled, fused in CONFIGS:
            torch.manual_seed(0)
            net = build_model(VIT_DIGITS["model"], img_size=8, in_chans=1, num_classes=10, check_values=False,
                              fused_attn=fused)
            seen[name].append(training_throughput(net, batch, args.steps, 10, dtypes[dtype], compiled)["images_per_s"])
    base = statistics.median(seen[CONFIGS[0][0]])
    rows = [{"configuration": name, "precision": dtype or "fp32", "compile": compiled, "fused_attention": fused,
             "images_per_s": statistics.median(seen[name]), "all_images_per_s": seen[name],
             "over_fp32_fused": statistics.median(seen[name]) / base} for name, dtype, compiled, fused in CONFIGS]
    result = {"command": COMMAND, "model": VIT_DIGITS["model"], "image": [1, 8, 8], "batch": batch, "threads": 1,
              "repeats": args.repeats, "steps": args.steps, "cpu": cpu_name(), "torch": torch.__version__,
              "seconds": time.perf_counter() - start, "rows": rows}
    atomic_write_json(Path(args.out), result)
    for r in rows: print(f"{r['configuration']:50s} {r['images_per_s']:7.0f} img/s  {r['over_fp32_fused']:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
