"""Shiny for Python example: a number computed by the app and a slider that squares."""

from shiny import App, render, ui

TOTAL = sum(i * i for i in range(1, 801))

app_ui = ui.page_fluid(
    ui.h2("Shiny example"),
    ui.p(f"Sum of squares 1..800 = {TOTAL}"),
    ui.input_slider("n", "n", min=1, max=20, value=7),
    ui.output_text("square"),
)


def server(input, output, session):
    @render.text
    def square():
        return f"n squared is {input.n() ** 2}"


app = App(app_ui, server)
