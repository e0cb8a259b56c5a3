"""The two Dockerfiles, read statically: no container engine runs here.

What a build would check first: the bases, the files copied from the build
context (the repository's root), the user the container runs as, and that the
images agree with helm-values.yaml and the chart's hub image.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .dockerfile import IMAGES, REPO, copies, final_user, image, instructions, run_steps

pytestmark = pytest.mark.unit

HUB = IMAGES / "hub" / "Dockerfile"
DASHBOARD = IMAGES / "dashboard" / "Dockerfile"
Z2JH = REPO / "tests" / "data" / "z2jh" / "chart"
# The chart release whose hub image is the base: the first (4.4.0, 2026-06-10) that
# ships JupyterHub 5.5.0, the appVersion of the chart in tests/data/z2jh.
CHART_VERSION = "4.4.0"


def chart_values() -> dict:
    return yaml.safe_load((Z2JH / "values.yaml").read_text())


def test_the_hub_image_builds_on_the_charts_hub_image() -> None:
    name, tag = image(HUB)
    chart = chart_values()["hub"]["image"]
    assert name == chart["name"] == "quay.io/jupyterhub/k8s-hub"
    # The chart's source leaves the tag to chartpress, which sets the chart's version
    # at release; a released values.yaml names it, and then it must be that.
    if chart["tag"] == "set-by-chartpress":
        assert tag == CHART_VERSION
        chart_meta = yaml.safe_load((Z2JH / "Chart.yaml").read_text())
        assert (chart_meta["version"], chart_meta["appVersion"]) == (CHART_VERSION, "5.5.0")
    else:
        assert tag == chart["tag"]


def test_the_chart_version_is_the_same_everywhere() -> None:
    guide = (REPO / "docs" / "operate" / "kubernetes.md").read_text()
    values = (REPO / "helm-values.yaml").read_text()
    for text in (guide, values):
        assert f"jupyterhub/jupyterhub --version {CHART_VERSION}" in text
        assert not re.search(r"--version (?!" + re.escape(CHART_VERSION) + r")\d", text)


def test_the_dashboard_image_is_python_3_11_slim() -> None:
    assert image(DASHBOARD) == ("python", "3.11-slim")


@pytest.mark.parametrize("dockerfile", [HUB, DASHBOARD], ids=["hub", "dashboard"])
def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile: Path) -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for sources, _ in copies(dockerfile):
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.parent.name}: COPY {source}: missing"
            assert any(source == a or source.startswith(a + "/") for a in allowed), (
                f"{source} is left out of the build context by .dockerignore"
            )


@pytest.mark.parametrize(
    ("dockerfile", "files"),
    [
        (HUB, ["images/hub/requirements.txt", "images/hub/constraints.txt"]),
        (DASHBOARD, ["images/dashboard/requirements.txt"]),
    ],
    ids=["hub", "dashboard"],
)
def test_the_requirements_files_are_copied_and_installed(
    dockerfile: Path, files: list[str]
) -> None:
    copied = {source: dest for sources, dest in copies(dockerfile) for source in sources}
    installs = " ".join(step for step in run_steps(dockerfile) if " -m pip install " in step)
    for f in files:
        assert f in copied, f"{f} is not copied"
        dest = copied[f]
        inside = dest + Path(f).name if dest.endswith("/") else dest
        assert inside in installs, f"{inside} is copied but not installed"
    # hub_viz itself, from the copied source
    assert "/tmp/hub-viz/src" in installs
    assert {"setup.cfg", "pyproject.toml", "README.md", "hub_viz"} <= set(copied)


def test_the_dashboard_image_runs_as_jovyan_not_root() -> None:
    user = final_user(DASHBOARD)
    uid = user.split(":")[0]
    assert uid not in ("root", "0") and uid == "1000"
    steps = run_steps(DASHBOARD)
    assert any(re.search(r"useradd .*--uid 1000 .*jovyan", s) for s in steps)
    env = " ".join(i.value for i in instructions(DASHBOARD) if i.keyword == "ENV")
    assert "HOME=/home/jovyan" in env
    [workdir] = [i.value for i in instructions(DASHBOARD) if i.keyword == "WORKDIR"]
    assert workdir == "/home/jovyan"
    # the chart's singleuser uid and fsGid
    values = yaml.safe_load((REPO / "helm-values.yaml").read_text())
    assert (values["singleuser"]["uid"], values["singleuser"]["fsGid"]) == (1000, 100)
    assert user == "1000:100"


def test_the_hub_image_returns_to_the_charts_user() -> None:
    assert final_user(HUB) == "1000"


def test_the_dashboard_image_has_git_and_the_launcher() -> None:
    steps = " ".join(run_steps(DASHBOARD))
    assert re.search(r"apt-get install .*\bgit\b", steps)
    [entrypoint] = [i.words() for i in instructions(DASHBOARD) if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ["tini", "--"]  # KubeSpawner passes the launcher as args


@pytest.mark.parametrize("dockerfile", [HUB, DASHBOARD], ids=["hub", "dashboard"])
def test_no_secrets_in_the_images(dockerfile: Path) -> None:
    for ins in instructions(dockerfile):
        if ins.keyword in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(?i)token|secret|password|api_?key|crypt", ins.value), ins


def requirement(path: Path, name: str) -> str:
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if re.match(rf"{re.escape(name)}\s*[<>=!~]", line):
            return line[len(name) :].strip()
    raise AssertionError(f"{name} not in {path}")


def test_both_images_keep_jupyterhub_5_5() -> None:
    hub = requirement(IMAGES / "hub" / "constraints.txt", "jupyterhub")
    assert hub == ">=5.5.1,<5.6"
    assert requirement(IMAGES / "dashboard" / "requirements.txt", "jupyterhub") == hub


def test_the_dashboard_image_has_every_framework_pinned() -> None:
    path = IMAGES / "dashboard" / "requirements.txt"
    for name in (
        "voila",
        "dash",
        "waitress",
        "bokeh",
        "panel",
        "streamlit",
        "jupyterlab",
        "ipykernel",
        "ipywidgets",
    ):
        assert requirement(path, name).startswith("=="), name


def test_the_hub_image_has_the_extras_the_hub_needs() -> None:
    path = IMAGES / "hub" / "requirements.txt"
    for name in ("jupyterhub-kubespawner", "jupyterhub-ltiauthenticator", "jupyterhub-idle-culler"):
        requirement(path, name)
