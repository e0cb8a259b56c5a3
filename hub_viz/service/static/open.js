/* The open flow: start the dashboard, follow the hub's progress, then go there. */
(function () {
  "use strict";
  var box = document.getElementById("open");
  var api = box.getAttribute("data-api");
  var bar = document.getElementById("progress-bar");
  var message = document.getElementById("progress-message");
  var log = document.getElementById("progress-log");

  function show(pct, text) {
    if (typeof pct === "number") {
      pct = Math.max(2, Math.min(100, pct));
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", String(pct));
    }
    if (text) {
      message.textContent = text;
      var li = document.createElement("li");
      li.textContent = text;
      log.appendChild(li);
    }
  }
  function fail(text) {
    bar.classList.add("bg-danger");
    bar.classList.remove("progress-bar-animated");
    var box = document.getElementById("open-failed");
    box.textContent = text;
    box.classList.remove("d-none");
    document.getElementById("open-title").textContent = "The dashboard could not open";
  }
  function go(url) {
    show(100, "Ready. Opening the dashboard…");
    window.location.replace(url);
  }
  function follow(progressUrl) {
    var source = new EventSource(progressUrl + "?_xsrf=" + encodeURIComponent(window.hubViz.xsrf));
    var done = false;
    source.onmessage = function (e) {
      var ev = JSON.parse(e.data);
      if (ev.url) { done = true; source.close(); go(ev.url); return; }
      if (ev.failed) { done = true; source.close(); fail(ev.message || "The dashboard failed to start."); return; }
      show(ev.progress, ev.message);
    };
    source.onerror = function () {
      source.close();
      if (!done) { setTimeout(start, 1000); }
    };
  }
  function start() {
    window.hubViz.api("POST", api + "/open").then(function (r) {
      if (r.url) { go(r.url); return; }
      show(10, "Starting…");
      follow(r.progress_url);
    }).catch(function (err) {
      if (err.status === 503) { show(null, err.message); setTimeout(start, 3000); return; }
      fail(err.message);
    });
  }
  start();
})();
