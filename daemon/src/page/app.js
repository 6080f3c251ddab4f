// shoal's page: drives the daemon through its Transmission RPC (same origin), polling
// torrent-get and feed-get once a second. No framework, no build step.
"use strict";

const RPC = "/transmission/rpc";
let sessionId = "";
const openFiles = new Set(); // ids whose file list is unfolded

async function rpc(method, args) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch(RPC, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Transmission-Session-Id": sessionId },
      body: JSON.stringify({ method: method, arguments: args || {} }),
    });
    if (res.status === 409) {
      sessionId = res.headers.get("X-Transmission-Session-Id") || "";
      continue;
    }
    if (!res.ok) throw new Error(res.status + " " + (await res.text()));
    const answer = await res.json();
    if (answer.result !== "success") throw new Error(answer.result);
    return answer.arguments;
  }
  throw new Error("no session id");
}

function say(text, ok) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = ok ? "ok" : "";
}

function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
}

function eta(s) {
  if (s < 0) return "";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

const STATUS = ["stopped", "waiting to check", "checking", "queued", "downloading", "waiting to seed", "seeding"];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function action(label, fn) {
  return el("button", { type: "button", onclick: async () => {
    try { await fn(); await refresh(); } catch (e) { say(String(e.message || e)); }
  } }, label);
}

function render(torrents) {
  const main = document.getElementById("torrents");
  main.replaceChildren();
  if (torrents.length === 0) { main.append(el("p", { class: "empty" }, "No torrents yet.")); return; }
  let down = 0, up = 0;
  for (const t of torrents) {
    down += t.rateDownload; up += t.rateUpload;
    const pct = Math.floor(t.percentDone * 1000) / 10;
    const stopped = t.status === 0;
    const card = el("section", { class: "torrent" + (stopped ? " stopped" : "") + (t.error ? " error" : ""), "data-id": t.id, "data-hash": t.hashString });
    card.append(el("div", { class: "top" },
      el("span", { class: "name" }, t.name),
      el("span", {},
        stopped ? action("Resume", () => rpc("torrent-start", { ids: [t.id] }))
                : action("Pause", () => rpc("torrent-stop", { ids: [t.id] })),
        " ",
        action("Remove", () => { if (confirm("Remove " + t.name + "? (its files stay)")) return rpc("torrent-remove", { ids: [t.id] }); }))));
    const fill = el("div", {});
    fill.style.width = pct + "%"; // through the CSSOM: the CSP allows no inline style
    card.append(el("div", { class: "bar" }, fill));
    const ratio = t.uploadRatio < 0 ? "—" : t.uploadRatio.toFixed(2);
    card.append(el("div", { class: "figures" },
      el("span", { class: "percent" }, pct + " %"), " of " + size(t.sizeWhenDone) + " · " + STATUS[t.status] +
      " · ↓ " + size(t.rateDownload) + "/s · ↑ " + size(t.rateUpload) + "/s · " + t.peersConnected + " peers · ratio " + ratio +
      (eta(t.eta) ? " · ETA " + eta(t.eta) : "")));
    if (t.errorString) card.append(el("div", { class: "error-text" }, t.errorString));
    const details = el("details", { ontoggle: (e) => { if (e.target.open) openFiles.add(t.id); else openFiles.delete(t.id); } },
      el("summary", {}, t.files.length + " file" + (t.files.length === 1 ? "" : "s")));
    if (openFiles.has(t.id)) details.open = true;
    const table = el("table", { class: "files" });
    t.files.forEach((f, i) => {
      const box = el("input", { type: "checkbox", onchange: async (e) => {
        const key = e.target.checked ? "files-wanted" : "files-unwanted";
        try { await rpc("torrent-set", { ids: [t.id], [key]: [i] }); await refresh(); } catch (err) { say(String(err.message || err)); }
      } });
      box.checked = t.fileStats[i].wanted;
      const prio = el("select", { class: "priority", onchange: async (e) => {
        const key = { "1": "priority-high", "0": "priority-normal", "-1": "priority-low" }[e.target.value];
        try { await rpc("torrent-set", { ids: [t.id], [key]: [i] }); await refresh(); } catch (err) { say(String(err.message || err)); }
      } }, el("option", { value: "1" }, "high"), el("option", { value: "0" }, "normal"), el("option", { value: "-1" }, "low"));
      prio.value = String(t.fileStats[i].priority);
      const fp = f.length ? Math.floor(f.bytesCompleted * 1000 / f.length) / 10 : 100;
      table.append(el("tr", {}, el("td", {}, box), el("td", {}, f.name), el("td", { class: "pct" }, fp + " %"),
        el("td", {}, size(f.length)), el("td", {}, prio)));
    });
    const seq = el("input", { type: "checkbox", class: "sequential", onchange: async (e) => {
      try { await rpc("torrent-set", { ids: [t.id], sequentialDownload: e.target.checked }); await refresh(); } catch (err) { say(String(err.message || err)); }
    } });
    seq.checked = !!t.sequentialDownload;
    details.append(el("label", {}, seq, " download in order (sequential)"), table);
    card.append(details);
    main.append(card);
  }
  document.getElementById("totals").textContent = "↓ " + size(down) + "/s · ↑ " + size(up) + "/s";
}

const FIELDS = ["id", "name", "hashString", "status", "percentDone", "sizeWhenDone", "rateDownload", "rateUpload",
  "peersConnected", "uploadRatio", "eta", "error", "errorString", "files", "fileStats", "sequentialDownload"];

function renderFeeds(feeds) {
  const list = document.getElementById("feeds");
  list.replaceChildren();
  for (const f of feeds) {
    list.append(el("li", { "data-id": f.id },
      f.url + (f.match ? " (titles matching " + f.match + ")" : "") + " · " + f.taken + " taken" +
      (f.error ? " · last error: " + f.error : "") + " ",
      action("Stop following", () => rpc("feed-remove", { ids: [f.id] }))));
  }
}

async function refresh() {
  const args = await rpc("torrent-get", { fields: FIELDS });
  render(args.torrents);
  renderFeeds((await rpc("feed-get", {})).feeds);
}

async function add(args) {
  try {
    const r = await rpc("torrent-add", args);
    const t = r["torrent-added"] || r["torrent-duplicate"];
    say((r["torrent-duplicate"] ? "Already there: " : "Added: ") + t.name, true);
    await refresh();
  } catch (e) { say(String(e.message || e)); }
}

document.getElementById("add").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("add-link");
  const link = input.value.trim();
  if (!link) return;
  input.value = "";
  add({ filename: link });
});

document.getElementById("add-file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const data = reader.result; // data:...;base64,XXXX
    add({ metainfo: String(data).slice(String(data).indexOf(",") + 1) });
    e.target.value = "";
  };
  reader.readAsDataURL(file);
});

document.getElementById("feed-add").addEventListener("submit", async (e) => {
  e.preventDefault();
  const url = document.getElementById("feed-url").value.trim();
  const match = document.getElementById("feed-match").value.trim();
  if (!url) return;
  try {
    const r = await rpc("feed-add", match ? { url: url, match: match } : { url: url });
    say("Following " + r["feed-added"].url, true);
    document.getElementById("feed-url").value = "";
    document.getElementById("feed-match").value = "";
    await refresh();
  } catch (err) { say(String(err.message || err)); }
});

async function loop() {
  try { await refresh(); } catch (e) { say("daemon unreachable: " + (e.message || e)); }
  setTimeout(loop, 1000);
}
loop();
