"""The package as others get it. `python -m build` makes an sdist and, from it, a wheel; the wheel holds the modules and
the shipped feature-classifier weights and nothing else, declares exactly settings.ini's requirements, and installs
into a clean virtual environment where every module imports and a training step runs while nothing but the runtime
requirements (and what they pull in) is importable: no nbdev, fastcore, Jupyter or other tool of the notebooks.
Then the README's install and citation instructions, and the GitHub workflows (each step a target of the Makefile).

The clean environment reuses the runtime requirements already installed in this one (no download): a .pth file puts
on its path a folder of links to the packages of the runtime requirements and of what they require, and nothing else;
a second .pth file marks the notebooks' tools as absent (None in sys.modules) in case a path still leads to them.
"""
import configparser
import email.parser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CFG = configparser.ConfigParser(delimiters=["="])
CFG.read(ROOT / "settings.ini", encoding="utf-8")
CFG = CFG["DEFAULT"]
LIB, VERSION = CFG["lib_path"], CFG["version"]
# the notebooks' and the book's tools: never a runtime requirement, never imported by the installed package
DEV_TOOLS = ("nbdev", "fastcore", "execnb", "IPython", "jupyter", "jupyter_core", "jupyter_client", "jupyter_book",
             "nbformat", "nbclient", "ipykernel", "jupytext", "papermill", "myst_nb", "sphinx", "pytest", "build")
# what the working-tree copy leaves out before building (outputs, environments, caches)
NOT_COPIED = (".git", ".venv", "_build", "_proc", "_docs", "dist", "build", "runs", "*.egg-info", "__pycache__",
              ".pytest_cache", ".ipynb_checkpoints", ".jupyter_cache")


def requirements(key: str) -> list[Requirement]:
    "The requirements settings.ini lists under `key` (space separated)."
    return [Requirement(r) for r in shlex.split(CFG.get(key, ""))]


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    "A command in the clean environment; a failure shows its output."
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=clean_env(), **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}"
    return done


def clean_env() -> dict[str, str]:
    "The environment of a child process: nothing that would put this checkout or this environment on its path."
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    return {**env, "PYTHONNOUSERSITE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def build_dists(src: Path, out: Path) -> tuple[Path, Path]:
    "sdist and wheel of the tree `src` (the wheel built from the sdist, as `python -m build` does), with this environment's setuptools."
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src)
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return sdist, wheel


def copy_tree(dest: Path) -> Path:
    "A copy of the working tree (uncommitted edits included) without outputs, environments and caches."
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*NOT_COPIED))
    return dest


def runtime_closure() -> set[str]:
    "Canonical names of the runtime requirements and of everything they require, as installed here (markers evaluated)."
    seen, todo = set(), [(r, frozenset(r.extras)) for r in requirements("requirements")]
    names = set()
    while todo:
        req, extras = todo.pop()
        if (canonicalize_name(req.name), extras) in seen: continue
        seen.add((canonicalize_name(req.name), extras))
        names.add(canonicalize_name(req.name))
        dist = metadata.distribution(req.name)  # a runtime requirement missing here is an error of this environment
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *extras}):
                try: metadata.distribution(sub.name)
                except metadata.PackageNotFoundError: continue  # an optional dependency that is not installed
                todo.append((sub, frozenset(sub.extras)))
    return names


def dev_tool_dists() -> set[str]:
    "Canonical names of the distributions installed here that provide a module of DEV_TOOLS or a jupyter* one."
    return {canonicalize_name(d) for top, dists in metadata.packages_distributions().items()
            if top in DEV_TOOLS or top.startswith("jupyter") for d in dists}


def link_runtime_closure(dest: Path) -> Path:
    "A folder of links to the top-level entries (packages, modules, .dist-info) of the runtime closure's distributions here."
    dest.mkdir(parents=True)
    for name in sorted(runtime_closure()):
        dist = metadata.distribution(name)
        for top in sorted({Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}):
            source = Path(dist.locate_file(top))
            if source.exists() and not (dest / top).exists() and not top.endswith(".pth"): (dest / top).symlink_to(source)
    return dest


# a .pth file of the clean venv runs this at start-up: these tools are absent even if a path leads to them
BLOCKED = ("nbdev", "fastcore", "execnb", "IPython", "nbformat", "ipykernel", "jupyter", "jupyter_core", "jupyter_client")
BLOCKER = "import sys; sys.modules.update(dict.fromkeys({names!r}))\n"


def clean_venv(wheel: Path, dest: Path, runtime: Path) -> Path:
    "A venv (no system site-packages) holding only the wheel, with the runtime closure's links on its path. Its python."
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(dest / "env")
    python = dest / "env" / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", "--no-compile", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "_minsnr_runtime_deps.pth").write_text(f"{runtime}\n")
    (site / "_minsnr_block_dev_tools.pth").write_text(BLOCKER.format(names=BLOCKED))
    return python


SMOKE = r'''
import importlib, os, pkgutil, sys
import minsnr
prefix = os.path.realpath(sys.prefix)
assert os.path.realpath(minsnr.__file__).startswith(prefix + os.sep), f"minsnr from {minsnr.__file__}, not from {prefix}"
assert minsnr.__version__ == sys.argv[1], (minsnr.__version__, sys.argv[1])
modules = sorted(m.name for m in pkgutil.iter_modules(minsnr.__path__, "minsnr."))
for name in modules: importlib.import_module(name)
print("imported", " ".join(modules))
for name in dir(minsnr): getattr(minsnr, name)  # the lazy top-level API resolves every name

import torch
from minsnr.fid import feature_net_path, load_feature_net
from minsnr.loss import DiffusionLoss
from minsnr.schedule import cosine_schedule
from minsnr.weighting import loss_weight

# min-SNR-5 for an ε-network is min(SNR, 5) / SNR = min(5 / SNR, 1), limits 1 at SNR = 0 and 0 at SNR = ∞
snr = torch.tensor([0.0, 0.5, 5.0, 20.0, float("inf")], dtype=torch.float64)
torch.testing.assert_close(loss_weight(snr, "min-snr", "eps", gamma=5.0).double(), (5.0 / snr).clamp(max=1.0))

# one training step of a tiny ε-model under the min-SNR-5 loss
torch.manual_seed(0)
model = torch.nn.Conv2d(1, 1, 3, padding=1)
net = lambda x, t, y: model(x)
loss_fn = DiffusionLoss(cosine_schedule(), "eps", "min-snr")
x0 = torch.rand(4, 1, 8, 8) * 2 - 1
t, importance, noise = loss_fn.draw(4, (1, 8, 8), torch.Generator().manual_seed(0))
out = loss_fn(net, x0, None, t, noise, importance)
before = model.weight.detach().clone()
out.loss.backward()
torch.optim.SGD(model.parameters(), lr=0.1).step()
assert torch.isfinite(out.loss) and not torch.equal(before, model.weight), out.loss

# the shipped feature classifier comes with the wheel
path = feature_net_path("digits")
assert path.is_file() and os.path.realpath(path).startswith(prefix + os.sep), path
load_feature_net("digits")
loaded = sorted({m.partition(".")[0] for m, v in sys.modules.items() if v is not None} & {"nbdev", "fastcore", "execnb", "IPython", "nbformat", "ipykernel"})
assert not loaded, loaded
print("smoke ok")
'''


def run_smoke(python: Path, cwd: Path) -> subprocess.CompletedProcess:
    "The smoke script in the clean venv's python (from a folder outside the checkout)."
    script = cwd / "smoke.py"
    script.write_text(SMOKE)
    return subprocess.run([str(python), str(script), VERSION], cwd=cwd, capture_output=True, text=True, env=clean_env(),
                          timeout=300)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Path:
    "Links to the runtime requirements installed here and what they require (the only third-party code the clean venv sees)."
    return link_runtime_closure(tmp_path_factory.mktemp("runtime") / "site")


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> tuple[Path, Path]:
    "sdist and wheel of the working tree."
    tmp = tmp_path_factory.mktemp("wheel")
    return build_dists(copy_tree(tmp / "src"), tmp / "dist")


@pytest.fixture(scope="module")
def installed(dists, runtime, tmp_path_factory) -> Path:
    "The python of a clean venv with the wheel installed."
    return clean_venv(dists[1], tmp_path_factory.mktemp("venv"), runtime)


def test_no_runtime_requirement_pulls_in_a_dev_tool():
    closure, tools = runtime_closure(), dev_tool_dists()
    assert {"nbdev", "fastcore", "ipython"} <= tools, tools
    assert not closure & tools, f"the runtime requirements pull in {sorted(closure & tools)}"


@pytest.mark.slow
def test_wheel_holds_the_package_and_its_assets_only(dists):
    sdist, wheel = dists
    assert wheel.name == f"{LIB}-{VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    info = f"{LIB}-{VERSION}.dist-info"
    package = {f"{LIB}/{p.name}" for p in (ROOT / LIB).glob("*.py")}
    assets = {f"{LIB}/assets/{p.name}" for p in (ROOT / LIB / "assets").iterdir() if p.is_file()}
    assert assets, "no shipped assets"
    assert names - {n for n in names if n.startswith(info + "/")} == package | assets
    assert {f"{info}/{f}" for f in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")} <= names
    assert f"{info}/licenses/LICENSE" in names, "the license text is not in the wheel"
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"settings.ini", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"} <= members  # setup.py's inputs
    assert {p for p in package | assets} <= members
    stray = sorted(m for m in members if m.split("/")[0] in ("nbs", "tests", "book", "tools", "configs", "_build"))
    assert not stray, f"the sdist holds {stray[:5]}"


@pytest.mark.slow
def test_wheel_metadata_is_settings_ini(dists):
    meta = email.parser.Parser().parsestr(zipfile.ZipFile(dists[1]).read(f"{LIB}-{VERSION}.dist-info/METADATA").decode())
    assert (meta["Name"], meta["Version"], meta["Requires-Python"]) == (LIB, VERSION, ">=" + CFG["min_python"])
    assert meta["Summary"] == CFG["description"] and meta["License-Expression"] == "Apache-2.0"
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    runtime = {str(r) for r in reqs if r.marker is None}
    assert runtime == {str(r) for r in requirements("requirements")}, "Requires-Dist is not settings.ini's requirements"
    assert not {canonicalize_name(r.name) for r in reqs if r.marker is None} & {canonicalize_name(d) for d in DEV_TOOLS}
    # the notebooks' tools are the `dev` extra only (`pip install -e ".[dev]"`, what `make install` installs)
    dev = {str(Requirement(str(r).split(";")[0])) for r in reqs if r.marker is not None and r.marker.evaluate({"extra": "dev"})}
    assert dev == {str(r) for r in requirements("dev_requirements")} and meta.get_all("Provides-Extra") == ["dev"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls == {"Documentation": CFG["doc_host"] + CFG["doc_baseurl"], "Paper": CFG["paper_url"],
                    "Source": CFG["git_url"], "Issues": CFG["git_url"] + "/issues"}
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    assert re.search(r"@\w+\{hang2023minsnr,.*?url\s*=\s*\{" + re.escape(urls["Paper"]) + r"\}", bib, re.S), "paper_url is not the paper's"
    entry_points = zipfile.ZipFile(dists[1]).read(f"{LIB}-{VERSION}.dist-info/entry_points.txt").decode()
    for script in CFG["console_scripts"].split():
        name, target = script.split("=")
        assert f"{name} = {target}" in entry_points, script


@pytest.mark.slow
def test_wheel_installs_and_runs_without_dev_tools(installed, tmp_path):
    done = run_smoke(installed, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke ok" in done.stdout and f"{LIB}.core" in done.stdout


COMMANDS = r'''
import contextlib, io, sys
from importlib.metadata import distribution
for ep in distribution("minsnr").entry_points.select(group="console_scripts"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        ep.load()(["--help"])
    assert "usage" in out.getvalue().lower(), (ep.name, out.getvalue())
    print(ep.name, "--help ok")
'''


@pytest.mark.slow
def test_the_installed_commands_run_without_dev_tools(installed, tmp_path):
    "Each console script's --help, in one process; then one installed launcher as a user starts it."
    (tmp_path / "commands.py").write_text(COMMANDS)
    done = subprocess.run([str(installed), "commands.py"], cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("--help ok") == len(CFG["console_scripts"].split()), done.stdout
    done = subprocess.run([str(installed.parent / CFG["console_scripts"].split()[0].split("=")[0]), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env=clean_env(), timeout=300)
    assert done.returncode == 0 and "usage" in done.stdout.lower(), done.stdout + done.stderr


@pytest.mark.slow
def test_a_module_that_imports_a_dev_tool_fails_the_smoke(runtime, tmp_path):
    "The check can fail: a copy of the tree whose core imports nbdev builds, installs, and fails the smoke, naming nbdev."
    src = copy_tree(tmp_path / "src")
    core = src / LIB / "core.py"
    text = core.read_text()
    assert "from __future__ import annotations\n" in text
    core.write_text(text.replace("from __future__ import annotations\n", "from __future__ import annotations\nfrom nbdev.showdoc import show_doc\n", 1))
    _, wheel = build_dists(src, tmp_path / "dist")
    done = run_smoke(clean_venv(wheel, tmp_path / "venv", runtime), tmp_path)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr and "nbdev" in done.stderr, done.stdout + done.stderr


# ---- the README: how to install and cite -------------------------------------------------------------------------

def fenced(text: str, lang: str) -> list[str]:
    "The bodies of the ```lang blocks of a markdown text."
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def bib_fields(entry: str) -> dict[str, str]:
    "field → value of one BibTeX entry (values in braces, one level of nested braces)."
    return {k.lower(): v for k, v in re.findall(r"(\w+)\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}", entry)}


def test_readme_says_how_to_install_the_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line.strip() for block in fenced(readme, "bash") for line in block.splitlines() if line.strip().startswith("pip ")]
    assert f"pip install git+{CFG['git_url']}" in commands, commands
    assert f"pip install dist/{LIB}-{VERSION}-py3-none-any.whl" in commands, commands
    # the two commands of the repository stay what they are
    assert any(re.fullmatch(r"(#.*\n)*make test\n(#.*\n)*make book\n", block) for block in fenced(readme, "bash"))


def test_readme_bibtex_cites_the_paper_and_this_version():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = fenced(readme, "bibtex")
    kinds = {key: kind for kind, key in re.findall(r"@(\w+)\{(\w+),", block)}
    assert kinds == {"hang2023minsnr": "inproceedings", LIB: "software"}, kinds
    bodies = dict(re.findall(r"@\w+\{(\w+),(.*?)\n\}", block, re.S))
    paper, ours = bib_fields(bodies["hang2023minsnr"]), bib_fields(bodies[LIB])
    book = bib_fields(re.search(r"@\w+\{hang2023minsnr,(.*?)\n\}", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"), re.S).group(1))
    for key in ("title", "author", "booktitle", "pages", "year"):
        assert paper[key] == book[key], (key, paper.get(key), book[key])
    assert paper["pages"] == "7441--7451" and paper["year"] == "2023"
    assert ours["version"] == VERSION and ours["url"] == CFG["git_url"], ours


# ---- the GitHub workflows: valid YAML, and every step that runs a command runs a target of the Makefile ----------

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def make_targets() -> set[str]:
    "The explicit targets of the Makefile (rules whose target is a plain name)."
    text = (ROOT / "Makefile").read_text()
    return {t for line in text.splitlines() if (m := re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:(?!=)", line))
            for t in m.group(1).split() if not t.startswith(".")}


def test_workflows_are_there():
    assert {p.name for p in WORKFLOWS} >= {"book.yml", "wheel.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_steps_run_makefile_targets(path):
    flow = yaml.safe_load(path.read_text())
    assert flow.get(True, flow.get("on")), f"{path.name}: no trigger"  # YAML 1.1 reads the key `on` as True
    targets = make_targets()
    assert {"test", "docs", "wheel"} <= targets, targets
    steps = [s for job in flow["jobs"].values() for s in job.get("steps", [])]
    assert steps, f"{path.name}: no steps"
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        for line in step.get("run", "").splitlines():
            if not line.strip() or line.strip().startswith("#"): continue
            words = shlex.split(line)
            assert words[0] == "make", f"{path.name}: `{line}` is not a make target (CI runs what we test here)"
            named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            assert named and set(named) <= targets, f"{path.name}: `{line}` names a target the Makefile lacks"


def test_workflow_book_deploys_what_make_test_built():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    on = flow.get(True, flow.get("on"))
    assert on["push"]["branches"] == ["main"]
    assert flow["permissions"]["pages"] == "write" and flow["permissions"]["id-token"] == "write"
    steps = [s for job in flow["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert runs[0] == "make test", runs
    for action in ("actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in uses, action
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert upload["with"]["path"] == "_build/html"
