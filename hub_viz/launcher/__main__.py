"""``python -m hub_viz.launcher`` is ``hub-viz-launch``."""

from .app import main

main()
