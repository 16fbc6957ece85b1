// OpenLFR console: the live alert queue (Server-Sent Events), tap to zoom, live camera views, the phone menu.
// Loaded as a file (the Content-Security-Policy forbids inline scripts).
"use strict";

window.openlfrAlerts = [];  // {id, latency_ms}: read by the browser tests to report time-to-console

// The pages' one time format ("30 Nov 2026 14:05:09", the force's time zone), as openlfr.wording.format_time.
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function formatWhen(iso, zone) {
  const parts = {};
  new Intl.DateTimeFormat("en-GB", {
    timeZone: zone || "UTC", year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).forEach((p) => { parts[p.type] = p.value; });
  return Number(parts.day) + " " + MONTHS[Number(parts.month) - 1] + " " + parts.year + " " +
    parts.hour + ":" + parts.minute + ":" + parts.second;
}

function escapeText(value) {
  const span = document.createElement("span");
  span.textContent = value == null ? "" : String(value);
  return span.innerHTML;
}

function sightingsHtml(a, zone) {
  if (!Array.isArray(a.sightings) || a.sightings.length === 0) return "";
  const items = a.sightings.map((s) => "<li>" + escapeText(formatWhen(s.time, zone)) + " · camera " +
    escapeText(s.camera) + " · score " + escapeText(Number(s.score).toFixed(3)) + "</li>").join("");
  return '<div class="sightings"><strong>Seen again ' + a.sightings.length + " time(s):</strong><ul>" + items + "</ul></div>";
}

// The same card as templates/_alert.html renders, for alerts arriving over the stream.
function alertItem(a, zone) {
  const li = document.createElement("li");
  li.className = "alert-item" + (a.outcome ? " decided" : "");
  li.id = "alert-" + a.id;
  li.dataset.alertId = a.id;
  const thumb = a.images_deleted
    ? '<span class="thumb none">no image</span>'
    : '<img class="thumb" src="/api/v1/alerts/' + encodeURIComponent(a.id) + '/images/reference" alt="Watchlist image of ' +
      escapeText(a.name) + '" width="64" height="64">';
  li.innerHTML = thumb +
    '<div class="alert-body"><div class="who-line"><strong class="subject-name">' + escapeText(a.name) +
    '</strong> <span class="subject-ref">' + escapeText(a.subject) + "</span></div>" +
    '<div class="category">' + escapeText(a.category_label || a.category) + "</div>" +
    '<div class="muted">Alert ' + escapeText(a.id) + " · camera " + escapeText(a.camera) + ' · <span class="time">' +
    escapeText(formatWhen(a.time, zone)) + "</span> · score " + escapeText(Number(a.score).toFixed(3)) +
    " (threshold " + escapeText(a.threshold) + ")</div>" + sightingsHtml(a, zone) + "</div>" +
    '<a class="button open" href="/console/alerts/' + encodeURIComponent(a.id) + '">Review</a>';
  return li;
}

function startQueue(queue) {
  const source = new EventSource(queue.dataset.stream);
  const state = document.getElementById("stream-state");
  const zone = queue.dataset.timeZone;
  source.addEventListener("open", () => { if (state) state.textContent = "connected: new alerts appear here"; });
  source.addEventListener("error", () => { if (state) state.textContent = "reconnecting…"; });
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    const latency = Date.now() - a.captured_at_ms;
    window.openlfrAlerts.push({ id: a.id, latency_ms: latency });
    const empty = document.getElementById("queue-empty");
    if (empty) empty.remove();
    const card = alertItem(a, zone);
    const shown = document.getElementById("alert-" + a.id);
    if (shown) shown.replaceWith(card);  // a repeat sighting merged into an alert already shown
    else queue.prepend(card);
  });
  // A camera's or a deployment's state changed: redraw the deployments panel from the server's page.
  const redraw = () => refreshDeployments();
  source.addEventListener("camera", redraw);
  source.addEventListener("deployment", redraw);
}

async function refreshDeployments() {
  const response = await fetch(window.location.pathname, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("deployments-now");
  const shown = document.getElementById("deployments-now");
  if (shown && fresh) shown.replaceWith(document.importNode(fresh, true));
  else if (shown) shown.remove();  // nothing on the ground any more: no empty box
  else if (fresh) document.querySelector("h1").after(document.importNode(fresh, true));
  document.dispatchEvent(new CustomEvent("openlfr:deployments-redrawn"));
}

function refreshViews() {
  document.querySelectorAll("img[data-refresh]").forEach((img) => {
    const base = img.dataset.refresh;
    setInterval(() => { img.src = base + "?t=" + Date.now(); }, 500);
  });
}

// Tap to zoom: the image fills the screen, where a phone can also pinch it; a tap or Escape closes it.
function openZoom(img) {
  const overlay = document.createElement("div");
  overlay.className = "zoom-overlay";
  overlay.setAttribute("role", "dialog");
  overlay.setAttribute("aria-label", img.alt + " (enlarged)");
  const big = document.createElement("img");
  big.src = img.currentSrc || img.src;
  big.alt = img.alt;
  const hint = document.createElement("p");
  hint.textContent = "Tap to close";
  overlay.append(big, hint);
  const close = () => {
    overlay.remove();
    document.body.classList.remove("zoom-open");
    document.removeEventListener("keydown", onKey);
    img.focus();
  };
  const onKey = (event) => { if (event.key === "Escape") close(); };
  overlay.addEventListener("click", close);
  document.addEventListener("keydown", onKey);
  document.body.append(overlay);
  document.body.classList.add("zoom-open");
}

function setUpZoom() {
  document.querySelectorAll(".compare img").forEach((img) => {
    img.addEventListener("click", () => openZoom(img));
    img.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); openZoom(img); }
    });
  });
}

// Phones: the header folds into one line with a Menu button (without script the links simply wrap).
function setUpMenu() {
  const header = document.querySelector("header.top");
  const toggle = header && header.querySelector(".menu-toggle");
  if (!toggle) return;
  header.classList.add("has-menu");
  toggle.hidden = false;
  toggle.addEventListener("click", () => {
    const open = header.classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpMenu();
  const queue = document.getElementById("alert-queue");
  if (queue && queue.dataset.stream) startQueue(queue);
  setUpZoom();
  refreshViews();
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  });
});
