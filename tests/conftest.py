import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book() -> Path:
    "The HTML book in _build/html; `make test` builds it before pytest, a bare `pytest` builds it here."
    import fcntl
    html = ROOT / "_build" / "html"
    (ROOT / "_build").mkdir(exist_ok=True)
    with open(ROOT / "_build" / ".build-lock", "w") as lock:  # pytest-xdist workers: one builds, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (html / "index.html").exists():
            jb = Path(sys.executable).parent / "jupyter-book"
            subprocess.run([str(jb), "build", str(ROOT), "-W", "--keep-going"], check=True, cwd=ROOT)
    return html


def toc_files() -> list[str]:
    "Every page of the book, as _toc.yml lists them (paths without suffix)."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def watched_flops(model) -> int:
    "FLOPs that FlopCounterMode sees in a real forward pass of `model` on its own device, attention in its math form."
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    cfg, device = model.config, next(model.parameters()).device
    x = torch.randn(1, cfg.in_chans, cfg.img_size, cfg.img_size, device=device)
    t = torch.full((1,), cfg.num_timesteps // 2, device=device)
    y = None if cfg.num_classes is None else torch.zeros(1, dtype=torch.long, device=device)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, t, y)
    return counter.get_total_flops()


def run_cli(main, argv: list[str], capsys) -> tuple[int, str, str]:
    "Exit code, stdout and stderr of a command's `main(argv)` run in this process."
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def save_random_inception_weights(
    path: Path,  # destination .pth
    seed: int = 0,  # seed of the initialisation and of the calibration images
) -> Path:
    """`minsnr.fid.random_inception`'s weights in torch-fidelity's layout, for tests only (never for reported FIDs).

    The real weights cannot be downloaded in the test environment; random ones exercise the FID path (file, resize,
    layer, statistics, distance) and give meaningless numbers."""
    from minsnr.fid import random_inception
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_inception("cpu", seed).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def random_inception_weights(tmp_path_factory) -> Path:
    "A file of randomly initialised Inception-v3 weights (`save_random_inception_weights`), written once per test session."
    return save_random_inception_weights(tmp_path_factory.mktemp("inception") / "random-inception.pth", seed=0)
