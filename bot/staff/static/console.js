// The live staff console: one websocket to /staff/ws (see the staff console protocol in
// README). Server text is only ever inserted with textContent; nothing is parsed as HTML.
"use strict";

(function () {
  const { el, newClientId, clock, isSendKey, reconnectingSocket } = window.ipbot; // common.js
  const TITLE = document.title;
  const TYPING_EVERY_MS = 2000; // at most one "typing on" frame per this interval
  const TYPING_IDLE_MS = 3000; // "typing off" after this long without a key
  const CITIZEN_TYPING_MS = 8000; // hide the citizen's indicator if "off" never comes
  const OPEN_KEY = "ipbot.staff.open";

  // Intent names from the conversation contract, as topics a person reads (cf. actions/fallback.py).
  const TOPICS = {
    ask_trademark_window: "商标注册与受理窗口",
    find_brand_station: "商标品牌指导站",
    ask_ip_insurance: "知识产权保险",
    ask_one_stop_service: "“最多跑一地”与知识产权综合体",
    ask_patent_fast_track: "专利预审快速通道",
    ask_pledge_financing: "知识产权质押融资",
    ask_geographical_indication: "地理标志",
    report_infringement: "侵权投诉与维权",
    request_insurance_consultation: "保险咨询登记",
    stop_form: "中止填写",
    inform: "补充信息",
    out_of_scope: "业务范围外的问题",
    bot_challenge: "询问是否机器人",
  };
  const REASONS = { user: "市民要求转人工", fallback: "机器人未能回答", busy: "系统繁忙转人工" };
  const CHANNELS = { webchat: "网页", wechat: "微信" };
  const STATUS = { waiting: "等待接入", active: "服务中", returned: "已转回机器人", closed: "已结束", offline: "非服务时间" };
  const ERRORS = {
    taken: "该会话已由其他客服接入",
    forbidden: "没有权限进行此操作",
    not_found: "会话不存在或已结束",
    bad_frame: "请求无效",
    delivery_failed: "消息未能送达市民",
    quota: "微信客服消息额度已用完",
  };

  const root = document.getElementById("console");
  const me = {
    id: Number(root.dataset.meId),
    display_name: root.dataset.meName || "",
    role: root.dataset.meRole || "agent",
  };
  const $ = function (id) { return document.getElementById(id); };
  const ui = {
    connDot: $("conn-dot"), connState: $("conn-state"), alerts: $("enable-alerts"),
    lists: { waiting: $("queue-waiting"), mine: $("queue-mine"), others: $("queue-others") },
    counts: { waiting: $("count-waiting"), mine: $("count-mine"), others: $("count-others") },
    empties: { waiting: $("empty-waiting"), mine: $("empty-mine"), others: $("empty-others") },
    conv: $("conversation"), title: $("conv-title"), meta: $("conv-meta"),
    accept: $("accept"), handback: $("handback"), close: $("close"),
    transferAgent: $("transfer-agent"), transfer: $("transfer"),
    transcript: $("transcript"), citizenTyping: $("citizen-typing"),
    composer: $("composer"), reply: $("reply"), send: $("send"), canned: $("canned"), hint: $("composer-hint"),
    notes: $("notes"), emptyNotes: $("empty-notes"), noteForm: $("note-form"), noteText: $("note-text"), addNote: $("add-note"),
    toasts: $("toasts"), deliveryLimit: $("delivery-limit"),
  };

  let agents = [];
  let canned = [];
  let queue = { waiting: [], mine: [], others: [] };
  let waitingTotal = 0; // all waiting citizens; queue.waiting holds the first page
  let current = null; // {id, handoff, loaded}
  const unread = new Map(); // conversation id -> messages not yet seen
  const shownIds = new Set(); // server ids of the open transcript's messages
  const pending = new Map(); // client id -> the staff reply's <li>, until acknowledged
  let typingSentAt = 0;
  let typingOn = false;
  let typingIdleTimer = null;
  let citizenTypingTimer = null;
  let audio = null;
  let mineIds = null; // handoff ids among mine at the last queue frame (null: none seen yet)
  const acceptedByMe = new Set();

  // ---- helpers (el, newClientId, clock… are common.js's) -------------------------------------

  // Server times are UTC; one without a zone (a naive database value) is read as UTC too.
  function parseTime(value) {
    if (!value) return null;
    let s = String(value);
    if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s += "Z";
    const date = new Date(s);
    return isNaN(date.getTime()) ? null : date;
  }

  // 12秒, 3分12秒, 1小时5分
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分" + (s % 60) + "秒";
    return Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分";
  }

  function topicNames(intents) {
    if (!Array.isArray(intents) || !intents.length) return "";
    return intents.map(function (i) { return TOPICS[i] || i; }).join("、");
  }

  function shortId(id) { return String(id || "").slice(0, 6); }

  function isAdmin() { return me.role === "admin"; }

  function isOpen() { return connection.isOpen(); }

  function sendFrame(frame) {
    if (!isOpen()) {
      toast("连接已断开，正在重新连接…");
      return false;
    }
    connection.send(frame);
    return true;
  }

  function toast(text, kind) {
    const item = el("div", "toast" + (kind ? " toast--" + kind : ""), text);
    ui.toasts.appendChild(item);
    while (ui.toasts.children.length > 4) ui.toasts.removeChild(ui.toasts.firstChild);
    setTimeout(function () { item.classList.add("is-leaving"); }, 6000);
    setTimeout(function () { item.remove(); }, 6600);
  }

  // ---- sound and notifications ---------------------------------------------------------------

  // Browsers only let a page play sound after a user gesture: the first click starts the context.
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) {
      try { audio = new Ctx(); } catch (e) { audio = null; return; }
    }
    if (audio.state === "suspended") Promise.resolve(audio.resume()).then(showAlertsState, showAlertsState);
    else showAlertsState();
  }
  document.addEventListener("pointerdown", unlockAudio, { passive: true });
  document.addEventListener("keydown", unlockAudio);

  function beep() {
    if (!audio || audio.state !== "running") return;
    const start = audio.currentTime;
    [0, 0.22].forEach(function (offset) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(start + offset);
      osc.stop(start + offset + 0.18);
    });
  }

  // "开启提醒" stays until a click has started the sound and notifications are decided.
  function showAlertsState() {
    const sound = !!audio && audio.state === "running";
    const permission = "Notification" in window ? Notification.permission : "unsupported";
    let text = "开启提醒";
    if (sound && (permission === "granted" || permission === "unsupported")) text = "提醒已开启";
    else if (sound && permission === "denied") text = "仅声音提醒";
    ui.alerts.textContent = text;
    ui.alerts.classList.toggle("is-on", text !== "开启提醒");
    ui.alerts.title = permission === "denied" ? "浏览器已阻止通知，请在网站设置中允许；声音提醒仍然有效" : "";
  }

  ui.alerts.addEventListener("click", function () {
    unlockAudio();
    if ("Notification" in window && Notification.permission === "default") {
      Promise.resolve(Notification.requestPermission()).then(showAlertsState, showAlertsState);
    }
    setTimeout(beep, 50); // a short sample of the sound, once the context runs
  });

  function notifyNewHandoff(h) {
    beep();
    const topics = topicNames(h.intents);
    toast("新的转人工请求：" + (topics || REASONS[h.reason] || "市民"), "info");
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification("新的转人工请求", {
        body: [REASONS[h.reason], topics, h.preview].filter(Boolean).join(" · "),
        tag: "handoff-" + h.handoff_id,
      });
      n.addEventListener("click", function () { window.focus(); openConversation(h.conversation_id); n.close(); });
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  // ---- queue -------------------------------------------------------------------------------

  function findHandoff(conversationId) {
    const all = queue.waiting.concat(queue.mine, queue.others);
    const h = all.find(function (x) { return x.conversation_id === conversationId; });
    if (!h) return null;
    // Others' handoffs may come with ids and the agent only (for agents): they are active.
    return h.status ? h : Object.assign({ status: "active" }, h);
  }

  function renderQueueItem(h, group) {
    const item = el("li", "qitem qitem--" + group);
    item.dataset.conversationId = h.conversation_id || "";
    item.dataset.handoffId = h.handoff_id;
    if (current && h.conversation_id === current.id) item.classList.add("is-current");
    const button = el("button", "qitem__open");
    button.type = "button";

    const top = el("span", "qitem__top");
    const since = group === "waiting" ? h.requested_at : h.accepted_at || h.requested_at;
    const wait = el("span", "qitem__wait");
    wait.dataset.since = since || "";
    wait.dataset.prefix = group === "waiting" ? "已等待 " : "已接入 ";
    top.appendChild(wait);
    top.appendChild(el("span", "qitem__channel", CHANNELS[h.channel] || h.channel || ""));
    button.appendChild(top);

    if (group === "others") {
      button.appendChild(el("span", "qitem__agent", "客服：" + (h.agent ? h.agent.display_name : "—")));
    }
    if (h.reason) button.appendChild(el("span", "qitem__reason qitem__reason--" + h.reason, REASONS[h.reason] || h.reason));
    const topics = topicNames(h.intents);
    button.appendChild(el("span", "qitem__intents", topics ? "咨询：" + topics : "咨询：未涉及具体事项"));
    if (h.preview) button.appendChild(el("span", "qitem__preview", "“" + h.preview + "”"));
    const count = unread.get(h.conversation_id);
    if (count) button.appendChild(el("span", "qitem__unread", count));
    button.addEventListener("click", function () { openConversation(h.conversation_id); });
    item.appendChild(button);
    return item;
  }

  function renderQueue() {
    ["waiting", "mine", "others"].forEach(function (group) {
      const list = ui.lists[group];
      if (!list) return;
      const items = queue[group] || [];
      list.textContent = "";
      items.forEach(function (h) { list.appendChild(renderQueueItem(h, group)); });
      // The gateway sends the first page of the waiting queue, with the total.
      const total = group === "waiting" ? Math.max(waitingTotal, items.length) : items.length;
      ui.counts[group].textContent = total;
      ui.counts[group].classList.toggle("is-alert", group === "waiting" && total > 0);
      ui.empties[group].hidden = items.length > 0;
    });
    tickTimers();
    const waiting = Math.max(waitingTotal, queue.waiting.length);
    document.title = waiting ? "(" + waiting + ") " + TITLE : TITLE;
  }

  function tickTimers() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (node) {
      const since = parseTime(node.dataset.since);
      node.textContent = since ? (node.dataset.prefix || "") + duration(now - since.getTime()) : "";
    });
  }
  setInterval(tickTimers, 1000);

  // A conversation that appears among mine without my accepting it was transferred to me.
  function announceTransfers(mine) {
    const ids = new Set(mine.map(function (h) { return h.handoff_id; }));
    if (mineIds !== null) {
      mine.forEach(function (h) {
        if (mineIds.has(h.handoff_id) || acceptedByMe.has(h.handoff_id)) return;
        beep();
        toast("有一个会话转接给您：" + (topicNames(h.intents) || "市民咨询"), "info");
      });
    }
    mineIds = ids;
  }

  function onQueue(frame) {
    waitingTotal = typeof frame.waiting_total === "number" ? frame.waiting_total : 0;
    queue = {
      waiting: Array.isArray(frame.waiting) ? frame.waiting : [],
      mine: Array.isArray(frame.mine) ? frame.mine : [],
      others: Array.isArray(frame.others) ? frame.others : [],
    };
    if (Array.isArray(frame.agents)) {
      agents = frame.agents;
      renderAgents();
    }
    announceTransfers(queue.mine);
    renderQueue();
    if (current && current.loaded) {
      const h = findHandoff(current.id);
      // Still open (waiting/active): take the newer state. Gone from the queue: it ended.
      if (h) current.handoff = h;
      else if (current.handoff && (current.handoff.status === "waiting" || current.handoff.status === "active")) {
        current.handoff = null;
      }
      renderHeader();
    }
  }

  // ---- the open conversation -----------------------------------------------------------------

  function mineToAnswer() {
    const h = current && current.handoff;
    if (!h || h.status !== "active") return false;
    return (h.agent && h.agent.id === me.id) || isAdmin();
  }

  function renderHeader() {
    const h = current && current.handoff;
    ui.conv.dataset.state = !current ? "empty" : h ? h.status : "bot";
    if (!current) {
      ui.title.textContent = "未打开会话";
      ui.meta.textContent = "从左侧队列选择一个会话";
    } else {
      ui.title.textContent = "市民会话 " + shortId(current.id) + (h ? " · " + (STATUS[h.status] || h.status) : " · 机器人服务中");
      ui.meta.textContent = "";
      if (h) {
        const parts = [CHANNELS[h.channel] || h.channel, REASONS[h.reason], topicNames(h.intents) && "咨询：" + topicNames(h.intents)];
        if (h.agent) parts.push("客服：" + h.agent.display_name);
        ui.meta.textContent = parts.filter(Boolean).join(" · ");
        if (h.status === "waiting" && h.requested_at) {
          const wait = el("span", "conv__wait");
          wait.dataset.since = h.requested_at;
          wait.dataset.prefix = " · 已等待 ";
          ui.meta.appendChild(wait);
        }
      }
    }
    const answering = mineToAnswer();
    ui.accept.disabled = !(h && h.status === "waiting");
    ui.accept.hidden = !!(h && h.status === "active");
    ui.handback.disabled = !answering;
    ui.close.disabled = !answering;
    ui.transfer.disabled = !answering || !ui.transferAgent.value;
    ui.transferAgent.disabled = !answering;
    ui.reply.disabled = !answering;
    ui.send.disabled = !answering;
    ui.canned.disabled = !answering || !canned.length;
    ui.hint.textContent = composerHint(h, answering);
    ui.noteText.disabled = !current;
    ui.addNote.disabled = !current;
    document.querySelectorAll(".qitem").forEach(function (item) {
      item.classList.toggle("is-current", !!current && item.dataset.conversationId === current.id);
    });
    tickTimers();
  }

  // Why the reply box is (not) usable.
  function composerHint(h, answering) {
    if (!current) return "";
    if (answering) {
      return h.agent && h.agent.id !== me.id ? "您以管理员身份介入，该会话由 " + h.agent.display_name + " 服务" : "";
    }
    if (h && h.status === "waiting") return "点击“接入”后即可回复";
    if (h && h.status === "active") return "该会话由其他客服服务";
    return "会话未在人工服务中";
  }

  function openConversation(conversationId) {
    if (!conversationId) return;
    select(conversationId);
    ui.deliveryLimit.hidden = true; // until the server says (only WeChat conversations have one)
    sendFrame({ type: "open", conversation_id: conversationId });
  }

  // Make a conversation the open one; its transcript comes in the server's "conversation" frame.
  function select(conversationId) {
    if (!current || current.id !== conversationId) {
      stopTyping();
      current = { id: conversationId, handoff: findHandoff(conversationId), loaded: false };
      clearTranscript();
      ui.transcript.appendChild(el("li", "line line--system", "加载中…"));
      renderNotes([]);
      try { sessionStorage.setItem(OPEN_KEY, conversationId); } catch (e) { /* private mode */ }
    }
    unread.delete(conversationId);
    renderHeader();
    renderQueue();
  }

  function clearTranscript() {
    ui.transcript.textContent = "";
    shownIds.clear();
    pending.clear();
    ui.citizenTyping.hidden = true;
  }

  function scrollTranscript() { ui.transcript.scrollTop = ui.transcript.scrollHeight; }

  // What the bot showed besides text, in words: its buttons and the names on its cards.
  function botExtras(frame) {
    const parts = [];
    if (frame.custom && Array.isArray(frame.custom.items) && frame.custom.items.length) {
      const names = frame.custom.items.map(function (i) { return i && i.name; }).filter(Boolean);
      parts.push("［卡片］" + names.join("、"));
    }
    if (Array.isArray(frame.buttons) && frame.buttons.length) {
      parts.push("［按钮］" + frame.buttons.map(function (b) { return b.title; }).join(" | "));
    }
    return parts;
  }

  function addLine(frame) {
    if (frame.id !== undefined && frame.id !== null) {
      if (shownIds.has(frame.id)) return null;
      // Our own reply may come back as a message before its ack: adopt the pending line.
      if (frame.type === "staff" && adoptPending(frame)) return null;
      shownIds.add(frame.id);
    }
    const role = ["user", "bot", "staff", "system"].indexOf(frame.type) >= 0 ? frame.type : "system";
    const item = el("li", "line line--" + role);
    if (frame.id !== undefined && frame.id !== null) item.dataset.id = frame.id;
    const time = clock(parseTime(frame.time));
    if (role === "system") {
      item.appendChild(el("span", "line__text", frame.text || ""));
      if (time) item.appendChild(el("span", "line__time", time));
    } else {
      const who = role === "user" ? "市民" : role === "bot" ? "机器人" : "客服 " + (frame.agent || "");
      const head = el("div", "line__head");
      head.appendChild(el("span", "line__who", who));
      if (time) head.appendChild(el("span", "line__time", time));
      item.appendChild(head);
      const bubble = el("div", "line__bubble");
      bubble.appendChild(el("span", "line__text", frame.text || (role === "user" && frame.payload ? frame.payload : "")));
      if (role === "bot") botExtras(frame).forEach(function (p) { bubble.appendChild(el("span", "line__extra", p)); });
      if (role === "user" && frame.status === "failed") bubble.appendChild(el("span", "line__extra", "（机器人未能回答）"));
      item.appendChild(bubble);
    }
    ui.transcript.appendChild(item);
    scrollTranscript();
    return item;
  }

  function adoptPending(frame) {
    for (const [clientId, item] of pending) {
      if (item.dataset.text === frame.text) {
        pending.delete(clientId);
        markSent(item, frame.id);
        return true;
      }
    }
    return false;
  }

  function markSent(item, id) {
    item.dataset.state = "sent";
    if (id !== undefined && id !== null) {
      item.dataset.id = id;
      shownIds.add(id);
    }
  }

  function onConversation(frame) {
    if (!current || frame.conversation_id !== current.id) return;
    current.loaded = true;
    current.handoff = frame.handoff || findHandoff(current.id);
    const keep = Array.from(pending.values()); // replies typed before a reconnect, not yet acked
    clearTranscript();
    (Array.isArray(frame.messages) ? frame.messages : []).forEach(addLine);
    keep.forEach(function (item) { ui.transcript.appendChild(item); });
    renderNotes(Array.isArray(frame.notes) ? frame.notes : []);
    renderHeader();
    scrollTranscript();
  }

  function onMessage(frame) {
    const m = frame.message || {};
    if (current && frame.conversation_id === current.id) {
      addLine(m);
      if (m.type === "user") { ui.citizenTyping.hidden = true; askDeliveryLimit(); }
      return;
    }
    if (m.type === "user") {
      unread.set(frame.conversation_id, (unread.get(frame.conversation_id) || 0) + 1);
      renderQueue();
      if (queue.mine.some(function (h) { return h.conversation_id === frame.conversation_id; })) beep();
    }
  }

  function onTyping(frame) {
    if (!current || frame.conversation_id !== current.id) return;
    clearTimeout(citizenTypingTimer);
    ui.citizenTyping.hidden = !frame.on;
    if (frame.on) citizenTypingTimer = setTimeout(function () { ui.citizenTyping.hidden = true; }, CITIZEN_TYPING_MS);
  }

  function onError(frame) {
    const reopening = current && !current.loaded && current.silent && frame.conversation_id === current.id;
    // A conversation re-opened after a reconnect that is no longer ours just closes, quietly.
    if (!reopening) toast(frame.text || ERRORS[frame.code] || "操作失败", "error");
    if (frame.code === "quota" || frame.code === "delivery_failed") askDeliveryLimit();
    if (frame.code === "taken" || frame.code === "not_found") { // an accept lost: forget it
      acceptedByMe.forEach(function (id) { if (!mineIds || !mineIds.has(id)) acceptedByMe.delete(id); });
    }
    if (frame.client_id && pending.has(frame.client_id)) {
      pending.get(frame.client_id).dataset.state = "failed";
      pending.delete(frame.client_id);
    }
    // Could not open it at all: leave the empty state rather than a stuck "加载中…".
    if (current && !current.loaded && frame.conversation_id === current.id && (frame.code === "forbidden" || frame.code === "not_found")) {
      current = null;
      try { sessionStorage.removeItem(OPEN_KEY); } catch (e) { /* private mode */ }
      clearTranscript();
      renderNotes([]);
      renderHeader();
    }
  }

  // A won accept: the server sends this conversation next, so show it (without asking again).
  function onAccepted(frame) {
    if (!frame.conversation_id || (current && current.id === frame.conversation_id)) return;
    select(frame.conversation_id);
  }

  function onAck(frame) {
    const item = pending.get(frame.client_id);
    if (!item) { if (frame.id !== undefined) shownIds.add(frame.id); return; }
    pending.delete(frame.client_id);
    markSent(item, frame.id);
  }

  // ---- WeChat's allowance: how many replies can still reach the citizen ------------------------

  function askDeliveryLimit() {
    if (current && !ui.deliveryLimit.hidden) sendFrame({ type: "delivery", conversation_id: current.id });
  }

  function onDeliveryLimit(frame) {
    if (!current || frame.conversation_id !== current.id) return;
    const limit = frame.limit;
    const line = ui.deliveryLimit;
    line.hidden = !limit;
    if (!limit) return;
    let text;
    if (limit.remaining > 0) {
      const closes = new Date(limit.closes_at * 1000);
      text = "微信客服消息：还可发送 " + limit.remaining + " 条，" + (closes.getMonth() + 1) + "月" +
        closes.getDate() + "日 " + clock(closes) + " 前有效";
    } else {
      text = "微信客服消息额度已用完：需等市民再次发消息后才能回复";
    }
    if (limit.waiting > 0) text += "（另有 " + limit.waiting + " 条待市民回复后送达）";
    line.textContent = text;
    line.classList.toggle("is-spent", limit.remaining <= 0);
  }

  // ---- notes ---------------------------------------------------------------------------------

  function noteItem(note) {
    const item = el("li", "pnote");
    if (note.id !== undefined) item.dataset.id = note.id;
    const head = el("div", "pnote__head");
    head.appendChild(el("span", "pnote__author", note.author || ""));
    const t = parseTime(note.time);
    if (t) head.appendChild(el("span", "pnote__time", t.toLocaleDateString("zh-CN") + " " + clock(t)));
    item.appendChild(head);
    item.appendChild(el("p", "pnote__text", note.text || ""));
    return item;
  }

  function renderNotes(notes) {
    ui.notes.textContent = "";
    notes.forEach(function (n) { ui.notes.appendChild(noteItem(n)); });
    ui.emptyNotes.hidden = notes.length > 0;
  }

  function onNote(frame) {
    if (!current || frame.conversation_id !== current.id || !frame.note) return;
    if (frame.note.id !== undefined && ui.notes.querySelector('[data-id="' + Number(frame.note.id) + '"]')) return;
    ui.notes.appendChild(noteItem(frame.note));
    ui.emptyNotes.hidden = true;
    ui.notes.scrollTop = ui.notes.scrollHeight;
  }

  ui.noteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = ui.noteText.value.trim();
    if (!text || !current) return;
    if (sendFrame({ type: "note", conversation_id: current.id, text: text })) ui.noteText.value = "";
  });

  // ---- replying ------------------------------------------------------------------------------

  function sendReply() {
    const text = ui.reply.value.trim();
    if (!text || !current || !mineToAnswer()) return;
    const clientId = newClientId();
    if (!sendFrame({ type: "reply", conversation_id: current.id, id: clientId, text: text })) return;
    stopTyping();
    ui.reply.value = "";
    const item = addLine({ type: "staff", text: text, agent: me.display_name, time: new Date().toISOString() });
    item.dataset.state = "pending";
    item.dataset.text = text;
    pending.set(clientId, item);
    ui.reply.focus();
  }

  ui.composer.addEventListener("submit", function (event) {
    event.preventDefault();
    sendReply();
  });

  ui.reply.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing Chinese.
    if (isSendKey(event)) {
      event.preventDefault();
      sendReply();
    }
  });

  ui.reply.addEventListener("input", function () {
    if (!current || !mineToAnswer()) return;
    if (!ui.reply.value.trim()) { stopTyping(); return; }
    const now = Date.now();
    if (!typingOn || now - typingSentAt > TYPING_EVERY_MS) {
      typingOn = true;
      typingSentAt = now;
      if (isOpen()) connection.send({ type: "typing", conversation_id: current.id, on: true });
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  function stopTyping() {
    clearTimeout(typingIdleTimer);
    if (!typingOn) return;
    typingOn = false;
    if (current && isOpen()) connection.send({ type: "typing", conversation_id: current.id, on: false });
  }

  ui.canned.addEventListener("change", function () {
    const reply = canned.find(function (c) { return String(c.id) === ui.canned.value; });
    ui.canned.value = "";
    if (!reply) return;
    const before = ui.reply.value;
    ui.reply.value = before && !/\s$/.test(before) ? before + " " + reply.text : before + reply.text;
    ui.reply.focus();
    ui.reply.dispatchEvent(new Event("input"));
  });

  function renderCanned() {
    ui.canned.textContent = "";
    ui.canned.appendChild(el("option", null, canned.length ? "快捷回复…" : "暂无快捷回复"));
    ui.canned.firstChild.value = "";
    canned.forEach(function (c) {
      const option = el("option", null, c.title);
      option.value = String(c.id);
      option.title = c.text;
      ui.canned.appendChild(option);
    });
  }

  // ---- actions -------------------------------------------------------------------------------

  ui.accept.addEventListener("click", function () {
    const h = current && current.handoff;
    if (h && h.status === "waiting" && sendFrame({ type: "accept", handoff_id: h.handoff_id })) {
      acceptedByMe.add(h.handoff_id);
    }
  });

  ui.handback.addEventListener("click", function () {
    if (current && mineToAnswer()) { stopTyping(); sendFrame({ type: "handback", conversation_id: current.id }); }
  });

  ui.close.addEventListener("click", function () {
    if (!current || !mineToAnswer()) return;
    if (!window.confirm("确定结束这次人工服务吗？结束后将请市民评价。")) return;
    stopTyping();
    sendFrame({ type: "close", conversation_id: current.id });
  });

  ui.transferAgent.addEventListener("change", renderHeader);

  ui.transfer.addEventListener("click", function () {
    const agentId = Number(ui.transferAgent.value);
    if (!current || !agentId) return;
    const agent = agents.find(function (a) { return a.id === agentId; });
    if (!window.confirm("确定将会话转接给 " + (agent ? agent.display_name : "该客服") + " 吗？")) return;
    stopTyping();
    sendFrame({ type: "transfer", conversation_id: current.id, agent_id: agentId });
    ui.transferAgent.value = "";
  });

  function renderAgents() {
    const chosen = ui.transferAgent.value;
    ui.transferAgent.textContent = "";
    const first = el("option", null, "转接给…");
    first.value = "";
    ui.transferAgent.appendChild(first);
    agents.filter(function (a) { return a.id !== me.id; }).forEach(function (a) {
      const option = el("option", null, a.display_name + (a.online ? "" : "（离线）"));
      option.value = String(a.id);
      option.disabled = !a.online;
      ui.transferAgent.appendChild(option);
    });
    ui.transferAgent.value = chosen;
    if (ui.transferAgent.value !== chosen) ui.transferAgent.value = "";
  }

  // ---- frames and connection -----------------------------------------------------------------

  function onHello(frame) {
    if (frame.me) {
      me.id = Number(frame.me.id);
      me.display_name = frame.me.display_name || me.display_name;
      me.role = frame.me.role || me.role;
    }
    if (Array.isArray(frame.agents)) agents = frame.agents; // else they come with the queue
    canned = Array.isArray(frame.canned) ? frame.canned : [];
    renderAgents();
    renderCanned();
    renderHeader();
    // After a reconnect (or a reload) show the conversation that was open, fresh from the server.
    if (current) {
      current.loaded = false;
      current.silent = true;
      sendFrame({ type: "open", conversation_id: current.id });
    }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "hello": onHello(frame); break;
      case "queue": onQueue(frame); break;
      case "new_handoff": if (frame.handoff) notifyNewHandoff(frame.handoff); break;
      case "conversation": onConversation(frame); break;
      case "message": onMessage(frame); break;
      case "note": onNote(frame); break;
      case "typing": onTyping(frame); break;
      case "error": onError(frame); break;
      case "ack": onAck(frame); break;
      case "accepted": onAccepted(frame); break;
      case "delivery": onDeliveryLimit(frame); break;
      case "agents": agents = Array.isArray(frame.agents) ? frame.agents : agents; renderAgents(); renderHeader(); break;
      default: break; // a newer server's frame
    }
  }

  function showState(online) {
    ui.connDot.classList.toggle("is-online", online);
    ui.connState.textContent = online ? "在线" : "连接中…";
  }

  // Reconnects by itself (common.js): with back-off, and at once when the tab is shown again.
  const connection = reconnectingSocket("/staff/ws", {
    onState: showState,
    onFrame: onFrame,
    onClose: function (event, opened) {
      typingOn = false;
      ui.citizenTyping.hidden = true;
      if (!opened) checkSession();
    },
  });

  // A refused handshake looks like any other failure; a logged-out (or deactivated) account is
  // told apart by the console page itself redirecting to the login page.
  function checkSession() {
    if (!window.fetch) return;
    fetch("/staff", { credentials: "same-origin", redirect: "manual" }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401) location.href = "/staff/login";
    }, function () { /* the gateway is down: keep retrying */ });
  }

  // A reload keeps the conversation that was open (re-opened after the hello frame).
  try {
    const remembered = sessionStorage.getItem(OPEN_KEY);
    if (remembered) current = { id: remembered, handoff: null, loaded: false };
  } catch (e) { /* private mode */ }
  showAlertsState();
  renderHeader();
  renderQueue();
  connection.connect();
})();
