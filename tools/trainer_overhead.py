"""The trainer's own cost on the converged digits benchmark: `train()` against a bare loop of the same step, alternated.

    OMP_NUM_THREADS=1 python tools/trainer_overhead.py [--repeats 5]

Both train the benchmark's ViT (bf16, batch 64, one thread) from the same initial weights for the same number of steps
at the same constant learning rate. On a CPU the first steps from the initial weights, and the steps of an lr warm-up,
run slower than later ones (in part subnormal numbers: flush-to-zero halved the gap), so a bare loop that is further
along, or has no warm-up, flatters the trainer's cost by up to 20 %. The trainer's images/s come from its own log
windows (every 20 steps, the first left out); the bare loop is model, loss and fused AdamW only, its first 20 steps
untimed. Each repeat measures one after the other, so a change in the machine's load falls on both.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternations of trainer and bare loop")
    args = parser.parse_args(argv)
    import torch
    import minsnr.trainer as T
    from minsnr.experiments import VIT_DIGITS
    from minsnr.loss import DiffusionLoss
    from minsnr.schedule import get_schedule
    torch.set_num_threads(1)
    window, steps = 20, 120
    base = {**VIT_DIGITS, "steps": steps, "log_every": window, "ckpt_every": 10**6, "warmup_steps": 0}
    cfg = T.TrainConfig(**base, out_dir="unused", progress=False)
    data = T.build_dataset(cfg)
    batch = cfg.global_batch

    def trainer() -> float:
        with tempfile.TemporaryDirectory() as d:
            T.train(T.TrainConfig(**base, out_dir=f"{d}/run", progress=False), data)
            lines = [json.loads(l) for l in (Path(d) / "run" / "metrics.jsonl").read_text().splitlines()][1:]
        return len(lines) * window * batch / sum(window * batch / r["img_per_s"] for r in lines)

    loss_fn = DiffusionLoss(get_schedule(cfg.schedule, cfg.num_timesteps), cfg.target, cfg.weighting, cfg.gamma)
    x_all, y_all = data.batch(range(len(data)))

    def bare() -> float:
        "The same model from the same initial weights, trained as far as the trainer is: the first window untimed."
        torch.manual_seed(cfg.seed)
        net = T.model_for_dataset(cfg, data)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=True)
        for i in range(steps):
            if i == window: start = time.perf_counter()
            rows = slice((i * batch) % (len(x_all) - batch), (i * batch) % (len(x_all) - batch) + batch)
            x0, y = x_all[rows], y_all[rows]
            t = torch.randint(0, cfg.num_timesteps, (batch,))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss_fn(net, x0, y, t, torch.randn_like(x0)).loss.backward()
            opt.step(); opt.zero_grad(set_to_none=True)
        return (steps - window) * batch / (time.perf_counter() - start)

    ratios = []
    for _ in range(args.repeats):
        a, b = trainer(), bare()
        ratios.append(b / a)
        print(f"trainer {a:.0f} img/s  bare loop {b:.0f} img/s  overhead {b / a - 1:+.1%}", flush=True)
    print(f"median overhead {statistics.median(ratios) - 1:+.1%} over {args.repeats} alternations")


if __name__ == "__main__":
    sys.exit(main())
