// The overview, live: each domain event (server-sent, /events) makes the page fetch its changing
// parts again (/overview/live) and swap them in, with no reload. A (re)connection reloads them
// too, so nothing missed while the feed was away stays missing. No build step, no library.
(() => {
  "use strict";
  const state = document.getElementById("live-state");
  if (!document.getElementById("live") || !window.EventSource) return;
  const show = (text, name) => { state.textContent = text; state.dataset.state = name; };
  let timer = null;
  let pending = false;

  // A form being filled in is not swapped away under the user's hands.
  const busy = () => {
    const live = document.getElementById("live");
    return [...live.querySelectorAll("input")].some(
      (i) => i === document.activeElement || (i.type !== "hidden" && i.type !== "checkbox" && i.value));
  };

  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {  // a burst of events makes one fetch
      if (busy()) { pending = true; return; }
      pending = false;
      const reply = await fetch("/overview/live", { credentials: "same-origin" });
      if (!reply.ok) return;
      const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
      const part = fresh.getElementById("live");
      if (part) document.getElementById("live").replaceWith(part);
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    }, 250);
  };
  document.addEventListener("focusout", () => { if (pending) refresh(); });

  const source = new EventSource("/events");
  source.addEventListener("open", () => { show("live", "live"); refresh(); });
  source.addEventListener("error", () => show("reconnecting…", "reconnecting"));
  source.addEventListener("message", (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.event === "unavailable") { show("live updates off (no broker)", "off"); source.close(); return; }
    document.body.dataset.lastEvent = event.event;
    refresh();
  });
})();
