"""What the launcher's process loads: every instance pays for each module in memory."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

# the launcher's start-up as far as its command line (``--help`` stops there), then what it loaded
PROBE = """
import sys
from hub_viz.launcher import __main__ as launcher
sys.argv = ["hub-viz-launch", "--help"]
try:
    launcher.main()
except SystemExit:
    pass
print(" ".join(sorted(name for name, module in sys.modules.items() if module is not None)))
"""

# each a third to half a MiB in every instance, for nothing on the viewer's path (the
# launcher gets its one framework record from the spawner, never the built-in ones)
NOT_LOADED = ("curses", "shutil", "lzma", "bz2", "tornado.options", "hub_viz.builtin_frameworks")


def loaded_by_launcher() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: hub-viz-launch" in out.stdout
    return set(out.stdout.split("\n")[-2].split())


def test_the_launcher_leaves_out_modules_it_does_not_need():
    modules = loaded_by_launcher()
    assert {"tornado.web", "tornado.websocket", "hub_viz.launcher.app"} <= modules
    assert not modules & set(NOT_LOADED)


def test_curses_is_left_out_only_in_the_launcher_process():
    # the hub's and the service's processes import launcher modules too: their coloured
    # terminal logs keep tornado's curses
    probe = "import sys, hub_viz.launcher.app, tornado.log; print(sys.modules.get('curses'))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() != "None"
