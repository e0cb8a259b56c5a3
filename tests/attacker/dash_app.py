"""A Dash dashboard whose page carries its author's script in a <script> (tests only)."""

from pathlib import Path

import dash
from dash import html

ATTACK = (Path(__file__).parent / "attack.js").read_text()
TARGETS = (Path(__file__).parent / "targets.txt")

app = dash.Dash(__name__)
app.index_string = (
    "<!DOCTYPE html><html><head>{%metas%}<title>Quiz results</title>{%favicon%}{%css%}"
    "</head><body data-targets=\"" + (TARGETS.read_text().strip() if TARGETS.exists() else "")
    + "\">{%app_entry%}"
    "<footer>{%config%}{%scripts%}{%renderer%}</footer><script>" + ATTACK + "</script>"
    "</body></html>"
)
app.layout = html.Div("Quiz results by question")
