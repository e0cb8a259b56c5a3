/* hub_viz gallery: dashboard cards with a search box, on the hub home page and the service. */
(function () {
  "use strict";
  var data = /*HUB_VIZ_DATA*/null;
  var root = document.getElementById("hub-viz-gallery");
  if (!root || !data) { return; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  var statusClass = {running: "bg-success", starting: "bg-info", stopped: "bg-light text-dark"};

  function card(d) {
    var badges = el("div", {"class": "mb-2"}, [
      el("span", {"class": "badge bg-secondary me-1 hub-viz-framework", text: d.framework}),
      el("span", {"class": "badge me-1 hub-viz-status " + (statusClass[d.status] || ""), text: d.status || ""}),
      d.visibility === "public" ? el("span", {"class": "badge bg-warning text-dark", text: "public"}) : null
    ]);
    var footer = el("div", {"class": "card-footer d-flex gap-2"}, [
      el("a", {"class": "btn btn-primary btn-sm hub-viz-open", href: d.open_url, text: "Open"}),
      d.can_manage ? el("a", {"class": "btn btn-outline-secondary btn-sm hub-viz-manage", href: d.manage_url, text: "Manage"}) : null
    ]);
    return el("div", {"class": "col"}, [
      el("div", {"class": "card h-100 hub-viz-card", "data-dashboard": d.owner + "/" + d.slug,
                 "data-search": [d.title, d.description, d.owner, d.framework, d.slug].join(" ").toLowerCase()}, [
        // styled inline: on the hub's home page the service's stylesheet is not loaded
        el("img", {"class": "card-img-top hub-viz-thumb", src: d.thumbnail_url, alt: "", loading: "lazy",
                   style: "aspect-ratio: 16 / 9; object-fit: cover; object-position: top left; " +
                          "border-bottom: 1px solid rgba(0, 0, 0, .125)"}),
        el("div", {"class": "card-body"}, [
          el("h2", {"class": "card-title h5", text: d.title}),
          badges,
          el("p", {"class": "card-text small text-muted mb-1", text: "by " + d.owner}),
          d.description ? el("p", {"class": "card-text", text: d.description}) : null
        ]),
        footer
      ])
    ]);
  }

  var search = el("input", {"class": "form-control", type: "search", id: "hub-viz-search",
                            placeholder: "Search dashboards", "aria-label": "Search dashboards"});
  var header = el("div", {"class": "d-flex gap-2 align-items-center mb-3"}, [
    el("h1", {"class": "h3 me-auto mb-0", text: "Dashboards"}),
    el("div", {}, [search]),
    el("a", {"class": "btn btn-success", id: "hub-viz-publish", href: data.prefix + "publish", text: "Publish"})
  ]);
  var grid = el("div", {"class": "row row-cols-1 row-cols-md-3 g-3 mb-4", id: "hub-viz-cards"});
  var empty = el("p", {"class": "text-muted", id: "hub-viz-empty",
                       text: "No dashboards are shared with you yet."});
  var nomatch = el("p", {"class": "text-muted", id: "hub-viz-no-match", style: "display: none"});
  var mine = data.items.filter(function (d) { return d.owner === data.user; });
  var others = data.items.filter(function (d) { return d.owner !== data.user; });
  others.concat(mine).forEach(function (d) { grid.appendChild(card(d)); });
  root.innerHTML = "";
  root.appendChild(header);
  root.appendChild(grid);
  if (!data.items.length) { root.appendChild(empty); } else { root.appendChild(nomatch); }
  search.addEventListener("input", function () {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(grid.querySelectorAll(".hub-viz-card"), function (c) {
      var text = c.getAttribute("data-search");
      var show = words.every(function (w) { return text.indexOf(w) !== -1; });
      c.parentNode.style.display = show ? "" : "none";
      shown += show ? 1 : 0;
    });
    nomatch.textContent = "No dashboard matches \u201c" + search.value.trim() + "\u201d.";
    nomatch.style.display = shown ? "none" : "";
  });
})();
