/* Manage page: stop, unpublish and read the log of one dashboard. */
(function () {
  "use strict";
  var api = document.getElementById("manage").getAttribute("data-api");
  var note = document.getElementById("action-message");
  var link = document.getElementById("open-link");  // the whole address, ready to copy
  link.textContent = new URL(link.textContent, window.location.href).href;  // a path, or absolute
  function say(text, kind) {
    note.className = "alert alert-" + (kind || "info");
    note.textContent = text;
  }
  document.getElementById("stop").addEventListener("click", function () {
    window.hubViz.api("POST", api + "/stop").then(function (r) {
      say(r.stopped ? "Stopped " + r.stopped + " instance(s)." : "Nothing was running.");
      document.getElementById("status").textContent = "stopped";
    }).catch(function (e) { say(e.message, "danger"); });
  });
  document.getElementById("unpublish").addEventListener("click", function () {
    if (!window.confirm("Unpublish this dashboard? Its servers stop and every share is revoked.")) { return; }
    window.hubViz.api("DELETE", api).then(function () {
      window.location.href = window.hubViz.prefix;
    }).catch(function (e) { say(e.message, "danger"); });
  });
  document.getElementById("show-logs").addEventListener("click", function () {
    var pre = document.getElementById("logs");
    window.hubViz.api("GET", api + "/logs").then(function (r) {
      var lines = r.log || [];
      pre.textContent = (r.message ? r.message + "\n" : "") + (lines.length ? lines.join("\n")
        : "No output yet: the app has written nothing to its log since it started.");
      pre.classList.remove("d-none");
    }).catch(function (e) { say(e.message, "danger"); });
  });
})();
/* Embed links: create, copy the snippet, revoke. */
(function () {
  "use strict";
  var api = document.getElementById("manage").getAttribute("data-api") + "/embeds";
  var body = document.querySelector("#embeds tbody");
  var note = document.getElementById("action-message");
  function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
  function render(items) {
    body.innerHTML = "";
    items.forEach(function (e) {
      var row = document.createElement("tr");
      row.setAttribute("data-embed", String(e.id));
      cell(row, e.origins.join(" "));
      cell(row, e.anonymous ? "none" : "hub login");
      cell(row, e.revoked ? "revoked" : (e.expires ? e.expires.slice(0, 10) + (e.live ? "" : " (expired)") : "never"));
      var td = cell(row, "");
      if (e.live) {
        var snippet = document.createElement("textarea");
        snippet.className = "form-control form-control-sm embed-snippet";
        snippet.readOnly = true; snippet.rows = 2; snippet.value = e.snippet;
        snippet.addEventListener("focus", function () { snippet.select(); });
        td.appendChild(snippet);
      }
      var actions = cell(row, "");
      if (e.live) {
        var revoke = document.createElement("button");
        revoke.className = "btn btn-sm btn-outline-danger embed-revoke";
        revoke.textContent = "Revoke";
        revoke.addEventListener("click", function () {
          window.hubViz.api("DELETE", api + "/" + e.id).then(load);
        });
        actions.appendChild(revoke);
      }
      body.appendChild(row);
    });
  }
  function load() { window.hubViz.api("GET", api).then(function (r) { render(r.items); }); }
  document.getElementById("embed-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var origins = document.getElementById("embed-origins").value.split(/[\s,]+/).filter(Boolean);
    var days = document.getElementById("embed-days").value;
    var req = {origins: origins, anonymous: document.getElementById("embed-anonymous").checked};
    if (days) { req.expires_in_days = Number(days); }
    window.hubViz.api("POST", api, req).then(load).catch(function (e) {
      note.className = "alert alert-danger"; note.textContent = e.message;
    });
  });
  load();
})();
