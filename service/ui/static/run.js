// One run: weights over steps, signal and exploration, rewards, the distributions' table
// and each rank's last report, refreshed by polling; in a run that declares prompts, each
// distribution's prompt selection and its skipped and zero-variance shares over the time
// the page is open.
import {
  AuthError, age, el, getJson, nameNode, own, poll, serverNow, takeTokenFromFragment, tokenForm,
  visibleName,
} from "./api.js";
import { bars, color, lines, stackedArea } from "./charts.js";

const REFRESH_MS = 2000;
const HISTORY_LIMIT = 1000;
// Refreshes kept for the prompt charts (300 at 2 s: the last 10 minutes): the service keeps
// no history of the shares, so the page records one point per refresh while it is open.
const SERIES_LIMIT = 300;

takeTokenFromFragment();
const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
document.title = `${runId} · curriculum`;
document.querySelector("[data-testid=run-id]").textContent = runId;
const main = document.getElementById("run");
const gate = tokenForm(() => refresh());
let sort = { key: "weight", descending: true };
let latest = null;
let shownVersion = null;
const series = [];

function strategyText(strategy) {
  const { name, ...params } = strategy;
  return `${name} (${Object.entries(params).map(([k, v]) => `${k}=${v}`).join(", ")})`;
}

function rowsOf(run) {
  return run.config.distributions.map((name, index) => {
    const s = own(run.stats, name);
    const p = promptsOf(run, name);
    const flags = [
      s.starved ? "starved" : "", s.saturated ? "saturated" : "", p.forced > 0 ? "forced" : "",
    ].filter(Boolean);
    return {
      name, index, ...s, ...p, last_step: own(run.activity.last_step, name) ?? null, flags: flags.join(" "),
    };
  });
}

// A distribution's prompt selection for the table (drawn: prompts drawn in all, the order of
// pass / position); nothing in a run without prompts.
function promptsOf(run, name) {
  const p = own(run.prompts, name);
  if (p === undefined) return {};
  return {
    prompts: p.prompts, pass: p.pass, position: p.position, drawn: p.pass * p.prompts + p.position,
    skipped: p.skipped, zero_variance: p.zero_variance, forced: p.forced,
  };
}

const percent = (share) => `${(100 * share).toFixed(1)}%`;

function renderFacts(run) {
  const q = (id) => document.querySelector(`[data-testid=${id}]`);
  q("run-version").textContent = String(run.version);
  q("run-strategy").textContent = strategyText(run.config.strategy);
  q("run-seed").textContent = String(run.config.seed);
  q("run-created").textContent = run.config.created_at;
  const body = document.querySelector("[data-testid=reporters-table] tbody");
  const reporters = run.activity.reporters;
  body.replaceChildren(...(reporters.length ? reporters.map((r) => {
    const tr = el("tr", { "data-rank": r.rank === null ? "none" : String(r.rank) });
    tr.append(
      el("td", {}, r.rank === null ? "(no rank)" : String(r.rank)), el("td", {}, String(r.step)),
      el("td", {}, String(r.version)), el("td", {}, age(serverNow() - r.at)),
    );
    return tr;
  }) : [el("tr", {}, "no report yet")]));
}

// The share of the batch a distribution gets for rehearsal, as a percent; "-" for none, and
// the cell hidden (as its header) for strategies that never rehearse.
function rehearsalCell(share, rehearses) {
  const cell = el("td", { class: "rehearsal" }, share > 0 ? `${(100 * share).toFixed(1)}%` : "-");
  cell.hidden = !rehearses;
  return cell;
}

function renderTable(run) {
  const rows = rowsOf(run);
  const { key, descending } = sort;
  rows.sort((a, b) => {
    const x = a[key] ?? -Infinity;
    const y = b[key] ?? -Infinity;
    const order = typeof x === "string" ? String(x).localeCompare(String(y)) : x - y;
    return descending ? -order : order;
  });
  const fmt = (v, digits = 3) => (v === null ? "-" : Number(v).toFixed(digits));
  const rehearses = run.config.strategy.name === "dump-rehearse";
  const hasPrompts = run.prompts !== undefined;
  document.querySelector("[data-testid=distribution-table] th[data-key=rehearsal_share]").hidden = !rehearses;
  document.querySelectorAll("[data-testid=distribution-table] th.prompt").forEach((th) => { th.hidden = !hasPrompts; });
  const promptCell = (cls, text) => {
    const cell = el("td", { class: `prompt ${cls}` }, hasPrompts ? text() : "");
    cell.hidden = !hasPrompts;
    return cell;
  };
  document.querySelector("[data-testid=distribution-table] tbody").replaceChildren(...rows.map((r) => {
    const tr = el("tr", { "data-distribution": r.name });
    const name = el("td");
    name.append(el("span", { class: "swatch", style: `background:${color(r.index)}` }), nameNode(r.name));
    tr.append(
      name, el("td", {}, fmt(r.weight)), el("td", {}, String(r.n)), el("td", {}, fmt(r.window_mean)),
      el("td", {}, fmt(r.exploration_bonus)), el("td", {}, r.reward_n ? fmt(r.reward_mean) : "-"),
      el("td", {}, r.reward_n ? fmt(r.reward_best) : "-"),
      el("td", {}, r.last_step === null ? "never" : String(r.last_step)),
      rehearsalCell(r.rehearsal_share, rehearses),
      promptCell("prompts", () => String(r.prompts)), promptCell("pass", () => `${r.pass} / ${r.position}`),
      promptCell("skipped", () => percent(r.skipped)), promptCell("zero-variance", () => percent(r.zero_variance)),
      promptCell("forced", () => String(r.forced)),
      el("td", { class: "flags" }, r.flags),
    );
    return tr;
  }));
  document.querySelectorAll("[data-testid=distribution-table] th").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.key === key);
    th.classList.toggle("descending", th.dataset.key === key && descending);
  });
}

function renderCharts(run, history) {
  const names = history.distributions;
  const steps = history.entries.map((e) => e.step);
  stackedArea(document.querySelector("[data-testid=weights-chart]"), names, steps, history.entries.map((e) => e.weights));
  lines(document.querySelector("[data-testid=signal-chart]"), names, steps, history.entries.map((e) => e.window_mean));
  const legend = document.querySelector("[data-testid=weights-legend]");
  legend.replaceChildren(...names.map((name, i) => {
    const item = el("span", { class: "item" });
    item.append(el("span", { class: "swatch", style: `background:${color(i)}` }), nameNode(name));
    return item;
  }));
  const rows = rowsOf(run);
  const maxScore = Math.max(...rows.map((r) => r.window_mean + r.exploration_bonus), 1e-9);
  bars(document.querySelector("[data-testid=score-bars]"), rows.map((r) => ({
    name: r.name, index: r.index, parts: [[r.window_mean, "signal"], [r.exploration_bonus, "bonus"]],
    label: `${r.window_mean.toFixed(3)} + ${r.exploration_bonus.toFixed(3)}`,
  })), maxScore);
  const maxReward = Math.max(...rows.map((r) => Math.max(r.reward_best, r.reward_mean)), 1e-9);
  bars(document.querySelector("[data-testid=reward-bars]"), rows.map((r) => ({
    name: r.name, index: r.index, parts: [[r.reward_mean, "signal"]], tick: r.reward_best,
    label: r.reward_n ? `${r.reward_mean.toFixed(3)} (best ${r.reward_best.toFixed(3)})` : "no reward yet",
  })), maxReward);
}

// One point of the prompt charts per refresh: each distribution's shares, in the run's order.
function recordPrompts(run) {
  const names = run.config.distributions;
  const shares = (key) => names.map((name) => own(run.prompts, name)?.[key] ?? 0);
  series.push({ at: serverNow(), skipped: shares("skipped"), zero_variance: shares("zero_variance") });
  if (series.length > SERIES_LIMIT) series.splice(0, series.length - SERIES_LIMIT);
}

function renderPrompts(run) {
  const section = document.querySelector("[data-testid=prompt-series]");
  section.hidden = run.prompts === undefined;
  if (section.hidden) return;
  recordPrompts(run);
  const names = run.config.distributions;
  const times = series.map((point) => point.at);
  const clock = (at) => new Date(at * 1000).toLocaleTimeString();
  for (const key of ["zero_variance", "skipped"]) {
    const rows = series.map((point) => point[key]);
    const last = rows[rows.length - 1];
    lines(document.querySelector(`[data-testid=${key.replace("_", "-")}-chart]`), names, times, rows, {
      yMax: 1, height: 160, xLabel: clock, yLabel: (v) => `${Math.round(100 * v)}%`,
      title: (name, j) => `${visibleName(name)}: ${percent(last[j])} now`,
    });
  }
}

// The run with every page of its distributions joined (GET /v1/runs/{run} answers a page of
// them at a time; the rest of the answer is the last page's).
async function wholeRun(path) {
  let run = await getJson(path);
  while (run.next_offset !== null) {
    const page = await getJson(`${path}?offset=${run.next_offset}`);
    run = {
      ...page,
      config: { ...page.config, distributions: [...run.config.distributions, ...page.config.distributions] },
      weights: { ...run.weights, ...page.weights },
      stats: { ...run.stats, ...page.stats },
      activity: { ...page.activity, last_step: { ...run.activity.last_step, ...page.activity.last_step } },
      ...(run.prompts === undefined ? {} : { prompts: { ...run.prompts, ...page.prompts } }),
      offset: run.offset,
    };
  }
  return run;
}

async function refresh() {
  try {
    const path = `/v1/runs/${encodeURIComponent(runId)}`;
    const run = await wholeRun(path);
    gate.accepted();
    main.hidden = false;
    latest = run;
    renderFacts(run);
    renderTable(run);
    renderPrompts(run);
    if (run.version !== shownVersion) {
      const history = await getJson(`${path}/history?limit=${HISTORY_LIMIT}`);
      renderCharts(run, history);
      shownVersion = run.version;
    }
    return true;
  } catch (error) {
    if (error instanceof AuthError) {
      main.hidden = true;
      shownVersion = null;
      gate.refused(error.message);
    } else {
      document.querySelector("[data-testid=live-status]").textContent = `not updated: ${error.message}`;
    }
    return false;
  }
}

document.querySelectorAll("[data-testid=distribution-table] th").forEach((th) => {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    sort = { key, descending: sort.key === key ? !sort.descending : key !== "name" };
    if (latest) renderTable(latest);
  });
});

const now = poll(refresh, REFRESH_MS);
window.addEventListener("resize", () => { shownVersion = null; now(); });
