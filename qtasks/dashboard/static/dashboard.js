// Keeps a dashboard page live: asks the page's own URL for its live part (the server answers
// the X-QTasks-Fragment header with the fragment only) and swaps it in when it changed.
// Times carry data-ts (unix seconds) and get "5 s ago" / "in 3 s" beside them.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  var state = document.getElementById("live-state");
  var every = Number(document.body.getAttribute("data-refresh")) || 1000;
  var last = null;
  var pressing = false;

  function setState(name, text) {
    if (state) {
      state.setAttribute("data-state", name);
      state.textContent = text;
    }
  }

  function ago(seconds) {
    var past = seconds >= 0;
    var s = Math.abs(seconds);
    var text = s < 1 ? "now" : s < 60 ? Math.round(s) + " s" : s < 3600 ? Math.floor(s / 60) + " min"
      : s < 86400 ? Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min" : Math.floor(s / 86400) + " d";
    return text === "now" ? text : past ? text + " ago" : "in " + text;
  }

  function relativeTimes() {
    var now = Date.now() / 1000;
    document.querySelectorAll("time[data-ts]").forEach(function (node) {
      var label = node.nextElementSibling;
      if (!label || !label.classList.contains("ago")) {
        label = document.createElement("span");
        label.className = "ago";
        node.after(label);
      }
      label.textContent = " (" + ago(now - Number(node.getAttribute("data-ts"))) + ")";
    });
  }

  // A swap between mouse-down and mouse-up would eat the click: wait until the press is over.
  document.addEventListener("pointerdown", function () { pressing = true; });
  document.addEventListener("pointerup", function () { setTimeout(function () { pressing = false; }, 250); });

  function refresh() {
    fetch(location.pathname + location.search, {
      headers: {"X-QTasks-Fragment": "1"}, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        location.reload();
        return null;
      }
      return response.text().then(function (html) {
        if (html !== last && !pressing) {
          live.innerHTML = html;
          last = html;
          relativeTimes();
        }
        var when = new Date().toLocaleTimeString();
        if (response.status === 503) {
          setState("down", "broker not answering · " + when);
        } else {
          setState("ok", "live · " + when);
        }
      });
    }).catch(function () {
      setState("down", "dashboard not answering");
    }).finally(function () {
      setTimeout(refresh, every);
    });
  }

  relativeTimes();
  setInterval(relativeTimes, 1000);
  if (live) {
    setTimeout(refresh, every);
  }
}());
