// OpenLFR console: the live alert queue (Server-Sent Events), image zoom, live camera views.
// Loaded as a file (the Content-Security-Policy forbids inline scripts).
"use strict";

window.openlfrAlerts = [];  // {id, latency_ms}: read by the browser tests to report time-to-console

function escapeText(value) {
  const span = document.createElement("span");
  span.textContent = value == null ? "" : String(value);
  return span.innerHTML;
}

function alertItem(a) {
  const li = document.createElement("li");
  li.className = "alert-item" + (a.outcome ? " decided" : "");
  li.id = "alert-" + a.id;
  li.dataset.alertId = a.id;
  const when = new Date(a.time).toLocaleTimeString();
  li.innerHTML =
    '<div><strong>Alert ' + escapeText(a.id) + "</strong> · " + escapeText(a.category_label || a.category) +
    '<div class="muted">camera ' + escapeText(a.camera) + " · " + escapeText(when) + " · score " +
    escapeText(Number(a.score).toFixed(3)) + " (threshold " + escapeText(a.threshold) + ")</div></div>" +
    '<a class="button open" href="/console/alerts/' + encodeURIComponent(a.id) + '">Review</a>';
  return li;
}

function startQueue(queue) {
  const source = new EventSource(queue.dataset.stream);
  const state = document.getElementById("stream-state");
  source.addEventListener("open", () => { if (state) state.textContent = "connected: new alerts appear here"; });
  source.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    const latency = Date.now() - a.captured_at_ms;
    window.openlfrAlerts.push({ id: a.id, latency_ms: latency });
    const empty = document.getElementById("queue-empty");
    if (empty) empty.remove();
    if (!document.getElementById("alert-" + a.id)) queue.prepend(alertItem(a));
  });
}

function refreshViews() {
  document.querySelectorAll("img[data-refresh]").forEach((img) => {
    const base = img.dataset.refresh;
    setInterval(() => { img.src = base + "?t=" + Date.now(); }, 500);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const queue = document.getElementById("alert-queue");
  if (queue && queue.dataset.stream) startQueue(queue);
  document.querySelectorAll(".compare img").forEach((img) => {
    img.addEventListener("click", () => img.classList.toggle("zoomed"));
  });
  refreshViews();
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  });
});
