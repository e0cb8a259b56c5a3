"""Bokeh server example: a number computed by the server and a plot."""

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Div, Slider
from bokeh.plotting import figure

TOTAL = sum(i * i for i in range(1, 301))

total = Div(text=f"Sum of squares 1..300 = {TOTAL}")
slider = Slider(start=1, end=10, value=3, step=1, title="power")
plot = figure(height=300, width=500, title="x to the power")
xs = list(range(1, 11))
line = plot.line(xs, [x**3 for x in xs])


def update(attr, old, new):
    line.data_source.data = {"x": xs, "y": [x**new for x in xs]}


slider.on_change("value", update)
curdoc().add_root(column(total, slider, plot))
curdoc().title = "Bokeh example"
