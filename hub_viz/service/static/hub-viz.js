/* hub_viz service pages: a small JSON API helper that sends the XSRF token. */
(function () {
  "use strict";
  var main = document.querySelector("main");
  var xsrf = main ? main.getAttribute("data-xsrf") : "";
  window.hubViz = {
    prefix: main ? main.getAttribute("data-prefix") : "",
    xsrf: xsrf,
    api: function (method, url, body) {
      var init = {method: method, credentials: "same-origin",
                  headers: {"X-XSRFToken": xsrf, "Accept": "application/json"}};
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (r) {
        if (r.status === 204) { return {}; }
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) {
            var err = new Error(data.message || ("HTTP " + r.status));
            err.status = r.status;
            throw err;
          }
          return data;
        });
      });
    }
  };
})();
