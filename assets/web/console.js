// The buyer's console: pick a stream, drive it (go live, 上链接, skip, say a line), watch the figures.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("token").value = params.get("token") || localStorage.getItem("linkup-buyer") || "";
$("token").onchange = () => localStorage.setItem("linkup-buyer", $("token").value.trim());
let current = null;
const history = [];  // [{t, left, viewers}]

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
function button(label, onclick, cls) { const b = document.createElement("button"); b.textContent = label; b.onclick = onclick; if (cls) b.className = cls; return b; }

async function control(action, extra = {}) {
  const res = await fetch(`/api/streams/${current}/control`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("token").value.trim()}` },
    body: JSON.stringify({ action, ...extra }),
  });
  const body = await res.json();
  $("msg").textContent = res.ok ? `${action}: ok (${body.status})` : `${action}: ${body.error}`;
  refresh();
}

async function listStreams() {
  const streams = await (await fetch("/api/streams")).json();
  const tbody = $("streams").querySelector("tbody");
  tbody.replaceChildren(...streams.map((s) => {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.append(button("管理", () => select(s.id)), " ", Object.assign(document.createElement("a"), { href: s.watch_url, textContent: "观看页", target: "_blank" }));
    const when = s.starts_at ? new Date(s.starts_at * 1000).toLocaleString() : "";
    tr.append(cell(s.title), cell(`${s.status} ${when}`), td);
    return tr;
  }));
  if (!current && streams.length) select(streams[0].id);
}

async function select(id) { current = id; history.length = 0; $("live").hidden = false; refresh(); }

async function refresh() {
  if (!current) return;
  const s = await (await fetch(`/api/streams/${current}`)).json();
  $("live-title").textContent = `${s.title}（${s.status}）`;
  $("products").querySelector("tbody").replaceChildren(...s.products.map((p) => {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.append(button("上链接", () => control("link_up", { product_id: p.id }), "hot"), " ", button("跳到此商品", () => control("skip", { product_id: p.id })));
    tr.append(cell(`${p.link_no}号`), cell(p.name), cell(`¥${p.live_price}`), td);
    return tr;
  }));
  $("batches").querySelector("tbody").replaceChildren(...s.batches.map((b) => {
    const tr = document.createElement("tr");
    tr.append(cell(`${b.batch}（${b.coupon}）`), cell(b.stock), cell(b.left), cell(b.open_at === null ? "未开抢" : `${b.open_at.toFixed(2)} s`));
    return tr;
  }));
  const fails = s.voice_failovers || [];
  $("failovers").hidden = fails.length === 0;
  $("failovers").textContent = fails.length ? `⚠ 声音切换到备用引擎 ${fails.length} 次，最近：「${fails[fails.length - 1].text}」由 ${fails[fails.length - 1].engine} 朗读` : "";
  const stats = s.stats || {};
  const claimed = s.batches.reduce((n, b) => n + (b.stock - b.left), 0);
  $("f-viewers").textContent = `观众 ${stats.viewers ?? 0}`;
  $("f-comments").textContent = `评论/分钟 ${stats.comments_per_min ?? 0}`;
  $("f-claims").textContent = `已抢 ${claimed}`;
  history.push({ claimed, left: s.batches.reduce((n, b) => n + b.left, 0), viewers: stats.viewers ?? 0 });
  if (history.length > 120) history.shift();
  draw();
}

function draw() {
  const c = $("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...history.map((h) => Math.max(h.claimed, h.left)));
  for (const [key, colour] of [["left", "#ff7a1a"], ["claimed", "#2a7"]]) {
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
    history.forEach((h, i) => { const x = (i / 119) * c.width, y = c.height - (h[key] / max) * (c.height - 10) - 5; i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke();
  }
  g.fillStyle = "#555"; g.fillText("橙：剩余库存  绿：已抢", 8, 14);
}

// Voice preflight: every scripted line is voiced before the show; lines that fell back are listed with why.
$("preflight").onclick = async () => {
  const headers = { Authorization: `Bearer ${$("token").value.trim()}` };
  const start = await fetch(`/api/streams/${current}/preflight`, { method: "POST", headers });
  if (!start.ok) { $("msg").textContent = (await start.json()).error; return; }
  $("pf-progress").hidden = false;
  for (;;) {
    const state = await (await fetch(`/api/streams/${current}/preflight`, { headers })).json();
    $("pf-progress").max = state.total; $("pf-progress").value = state.voiced;
    $("pf-summary").textContent = `${state.voiced}/${state.total}`;
    if (state.done) {
      const fell = state.lines.filter((l) => l.fell_back);
      $("pf-summary").textContent = state.error ? `预检失败：${state.error}` : `${state.total} 句已就绪，${fell.length} 句改用备用声音`;
      $("pf-lines").hidden = fell.length === 0;
      $("pf-lines").querySelector("tbody").replaceChildren(...fell.map((l) => {
        const tr = document.createElement("tr");
        tr.append(cell(l.text), cell(l.engine), cell(l.reasons.join("；")));
        return tr;
      }));
      return;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
};

$("create").onsubmit = async (e) => {
  e.preventDefault();
  const body = { rundown: $("rundown").value };
  if ($("starts").value) body.starts_at = new Date($("starts").value).getTime() / 1000;
  if ($("sid").value.trim()) body.id = $("sid").value.trim();
  if ($("brand").value.trim()) body.brand_id = $("brand").value.trim();
  if ($("override").value.trim()) body.override_reason = $("override").value.trim();
  const res = await fetch("/api/streams", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("token").value.trim()}` },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  $("msg").textContent = res.ok ? `已创建 ${answer.id}` : answer.error;
  if (res.ok) { listStreams(); select(answer.id); }
};

document.querySelectorAll("[data-action]").forEach((b) => { b.onclick = () => control(b.dataset.action); });
$("say").onsubmit = (e) => { e.preventDefault(); const text = $("line").value.trim(); if (text) control("say", { text }); $("line").value = ""; };
listStreams();
setInterval(refresh, 2000);
