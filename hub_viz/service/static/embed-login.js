/* The window an embedded dashboard's "Log in" opened, back from the hub's login: hand
the viewer ticket to the frame that opened it (this origin only), then close. */
(function () {
  "use strict";
  var box = document.getElementById("embed-login");
  var opener = window.opener;
  if (!opener) {
    document.getElementById("embed-login-status").classList.add("d-none");
    document.getElementById("embed-login-alone").classList.remove("d-none");
    return;
  }
  // targetOrigin: only a page of this origin (the embed page in the course site's
  // frame) receives it; any other opener gets nothing
  opener.postMessage({type: "hub-viz-embed-login", api: box.getAttribute("data-api"),
                      ticket: box.getAttribute("data-ticket")}, window.location.origin);
  window.close();
})();
