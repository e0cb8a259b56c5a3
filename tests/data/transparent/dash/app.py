"""A Dash app with routes of its own named like Jupyter server routes.

``files/report.csv`` is a download, ``api/events`` a JSON route, ``links`` says
which URL the app saw for itself (Flask's ``request.url`` is built from the
request's scheme and Host). ``assets/style.css`` is served with an ETag.
"""

import flask
from dash import Dash, html

app = Dash(__name__, title="Transparent downloads")
PREFIX = app.config.routes_pathname_prefix
REPORT = "region,sales\nnorth,42\nsouth,17\n"

app.layout = html.Div([
    html.H1("Downloads"),
    html.A("The sales report", id="report", href=app.get_relative_path("/files/report.csv")),
])


@app.server.route(PREFIX + "files/<path:name>")
def download(name: str) -> flask.Response:
    if name != "report.csv":
        flask.abort(404)
    return flask.Response(REPORT, mimetype="text/csv",
                          headers={"Content-Disposition": "attachment; filename=report.csv"})


@app.server.route(PREFIX + "api/events")
def events() -> flask.Response:
    return flask.jsonify({"events": ["opened", "downloaded"]})


@app.server.route(PREFIX + "links")
def links() -> flask.Response:
    request = flask.request
    return flask.jsonify({"url": request.url, "host_url": request.host_url,
                          "scheme": request.scheme,
                          "forwarded": {name: request.headers.get(name) for name in (
                              "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                              "X-Forwarded-Prefix", "Forwarded", "X-Real-IP", "X-Scheme")}})
