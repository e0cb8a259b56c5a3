"""The example dashboards and what only their running code produces."""

from __future__ import annotations


def sum_of_squares(n: int) -> int:
    return sum(i * i for i in range(1, n + 1))


# server name -> (spec, text the running app shows)
EXAMPLES = {
    "voila-example": (
        {"framework": "voila", "entry": "voila/dashboard.ipynb"},
        f"Sum of squares 1..100 = {sum_of_squares(100)}",
    ),
    "dash-example": (
        {"framework": "dash", "entry": "dash/app.py"},
        f"Sum of squares 1..200 = {sum_of_squares(200)}",
    ),
    "bokeh-example": (
        {"framework": "bokeh", "entry": "bokeh/app.py"},
        f"Sum of squares 1..300 = {sum_of_squares(300)}",
    ),
    "panel-example": (
        {"framework": "panel", "entry": "panel/app.py"},
        f"Sum of squares 1..400 = {sum_of_squares(400)}",
    ),
    "streamlit-example": (
        {"framework": "streamlit", "entry": "streamlit/app.py"},
        f"Sum of squares 1..500 = {sum_of_squares(500)}",
    ),
    "notebook-example": (
        {"framework": "notebook", "entry": "notebook/analysis.ipynb", "mode": "per-viewer"},
        str(sum_of_squares(600)),
    ),
}

# Frameworks whose page is drawn in the browser over a websocket.
WEBSOCKET_RENDERED = ("voila-example", "bokeh-example", "panel-example", "streamlit-example")

# The frameworks added after the first six: kept apart so that a test environment
# without them still runs everything above. name -> (spec, text, module it needs).
MORE_EXAMPLES = {
    "gradio-example": (
        {"framework": "gradio", "entry": "gradio/app.py"},
        f"Sum of squares 1..700 = {sum_of_squares(700)}",
        "gradio",
    ),
    "shiny-example": (
        {"framework": "shiny", "entry": "shiny/app.py"},
        f"Sum of squares 1..800 = {sum_of_squares(800)}",
        "shiny",
    ),
    "marimo-example": (
        {"framework": "marimo", "entry": "marimo/app.py"},
        f"Sum of squares 1..900 = {sum_of_squares(900)}",
        "marimo",
    ),
    "solara-example": (
        {"framework": "solara", "entry": "solara/app.py"},
        f"Sum of squares 1..1000 = {sum_of_squares(1000)}",
        "solara",
    ),
    "nicegui-example": (
        {"framework": "nicegui", "entry": "nicegui/app.py"},
        f"Sum of squares 1..1100 = {sum_of_squares(1100)}",
        "nicegui",
    ),
}
