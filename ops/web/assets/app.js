// psgw status page: auto-refresh and the operator actions. Plain script, no build step, no
// libraries. Without it the page still works, read-only, and refreshes itself every 15 s.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var paused = false;
  var busy = false;

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function toast(text, tone) {
    var t = document.getElementById("toast");
    if (!t) return;
    t.textContent = text;
    t.className = "toast" + (tone ? " toast-" + tone : "");
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 6000);
  }

  // refresh fetches this page again and swaps the live part, unless the operator is typing
  // in a form or an action is under way.
  function refresh() {
    var live = document.getElementById("live");
    if (!live || paused || busy) return Promise.resolve();
    var a = document.activeElement;
    if (a && live.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) {
      return Promise.resolve();
    }
    return fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && r.url.indexOf("/login") >= 0) { location.href = r.url; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("live");
        var open = {};
        live.querySelectorAll("details[open]").forEach(function (d, i) { open[i] = true; });
        if (next) live.innerHTML = next.innerHTML;
        live.querySelectorAll("details").forEach(function (d, i) { if (open[i]) d.open = true; });
        var g = doc.getElementById("generated"), mine = document.getElementById("generated");
        if (g && mine) { mine.textContent = g.textContent; mine.setAttribute("datetime", g.getAttribute("datetime")); }
      })
      .catch(function () { /* offline for a moment: try again next time */ });
  }

  function call(url, body, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return Promise.resolve();
    busy = true;
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "application/json" },
      body: body || "{}"
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          toast((j && j.error) || ("Refused (" + r.status + ")"), "refused");
          return;
        }
        if (typeof j.resolved === "number") {
          toast("Sent again: " + j.resolved + " of " + j.matched + (j.errors && j.errors.length ? " · " + j.errors.length + " failed" : ""), "done");
        } else if (typeof j.matched === "number") {
          toast("Replayed " + j.replayed + " of " + j.matched + (j.errors && j.errors.length ? " · " + j.errors.length + " failed" : "") +
            (j.skipped ? " · " + j.skipped + " skipped (unknown: resolve each instead)" : ""), "done");
        } else if (j.state) {
          toast((j.local_id || "Incident") + " is now " + j.state, "done");
        } else {
          toast("Done", "done");
        }
      });
    }).catch(function (e) {
      toast("The gateway did not answer: " + e, "refused");
    }).then(function () {
      busy = false;
      return refresh();
    });
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-api]");
    if (b) {
      ev.preventDefault();
      if (b.disabled) return;
      b.classList.add("busy");
      call(b.getAttribute("data-api"), b.getAttribute("data-body"), b.getAttribute("data-confirm"))
        .then(function () { b.classList.remove("busy"); });
      return;
    }
    if (ev.target.id === "refresh-toggle") {
      paused = !paused;
      ev.target.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
      ev.target.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) refresh();
    }
  });

  document.addEventListener("submit", function (ev) {
    var f = ev.target.closest("form[data-api]");
    if (!f) return;
    ev.preventDefault();
    var body = { action: f.getAttribute("data-action") };
    f.querySelectorAll("input[name]").forEach(function (i) { if (i.value) body[i.name] = i.value.trim(); });
    call(f.getAttribute("data-api"), JSON.stringify(body), f.getAttribute("data-confirm"));
  });

  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  if (document.getElementById("refresh-toggle")) {
    setInterval(function () { if (!document.hidden) refresh(); }, REFRESH_MS);
  }
})();
