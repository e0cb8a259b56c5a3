"""NiceGUI example: a number computed by the app and a slider that squares."""

from nicegui import ui

TOTAL = sum(i * i for i in range(1, 1101))


@ui.page("/")
def index() -> None:
    ui.label("NiceGUI example").classes("text-h4")
    ui.label(f"Sum of squares 1..1100 = {TOTAL}")
    slider = ui.slider(min=1, max=20, value=7)
    ui.label().bind_text_from(slider, "value", lambda n: f"n squared is {int(n) ** 2}")


ui.run(title="NiceGUI example")
