"""The package's layers: each module imports only from the layers below it, lazy imports (inside functions) included."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minsnr"

# lowest first; a module may import from any earlier layer, never from its own or a later one
LAYERS = [
    ["core"],
    ["schedule"],
    ["weighting"],
    ["loss"],
    ["interop"],  # diffusers and k-diffusion drop-ins: weights from their schedulers and σ
    ["backbone"],
    ["vit", "unet"],
    ["data"],
    ["trainer"],
    ["sampler"],
    ["fid"],
    ["pareto"],
    ["experiments"],
    ["plotting"],
    ["cli"],
    ["__init__"],
]
RANK = {module: rank for rank, layer in enumerate(LAYERS) for module in layer}


def minsnr_imports(path: Path) -> set[str]:
    "The minsnr modules a file imports anywhere in it (top level, functions, methods)."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1: base = node.module or ""
            elif (node.module or "").split(".")[0] == "minsnr": base = node.module[len("minsnr."):] if "." in node.module else ""
            else: continue
            if base: found.add(base.split(".")[0])
            else: found.update(alias.name for alias in node.names)  # from minsnr import schedule
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("minsnr."))
    return found


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "_modidx")


def test_every_module_has_a_layer():
    assert [m for m in modules() if m not in RANK] == [], "add each new module to LAYERS (and to DESIGN's table)"


@pytest.mark.parametrize("module", modules())
def test_imports_only_from_layers_below(module):
    if module not in RANK: pytest.skip("not placed in a layer (test_every_module_has_a_layer fails)")
    upward = sorted(m for m in minsnr_imports(PACKAGE / f"{module}.py") if m != module and RANK.get(m, -1) >= RANK[module]
                    and module != "__init__")
    assert upward == [], f"minsnr.{module} imports {upward}, which are not below it"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from .schedule import x\nimport minsnr.vit\ndef g():\n    from minsnr.cli import main\n    from minsnr import data\n")
    assert minsnr_imports(f) == {"schedule", "vit", "cli", "data"}


def test_top_level_api():
    import minsnr
    from minsnr import DiffusionLoss, cosine_schedule, loss_weight  # noqa: F401
    assert "Parameters" in loss_weight.__doc__ and "snr:" in loss_weight.__doc__
    with pytest.raises(AttributeError, match="no attribute 'nope'"): minsnr.nope
