"""Panel example: a number computed by the server and a reactive widget."""

import panel as pn

TOTAL = sum(i * i for i in range(1, 401))

slider = pn.widgets.IntSlider(name="n", start=1, end=20, value=7)


def square(n):
    return f"n squared is {n * n}"


pn.Column(
    "# Panel example",
    f"Sum of squares 1..400 = {TOTAL}",
    slider,
    pn.bind(square, slider),
).servable(title="Panel example")
