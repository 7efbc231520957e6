// The brand's product library: list, add/edit and delete products, write or generate each one's script.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("token").value = params.get("token") || localStorage.getItem("linkup-brand") || "";
if (params.get("token")) localStorage.setItem("linkup-brand", $("token").value.trim());
$("token").onchange = () => { localStorage.setItem("linkup-brand", $("token").value.trim()); load(); loadVoice(); };
const form = $("product");
let products = [];
let editing = null;  // the product whose script is open

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
function button(label, onclick, cls) { const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.onclick = onclick; if (cls) b.className = cls; return b; }
const lines = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);
const path = (id) => `/api/products/${encodeURIComponent(id)}`;

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("token").value.trim()}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  return { ok: res.ok, data, error: res.ok ? "" : (data.error || `HTTP ${res.status}`) };
}

async function load() {
  const res = await api("GET", "/api/products");
  if (!res.ok) { $("msg").textContent = res.error; return; }
  $("msg").textContent = "";
  products = res.data;
  $("products").querySelector("tbody").replaceChildren(...products.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.id = p.id;
    const td = document.createElement("td");
    td.append(button("编辑", () => edit(p)), " ", button("删除", () => remove(p), "danger"));
    tr.append(cell(p.name), cell(p.category), cell(`¥${p.price}`), cell(`¥${p.live_price}`), cell(p.stock),
      cell(p.script.generate ? "自动生成" : `${p.script.lines.length} 句`), td);
    return tr;
  }));
}

// The form's text as the API's product fields; the server checks every rule and names the field it rejects.
function fields() {
  const v = (name) => form.elements[name].value.trim();
  const out = { name: v("name"), category: v("category"), price: v("price"), live_price: v("live_price"),
    selling_points: lines(v("selling_points")), gifts: lines(v("gifts")), after_sale: lines(v("after_sale")) };
  out.stock = /^\d+$/.test(v("stock")) ? Number(v("stock")) : v("stock");
  out.specs = Object.fromEntries(lines(v("specs")).map((line) => {
    const at = line.search(/[:：]/);
    return at < 0 ? [line, ""] : [line.slice(0, at).trim(), line.slice(at + 1).trim()];
  }));
  if (v("coupon_amount")) out.coupon = { amount: v("coupon_amount"), min_spend: v("coupon_min_spend") || 0 };
  for (const key of Object.keys(out)) if (out[key] === "") delete out[key];  // left empty: the server says it is missing
  return out;
}

function edit(p) {
  const set = (name, value) => { form.elements[name].value = value ?? ""; };
  set("id", p.id); set("name", p.name); set("category", p.category); set("price", p.price);
  set("live_price", p.live_price); set("stock", p.stock);
  set("selling_points", p.selling_points.join("\n")); set("gifts", p.gifts.join("\n")); set("after_sale", p.after_sale.join("\n"));
  set("specs", Object.entries(p.specs).map(([k, val]) => `${k}: ${val}`).join("\n"));
  set("coupon_amount", p.coupon?.amount); set("coupon_min_spend", p.coupon?.min_spend);
  $("form-title").textContent = `编辑：${p.name}`;
  $("form-error").textContent = "";
  openScript(p);
}

function openScript(p) {
  editing = p.id;
  $("script-box").hidden = false;
  $("script-title").textContent = `口播稿：${p.name}`;
  const generate = Boolean(p.script.generate);
  document.querySelector(`input[name=mode][value=${generate ? "generate" : "lines"}]`).checked = true;
  $("lines").value = generate ? "" : p.script.lines.join("\n");
  $("lines").disabled = generate;
  $("script-error").textContent = "";
  $("preview").textContent = "";
}

async function remove(p) {
  if (!confirm(`删除 ${p.name}？`)) return;
  const res = await api("DELETE", path(p.id));
  $("msg").textContent = res.ok ? `已删除 ${p.name}` : res.error;
  if (editing === p.id) { editing = null; $("script-box").hidden = true; }
  load();
}

form.onsubmit = async (e) => {
  e.preventDefault();
  const id = form.elements.id.value.trim();
  if (!id) { $("form-error").textContent = "id: 请填写商品 ID"; return; }
  const res = await api("PUT", path(id), fields());
  $("form-error").textContent = res.error;
  if (!res.ok) return;
  $("msg").textContent = `已保存 ${res.data.name}`;
  await load();
  openScript(res.data);
};

$("new").onclick = () => { form.reset(); $("form-title").textContent = "新增商品"; $("form-error").textContent = ""; };
document.querySelectorAll("input[name=mode]").forEach((r) => { r.onchange = () => { $("lines").disabled = r.value === "generate" && r.checked; }; });

$("save-script").onclick = async () => {
  const generate = document.querySelector("input[name=mode]:checked").value === "generate";
  const res = await api("PUT", `${path(editing)}/script`, generate ? { generate: true } : { lines: lines($("lines").value) });
  $("script-error").textContent = res.error;
  if (res.ok) { await load(); preview(); }
};
const preview = async () => {
  const res = await api("GET", `${path(editing)}/script/preview`);
  $("preview").textContent = res.ok ? res.data : "";
  $("script-error").textContent = res.error;
};
$("preview-btn").onclick = preview;

// The brand's voice: its profile, a spoken preview, and recordings of exact script lines.
const voice = $("voice");
const VOICE_TEXT = ["name", "url", "model"];
const VOICE_NUMBERS = ["rate", "pitch", "volume"];
const token = () => $("token").value.trim();
const showHttp = () => {
  const http = [voice.elements.engine.value, voice.elements.fallback.value].includes("http");
  voice.querySelectorAll(".http").forEach((el) => { el.hidden = !http; });
};
voice.elements.engine.onchange = showHttp;
voice.elements.fallback.onchange = showHttp;

async function loadVoice() {
  const res = await api("GET", "/api/voice");
  if (!res.ok) return;
  for (const key of ["engine", "fallback", ...VOICE_TEXT, ...VOICE_NUMBERS]) voice.elements[key].value = res.data[key] ?? "";
  showHttp();
}

voice.onsubmit = async (e) => {
  e.preventDefault();
  const out = { engine: voice.elements.engine.value, fallback: voice.elements.fallback.value };
  for (const key of VOICE_TEXT) out[key] = voice.elements[key].value.trim();
  for (const key of VOICE_NUMBERS) { const v = voice.elements[key].value.trim(); out[key] = /^-?\d+$/.test(v) ? Number(v) : v; }
  const res = await api("PUT", "/api/voice", out);
  $("voice-error").textContent = res.error;
  if (res.ok) $("msg").textContent = "已保存主播声音";
};

$("voice-preview").onclick = async () => {
  $("voice-engine").textContent = "合成中…";
  const res = await fetch("/api/voice/preview", { method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token()}` },
    body: JSON.stringify({ text: $("voice-text").value }) });
  if (!res.ok) { $("voice-engine").textContent = (await res.json()).error || `HTTP ${res.status}`; return; }
  const audio = $("voice-audio");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(await res.blob());
  $("voice-engine").textContent = `由 ${res.headers.get("X-Voice-Engine")} 朗读`;
  audio.play().catch(() => {});
};

$("line-upload").onclick = async () => {
  const file = $("line-file").files[0];
  if (!file) { $("line-msg").textContent = "file: 请选择录音文件"; return; }
  const body = new FormData();
  body.append("text", $("line-text").value);
  body.append("file", file);
  const res = await fetch("/api/voice/lines", { method: "PUT", headers: { Authorization: `Bearer ${token()}` }, body });
  const data = await res.json();
  $("line-msg").textContent = res.ok ? `已保存录音（${data.seconds} 秒）` : data.error;
};

load();
loadVoice();
