// The board's live part: an EventSource on /api/v1/stream. Every (re)connect reloads the whole
// list from the server, so a tab never shows "live" while missing an alert; an event asks the
// server only for what it changed (/board/changes: counts, the page's order, the changed rows),
// at once, and events arriving meanwhile are gathered into the next request.
(function () {
  var seen = null, live = false, ended = false;
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
  // Alert ids whose rows changed, each with the number of the touch that last named it; an id
  // leaves once an applied answer was asked after that touch. Up to two changed-rows requests
  // run at once (a new event need not wait for the answer to the one before); an answer older
  // than one already applied is dropped, its ids having gone with the later request too.
  var wantAll = false, pending = {}, touches = 0, sentTouches = 0, inFlight = 0, fullBusy = false;
  var asked = 0, applied = 0, swaps = 0, busySince = 0;
  function filters() {
    var q = new URLSearchParams(new FormData(document.getElementById("filters")));
    var meta = document.getElementById("board-meta");
    q.set("page", (meta && meta.dataset.page) || "1");
    return q;
  }
  function shownIds() {
    return Array.prototype.map.call(document.querySelectorAll("#alerts tr[data-alert-id]"), function (r) { return r.dataset.alertId; });
  }
  function reload() { wantAll = true; pump(); }
  // A commit's events (a clue and its alert) reach the page as one chunk, queued as separate
  // tasks: a zero-delay timer runs after all of them, so they make one request, not two.
  var soon = null;
  function touched(id) {
    if (!id) return;
    pending[id] = ++touches;
    if (soon === null) soon = setTimeout(function () { soon = null; pump(); }, 0);
  }
  function pump() {
    if (ended) return;
    // A request htmx queued behind the user's own and then dropped never reports back.
    if (fullBusy && Date.now() - busySince < 10000) return;
    fullBusy = false;
    if (wantAll) {
      if (inFlight) return;  // after the answers under way, so none lands on the new list
      wantAll = false; pending = {}; sentTouches = touches; fullBusy = true; busySince = Date.now();
      // htmx swaps it (and handles a refused sign-in); htmx:afterRequest below pumps again.
      htmx.ajax("GET", "/board/rows", {source: "#filters", target: "#rows", values: {page: filters().get("page")}});
      return;
    }
    if (touches === sentTouches || inFlight >= 2) return;
    var ids = Object.keys(pending), upTo = touches, n = ++asked, before = swaps;
    sentTouches = touches; inFlight++;
    var q = filters();
    q.set("changed", ids.join(",")); q.set("have", shownIds().join(","));
    fetch("/board/changes?" + q.toString(), {credentials: "same-origin", headers: {"HX-Request": "true"}})
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("changes " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (n < applied) return;  // a later answer is on the page already
        // The filters or the page changed meanwhile: this answer is for another list.
        if (swaps !== before || !apply(html)) { wantAll = true; return; }
        applied = n;
        ids.forEach(function (id) { if (pending[id] <= upTo) delete pending[id]; });
      })
      .catch(function () { wantAll = true; })
      .then(function () { inFlight--; pump(); });
  }
  function apply(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    var box = document.getElementById("rows"), order = t.content.getElementById("board-order");
    var tbody = document.querySelector("#alerts tbody");
    if (!order || !tbody) return false;
    var ids = order.dataset.ids ? order.dataset.ids.split(",") : [];
    if (!ids.length) return false;  // an empty list has its own wording: reload it whole
    var rows = {};
    tbody.querySelectorAll("tr[data-alert-id]").forEach(function (r) { rows[r.dataset.alertId] = r; });
    var fresh = {};
    order.querySelectorAll("tr[data-alert-id]").forEach(function (r) { fresh[r.dataset.alertId] = r; });
    if (!ids.every(function (id) { return fresh[id] || rows[id]; })) return false;
    ["board-meta", "board-counts"].forEach(function (id) {
      var now = t.content.getElementById(id), old = document.getElementById(id);
      if (now && old) old.replaceWith(now);
    });
    var pager = t.content.querySelector(".pager"), oldPager = box.querySelector(".pager");
    if (pager && oldPager) { oldPager.replaceWith(pager); htmx.process(pager); }
    ids.forEach(function (id) {
      var r = fresh[id] || rows[id];
      if (fresh[id] && rows[id]) rows[id].replaceWith(r);
      tbody.appendChild(r);  // in the server's order
      if (fresh[id]) htmx.process(r);
    });
    Array.prototype.slice.call(tbody.children).forEach(function (r) {
      if (!r.dataset.alertId || ids.indexOf(r.dataset.alertId) < 0) r.remove();
    });
    afterSwap();
    return true;
  }
  document.body.addEventListener("htmx:afterSwap", function (e) { if (e.detail.target.id === "rows") { swaps++; afterSwap(); } });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.target && e.detail.target.id === "rows") { fullBusy = false; pump(); return; }
    var elt = e.detail.elt;
    if (elt.classList && elt.classList.contains("ack")) {
      var tr = elt.closest("tr");
      touched(tr && tr.dataset.alertId);
    }
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
  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }
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
    es.addEventListener("alert", function (ev) {
      var data = parse(ev);
      if (!data) { reload(); return; }
      critical(data);
      touched(String(data.id));
    });
    es.addEventListener("clue", function (ev) {
      var data = parse(ev);
      if (data && data.alert_id) touched(String(data.alert_id)); else reload();
    });
    // A task names no alert ids: its alerts' rows (task, lead, due) come with the whole list.
    es.addEventListener("task", reload);
  }
  afterSwap();
  connect();
})();
