/* Manage page: stop, unpublish and read the log of one dashboard. */
(function () {
  "use strict";
  var api = document.getElementById("manage").getAttribute("data-api");
  var note = document.getElementById("action-message");
  var link = document.getElementById("open-link");  // the whole address, ready to copy
  link.textContent = window.location.origin + link.textContent;
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
      pre.textContent = (r.message ? r.message + "\n" : "") + (r.log || []).join("\n");
      pre.classList.remove("d-none");
    }).catch(function (e) { say(e.message, "danger"); });
  });
})();
