// The brand's page: its product library and scripts, its host's voice, and its host's face (photo hosts).
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
$("token").value = params.get("token") || localStorage.getItem("linkup-brand") || "";
if (params.get("token")) localStorage.setItem("linkup-brand", $("token").value.trim());
$("token").onchange = () => { localStorage.setItem("linkup-brand", $("token").value.trim()); load(); loadVoice(); loadHosts(); };
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

// The brand's hosts: a photo becomes a talking host; when no face is found, the points are placed by hand.
const POINT_LABELS = { left_eye: "左眼", right_eye: "右眼", nose: "鼻尖", mouth_left: "左嘴角", mouth_right: "右嘴角",
  upper_lip: "上唇", lower_lip: "下唇", chin: "下巴" };
const withToken = (url) => `${url}?token=${encodeURIComponent(token())}`;
let placing = null;  // {uploadId, names, points: [[x, y], ...], image}: a photo waiting for its points

function hostBusy(text, fraction) {
  const bar = $("host-progress");
  bar.hidden = text === null;
  if (fraction === undefined) bar.removeAttribute("value"); else bar.value = fraction;  // no value: indeterminate
  $("host-status").textContent = text || "";
  $("host-upload").disabled = text !== null;
  $("host-resubmit").disabled = text !== null || !placing || placing.points.length < placing.names.length;
}

// POST /api/hosts with upload progress (fetch cannot report it); resolves to {status, data}.
function postHost(body, contentType) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/hosts");
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    if (contentType) xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) hostBusy("上传中…", e.loaded / e.total); };
    xhr.upload.onload = () => hostBusy("正在识别人脸并生成 5 秒预览…");
    xhr.onload = () => {
      let data;
      try { data = JSON.parse(xhr.responseText); } catch { data = { error: `HTTP ${xhr.status}` }; }
      resolve({ status: xhr.status, data });
    };
    xhr.onerror = () => resolve({ status: 0, data: { error: "网络错误：上传没有完成" } });
    xhr.send(body);
  });
}

async function submitHost(body, contentType) {
  $("host-error").textContent = "";
  hostBusy("上传中…", 0);
  const { status, data } = await postHost(body, contentType);
  hostBusy(null);
  if (status === 201) {
    stopPlacing();
    $("host-status").textContent = `已生成：${data.host.name}`;
    showPreview(data.host);
    loadHosts();
  } else if (status === 422 && data.needs_points) {
    $("host-error").textContent = data.error;
    startPlacing(data);
  } else {
    $("host-error").textContent = data.error || `HTTP ${status}`;
  }
}

function showPreview(host) {
  const video = $("host-preview");
  video.hidden = false;
  video.src = withToken(host.preview_url);
  video.play().catch(() => { video.muted = true; video.play().catch(() => {}); });  // autoplay with sound may be refused
}

$("host-upload").onclick = () => {
  const file = $("host-file").files[0];
  if (!file) { $("host-error").textContent = "photo: 请先选择一张照片"; return; }
  const body = new FormData();
  body.append("photo", file);
  if ($("host-name").value.trim()) body.append("name", $("host-name").value.trim());
  submitHost(body);
};

function startPlacing(answer) {
  const image = new Image();
  placing = { uploadId: answer.upload_id, names: answer.points, points: [], image };
  image.onload = () => {
    const canvas = $("host-points");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    $("host-points-box").hidden = false;
    drawPoints();
  };
  image.onerror = () => { $("host-error").textContent = "照片没有加载出来，请重新上传"; };
  image.src = withToken(answer.photo_url);
}

function stopPlacing() { placing = null; $("host-points-box").hidden = true; }

function drawPoints() {
  const canvas = $("host-points");
  const ctx = canvas.getContext("2d");
  ctx.drawImage(placing.image, 0, 0);
  const px = canvas.width / canvas.getBoundingClientRect().width;  // photo pixels per screen pixel
  ctx.font = `${Math.round(14 * px)}px sans-serif`;
  ctx.lineWidth = 2 * px;
  placing.points.forEach(([x, y], i) => {
    ctx.fillStyle = "#ff3b30";
    ctx.strokeStyle = "#fff";
    ctx.beginPath(); ctx.arc(x, y, 5 * px, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    const label = POINT_LABELS[placing.names[i]] || placing.names[i];
    ctx.strokeText(label, x + 8 * px, y - 8 * px); ctx.fillText(label, x + 8 * px, y - 8 * px);
  });
  const i = placing.points.length;
  const total = placing.names.length;
  $("host-point-label").textContent = i < total
    ? `请点击：${POINT_LABELS[placing.names[i]] || placing.names[i]}（${i + 1}/${total}）`
    : `${total} 个点都已放好，点「用这些点生成」`;
  $("host-resubmit").disabled = i < total;
}

$("host-points").onclick = (e) => {
  if (!placing || placing.points.length >= placing.names.length) return;
  const canvas = $("host-points");
  const r = canvas.getBoundingClientRect();
  const x = (e.clientX - r.left) * canvas.width / r.width;
  const y = (e.clientY - r.top) * canvas.height / r.height;
  placing.points.push([Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
  drawPoints();
};
$("host-undo").onclick = () => { if (placing && placing.points.length) { placing.points.pop(); drawPoints(); } };
$("host-cancel").onclick = () => { stopPlacing(); $("host-error").textContent = ""; };
$("host-resubmit").onclick = () => {
  const points = Object.fromEntries(placing.names.map((name, i) => [name, placing.points[i]]));
  const body = { upload_id: placing.uploadId, points };
  if ($("host-name").value.trim()) body.name = $("host-name").value.trim();
  submitHost(JSON.stringify(body), "application/json");
};

async function loadHosts() {
  const res = await api("GET", "/api/hosts");
  if (!res.ok) { $("host-error").textContent = res.error; return; }
  $("hosts").querySelector("tbody").replaceChildren(...res.data.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.id = h.id;
    const photo = document.createElement("td");
    const img = document.createElement("img");
    img.src = withToken(h.photo_url);
    img.alt = h.name;
    photo.append(img);
    const actions = document.createElement("td");
    actions.append(button("预览", () => showPreview(h)), " ");
    if (!h.active) actions.append(button("用于我的直播", () => useHost(h.id), "use"), " ");
    actions.append(button("删除", () => removeHost(h), "danger"));
    tr.append(photo, cell(h.name), cell(h.rigged === "auto" ? "自动识别" : "手动标点"), cell(h.active ? "使用中" : ""), actions);
    return tr;
  }));
}

async function useHost(hostId) {
  const res = await api("PUT", "/api/hosts/active", { host_id: hostId });
  $("host-error").textContent = res.error;
  if (res.ok) $("host-status").textContent = hostId ? "直播将使用这个形象" : "直播将使用默认主播";
  loadHosts();
}
$("host-none").onclick = () => useHost(null);

async function removeHost(h) {
  if (!confirm(`删除形象 ${h.name}？`)) return;
  const res = await api("DELETE", `/api/hosts/${encodeURIComponent(h.id)}`);
  $("host-error").textContent = res.error;
  if (res.ok) $("host-status").textContent = `已删除 ${h.name}`;
  loadHosts();
}

load();
loadVoice();
loadHosts();
