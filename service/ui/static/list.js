// The operator's list of runs, refreshed by polling.
import { AuthError, age, el, getJson, poll, serverNow, takeTokenFromFragment, tokenForm } from "./api.js";

const REFRESH_MS = 5000;
const PAGE = 200;

takeTokenFromFragment();
const gate = tokenForm(() => refresh());
const more = document.getElementById("more");
let pages = 1;

async function refresh() {
  try {
    const runs = [];
    let cursor = null;
    for (let page = 0; page < pages; page++) {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (cursor) query.set("cursor", cursor);
      const answer = await getJson(`/v1/runs?${query}`);
      runs.push(...answer.runs);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    gate.accepted();
    more.hidden = !cursor;
    runs.sort((a, b) => (b.reported_at ?? 0) - (a.reported_at ?? 0) || a.run_id.localeCompare(b.run_id));
    document.querySelector("[data-testid=runs-table] tbody").replaceChildren(...runs.map((run) => {
      const tr = el("tr", { "data-run": run.run_id });
      const link = el("a", { href: `/ui/runs/${encodeURIComponent(run.run_id)}` }, run.run_id);
      const name = el("td");
      name.append(link);
      tr.append(
        name, el("td", {}, String(run.distributions)), el("td", {}, run.strategy),
        el("td", {}, String(run.version)), el("td", {}, run.created_at),
        el("td", {}, run.reported_at === null ? "never" : `${age(serverNow() - run.reported_at)} ago`),
      );
      return tr;
    }));
    return true;
  } catch (error) {
    if (error instanceof AuthError) gate.refused(error.message);
    else document.querySelector("[data-testid=live-status]").textContent = `not updated: ${error.message}`;
    return false;
  }
}

more.addEventListener("click", () => { pages += 1; refresh(); });
poll(refresh, REFRESH_MS);
