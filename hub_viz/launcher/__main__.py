"""The launcher's process: ``python -m hub_viz.launcher`` and ``hub-viz-launch``."""

import sys


def main() -> None:
    """Run the launcher in this process (never called where the hub or the service runs)."""
    # tornado.log imports curses only to colour a terminal's log lines; the launcher logs to
    # a pipe, and curses with its ncurses libraries is half a MiB in every instance.
    sys.modules.setdefault("curses", None)  # type: ignore[arg-type]
    from .app import main as launch
    from .procself import hide_from_the_app

    hide_from_the_app()
    launch()


if __name__ == "__main__":
    main()
