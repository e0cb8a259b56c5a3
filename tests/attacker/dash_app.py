"""A Dash dashboard whose page carries its author's script in a <script> (tests only)."""

from pathlib import Path

import dash
from dash import html

ATTACK = (Path(__file__).parent / "attack.js").read_text()
TARGETS = Path(__file__).parent / "targets.txt"

app = dash.Dash(__name__)
app.index_string = (
    "<!DOCTYPE html><html><head>{%metas%}<title>Quiz results</title>{%favicon%}{%css%}"
    '</head><body data-targets="'
    + (TARGETS.read_text().strip() if TARGETS.exists() else "")
    + '">{%app_entry%}'
    "<footer>{%config%}{%scripts%}{%renderer%}</footer><script>" + ATTACK + "</script>"
    "</body></html>"
)
app.layout = html.Div("Quiz results by question")

# Cookies for the whole hub domain and in the names of the hub's, the service's and
# hub_viz's own, sent with every answer of the app: the launcher must drop them all.
PLANTED = (
    "jupyterhub-hub-login",
    "jupyterhub-session-id",
    "_xsrf",
    "hub-viz-viewer",
    "service-hub-viz",
    "planted-for-the-domain",
)


@app.server.after_request
def plant_cookies(response):
    for name in PLANTED[:-1]:
        response.headers.add("Set-Cookie", f"{name}=planted-by-the-author; Path=/")
    # the test hub's domain (the app itself sees only its own loopback address)
    response.headers.add("Set-Cookie", f"{PLANTED[-1]}=x; Domain=hub.localhost; Path=/")
    return response
