"""``python -m benchmarks [--suite open-latency|phone-home|all] [options]``.

``open-latency`` (the default) times opening dashboards against the bare
frameworks; ``phone-home`` measures the service under many viewers' pings;
``all`` runs both, one after the other, each writing its default JSON file.
"""

import argparse
import copy
import sys

from benchmarks import open_latency, phone_home

SUITES = {"open-latency": open_latency, "phone-home": phone_home}


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--suite", choices=[*SUITES, "all"], default="open-latency")
    known, _ = pre.parse_known_args(argv)
    names = list(SUITES) if known.suite == "all" else [known.suite]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every suite, one after the other." if known.suite == "all"
        else SUITES[known.suite].__doc__.split("\n")[0],
        epilog="Other suites: --suite " + ", ".join(n for n in [*SUITES, "all"] if n != known.suite)
        + " (see --suite NAME --help).",
    )
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="open-latency",
                        help="which benchmark to run (default: %(default)s)")
    single = len(names) == 1
    for name in names:  # with 'all', each suite writes its default JSON file
        SUITES[name].add_arguments(parser, json_option=single)
    args = parser.parse_args(argv)
    for name in names:
        SUITES[name].check(parser, args)
    for name in names:
        suite_args = copy.copy(args)
        if not single:
            suite_args.json = SUITES[name].build_parser().get_default("json")
        print(f"== {name} ==", file=sys.stderr, flush=True)
        code = SUITES[name].run(suite_args)
        if code:
            return code
    return 0


sys.exit(main())
