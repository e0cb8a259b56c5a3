"""Marimo example, run as an app: a number computed by the notebook and a slider."""

import marimo

app = marimo.App(app_title="Marimo example")


@app.cell
def _():
    import marimo as mo

    total = sum(i * i for i in range(1, 901))
    mo.md(f"# Marimo example\n\nSum of squares 1..900 = {total}")
    return (mo,)


@app.cell
def _(mo):
    n = mo.ui.slider(1, 20, value=7, label="n")
    n  # noqa: B018 (a cell shows its last expression)
    return (n,)


@app.cell
def _(mo, n):
    mo.md(f"n squared is {n.value**2}")
    return


if __name__ == "__main__":
    app.run()
