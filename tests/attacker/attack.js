/* An author's script, run in a viewer's browser by the dashboard that carries it
   (a <script> in a Dash page, an <img onerror> in a Bokeh Div, a Panel HTML pane or
   an ipywidgets HTML output). Each attempt records how it ended; the test reads
   window.__attack from the frame. Targets come as window.__targets or the body's
   data-targets attribute: "victim=<user>&targets=<url>,<url>". */
(function () {
  "use strict";
  var here = location.hostname;                       // <author>.<hub domain>
  var domain = here.slice(here.indexOf(".") + 1);      // the hub's domain
  var port = location.port ? ":" + location.port : "";
  var HUB = location.protocol + "//" + domain + port;
  var SERVICE = location.protocol + "//hub-viz--service." + domain + port + "/services/hub-viz/";
  var params = new URLSearchParams(window.__targets || document.body.getAttribute("data-targets") || "");
  var victim = params.get("victim") || "admin";
  var targets = (params.get("targets") || "").split(",").filter(Boolean);
  var results = {};

  function outcome(promise) {
    return promise.then(function (r) {
      return r.type === "opaque" ? "opaque" : "status " + r.status;
    }, function (e) { return e.name + ": " + e.message; });
  }
  function attempt(name, fn) {
    return Promise.resolve().then(fn).then(function (v) { results[name] = String(v); },
      function (e) { results[name] = e.name + ": " + e.message; });
  }
  function frame(src) {
    return new Promise(function (resolve) {
      var f = document.createElement("iframe");
      f.style.display = "none";
      f.onload = function () {
        try {
          var doc = f.contentDocument;  // null for a document of another origin
          resolve(doc === null ? "no document" : "read " + doc.cookie);
        } catch (e) { resolve(e.name); }
      };
      f.src = src;
      document.body.appendChild(f);
    });
  }
  var json = {"Content-Type": "application/json"};
  Promise.all([
    attempt("hub_home", function () { return outcome(fetch(HUB + "/hub/home", {credentials: "include"})); }),
    attempt("hub_token", function () {
      return outcome(fetch(HUB + "/hub/api/users/" + victim + "/tokens",
        {method: "POST", credentials: "include", headers: json, body: "{}"}));
    }),
    attempt("hub_token_no_cors", function () {
      return outcome(fetch(HUB + "/hub/api/users/" + victim + "/tokens",
        {method: "POST", credentials: "include", mode: "no-cors", body: "{}"}));
    }),
    attempt("hub_make_admin", function () {
      return outcome(fetch(HUB + "/hub/api/users/" + here.split(".")[0],
        {method: "PATCH", credentials: "include", headers: json, body: '{"admin": true}'}));
    }),
    attempt("service_list", function () {
      return outcome(fetch(SERVICE + "api/dashboards", {credentials: "include"}));
    }),
    attempt("service_publish_no_cors", function () {
      return outcome(fetch(SERVICE + "api/dashboards", {method: "POST", credentials: "include",
        mode: "no-cors", body: '{"title": "planted", "entry": "dash/app.py", "visibility": "all"}'}));
    }),
    attempt("parent_document", function () { return window.parent.document.cookie; }),
    attempt("service_static_frame", function () { return frame(SERVICE + "static/hub-viz.css"); }),
    attempt("hub_frame", function () { return frame(HUB + "/hub/home"); }),
    attempt("own_cookies", function () {
      // the names of what this page can read, but for what an author's script set itself
      return document.cookie.split(";").filter(function (c) { return c.indexOf("tossed-by") < 0; })
        .map(function (c) { return c.split("=")[0].trim(); }).filter(Boolean).join(",") || "none";
    }),
  ].concat(targets.map(function (url) {
    // the viewer's other dashboards and servers, which the viewer's cookies open
    return attempt("reach " + url, function () {
      return outcome(fetch(url, {credentials: "include"}));
    });
  }))).then(function () {
    // last: a cookie in the name of every dashboard's viewer cookie, for the whole domain
    return attempt("toss_viewer_cookie", function () {
      document.cookie = "hub-viz-viewer=tossed-by-the-author; domain=" + domain + "; path=/";
      return document.cookie.indexOf("hub-viz-viewer=tossed") !== -1 ? "set" : "not set";
    });
  }).then(function () {
    window.__attack = results;
  });
})();
