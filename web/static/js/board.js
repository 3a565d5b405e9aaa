// The board's live part: an EventSource on /api/v1/stream; every event and every (re)connect
// reloads the list from the server, so a tab never shows "live" while missing an alert.
(function () {
  var seen = null, reloadTimer = null, live = false;
  var stale = document.getElementById("stale"), liveEl = document.getElementById("live");
  var liveText = document.getElementById("live-text"), updated = document.getElementById("updated");
  var alarm = document.getElementById("alarm");
  var T = window.BOARD_TEXT || {};
  alarm.checked = localStorage.getItem("offsite.alarm") === "1";
  alarm.addEventListener("change", function () {
    localStorage.setItem("offsite.alarm", alarm.checked ? "1" : "0");
    if (alarm.checked && window.Notification && Notification.permission === "default") Notification.requestPermission();
  });
  function stamp() {
    updated.textContent = new Date().toLocaleTimeString("zh-CN", {hour12: false, timeZone: document.body.dataset.zone || undefined});
  }
  function afterSwap() {
    var rows = document.querySelectorAll("#alerts tr[data-alert-id]");
    var ids = {};
    rows.forEach(function (r) { ids[r.dataset.alertId] = true; });
    if (seen === null) { seen = ids; }
    rows.forEach(function (r) {
      if (!seen[r.dataset.alertId] || r.dataset.new === "1") {
        r.querySelector(".new-slot").innerHTML = '<span class="marker new">' + (document.body.dataset.newText || "new") + "</span>";
      }
    });
    var meta = document.getElementById("board-meta");
    if (meta) {
      var n = parseInt(meta.dataset.open, 10) || 0;
      document.title = (n ? "(" + n + ") " : "") + meta.dataset.title + " · offsite";
    }
    stamp();
  }
  function reload() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(function () {
      htmx.ajax("GET", "/board/rows", {source: "#filters", target: "#rows"});
    }, 80);
  }
  document.body.addEventListener("htmx:afterSwap", function (e) { if (e.detail.target.id === "rows") afterSwap(); });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt.classList && e.detail.elt.classList.contains("ack")) reload();
  });
  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var o = ctx.createOscillator(); o.frequency.value = 880; o.connect(ctx.destination);
      o.start(); o.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no audio device */ }
  }
  function critical(data) {
    if (!alarm.checked || data.severity !== "critical") return;
    if (data.action !== "opened" && data.action !== "escalated" && data.action !== "reopened") return;
    beep();
    if (window.Notification && Notification.permission === "granted") {
      new Notification(document.body.dataset.criticalText || "critical", {body: data.credit_code || data.subject_key || ""});
    }
  }
  var ended = false;
  function signedOut() {
    // The server ended this caller's access (disabled, signed out elsewhere, key revoked):
    // stop for good and say so, instead of reconnecting into 401s behind a stale banner.
    if (ended) return;
    ended = true; live = false;
    if (window.boardStream) window.boardStream.close();
    stale.hidden = true; liveEl.classList.remove("live");
    var notice = document.getElementById("signed-out");
    liveText.textContent = notice.dataset.short || "signed out";
    notice.hidden = false;
    document.querySelectorAll("#rows button, #filters button").forEach(function (b) { b.disabled = true; });
  }
  function connect() {
    if (ended) return;
    var es = window.boardStream = new EventSource("/api/v1/stream");
    es.addEventListener("signed_out", signedOut);
    es.onopen = function () {
      live = true; stale.hidden = true; liveEl.classList.add("live");
      liveText.textContent = document.body.dataset.liveText || "live";
      reload();  // whatever happened while we were away is in the list now
    };
    es.onerror = function () {
      if (ended) return;
      live = false; stale.hidden = false; liveEl.classList.remove("live");
      liveText.textContent = document.body.dataset.offlineText || "offline";
      if (es.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
      // A refused reconnect (401, 5xx) closes the EventSource for good: ask who we are, and
      // either say we are signed out or try again shortly.
      fetch("/api/v1/me", {credentials: "same-origin"}).then(function (r) {
        if (r.status === 401) signedOut(); else setTimeout(connect, 2000);
      }, function () { setTimeout(connect, 2000); });
    };
    ["alert", "clue", "task"].forEach(function (kind) {
      es.addEventListener(kind, function (ev) {
        try { var data = JSON.parse(ev.data); if (kind === "alert") critical(data); } catch (e) { /* ignore */ }
        reload();
      });
    });
  }
  afterSwap();
  connect();
})();
