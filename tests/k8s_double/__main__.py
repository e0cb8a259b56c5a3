"""Run the Kubernetes test double: ``python -m tests.k8s_double --port N --root DIR``.

Prints the path of the kubeconfig it wrote (``DIR/kubeconfig``) once it listens,
then serves until SIGTERM/SIGINT (or, with ``--exit-on-stdin-eof``, until its
stdin closes, so that it dies with the test run that started it), and kills
every pod's processes on the way out. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .api import serve


async def main(args: argparse.Namespace) -> None:
    server, kubelet, kubeconfig = await serve(
        args.root, args.port, args.namespace, args.pod_cidr, args.backoff
    )
    print(kubeconfig, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        loop.add_reader(sys.stdin.fileno(), lambda: os.read(sys.stdin.fileno(), 4096) or stop.set())
    await stop.wait()
    server.stop()
    await kubelet.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.k8s_double", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="on 127.0.0.1; 0: any free port")
    parser.add_argument("--root", required=True, help="for the kubeconfig, pods' files, PVCs")
    parser.add_argument("--namespace", default="default", help="the kubeconfig context's")
    parser.add_argument("--pod-cidr", default="127.1.0.0/16", help="pod IPs, inside 127.0.0.0/8")
    parser.add_argument("--backoff", type=float, default=1.0, help="first restart back-off, s")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s k8s-double %(message)s")
    arguments = parser.parse_args()
    arguments.root = Path(arguments.root).resolve()
    asyncio.run(main(arguments))
