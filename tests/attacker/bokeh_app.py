"""A Bokeh dashboard whose Div carries its author's script (tests only)."""

import sys
from pathlib import Path

from bokeh.io import curdoc
from bokeh.models import Div

sys.path.insert(0, str(Path(__file__).parent))
from payload import onerror_html

curdoc().add_root(Div(text=onerror_html("Quiz results by question")))
