"""The launcher that runs in front of each dashboard app (``hub-viz-launch``)."""
