/* Manage page: a dashboard's versions (preview, make current), new versions, branch following. */
(function () {
  "use strict";
  var api = document.getElementById("manage").getAttribute("data-api");
  var body = document.querySelector("#versions tbody");
  var note = document.getElementById("action-message");
  function say(text, kind) {
    note.className = "alert alert-" + (kind || "info");
    note.textContent = text;
  }
  function cell(row, text) {
    var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td;
  }
  function button(parent, text, kind, action) {
    var b = document.createElement("button");
    b.className = "btn btn-sm btn-outline-" + kind + " me-1";
    b.textContent = text;
    b.addEventListener("click", function () { b.disabled = true; action().finally(function () { b.disabled = false; }); });
    parent.appendChild(b);
    return b;
  }
  function preview(v) {
    var tab = window.open("", "_blank");  // opened on the click, filled when ready
    function ask() {
      return window.hubViz.api("POST", v.preview_url).then(function (r) {
        if (r.url) {
          if (tab) { tab.location.href = r.url; } else { window.location.href = r.url; }
          say("Version " + v.number + " opened for you alone in a new tab.");
          return null;
        }
        say("Starting version " + v.number + " for you…");
        return new Promise(function (done) { setTimeout(done, 1500); }).then(ask);
      });
    }
    return ask().catch(function (e) { if (tab) { tab.close(); } say(e.message, "danger"); });
  }
  function makeCurrent(v) {
    return window.hubViz.api("POST", v.make_current_url).then(function (r) {
      return load().then(function () {  // the table first, then the word that it is done
        say("Version " + r.current + " is current" +
          (r.redeployed ? "; the running instance restarted on it." : ".") +
          (r.redeploy_error ? " " + r.redeploy_error : ""), r.redeploy_error ? "warning" : "success");
      });
    }).catch(function (e) { say(e.message, "danger"); });
  }
  function render(data) {
    body.innerHTML = "";
    data.items.forEach(function (v) {
      var row = document.createElement("tr");
      row.setAttribute("data-version", String(v.number));
      cell(row, v.number + (v.current ? " (current)" : ""));
      cell(row, (v.created || "").slice(0, 16).replace("T", " ") + " · " + v.origin +
        (v.created_by ? " by " + v.created_by : ""));
      cell(row, v.git ? "commit " + (v.git.commit || "").slice(0, 10) + " of " + v.git.ref
        : (v.snapshot ? "files " + v.snapshot.slice(0, 10) : "files as they are"));
      cell(row, v.environment && v.environment.env ? "env " + v.environment.env.slice(0, 10) : "");
      cell(row, String((v.usage || {}).opens || 0));
      var actions = cell(row, "");
      if (!v.current) {
        button(actions, "Preview", "secondary", function () { return preview(v); });
        button(actions, data.current > v.number ? "Roll back to this" : "Make current", "primary",
          function () { return makeCurrent(v); });
      }
      body.appendChild(row);
    });
  }
  function load() {
    return window.hubViz.api("GET", api + "/versions").then(render)
      .catch(function (e) { say(e.message, "danger"); });
  }
  document.getElementById("version-new").addEventListener("click", function () {
    var current = document.getElementById("version-new-current").checked;
    window.hubViz.api("PATCH", api, {new_version: true, make_current: current}).then(function (r) {
      return load().then(function () {
        say(r.new_version === null ? "Nothing changed since version " + r.version + "."
          : "Version " + r.new_version + (current ? " is current." : " is ready to preview."),
          "success");
      });
    }).catch(function (e) { say(e.message, "danger"); });
  });
  function setFollow() {
    var body = {follow_branch: document.getElementById("follow-branch").checked,
                auto_current: document.getElementById("auto-current").checked};
    window.hubViz.api("PATCH", api, body).then(function () {
      say(body.follow_branch ? "Following the branch." : "Not following the branch.", "success");
    }).catch(function (e) { say(e.message, "danger"); });
  }
  var follow = document.getElementById("follow-branch");
  if (follow) {
    follow.addEventListener("change", setFollow);
    document.getElementById("auto-current").addEventListener("change", setFollow);
    document.getElementById("webhook-new").addEventListener("click", function () {
      window.hubViz.api("POST", api + "/webhook").then(function (r) {
        var shown = document.getElementById("webhook-shown");
        shown.textContent = "";
        [["Payload URL", new URL(r.url, window.location.href).href], ["Secret", r.secret]].forEach(function (pair) {
          var line = document.createElement("div");
          var code = document.createElement("code");
          code.textContent = pair[1];
          line.appendChild(document.createTextNode(pair[0] + ": "));
          line.appendChild(code);
          shown.appendChild(line);
        });
        shown.appendChild(document.createTextNode(r.note + " GitHub: content type application/json, push events. GitLab: the secret token."));
        shown.classList.remove("d-none");
        follow.checked = true;
      }).catch(function (e) { say(e.message, "danger"); });
    });
  }
  load();
})();
