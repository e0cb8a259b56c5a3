/* Publish and edit form: fills in choices from the API, sends JSON, shows errors. */
(function () {
  "use strict";
  var form = document.getElementById("publish-form");
  var prefix = window.hubViz.prefix;
  var raw = form.getAttribute("data-dashboard");
  var existing = raw ? JSON.parse(raw) : null;
  var $ = function (id) { return document.getElementById(id); };
  function list(value) { return value.split(",").map(function (s) { return s.trim(); }).filter(Boolean); }
  function toggle() {
    var git = form.querySelector("input[name=source]:checked").value === "git";
    Array.prototype.forEach.call(form.querySelectorAll(".git-only"), function (n) { n.style.display = git ? "" : "none"; });
    var v = $("visibility").value;
    form.querySelector(".users-only").style.display = v === "users" ? "" : "none";
    form.querySelector(".groups-only").style.display = v === "groups" ? "" : "none";
    var perViewer = $("mode").value === "per-viewer";
    Array.prototype.forEach.call(form.querySelectorAll(".shared-only"), function (n) { n.style.display = perViewer ? "none" : ""; });
    Array.prototype.forEach.call(form.querySelectorAll(".per-viewer-only"), function (n) { n.style.display = perViewer ? "" : "none"; });
  }
  function isAlways(windows) {
    return windows.length === 1 && windows[0].start === "00:00" && windows[0].end === "24:00" &&
      (windows[0].days || []).length === 7;
  }
  // the caller's files a framework would serve, to pick from (typing stays possible)
  window.hubViz.api("GET", prefix + "api/entries").then(function (r) {
    r.entries.forEach(function (e) {
      var o = document.createElement("option"); o.value = e.path; o.label = e.framework;
      $("entry-choices").appendChild(o);
    });
    if (r.entries.length) {
      $("entry-hint").textContent = "Relative to your files (or to the repository): pick one " +
        "of the " + r.entries.length + " notebooks and apps found in your files, or type a path.";
    }
  }).catch(function () {});
  window.hubViz.api("GET", prefix + "api/info").then(function (info) {
    var notes = {};
    info.frameworks.forEach(function (f) {
      var o = document.createElement("option"); o.value = f.name; o.textContent = f.display_name;
      $("framework").appendChild(o);
      if (f.embed_note) { notes[f.name] = "Embeds: " + f.embed_note; }
    });
    function showNote() { $("framework-note").textContent = notes[$("framework").value] || ""; }
    $("framework").addEventListener("change", showNote);
    info.profile_choices.forEach(function (p) {
      var o = document.createElement("option"); o.value = p.name;
      o.textContent = p.display_name + (p.description ? " (" + p.description + ")" : "");
      $("profile").appendChild(o);
    });
    var ceiling = info.resource_ceiling || {};
    if (ceiling.cpu || ceiling.memory) {
      $("ceiling-hint").textContent = "At most " + [ceiling.cpu ? ceiling.cpu + " CPU" : "",
        ceiling.memory ? ceiling.memory + " memory" : ""].filter(Boolean).join(" and ") + " per instance.";
    }
    var titles = info.group_titles || {};
    function named(g) { return titles[g] ? titles[g] + " (" + g + ")" : g; }
    info.groups.forEach(function (g) {
      var o = document.createElement("option"); o.value = g;
      if (titles[g]) { o.label = titles[g]; }
      $("my-groups").appendChild(o);
    });
    $("my-groups-hint").textContent = info.groups.length
      ? "Your groups: " + info.groups.map(named).join(", ")
      : "You are in no group yet: a course's groups come from opening this hub from the " +
        "course in Canvas (LTI), other groups from the hub's admin.";
    $("warm-kernels").max = info.max_warm_kernels;
    $("warm-pool").max = info.warm_pool_ceiling;
    if (!info.warm_pool_ceiling) { $("warm-pool").disabled = true; $("warm-pool").title = "Warm pools are turned off on this hub."; }
    if (existing) {
      $("framework").value = existing.framework;
      showNote();
      $("profile").value = existing.profile || "";
      $("cpu").value = (existing.resources || {}).cpu || "";
      $("memory").value = (existing.resources || {}).memory || "";
    }
  });
  if (existing) {
    $("title").value = existing.title; $("slug").value = existing.slug;
    $("description").value = existing.description || ""; $("entry").value = existing.entry;
    $("mode").value = existing.mode; $("visibility").value = existing.visibility;
    // beyond what this hub lets the editor offer (see #publish-limit): saving makes it private
    if ($("visibility").value !== existing.visibility) { $("visibility").value = "private"; }
    $("share-users").value = (existing.share_users || []).join(", ");
    $("share-groups").value = (existing.share_groups || []).join(", ");
    if (existing.git) {
      $("source-git").checked = true; $("git-url").value = existing.git.url; $("git-ref").value = existing.git.ref;
    }
    $("warm-kernels").value = existing.warm_kernels || 0;
    $("warm-pool").value = existing.warm_pool || 0;
    var windows = existing.keep_warm || [];
    if (isAlways(windows)) { $("keep-warm").value = "always"; } else if (windows.length) {
      var o = document.createElement("option"); o.value = "windows";
      o.textContent = "In its " + windows.length + " scheduled window(s)";
      $("keep-warm").appendChild(o); $("keep-warm").value = "windows";
    }
  }
  form.addEventListener("change", toggle);
  toggle();
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = {
      title: $("title").value, description: $("description").value, entry: $("entry").value,
      mode: $("mode").value, visibility: $("visibility").value,
      share_users: list($("share-users").value), share_groups: list($("share-groups").value),
      profile: $("profile").value, resources: {}
    };
    if ($("cpu").value.trim()) { body.resources.cpu = $("cpu").value.trim(); }
    if ($("memory").value.trim()) { body.resources.memory = $("memory").value.trim(); }
    if ($("framework").value) { body.framework = $("framework").value; }
    var perViewer = body.mode === "per-viewer";
    body.warm_kernels = perViewer ? 0 : parseInt($("warm-kernels").value || "0", 10);
    body.warm_pool = perViewer ? parseInt($("warm-pool").value || "0", 10) : 0;
    if ($("keep-warm").value !== "windows") {  // scheduled windows stay as the API set them
      body.keep_warm = !perViewer && $("keep-warm").value === "always" ? "always" : [];
    }
    if (!existing && $("slug").value) { body.slug = $("slug").value; }
    if (form.querySelector("input[name=source]:checked").value === "git") {
      body.git = {url: $("git-url").value, ref: $("git-ref").value || "main"};
    } else { body.git = null; }
    var err = $("form-error");
    err.classList.add("d-none");
    $("publish-submit").disabled = true;
    var request = existing
      ? window.hubViz.api("PATCH", prefix + "api/dashboards/" + encodeURIComponent(existing.owner) + "/" + encodeURIComponent(existing.slug), body)
      : window.hubViz.api("POST", prefix + "api/dashboards", body);
    request.then(function (d) { window.location.href = d.manage_url; }).catch(function (e2) {
      err.textContent = e2.message; err.classList.remove("d-none");
      $("publish-submit").disabled = false;
    });
  });
})();
