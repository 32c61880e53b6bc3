// The token and the calls to the service. The token comes from the URL fragment
// (#token=...), which browsers never send to a server, or from the form; it is kept in this
// tab's session storage and sent as a bearer header only.

const KEY = "curriculum-token";

// The fragment's "token=..." part, percent-decoded only: URLSearchParams would read a "+"
// (common in base64 tokens) as a space.
export function takeTokenFromFragment() {
  const parts = location.hash.slice(1).split("&").filter(Boolean);
  const at = parts.findIndex((part) => part.startsWith("token="));
  if (at < 0) return;
  let token = parts[at].slice("token=".length);
  try { token = decodeURIComponent(token); } catch { /* not percent-encoded: as typed */ }
  parts.splice(at, 1);
  if (token) sessionStorage.setItem(KEY, token);
  history.replaceState(null, "", location.pathname + location.search + (parts.length ? "#" + parts.join("&") : ""));
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export class AuthError extends Error {}

// The service's clock, from the Date header of its last answer (to the second): report
// times are stamped by the service, so ages need its clock, not the browser's.
let clockOffsetMs = 0;

export function serverNow() {
  return (Date.now() + clockOffsetMs) / 1000;
}

export async function getJson(path) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = "Bearer " + t;
  const reply = await fetch(path, { headers, cache: "no-store" });
  const date = Date.parse(reply.headers.get("Date") || "");
  if (!Number.isNaN(date)) clockOffsetMs = date - Date.now();
  let body = null;
  try { body = await reply.json(); } catch { body = null; }
  if (reply.ok) return body;
  const message = body?.error?.message || `the service answered HTTP ${reply.status}`;
  if (reply.status === 401 || reply.status === 403) throw new AuthError(message);
  throw new Error(message);
}

// Wire the token form: shown on an auth error, it stores the token and calls `retry`.
export function tokenForm(retry) {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const error = document.querySelector("[data-testid=auth-error]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    error.hidden = true;
    retry();
  });
  return {
    refused(message) {
      error.textContent = token()
        ? `Wrong token: ${message}. Enter the right one below.`
        : "No token yet: open this page with #token=<token> after its address, or enter it below.";
      error.hidden = false;
      form.hidden = false;
    },
    accepted() {
      error.hidden = true;
      form.hidden = true;
    },
  };
}

// An object's own property only: a distribution named "toString", "constructor" or
// "__proto__" must not read what every object inherits.
export function own(object, key) {
  return object != null && Object.hasOwn(object, key) ? object[key] : undefined;
}

// Characters that would let one name pose as another: controls (C0, DEL, C1), the line and
// paragraph separators, zero-width characters and the bidirectional marks, embeddings,
// overrides and isolates. Each is shown as a visible \uXXXX (and a backslash as \\, so an
// escape typed into a name cannot pass for one made here).
const HIDDEN = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function visibleName(name) {
  return name.replace(HIDDEN, (c) => (c === "\\" ? "\\\\" : "\\u" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")));
}

// A name for the page: escaped as above, in a <bdi> so that right-to-left text in it
// cannot reorder what stands next to it.
export function nameNode(name) {
  return el("bdi", { class: "name" }, visibleName(name));
}

export function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    // through the CSSOM: the page's Content-Security-Policy refuses style attributes
    if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  if (text !== null) node.textContent = text;
  return node;
}

export function age(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 90) return `${seconds.toFixed(0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

// Call `tick` now and every `ms` milliseconds; show when the view was last refreshed.
export function poll(tick, ms) {
  const status = document.querySelector("[data-testid=live-status]");
  let last = null;
  let running = false;
  async function run() {
    if (running) return;
    running = true;
    try {
      if (await tick()) last = Date.now();
    } finally {
      running = false;
    }
  }
  setInterval(() => {
    status.textContent = last ? `live, updated ${age((Date.now() - last) / 1000)} ago` : "";
  }, 1000);
  run();
  setInterval(run, ms);
  return run;
}
