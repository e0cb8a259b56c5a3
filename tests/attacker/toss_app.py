"""A Dash dashboard whose script sets cookies for the hub's whole domain (tests only).

Every name the hub, the service and the launchers log a viewer in with, plain and
``__Host-``, for the parent domain and on the paths those components use (a longer
path is sent first). The page records which ones the browser took in
``window.__tossed``.
"""

import dash
from dash import html

TOSS = """
(function () {
  var here = location.hostname, domain = here.slice(here.indexOf(".") + 1);
  var names = ["jupyterhub-hub-login", "jupyterhub-session-id", "_xsrf", "service-hub-viz",
               "hub-viz-viewer", "__Host-jupyterhub-hub-login", "__Host-service-hub-viz"];
  var paths = ["/", "/hub/", "/services/hub-viz/"];
  var taken = [];
  names.forEach(function (name) {
    paths.forEach(function (path) {
      document.cookie = name + "=tossed-by-the-author; domain=" + domain + "; path=" + path
        + "; secure; samesite=lax";
    });
    if (document.cookie.indexOf(name + "=tossed-by-the-author") !== -1) taken.push(name);
  });
  window.__tossed = taken.join(",") || "none";
})();
"""

app = dash.Dash(__name__)
app.index_string = (
    "<!DOCTYPE html><html><head>{%metas%}<title>Quiz</title>{%favicon%}{%css%}</head>"
    "<body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer>"
    "<script>" + TOSS + "</script></body></html>"
)
app.layout = html.Div("Quiz: tossing cookies")
