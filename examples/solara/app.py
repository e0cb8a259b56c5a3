"""Solara example: a number computed by the app and a slider that squares."""

import solara

TOTAL = sum(i * i for i in range(1, 1001))
n = solara.reactive(7)


@solara.component
def Page():
    solara.Title("Solara example")
    solara.Markdown(f"# Solara example\n\nSum of squares 1..1000 = {TOTAL}")
    solara.SliderInt("n", value=n, min=1, max=20)
    solara.Markdown(f"n squared is {n.value**2}")
