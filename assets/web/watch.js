// The watch page: plays the HLS stream, chats over the websocket, and reveals each event
// (card, 上链接, deal closed) only when the player reaches the event's media time; sold-out applies at once.
"use strict";
const streamId = location.pathname.split("/").pop();
const $ = (id) => document.getElementById(id);
const video = $("player");
let hls = null;
let mediaEpoch = null;       // wall-clock seconds of media time 0 (EXT-X-PROGRAM-DATE-TIME domain)
const held = [];             // events waiting for the player to reach them
const openBatches = new Map();
const ended = new Map();      // batch -> "sold_out" | "closed": its claim button stays shut

function mediaNow() {
  if (hls && hls.playingDate && mediaEpoch !== null) return hls.playingDate.getTime() / 1000 - mediaEpoch;
  return null;
}

function line(nick, text, cls) {
  const li = document.createElement("li");
  if (nick) { const n = document.createElement("span"); n.className = "nick"; n.textContent = nick; li.append(n); }
  const t = document.createElement("span"); t.textContent = text; if (cls) t.className = cls; li.append(t);
  $("comments").append(li);
  $("comments").scrollTop = $("comments").scrollHeight;
}

function show(event) {
  if (event.kind === "link_up") {
    for (const b of event.batches || []) openBatches.set(b, event);
    if ((event.batches || []).length) {
      const batch = event.batches[0];
      $("deal").hidden = false;
      $("deal").dataset.batch = batch;
      $("deal").querySelector(".deal-title").textContent = "上链接啦！限量秒杀券";
      $("claim").disabled = false;
      if (ended.has(batch)) shut(ended.get(batch));
    }
    line(null, "🔥 上链接！", "sys");
  } else if (event.kind === "deal") {
    deal(event);
  } else if (event.kind === "gesture" && event.text) {
    line("主播", event.text, "sys");
  } else if (event.kind === "toast") {
    line(null, `🎉 ${event.text}`, "sys");
  } else if (event.kind === "hide_card") {
    for (const b of event.batches || []) ended.set(b, "closed");
    $("deal").hidden = true;
  }
}

const SHUT = { sold_out: "已抢光", closed: "已结束" };
function shut(state) {
  $("claim").disabled = true;
  $("claim").textContent = SHUT[state];
}

// A deal update: stock left and how many got one (throttled by the server); sold out and closed shut the button.
function deal(event) {
  if (ended.has(event.batch) && event.state === "open") return;  // a late count never reopens a finished sale
  if (event.state === "sold_out" || event.state === "closed") ended.set(event.batch, event.state);
  if ($("deal").dataset.batch !== event.batch) return;
  const left = event.state === "sold_out" ? "已抢光" : `剩余 ${event.left} 张`;
  $("deal").querySelector(".deal-left").textContent = `${left} · ${event.claimed} 人已抢`;
  if (ended.has(event.batch)) shut(ended.get(event.batch));
}

function release() {
  const now = mediaNow();
  while (held.length && now !== null && held[0].media_time <= now) show(held.shift());
  requestAnimationFrame(release);
}

function hold(event) {
  held.push(event);
  held.sort((a, b) => a.media_time - b.media_time);
}

async function viewerToken() {
  const saved = sessionStorage.getItem("linkup-viewer");
  if (saved) return JSON.parse(saved);
  const nickname = "观众" + Math.floor(1000 + Math.random() * 9000);
  const res = await fetch("/api/viewers", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ nickname }) });
  const me = await res.json();
  sessionStorage.setItem("linkup-viewer", JSON.stringify(me));
  return me;
}

function play(url) {
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls({ liveSyncDurationCount: 2, lowLatencyMode: false });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }
  video.play().catch(() => {});
}

async function whenLive(then) {
  // a stream that has just gone live dates its first segment a moment later: wait for that date
  for (let i = 0; i < 100 && mediaEpoch === null; i++) {
    mediaEpoch = (await (await fetch(`/api/streams/${streamId}`)).json()).media_epoch ?? null;
    if (mediaEpoch === null) await new Promise((r) => setTimeout(r, 200));
  }
  then();
}

function countdown(startsAt) {
  const tick = () => {
    const left = Math.max(0, Math.round(startsAt - Date.now() / 1000));
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    $("countdown").textContent = `距开播 ${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  };
  tick();
  return setInterval(tick, 1000);
}

async function main() {
  const stream = await (await fetch(`/api/streams/${streamId}`)).json();
  $("title").textContent = stream.title;
  mediaEpoch = stream.media_epoch ?? null;
  const me = await viewerToken();
  let timer = null;
  const goLive = () => {
    $("status").textContent = "直播中";
    $("upcoming").hidden = true;
    if (timer) clearInterval(timer);
    if (!hls && !video.src) play(stream.hls_url);
  };
  if (stream.status === "live") whenLive(goLive);
  else if (stream.status === "scheduled") {
    $("status").textContent = "未开播";
    $("upcoming").hidden = false;
    if (stream.starts_at) timer = countdown(stream.starts_at);
    $("reservations").textContent = `${stream.reservations ?? 0} 人已预约`;
    $("reserve").onclick = async () => {
      const res = await fetch(`/api/streams/${streamId}/reserve`, { method: "POST", headers: { Authorization: `Bearer ${me.token}` } });
      const body = await res.json();
      if (res.ok) { $("reserve").textContent = "已预约"; $("reserve").disabled = true; $("reservations").textContent = `${body.reservations} 人已预约`; }
    };
  } else $("status").textContent = "直播已结束";
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${stream.ws_url}?token=${encodeURIComponent(me.token)}`);
  let greeted = false;
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    greeted = true;
    if (msg.type === "hello") {
      mediaEpoch = msg.stream.media_epoch ?? mediaEpoch;
      for (const b of msg.stream.batches || []) if (b.left <= 0) ended.set(b.batch, "sold_out");
      msg.events.forEach(hold);
    }
    else if (msg.type === "status" && msg.status === "live") whenLive(goLive);
    else if (msg.type === "status" && msg.status === "ended") $("status").textContent = "直播已结束";
    else if (msg.type === "comments") msg.items.forEach((c) => line(c.nickname, c.text));
    else if (msg.type === "event" && msg.event.kind === "deal" && msg.event.state === "sold_out") deal(msg.event);  // at once, not held
    else if (msg.type === "event") hold(msg.event);
    else if (msg.type === "viewers") $("viewers").textContent = `${msg.count} 人在看`;
    else if (msg.type === "likes") $("likes").textContent = `${msg.total} 赞`;
    else if (msg.type === "claim_result") claimed(msg);
    else if (msg.type === "error") line(null, msg.message, "sys");
  };
  ws.onclose = (e) => {
    // a refused token (e.g. the server's key changed) fails the handshake: forget it so a reload gets a new one
    if (!greeted) sessionStorage.removeItem("linkup-viewer");
    $("status").textContent = e.reason ? `连接已断开：${e.reason}` : "连接已断开";
  };
  $("say").onsubmit = (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (text) ws.send(JSON.stringify({ type: "comment", text }));
    $("text").value = "";
  };
  $("like").onclick = () => ws.send(JSON.stringify({ type: "like" }));
  $("claim").onclick = () => {
    $("claim").disabled = true;
    ws.send(JSON.stringify({ type: "claim", request_id: crypto.randomUUID(), batch: $("deal").dataset.batch }));
  };
  requestAnimationFrame(release);
}

const REASONS = { not_open: "还没开抢", sold_out: "已抢光", limit_reached: "每人限领，已领过啦", closed: "活动已结束",
  unknown_batch: "券不存在", rate_limited: "手速太快啦，请稍后再试" };
function claimed(msg) {
  if (msg.ok) {
    const li = document.createElement("li"); li.textContent = `✅ ${msg.coupon || "优惠券"}`; $("coupons").append(li);
    $("claim").textContent = "已抢到";
  } else {
    line(null, `抢券失败：${REASONS[msg.reason] || msg.reason}`, "sys");
    if (msg.reason === "sold_out" || msg.reason === "closed") { ended.set($("deal").dataset.batch, msg.reason); shut(msg.reason); }
    else if (msg.reason === "rate_limited") setTimeout(() => { if (!ended.has($("deal").dataset.batch)) $("claim").disabled = false; }, msg.retry_after * 1000);
    else $("claim").disabled = msg.reason === "limit_reached";
  }
}

$("unmute").onclick = () => { video.muted = false; $("unmute").hidden = true; video.play(); };
main().catch((e) => { $("status").textContent = "加载失败：" + e; });
