"""Dash example: a number computed at start-up and a callback round trip."""

import dash
from dash import Input, Output, dcc, html

TOTAL = sum(i * i for i in range(1, 201))

app = dash.Dash(__name__, title="Dash example")
server = app.server
app.layout = html.Div(
    [
        html.H1("Dash example"),
        html.P(f"Sum of squares 1..200 = {TOTAL}", id="total"),
        dcc.Input(id="n", type="number", value=7),
        html.P(id="square"),
    ]
)


@app.callback(Output("square", "children"), Input("n", "value"))
def square(n):
    return f"n squared is {(n or 0) ** 2}"


if __name__ == "__main__":
    app.run(debug=False)
