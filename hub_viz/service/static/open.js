/* The open and embed flows: start the dashboard, follow the hub's progress, then
show it in a frame on this page, and ping the service while the page is visible
and focused (the phone-home that keeps the dashboard running while someone looks).
Nothing starts before the page is shown: a tab opened in the background waits.
The full window is this same page without its bar (?chrome=0), so it pings too.
Once the dashboard's page has loaded in the frame, the page tells the service,
which may then take the gallery card's screenshot (never while a viewer's page loads).

The start request (POST .../open) can take as long as the app's start-up: the
hub answers it only when the server is ready (or after its slow-spawn timeout).
So the page follows the progress stream while that request is on its way, and
whichever answers first with the dashboard's address wins.
*/
(function () {
  "use strict";
  var box = document.getElementById("open");
  var api = box.getAttribute("data-api");
  var pingUrl = box.getAttribute("data-ping");
  var pingSeconds = Number(box.getAttribute("data-ping-seconds") || "30");
  var path = box.getAttribute("data-path") || "";  // a page below the dashboard's prefix
  var bar = document.getElementById("progress-bar");
  var message = document.getElementById("progress-message");
  var log = document.getElementById("progress-log");
  var done = false;      // went to the dashboard or failed: nothing more to do
  var posting = false;   // the start request has not answered yet
  var source = null;     // the progress stream being followed
  var shown = 0;
  var reconnectMs = 0;   // the wait before asking a restarting service again

  function show(pct, text) {
    if (typeof pct === "number") {
      shown = Math.max(shown, Math.max(2, Math.min(100, pct)));  // never goes back
      bar.style.width = shown + "%";
      bar.setAttribute("aria-valuenow", String(shown));
    }
    if (text && text !== message.textContent) {
      message.textContent = text;
      var li = document.createElement("li");
      li.textContent = text;
      log.appendChild(li);
    }
  }
  function stopFollowing() {
    if (source) { source.close(); source = null; }
  }
  function fail(text) {
    if (done) { return; }
    done = true;
    stopFollowing();
    bar.classList.add("bg-danger");
    bar.classList.remove("progress-bar-animated");
    message.classList.add("d-none");  // the log above keeps how far it got
    var alert = document.getElementById("open-failed");
    alert.textContent = text;
    alert.classList.remove("d-none");
    document.getElementById("open-title").textContent = "The dashboard could not open";
  }
  function phoneHome() {
    function tick() {
      if (document.visibilityState === "visible" && document.hasFocus()) {
        window.hubViz.api("POST", pingUrl).catch(function () {});
      }
    }
    tick();
    setInterval(tick, pingSeconds * 1000);
  }
  function poolNote(pool) {
    // every preheated kernel is taken: say so, and how long a fresh one takes, until
    // the dashboard's page has loaded in the frame
    if (!pool || !pool.dry || !pool.message) { return null; }
    var note = document.createElement("p");
    note.id = "pool-note";
    note.className = "alert alert-info small mb-1";
    note.setAttribute("role", "status");
    note.textContent = pool.message;
    box.appendChild(note);
    return note;
  }
  function go(url, pool) {
    if (done) { return; }
    done = true;
    stopFollowing();
    show(100, "Ready. Opening the dashboard…");
    var note = poolNote(pool);
    var frame = document.createElement("iframe");
    frame.id = "dashboard-frame";
    frame.className = "hub-viz-frame";
    frame.title = document.getElementById("open-title").getAttribute("data-title") || "Dashboard";
    frame.setAttribute("allow", "fullscreen");
    if (path && url.indexOf("_hub_viz/enter?") >= 0) { url += "&next=" + encodeURIComponent(path); }
    frame.addEventListener("load", function rendered() {
      // the first viewer's page is done loading: the card may be taken now (never before)
      frame.removeEventListener("load", rendered);
      if (note) { note.remove(); }
      window.hubViz.api("POST", api + "/rendered").catch(function () {});
    });
    frame.src = url;
    var full = document.getElementById("open-full");
    if (full) { full.href = window.location.pathname + "?chrome=0"; full.classList.remove("d-none"); }
    document.getElementById("progress-box").classList.add("d-none");
    box.appendChild(frame);
    document.body.classList.add("hub-viz-viewing");
    if (pingUrl) { phoneHome(); }
  }
  function stream(url, onEvent, onEnd) {
    // Server-sent events read with fetch, so that the XSRF token goes in a header:
    // EventSource could only send it in the URL, and URLs end up in access logs.
    var controller = new AbortController();
    var handle = {closed: false, close: function () {
      handle.closed = true;
      controller.abort();
    }};
    function end() { if (!handle.closed) { handle.closed = true; onEnd(); } }
    fetch(url, {credentials: "same-origin", signal: controller.signal, cache: "no-store",
                headers: window.hubViz.with({"X-XSRFToken": window.hubViz.xsrf,
                                             "Accept": "text/event-stream"})})
      .then(function (r) {
        if (!r.ok || !r.body) { throw new Error("HTTP " + r.status); }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done || handle.closed) { return end(); }
            buffer += decoder.decode(chunk.value, {stream: true});
            var blocks = buffer.split("\n\n");  // the service ends each event with a blank line
            buffer = blocks.pop();
            for (var i = 0; i < blocks.length && !handle.closed; i++) {
              var data = blocks[i].split("\n").filter(function (line) {
                return line.indexOf("data:") === 0;
              }).map(function (line) { return line.slice(5).trim(); }).join("\n");
              if (data) { onEvent(data); }
            }
            return pump();
          });
        }
        return pump();
      })
      .catch(end);
    return handle;
  }
  function follow(progressUrl) {
    if (done || source) { return; }
    var events = 0;
    var es = stream(progressUrl, function (data) {
      var ev = JSON.parse(data);
      if (ev.url) { go(ev.url, ev.pool); return; }
      if (ev.failed) {
        es.close();
        if (source === es) { source = null; }
        if (posting && !events) {
          // not started yet as far as the hub knows: look again; the start request decides
          setTimeout(function () { if (posting) { follow(progressUrl); } }, 500);
          return;
        }
        fail(ev.message || "The dashboard failed to start.");
        return;
      }
      events += 1;
      show(ev.progress, ev.message);
    }, function () {
      if (source === es) { source = null; }
      if (!done && !posting) { setTimeout(start, 1000); }
    });
    source = es;
  }
  function start() {
    if (done) { return; }
    posting = true;
    var early = setTimeout(function () { follow(api + "/progress"); }, 250);
    window.hubViz.api("POST", api + "/open").then(function (r) {
      posting = false;
      clearTimeout(early);
      if (r.url) { go(r.url, r.pool); return; }
      if (!source) { show(10, "Starting…"); }
      follow(r.progress_url);
    }).then(function () { reconnectMs = 0; }, function (err) {
      posting = false;
      clearTimeout(early);
      stopFollowing();
      if (err.transient) {
        // the service restarts (the hub starts it again on its own): ask again, backing off
        reconnectMs = Math.min(Math.max(1000, reconnectMs * 1.5), 5000);
        show(null, "Reconnecting to the dashboards service…");
        setTimeout(start, reconnectMs);
        return;
      }
      if (err.status === 503) { show(null, err.message); setTimeout(start, 3000); return; }
      if (err.status === 401 && loginUrl) { askLogin(err.message); return; }
      fail(err.message);
    });
  }
  function whenShown(then) {
    if (document.visibilityState === "visible") { then(); return; }
    show(null, "Waiting until this tab is shown…");
    document.addEventListener("visibilitychange", function once() {
      if (document.visibilityState !== "visible") { return; }
      document.removeEventListener("visibilitychange", once);
      then();
    });
  }
  // An embed link that needs a hub login, in a course site's frame: the service's login
  // cookie is a third-party cookie here. "Log in" opens the hub's login as a window of its
  // own, which hands this frame a viewer ticket; it goes with every call in a header, and
  // the service keeps it as a cookie partitioned to this course site, so that a reload
  // stays logged in.
  var loginUrl = box.getAttribute("data-login");
  var TICKET = "X-Hub-Viz-Viewer";
  function useTicket(ticket) {
    window.hubViz.headers[TICKET] = ticket;
    document.getElementById("embed-login").classList.add("d-none");
    document.getElementById("progress-box").classList.remove("d-none");
    window.hubViz.api("POST", api + "/session").catch(function () {}).then(function () {
      whenShown(start);
    });
  }
  function askLogin(text) {
    delete window.hubViz.headers[TICKET];
    stopFollowing();
    document.getElementById("progress-box").classList.add("d-none");
    document.getElementById("embed-login").classList.remove("d-none");
    if (text) { document.getElementById("embed-login-message").textContent = text; }
  }
  if (!loginUrl) { whenShown(start); return; }
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (event.origin !== window.location.origin || data.type !== "hub-viz-embed-login" ||
        data.api !== api) { return; }
    useTicket(data.ticket);
  });
  document.getElementById("embed-login-button").addEventListener("click", function () {
    var popup = window.open(loginUrl, "hub-viz-login", "popup,width=560,height=720");
    if (!popup) {
      document.getElementById("embed-login-message").textContent =
        "The login window was blocked: allow pop-ups for this site, or open the dashboard in a new tab.";
    }
  });
  askLogin("");
})();
