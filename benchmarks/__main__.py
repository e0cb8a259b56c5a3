"""``python -m benchmarks [--suite open-latency|burst|memory|launcher|phone-home|faults|all] [--quick] [options]``.

``open-latency`` (the default) times opening dashboards; ``burst`` a whole
class opening one dashboard at once; ``memory`` what the launcher and each
viewer cost in RSS; ``launcher`` the launcher's own RSS and what it adds to a page,
without a hub; ``phone-home`` the service under many viewers' pings; ``faults`` what viewers see and
what the records say while the app, the service or the proxy fails, and under abuse.
``all`` runs them one after the other, each writing its default JSON file.
``--quick`` is a fast smoke run (small counts, one repetition).
"""

from __future__ import annotations

import argparse
import copy
import sys

from benchmarks import burst, faults, hubside, launcher, memory, open_latency, phone_home
from benchmarks.common import FRAMEWORKS, KNOWN_FRAMEWORKS

SUITES = {
    "open-latency": open_latency,
    "burst": burst,
    "memory": memory,
    "launcher": launcher,
    "phone-home": phone_home,
    "faults": faults,
}


def build_parser(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser for the chosen suite(s) and their names."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=[*SUITES, "all"], default="open-latency")
    known, _ = pre.parse_known_args(argv)
    names = list(SUITES) if known.suite == "all" else [known.suite]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every suite, one after the other."
        if known.suite == "all"
        else SUITES[known.suite].__doc__.split("\n")[0],
        epilog="Other suites: --suite "
        + ", ".join(n for n in [*SUITES, "all"] if n != known.suite)
        + " (see --suite NAME --help).",
    )
    parser.add_argument(
        "--suite",
        choices=[*SUITES, "all"],
        default="open-latency",
        help="which benchmark to run (default: %(default)s)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: small counts, one repetition"
    )
    common = parser.add_argument_group("all suites")
    common.add_argument(
        "--frameworks",
        default=",".join(FRAMEWORKS),
        help="comma-separated frameworks (default: %(default)s; also "
        + ", ".join(f for f in KNOWN_FRAMEWORKS if f not in FRAMEWORKS)
        + ")",
    )
    common.add_argument(
        "--per-viewer-framework",
        choices=FRAMEWORKS,
        default="dash",
        help="framework of the per-viewer scenarios (%(default)s)",
    )
    common.add_argument(
        "--layout",
        choices=("isolated", "path-based"),
        default="isolated",
        help="the hub's layout: the service and each dashboard on hosts of "
        "their own below hub.localhost, or all on 127.0.0.1 (%(default)s)",
    )
    common.add_argument(
        "--preload-apps",
        choices=("on", "off"),
        default="on",
        help="hub_viz's apps of a framework with 'preload' (Dash) forked from a process "
        "that has it imported, or each a new Python (%(default)s; with forked launchers)",
    )
    single = len(names) == 1
    for name in names:  # with 'all', each suite writes its default JSON file
        SUITES[name].add_arguments(parser, json_option=single)
    return parser, names


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Parsed and checked options, and the suites to run."""
    parser, names = build_parser(argv)
    args = parser.parse_args(argv)
    args.framework_list = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = set(args.framework_list) - set(KNOWN_FRAMEWORKS)
    if unknown or not args.framework_list:
        parser.error(
            f"unknown frameworks {sorted(unknown)}; choose from {', '.join(KNOWN_FRAMEWORKS)}"
        )
    for name in names:
        SUITES[name].check(parser, args)
    return args, names


def main(argv: list[str] | None = None) -> int:
    args, names = parse(argv)
    hubside.ISOLATED = args.layout == "isolated"
    single = len(names) == 1
    worst = 0
    for name in names:
        suite_args = copy.copy(args)
        if not single:
            parser = argparse.ArgumentParser()
            SUITES[name].add_arguments(parser)
            suite_args.json = parser.get_default("json")
        print(f"== {name} ==", file=sys.stderr, flush=True)
        code = SUITES[name].run(suite_args)
        if code == 1 or (code and single):
            return code
        worst = max(worst, code)  # an unsupported scenario: the other suites still run
    return worst


if __name__ == "__main__":
    sys.exit(main())
