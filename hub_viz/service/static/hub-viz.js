/* hub_viz service pages: a small JSON API helper that sends the XSRF token. */
(function () {
  "use strict";
  var main = document.querySelector("main");
  var xsrf = main ? main.getAttribute("data-xsrf") : "";
  window.hubViz = {
    prefix: main ? main.getAttribute("data-prefix") : "",
    xsrf: xsrf,
    headers: {},  // sent with every call too (an embed's viewer ticket)
    api: function (method, url, body) {
      var init = {method: method, credentials: "same-origin",
                  headers: window.hubViz.with({"X-XSRFToken": xsrf, "Accept": "application/json"})};
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (r) {
        if (r.status === 204) { return {}; }
        return r.json().catch(function () { return null; }).then(function (data) {
          if (!r.ok) {
            var err = new Error((data && data.message) || ("HTTP " + r.status));
            err.status = r.status;
            // the proxy's own 502/503/504 page, not the service's answer: the service is
            // restarting (or the way to it is down), so asking again later will do
            err.transient = !data && [502, 503, 504].indexOf(r.status) >= 0;
            throw err;
          }
          return data || {};
        });
      }, function (cause) {
        var err = new Error("The dashboards service cannot be reached.");
        err.status = 0;
        err.transient = true;  // the network, or the proxy restarting
        err.cause = cause;
        throw err;
      });
    },
    with: function (headers) {
      Object.keys(window.hubViz.headers).forEach(function (name) {
        headers[name] = window.hubViz.headers[name];
      });
      return headers;
    }
  };
})();
