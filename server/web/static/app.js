// Slipway's progressive enhancement. Every page works without it; this
// adds: one live event stream per tab (log lines, "something changed"),
// confirm dialogs over the confirm pages, and the demo's one-click login.
"use strict";
(() => {
  // --- Live updates: one EventSource per tab, closed while hidden. ---
  const liveURL = document.body.dataset.live;
  const indicator = document.getElementById("live");
  let source = null, lastID = "", retry = 1000, timer = null, stopped = false;
  const MAX_LOG_LINES = 5000; // older lines leave the DOM; "Load earlier" pages them back

  function say(text, on) {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.classList.toggle("on", on === true);
    indicator.classList.toggle("off", on === false);
  }

  function connect() {
    if (!liveURL || stopped || source || document.hidden) return;
    const url = new URL(liveURL, location.href);
    const log = document.getElementById("log");
    const after = lastID || (log && !log.hasAttribute("data-paged") ? log.dataset.last : "");
    if (after) url.searchParams.set("after", after);
    source = new EventSource(url);
    source.onopen = () => { retry = 1000; say("live", true); };
    source.addEventListener("log", (e) => { lastID = e.lastEventId; appendLine(JSON.parse(e.data)); });
    source.addEventListener("changed", (e) => { if (e.lastEventId) lastID = e.lastEventId; refresh(); });
    source.addEventListener("end", () => { refresh(); close(); say("finished", true); stopped = true; });
    source.onerror = () => { close(); reconnect(); };
  }

  function close() { if (source) { source.close(); source = null; } }

  async function reconnect() {
    say("reconnecting…", false);
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const r = await fetch("/ui/whoami", { credentials: "same-origin" });
        if (r.status === 401) { stopped = true; say("signed out — log in again", false); return; }
      } catch (_) { /* the engine is away: keep trying */ }
      connect();
    }, retry);
    retry = Math.min(retry * 2, 30000);
  }

  function appendLine(l) {
    const log = document.getElementById("log");
    if (!log || log.hasAttribute("data-paged") || document.getElementById("L" + l.seq)) return;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const li = document.createElement("li");
    li.id = "L" + l.seq;
    const a = document.createElement("a");
    a.className = "ln"; a.href = "#L" + l.seq; a.textContent = l.seq; a.setAttribute("aria-label", "line " + l.seq);
    const st = document.createElement("span"); st.className = "st"; st.textContent = l.stage;
    const tx = document.createElement("span"); tx.className = "tx"; tx.textContent = l.text;
    li.append(a, st, tx);
    log.append(li);
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
    log.dataset.last = l.seq;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  // refresh re-reads this page and swaps every [data-live] section, at
  // most once per second however many changes arrive.
  let refreshing = false, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      const r = await fetch(location.href, { credentials: "same-origin" });
      if (r.ok) {
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        document.querySelectorAll("[data-live][id]").forEach((old) => {
          const fresh = doc.getElementById(old.id);
          if (fresh && fresh.innerHTML !== old.innerHTML && !old.contains(document.activeElement)) old.replaceWith(fresh);
        });
        bindConfirms();
      }
    } finally {
      setTimeout(() => { refreshing = false; if (again) { again = false; refresh(); } }, 1000);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { close(); clearTimeout(timer); say("paused while hidden"); }
    else if (!stopped) { refresh(); connect(); }
  });

  // --- Confirm dialogs: the confirm page's form, in a <dialog>. ---
  function bindConfirms() {
    document.querySelectorAll("a[data-confirm]").forEach((a) => {
      if (a.dataset.bound) return;
      a.dataset.bound = "1";
      a.addEventListener("click", async (e) => {
        e.preventDefault();
        const r = await fetch(a.href, { credentials: "same-origin" });
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const form = doc.getElementById("confirm");
        if (!form) { location.href = a.href; return; }
        const dialog = document.createElement("dialog");
        dialog.setAttribute("aria-labelledby", "confirm-h");
        dialog.append(doc.getElementById("confirm-h"), form);
        form.querySelector("[data-close]").addEventListener("click", (ev) => { ev.preventDefault(); dialog.close(); });
        dialog.addEventListener("close", () => { dialog.remove(); a.focus(); });
        document.body.append(dialog);
        dialog.showModal();
      });
    });
  }
  bindConfirms();

  // --- The demo's login link: /login#token=… (never sent to a server log)
  // fills the token in; the person clicks "Log in". Submitting it unasked
  // would let any page log a visitor in as someone else (login CSRF). ---
  const field = document.getElementById("token");
  if (field && location.hash.startsWith("#token=")) {
    field.value = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, "", location.pathname + location.search);
    const button = field.form.querySelector("button[type=submit]");
    if (button) button.focus();
  }

  if (liveURL) { say("connecting…"); connect(); }
})();
