"""A per-viewer instance runs in the viewer's own copy of the dashboard's folder.

The hub side (:mod:`hub_viz.viewerwork`: where the folder is, who owns it)
and the launcher side (:mod:`hub_viz.launcher.workdir`: the copy) are checked
here; ``tests/browser/test_viewer_copies.py`` shows two students editing the
same notebook end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub_viz.launcher import workdir
from hub_viz.launcher.process import AppProcess, AppState
from hub_viz.viewerwork import escape_name, make_work_folder, work_folder

from .test_sandbox import AUTHOR, VIEWER, as_root, before_start, config, files, spawner_for  # noqa: F401

pytestmark = pytest.mark.unit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- where ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alice", "alice"),
        ("a.b@example.org", "a%2Eb@example%2Eorg"),
        ("..", "%2E%2E"),
        ("a/b", "a%2Fb"),
        ("é", "%C3%A9"),
        ("", "%00"),
    ],
)
def test_names_become_one_safe_segment(name: str, expected: str) -> None:
    assert escape_name(name) == expected


def test_each_viewer_and_dashboard_has_its_own_unguessable_folder(tmp_path: Path) -> None:
    bob = make_work_folder(tmp_path, "bob", "prof", "notes", account=None)
    assert bob == make_work_folder(tmp_path, "bob", "prof", "notes", account=None)  # kept
    alice = make_work_folder(tmp_path, "alice", "prof", "notes", account=None)
    other = make_work_folder(tmp_path, "bob", "prof", "quiz", account=None)
    assert len({bob, alice, other}) == 3
    assert bob.parent == tmp_path / "bob" / "prof" and bob.name.startswith("notes-")
    # the tag comes from the hub's key: without it the name cannot be worked out
    assert bob != work_folder(tmp_path, "bob", "prof", "notes")
    assert mode(tmp_path / ".key") == 0o600
    # folders above are traversable, not listable; the viewer's folder is private
    for folder in (tmp_path, tmp_path / "bob", bob.parent):
        assert mode(folder) == 0o711
    assert mode(bob) == 0o700


@as_root
def test_the_folder_belongs_to_the_account_running_the_instance(tmp_path: Path) -> None:
    folder = make_work_folder(tmp_path, "bob", "prof", "notes", account="nobody")
    assert folder.stat().st_uid == 65534 and mode(folder) == 0o700
    assert (tmp_path / ".key").stat().st_uid == os.getuid()


def test_the_spawner_passes_the_work_folder_of_per_viewer_instances_only(
    config, tmp_path, files
) -> None:
    config.DashboardLocalSpawner.run_as_hub_user = True
    config.DashboardLocalSpawner.viewer_work_root = str(tmp_path / "work")
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    before_start(spawner)
    args = spawner.get_args()
    work = [a.split("=", 1)[1] for a in args if a.startswith("--work-dir=")]
    assert work and Path(work[0]).parent == tmp_path / "work" / VIEWER / AUTHOR
    assert Path(work[0]).is_dir() and "--work-max-bytes=200000000" in args

    shared = spawner_for(config, tmp_path, VIEWER, AUTHOR, mode="shared")
    before_start(shared)
    assert not [a for a in shared.get_args() if a.startswith("--work")]

    pool = spawner_for(config, tmp_path, "hub-viz-pool", AUTHOR)
    before_start(pool)
    assert "--work-scratch" in pool.get_args()
    assert not [a for a in pool.get_args() if a.startswith("--work-dir")]


def test_a_work_folder_the_hub_cannot_make_is_a_readable_spawn_error(
    config, tmp_path, files
) -> None:
    config.DashboardLocalSpawner.run_as_hub_user = True
    (tmp_path / "file").write_text("not a folder")
    config.DashboardLocalSpawner.viewer_work_root = str(tmp_path / "file" / "work")
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    with pytest.raises(Exception) as e:
        before_start(spawner)
    assert e.value.jupyterhub_message == (
        "Cannot start dashboard 'probe-1a2b3c4d': the hub could not make your own work "
        "folder for it. An administrator can read why in the hub's log."
    )


# -- the copy ---------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "author"
    (src / "data").mkdir(parents=True)
    (src / "notes.ipynb").write_text("author's notebook")
    (src / "data" / "table.csv").write_text("a,b\n1,2\n")
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "notes-checkpoint.ipynb").write_text("old")
    (src / "secrets").symlink_to("/etc")
    return src


def test_the_first_start_copies_the_folder_without_checkpoints_or_links(source, tmp_path):
    work = tmp_path / "work"
    assert workdir.prepare(str(source), str(work), "notes.ipynb", 10_000) == str(work)
    assert (work / "notes.ipynb").read_text() == "author's notebook"
    assert (work / "data" / "table.csv").read_text() == "a,b\n1,2\n"
    assert not (work / ".ipynb_checkpoints").exists() and not (work / "secrets").exists()


def test_what_the_viewer_saved_is_kept_and_a_deleted_entry_comes_back(source, tmp_path):
    work = tmp_path / "work"
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000)
    (work / "data" / "table.csv").write_text("mine")
    (work / "mine.txt").write_text("my file")
    (source / "new.txt").write_text("added by the author later")
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000)
    assert (work / "data" / "table.csv").read_text() == "mine"
    assert (work / "mine.txt").read_text() == "my file"
    assert not (work / "new.txt").exists()
    (work / "notes.ipynb").unlink()
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000)
    assert (work / "notes.ipynb").read_text() == "author's notebook"
    assert (work / "data" / "table.csv").read_text() == "mine"


def options(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    workdir.add_arguments(parser)
    ns = parser.parse_args([f"--{k.replace('_', '-')}={v}" for k, v in kw.items()])
    ns.entry = "notes.ipynb"
    return ns


def test_a_folder_too_large_to_copy_fails_the_start_with_a_reason(source, tmp_path):
    app = AppProcess(["true"], env={}, cwd=str(source), ready_url="http://127.0.0.1:9/")
    opts = options(work_dir=tmp_path / "work", work_max_bytes=10)
    assert asyncio.run(workdir.use_work_folder(opts, app)) is False
    assert app.state is AppState.FAILED
    assert app.message == (
        "The dashboard's folder holds more than 10 bytes; each viewer of a per-viewer "
        "dashboard gets a copy of it. Move the dashboard into a folder of its own with "
        "only what it needs."
    )


def test_the_app_runs_in_the_copy_and_a_scratch_copy_is_removed(source, tmp_path):
    app = AppProcess(["true"], env={}, cwd=str(source), ready_url="http://127.0.0.1:9/")
    assert asyncio.run(workdir.use_work_folder(options(work_dir=tmp_path / "w"), app))
    assert app.cwd == str(tmp_path / "w")

    app = AppProcess(["true"], env={}, cwd=str(source), ready_url="http://127.0.0.1:9/")
    opts = options()
    opts.work_scratch = True
    assert asyncio.run(workdir.use_work_folder(opts, app))
    assert app.cwd != str(source) and (Path(app.cwd) / "notes.ipynb").exists()
    workdir.clean_up(opts)
    assert not Path(app.cwd).exists()


@as_root
def test_a_work_folder_the_sandbox_account_cannot_reach_is_refused(config, tmp_path, files) -> None:
    """The sandbox account must reach its folder: a private state dir above it is refused."""
    private = files / "private"  # under a folder others may enter
    private.mkdir(mode=0o700)
    config.DashboardLocalSpawner.sandbox_user = "nobody"
    config.DashboardLocalSpawner.viewer_work_root = str(private / "viewer-work")
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    with pytest.raises(Exception) as e:
        before_start(spawner)
    assert "could not make your own work folder" in e.value.jupyterhub_message
    assert "nobody cannot reach" in e.value.log_message

    private.chmod(0o711)
    before_start(spawner)
    work = next(a.split("=", 1)[1] for a in spawner.get_args() if a.startswith("--work-dir="))
    assert Path(work).stat().st_uid == 65534


def test_a_new_version_brings_the_authors_changes_and_keeps_the_viewers(source, tmp_path):
    """As nbgitpuller: untouched files follow the author; the viewer's edits stay."""
    work = tmp_path / "work"
    (source / "helper.py").write_text("v1 helper")
    (source / "old.txt").write_text("dropped in v2")
    (source / "edited-old.txt").write_text("dropped in v2, edited by the viewer")
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 1")
    (work / "data" / "table.csv").write_text("the viewer's table")
    (work / "edited-old.txt").write_text("mine now")
    (work / "helper.py").unlink()  # the viewer deleted it
    (work / "mine.txt").write_text("my own file")

    v2 = tmp_path / "author-v2"
    shutil.copytree(source, v2, symlinks=True)
    (v2 / "notes.ipynb").write_text("author's notebook, v2")
    (v2 / "data" / "table.csv").write_text("a,b\n3,4\n")
    (v2 / "helper.py").write_text("v2 helper")
    (v2 / "new.txt").write_text("added in v2")
    (v2 / "mine.txt").write_text("the author's file of the viewer's name")
    (v2 / "old.txt").unlink()
    (v2 / "edited-old.txt").unlink()
    # the same version again changes nothing
    workdir.prepare(str(v2), str(work), "notes.ipynb", 10_000, "version 1")
    assert (work / "notes.ipynb").read_text() == "author's notebook"
    assert (work / "old.txt").exists() and not (work / "new.txt").exists()

    workdir.prepare(str(v2), str(work), "notes.ipynb", 10_000, "version 2")
    assert (work / "notes.ipynb").read_text() == "author's notebook, v2"  # untouched: updated
    assert (work / "new.txt").read_text() == "added in v2"
    assert not (work / "old.txt").exists()  # untouched, gone from v2: removed
    assert (work / "data" / "table.csv").read_text() == "the viewer's table"
    assert (work / "edited-old.txt").read_text() == "mine now"
    assert not (work / "helper.py").exists()  # the viewer deleted it: not brought back
    assert (work / "mine.txt").read_text() == "my own file"

    # the viewer's edit stays theirs in later versions too; untouched files keep following
    v3 = tmp_path / "author-v3"
    shutil.copytree(v2, v3, symlinks=True)
    (v3 / "data" / "table.csv").write_text("a,b\n5,6\n")
    (v3 / "new.txt").write_text("changed in v3")
    workdir.prepare(str(v3), str(work), "notes.ipynb", 10_000, "version 3")
    assert (work / "data" / "table.csv").read_text() == "the viewer's table"
    assert (work / "new.txt").read_text() == "changed in v3"


def test_a_folder_filled_by_an_older_launcher_keeps_every_file_and_gets_new_ones(source, tmp_path):
    work = tmp_path / "work"
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 1")
    (work / workdir.MARKER).write_text("copied from the dashboard's folder (10 bytes)\n")
    (source / "notes.ipynb").write_text("author's notebook, v2")
    (source / "new.txt").write_text("added")
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 2")
    assert (work / "notes.ipynb").read_text() == "author's notebook"  # cannot tell: kept
    assert (work / "new.txt").read_text() == "added"


def test_a_new_version_too_large_to_copy_is_refused_with_the_reason(source, tmp_path):
    work = tmp_path / "work"
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 1")
    (source / "big.bin").write_bytes(b"x" * 20_000)
    with pytest.raises(workdir.WorkCopyError, match="holds more than 10000 bytes"):
        workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 2")
    assert not (work / "big.bin").exists()


def test_a_marker_naming_files_outside_the_work_folder_is_not_followed(source, tmp_path):
    work = tmp_path / "work"
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 1")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the viewer's")
    sha = workdir.digest(outside)
    marker = work / workdir.MARKER
    data = json.loads(marker.read_text())
    data["files"]["../outside.txt"] = sha  # what an app writing there could claim
    data["files"][str(outside)] = sha
    marker.write_text(json.dumps(data))
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 2")
    assert outside.read_text() == "not the viewer's"


def version_run(work: Path) -> str:
    """What ``app.VERSION`` a Python started in ``work`` imports (writing its bytecode)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", "import app; print(app.VERSION)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return done.stdout.strip()


def test_a_new_version_within_the_same_second_is_not_run_from_stale_bytecode(source, tmp_path):
    """The same size and modification second as the first copy: Python would reuse the
    cached module of the old version."""
    (source / "app.py").write_text("VERSION = 'v1'\n")
    work = tmp_path / "work"
    workdir.prepare(str(source), str(work), "notes.ipynb", 10_000, "version 1")
    assert version_run(work) == "v1" and (work / "__pycache__").is_dir()
    v2 = tmp_path / "v2"
    shutil.copytree(source, v2, symlinks=True)
    (v2 / "app.py").write_text("VERSION = 'v2'\n")  # the same size
    workdir.prepare(str(v2), str(work), "notes.ipynb", 10_000, "version 2")
    # the copy's time set back to the first one's second, as a fast update would have it
    first = (work / workdir.MARKER).stat().st_mtime
    os.utime(work / "app.py", (first, first))
    assert version_run(work) == "v2"
