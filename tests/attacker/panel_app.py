"""A Panel dashboard whose HTML pane carries its author's script (tests only)."""

import sys
from pathlib import Path

import panel as pn

sys.path.insert(0, str(Path(__file__).parent))
from payload import onerror_html

pn.pane.HTML(onerror_html("Quiz results by question")).servable(title="Quiz")
