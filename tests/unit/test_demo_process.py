"""The demo's hub process: started so SIGINT can stop it, and ended with everything it
started when it does not stop in time (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from hub_viz.demo import descendants, start_hub, stop_demo_hub

from ..conftest import alive, wait_until


def ignored_signals(pid: int) -> int:
    """The process's ignored-signal mask (``SigIgn`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigIgn line")


def ignores_sigint(pid: int) -> bool:
    return bool(ignored_signals(pid) & (1 << (signal.SIGINT - 1)))


# A demo started with SIGINT ignored (a script's background job) starts its hub and
# reports whether each ignores SIGINT; the hub is a plain sleeper here.
DEMO_IGNORING_SIGINT = textwrap.dedent(
    """
    import signal, subprocess, sys
    from pathlib import Path
    from hub_viz.demo import start_hub

    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    hub = start_hub([sys.executable, "-c", "import time; time.sleep(60)"])
    mask = lambda pid: int(next(
        l.split()[1] for l in Path(f"/proc/{pid}/status").read_text().splitlines()
        if l.startswith("SigIgn:")), 16) & (1 << (signal.SIGINT - 1))
    print(bool(mask("self")), bool(mask(hub.pid)), hub.pid, flush=True)
    hub.kill()
    hub.wait()
    """
)


def test_the_hub_starts_with_sigint_even_when_the_demo_ignores_it():
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    done = subprocess.run(
        [sys.executable, "-c", DEMO_IGNORING_SIGINT],
        preexec_fn=ignore_sigint,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    demo_ignores, hub_ignores, _ = done.stdout.split()
    assert demo_ignores == "True"  # the demo's own choice is left alone
    assert hub_ignores == "False"  # the hub can be asked to stop


def test_the_hub_runs_in_a_session_of_its_own():
    hub = start_hub([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert os.getsid(hub.pid) == hub.pid != os.getsid(0)
        assert not ignores_sigint(hub.pid)
    finally:
        hub.kill()
        hub.wait()


# A hub that does not stop on SIGINT, with a service in a session of its own (as
# JupyterHub starts its services, the proxy and local servers).
STUBBORN_HUB = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    service = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; "
         "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"],
        start_new_session=True,
    )
    print(service.pid, flush=True)
    time.sleep(60)
    """
)


def test_a_hub_that_does_not_stop_is_ended_with_what_it_started():
    hub = start_hub([sys.executable, "-c", STUBBORN_HUB], stdout=subprocess.PIPE, text=True)
    service = 0
    try:
        service = int(hub.stdout.readline())
        assert os.getsid(service) == service != hub.pid  # out of the hub's group
        assert service in descendants(hub.pid)
        assert stop_demo_hub(hub, grace=0.5) == 1
        assert hub.poll() is not None
        wait_until(lambda: not alive(service), timeout=5, what="the service to end", every=0.1)
    finally:
        if service and alive(service):
            os.kill(service, signal.SIGKILL)
        if hub.poll() is None:
            hub.kill()
            hub.wait()


HUB_THAT_STOPS = textwrap.dedent(
    """
    import time
    print("started", flush=True)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        pass
    """
)


def test_a_hub_that_stops_is_left_to_stop():
    hub = start_hub([sys.executable, "-c", HUB_THAT_STOPS], stdout=subprocess.PIPE, text=True)
    assert hub.stdout.readline().strip() == "started"  # its SIGINT handler is in place
    assert stop_demo_hub(hub, grace=30) == 0
    assert hub.returncode == 0


def test_descendants_of_a_process_without_children():
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            assert descendants(child.pid) == set()
            assert child.pid in descendants(os.getpid())
        finally:
            child.kill()
