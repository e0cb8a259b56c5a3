"""The images' Python requirement sets install together, in clean virtualenvs, as the
Dockerfiles install them.

No container engine runs here, so each image's pip steps run in a new
virtualenv instead: the files each Dockerfile COPYs are copied the same way
into a folder standing for the image's root, and the Dockerfile's own
``python -m pip ...`` steps run with that folder's paths. The launcher must then
start (``hub-viz-launch --help``); the hub's set must keep JupyterHub 5.5.

Marked ``images``: it needs PyPI (skipped, saying so, when the package index
cannot be reached) and takes minutes on a cold pip cache, seconds warm.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dockerfile import IMAGES, REPO, copies, run_steps

pytestmark = pytest.mark.images

INSTALL_TIMEOUT = 1500  # seconds, a cold cache on a slow day; warm runs take well under one
# The chart's hub image (4.4.0) comes with this JupyterHub; the image adds hub_viz on top.
BASE_JUPYTERHUB = "jupyterhub==5.5.0"


def index_url() -> str:
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
        )
        url = out.stdout.strip() if out.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/") + "/"


@pytest.fixture(scope="module", autouse=True)
def _package_index_reachable() -> None:
    url = index_url() + "pip/"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            response.read(1)
    except OSError as e:
        pytest.skip(
            f"the package index {url} cannot be reached ({e}); "
            "installing the images' requirements needs it"
        )


def image_root(dockerfile: Path, root: Path) -> Path:
    """The files the Dockerfile COPYs from the build context, at their places under ``root``."""
    for sources, dest in copies(dockerfile):
        for source in sources:
            src = REPO / source
            target = root / dest.lstrip("/")
            if dest.endswith("/") or len(sources) > 1:
                target = target / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target)
    return root


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, **kwargs)
    assert out.returncode == 0, (
        f"{shlex.join(argv)} exited {out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    )
    return out


def run_python_steps(dockerfile: Path, root: Path, python: Path) -> list[str]:
    """Run the Dockerfile's ``python``/``python3`` RUN steps with the venv and ``root``'s paths."""
    ran = []
    for step in run_steps(dockerfile):
        words = shlex.split(step)
        if not words or words[0] not in ("python", "python3"):
            continue
        argv = [str(python)] + [
            str(root / w.lstrip("/")) if w.startswith("/tmp/") else w for w in words[1:]
        ]
        run(argv)
        ran.append(step)
    return ran


@pytest.fixture(scope="module")
def tmp_root() -> Iterator[Path]:
    # Not pytest's tmp_path: the virtualenvs hold a GB and pytest keeps three runs' worth.
    with tempfile.TemporaryDirectory(prefix="hub-viz-images-") as tmp:
        yield Path(tmp)


def new_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", str(path)])
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def dashboard_venv(tmp_root: Path) -> Path:
    dockerfile = IMAGES / "dashboard" / "Dockerfile"
    root = image_root(dockerfile, tmp_root / "dashboard-root")
    python = new_venv(tmp_root / "dashboard-venv")
    steps = run_python_steps(dockerfile, root, python)
    assert any("-r /tmp/hub-viz/requirements.txt" in s for s in steps), steps
    assert any(s.endswith("/tmp/hub-viz/src") for s in steps), steps
    return python


@pytest.fixture(scope="module")
def hub_venv(tmp_root: Path) -> Path:
    dockerfile = IMAGES / "hub" / "Dockerfile"
    root = image_root(dockerfile, tmp_root / "hub-root")
    python = new_venv(tmp_root / "hub-venv")
    run([str(python), "-m", "pip", "install", BASE_JUPYTERHUB])  # what the base image has
    steps = run_python_steps(dockerfile, root, python)
    assert any("-c /tmp/hub-viz/constraints.txt" in s for s in steps), steps
    return python


def test_the_launcher_runs_from_the_dashboard_set(dashboard_venv: Path) -> None:
    launcher = dashboard_venv.parent / "hub-viz-launch"
    out = run([str(launcher), "--help"])
    assert out.stdout.startswith("usage: hub-viz-launch")
    assert "--entry" in out.stdout


def test_the_dashboard_set_has_every_framework_at_its_pin(dashboard_venv: Path) -> None:
    script = textwrap.dedent("""
        import importlib, importlib.metadata as md, re, sys
        for module in ("voila", "dash", "waitress", "bokeh", "panel", "streamlit",
                       "jupyterlab", "ipykernel", "ipywidgets", "hub_viz.runners.dash",
                       "jupyterhub.services.auth"):
            importlib.import_module(module)
        for line in open(sys.argv[1]):
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                assert md.version(name) == version, (name, md.version(name), version)
        print("jupyterhub", md.version("jupyterhub"))
    """)
    out = run([str(dashboard_venv), "-c", script, str(IMAGES / "dashboard" / "requirements.txt")])
    assert out.stdout.strip().startswith("jupyterhub 5.5.")


def test_the_hub_set_keeps_jupyterhub_5_5_and_configures_a_kube_hub(hub_venv: Path) -> None:
    # configure() as helm-values.yaml calls it, on the hub's JupyterHub (5.5: users get
    # the service through the user role), with the LTI authenticator and the culler.
    script = textwrap.dedent("""
        import importlib.metadata as md, sys, tempfile
        from traitlets.config import Config
        import jupyterhub, kubespawner, ltiauthenticator, jupyterhub_idle_culler
        from hub_viz.config import configure
        from hub_viz.kubespawner import DashboardKubeSpawner
        c = Config()
        c.CryptKeeper.keys = ["0" * 64]
        configure(c, spawner="kube", state_dir=tempfile.mkdtemp(),
                  lti={"client_id": "10000000000123"})
        roles = {r["name"]: r["scopes"] for r in c.JupyterHub.load_roles}
        assert roles["user"] == ["self", "access:services!service=hub-viz"], roles
        assert c.JupyterHub.authenticator_class.endswith("HubVizLTI13Authenticator")
        print(jupyterhub.__version__, md.version("jupyterhub-kubespawner"))
    """)
    out = run([str(hub_venv), "-c", script])
    jupyterhub_version, kubespawner_version = out.stdout.split()
    major_minor_patch = tuple(int(p) for p in jupyterhub_version.split(".")[:3])
    assert (5, 5, 1) <= major_minor_patch < (5, 6, 0)
    assert kubespawner_version.startswith("7.")
    run([str(hub_venv), "-m", "jupyterhub_idle_culler", "--help"])
    run([str(hub_venv), "-m", "pip", "check"])
