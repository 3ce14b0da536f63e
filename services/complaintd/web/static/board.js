// The SLA board's live updates: follows /live (server-sent events) and swaps in the live
// part of the board as the server renders it after each burst of events. No framework,
// nothing from a CDN; without script the page still shows the board as of its loading.
(function () {
  "use strict";
  function start() {
    // "This browser's time zone": the option's value becomes the browser's zone name.
    document.querySelectorAll("option[data-browser-tz]").forEach(function (o) {
      try {
        o.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      } catch (e) {
        o.value = "UTC";
      }
    });
    var live = document.getElementById("live");
    var status = document.querySelector(".live-status");
    if (!live || !window.EventSource) {
      return;
    }
    var source = new EventSource(live.getAttribute("data-src"));
    source.addEventListener("open", function () {
      document.body.setAttribute("data-live", "connected");
      if (status) {
        status.textContent = status.getAttribute("data-connected");
      }
    });
    source.addEventListener("error", function () {
      document.body.setAttribute("data-live", "disconnected");
      if (status) {
        status.textContent = status.getAttribute("data-disconnected");
      }
    });
    source.addEventListener("board", function (e) {
      live.innerHTML = e.data;
      var n = Number(document.body.getAttribute("data-updates") || "0") + 1;
      document.body.setAttribute("data-updates", String(n));
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
