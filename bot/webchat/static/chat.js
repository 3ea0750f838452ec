// The web chat client: one websocket to /ws, typed JSON frames (see README "Websocket protocol").
// Text from the server is never parsed as HTML: every node is built with textContent, and links
// and **bold** are turned into DOM nodes by a tiny parser.
"use strict";

(function () {
  const TITLE = document.title;
  const OUTBOX_KEY = "ipbot.outbox";
  const TIME_GAP_MS = 5 * 60 * 1000; // WeChat shows a time stamp when five minutes have passed
  const MAX_RETRY_MS = 10000;
  const WEEKDAYS = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"];

  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const statusDot = document.getElementById("status");
  const stateText = document.getElementById("state-text");
  const typing = document.getElementById("typing");
  const newButton = document.getElementById("new-conversation");

  let socket = null;
  let generation = 0; // which socket an outbox entry was last sent on
  let retryDelay = 500;
  let retryTimer = null;
  let lastShownTime = null;
  let unread = 0;
  let lastNoticeAt = 0;
  const shownIds = new Set(); // server ids of messages on screen
  const userBubbles = new Map(); // client id -> the user's message <li>
  let outbox = loadOutbox(); // [{id, text, payload, sentOn}] typed but not yet acknowledged

  // ---- small helpers -----------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function loadOutbox() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(OUTBOX_KEY) || "[]");
      return Array.isArray(stored) ? stored.map(function (m) { m.sentOn = null; return m; }) : [];
    } catch (e) {
      return [];
    }
  }

  function saveOutbox() {
    try {
      sessionStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox.map(function (m) {
        return { id: m.id, text: m.text, payload: m.payload, time: m.time };
      })));
    } catch (e) { /* private mode: the outbox lives in memory only */ }
  }

  // Links (http/https only) and **bold** as DOM nodes; everything else as text.
  const RICH = /(\*\*[^*\n]+\*\*|https?:\/\/[^\s<>"'，。；！？、）)]+)/g;
  function appendRich(parent, text) {
    let last = 0;
    text.replace(RICH, function (match, _group, offset) {
      if (offset > last) parent.appendChild(document.createTextNode(text.slice(last, offset)));
      if (match.startsWith("**")) {
        parent.appendChild(el("strong", null, match.slice(2, -2)));
      } else {
        const link = el("a", null, match);
        link.href = match;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        parent.appendChild(link);
      }
      last = offset + match.length;
      return match;
    });
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // WeChat-style: 14:05 today, 昨天 14:05, 星期三 14:05 within a week, else the full date.
  function timeLabel(date) {
    const hm = pad(date.getHours()) + ":" + pad(date.getMinutes());
    const today = new Date();
    today.setHours(0, 0, 0, 0);
    const day = new Date(date);
    day.setHours(0, 0, 0, 0);
    const days = Math.round((today - day) / 86400000);
    if (days <= 0) return hm;
    if (days === 1) return "昨天 " + hm;
    if (days < 7) return WEEKDAYS[date.getDay()] + " " + hm;
    return date.getFullYear() + "年" + (date.getMonth() + 1) + "月" + date.getDate() + "日 " + hm;
  }

  function maybeTimeDivider(date) {
    if (!date || isNaN(date.getTime())) return;
    if (lastShownTime !== null && date - lastShownTime < TIME_GAP_MS) return;
    lastShownTime = date;
    const item = el("li", "time", timeLabel(date));
    item.setAttribute("aria-hidden", "true");
    log.appendChild(item);
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  // ---- rendering -----------------------------------------------------------------------------

  function row(label, value, className) {
    const p = el("p", className || null);
    p.appendChild(el("span", "card__label", label));
    if (value instanceof Node) p.appendChild(value);
    else p.appendChild(document.createTextNode(value === null || value === undefined || value === "" ? "待核实" : String(value)));
    return p;
  }

  function renderServicePoint(item) {
    const card = el("section", "card");
    card.appendChild(el("h3", "card__title", item.name));
    card.appendChild(row("区县", item.district || "全市"));
    if (typeof item.distance_km === "number") card.appendChild(row("距离", "约 " + item.distance_km + " 公里"));
    card.appendChild(item.address
      ? row("地址", item.address)
      : row("地址", "地址待核实", "card__unverified"));
    card.appendChild(row("开放时间", item.opening_hours));
    let phone = null;
    if (item.phone) {
      phone = el("a", null, item.phone);
      phone.href = "tel:" + String(item.phone).replace(/[^0-9+-]/g, "");
    }
    card.appendChild(row("电话", phone));
    if (item.services) card.appendChild(row("服务", item.services));
    if (item.note) card.appendChild(row("说明", item.note));
    card.appendChild(sourceLine(item.source, item.last_verified));
    return card;
  }

  function renderInsuranceProduct(item) {
    const card = el("section", "card card--insurance");
    card.appendChild(el("h3", "card__title", item.name));
    if (item.insurance_type && item.insurance_type !== item.name) {
      card.appendChild(row("险种", item.insurance_type));
    }
    card.appendChild(row("保障内容", item.coverage));
    card.appendChild(row("适用对象", item.audience));
    card.appendChild(row("保障额度", item.limits));
    card.appendChild(row("保费", item.premium));
    card.appendChild(row("承保机构", item.insurer));
    card.appendChild(sourceLine(item.source));
    return card;
  }

  function sourceLine(source, verified) {
    const p = el("p", "card__source");
    p.appendChild(document.createTextNode("来源："));
    appendRich(p, source ? String(source) : "待核实");
    if (verified) p.appendChild(document.createTextNode("（" + verified + " 核实）"));
    return p;
  }

  function renderCustom(body, custom) {
    if (!custom || !Array.isArray(custom.items)) return;
    const render = { service_points: renderServicePoint, insurance_products: renderInsuranceProduct }[custom.kind];
    if (!render) return; // an unknown kind: its text is shown, the rest is not
    const list = el("div", "cards");
    custom.items.forEach(function (item) {
      if (item && typeof item === "object") list.appendChild(render(item));
    });
    body.appendChild(list);
  }

  // Quick replies stay usable until one of them is chosen.
  function renderButtons(body, buttons, used) {
    if (!Array.isArray(buttons) || !buttons.length) return;
    const group = el("div", "buttons");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "快捷回复");
    buttons.forEach(function (b) {
      const button = el("button", null, b.title);
      button.type = "button";
      button.disabled = !!used;
      button.addEventListener("click", function () {
        group.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        button.classList.add("is-chosen");
        send(b.title, b.payload || null);
      });
      group.appendChild(button);
    });
    body.appendChild(group);
  }

  function addIncoming(frame, options) {
    options = options || {};
    if (frame.id !== undefined && shownIds.has(frame.id)) return null;
    if (frame.id !== undefined) shownIds.add(frame.id);
    if (frame.time) maybeTimeDivider(new Date(frame.time));
    const role = frame.type === "staff" ? "staff" : frame.type === "error" ? "error" : "bot";
    const item = el("li", "msg msg--in msg--" + role);
    item.appendChild(el("span", "avatar" + (role === "staff" ? " avatar--staff" : ""), role === "staff" ? "人" : "知"));
    const body = el("div", "msg__body");
    const speaker = role === "staff" ? "人工客服" : "助手";
    body.appendChild(el("span", "visually-hidden", speaker + "："));
    if (frame.text || options.title) {
      const bubble = el("div", "msg__bubble");
      if (frame.text) appendRich(bubble, String(frame.text));
      if (options.title) bubble.appendChild(el("div", "msg__subtitle", options.title));
      body.appendChild(bubble);
    }
    renderCustom(body, frame.custom);
    renderButtons(body, frame.buttons, options.used);
    item.appendChild(body);
    log.appendChild(item);
    if (!options.quiet) noteUnread();
    scrollToEnd();
    return item;
  }

  function addOutgoing(text, clientId, time, state) {
    if (clientId && userBubbles.has(clientId)) return userBubbles.get(clientId);
    maybeTimeDivider(time ? new Date(time) : new Date());
    const item = el("li", "msg msg--out msg--user");
    const body = el("div", "msg__body");
    body.appendChild(el("span", "visually-hidden", "我："));
    const bubble = el("div", "msg__bubble", text);
    body.appendChild(bubble);
    item.appendChild(el("span", "msg__state"));
    item.appendChild(body);
    log.appendChild(item);
    if (clientId) userBubbles.set(clientId, item);
    setState(item, state || "sent");
    scrollToEnd();
    return item;
  }

  function setState(item, state) {
    if (!item) return;
    item.dataset.state = state;
    const mark = item.querySelector(".msg__state");
    mark.textContent = state === "failed" ? "!" : "";
    mark.title = state === "pending" ? "发送中" : state === "failed" ? "未发送" : "";
    mark.setAttribute("aria-label", mark.title);
  }

  function notice(text) {
    const item = el("li", "notice", text);
    log.appendChild(item);
    scrollToEnd();
  }

  function noteUnread() {
    if (!document.hidden) return;
    unread += 1;
    document.title = "(" + unread + ") " + TITLE;
  }

  function clearLog() {
    log.textContent = "";
    shownIds.clear();
    userBubbles.clear();
    lastShownTime = null;
  }

  // A history frame replaces the log: the server's record is the truth, the outbox is added after.
  function renderHistory(frame) {
    log.setAttribute("aria-busy", "true");
    clearLog();
    if (frame.welcome) addIncoming(frame.welcome, { title: frame.welcome.title, quiet: true });
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    messages.forEach(function (m, index) {
      if (m.type === "user") {
        addOutgoing(m.text || "", m.client_id, m.time, "sent");
        if (m.id !== undefined) shownIds.add(m.id);
      } else {
        addIncoming(m, { used: answeredLater(m, messages.slice(index + 1)), quiet: true });
      }
    });
    const stored = new Set(messages.map(function (m) { return m.client_id; }));
    outbox = outbox.filter(function (m) { return !stored.has(m.id); });
    saveOutbox();
    outbox.forEach(function (m) { addOutgoing(m.text, m.id, m.time, "pending"); });
    log.removeAttribute("aria-busy");
    scrollToEnd();
  }

  // A history message's buttons count as chosen when a later user message picked one of them.
  function answeredLater(message, later) {
    if (!Array.isArray(message.buttons)) return false;
    return later.some(function (m) {
      return m.type === "user" && message.buttons.some(function (b) {
        return (b.payload && b.payload === m.payload) || b.title === m.text;
      });
    });
  }

  // ---- sending -------------------------------------------------------------------------------

  function send(text, payload) {
    const message = { id: newClientId(), text: text, payload: payload || null, time: new Date().toISOString(), sentOn: null };
    outbox.push(message);
    saveOutbox();
    addOutgoing(text, message.id, message.time, "pending");
    flush();
  }

  function isOpen() {
    return socket && socket.readyState === WebSocket.OPEN;
  }

  // Send every unacknowledged message not yet sent on this socket, in the order it was typed.
  function flush() {
    if (!isOpen()) return;
    outbox.forEach(function (m) {
      if (m.sentOn === generation) return;
      m.sentOn = generation;
      const frame = { type: "message", id: m.id, text: m.text };
      if (m.payload) frame.payload = m.payload;
      socket.send(JSON.stringify(frame));
    });
  }

  function onAck(frame) {
    outbox = outbox.filter(function (m) { return m.id !== frame.client_id; });
    saveOutbox();
    setState(userBubbles.get(frame.client_id), "sent");
    if (frame.id !== undefined) shownIds.add(frame.id);
  }

  function onError(frame) {
    const pending = frame.client_id && outbox.find(function (m) { return m.id === frame.client_id; });
    if (pending && frame.retry_after !== undefined) {
      // Slowed down or not stored yet: kept, and sent again later.
      setTimeout(function () { pending.sentOn = null; flush(); }, Math.max(0.5, frame.retry_after) * 1000);
      if (Date.now() - lastNoticeAt > 3000) {
        lastNoticeAt = Date.now();
        notice(frame.text);
      }
      return;
    }
    if (pending) { // refused for good (too long, malformed): show why
      outbox = outbox.filter(function (m) { return m !== pending; });
      saveOutbox();
      setState(userBubbles.get(frame.client_id), "failed");
    }
    addIncoming({ type: "error", text: frame.text, buttons: frame.buttons });
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "history": renderHistory(frame); flush(); break;
      case "ack": onAck(frame); break;
      case "user": addOutgoing(frame.text || "", frame.client_id, frame.time, "sent"); shownIds.add(frame.id); break;
      case "bot": case "staff": addIncoming(frame); break;
      case "typing": typing.hidden = !frame.on; if (frame.on) scrollToEnd(); break;
      case "error": onError(frame); break;
      default: break; // a newer server's frame: ignored
    }
  }

  // ---- connection ----------------------------------------------------------------------------

  function showState(online) {
    statusDot.classList.toggle("is-online", online);
    stateText.textContent = online ? "在线" : "连接中…";
    newButton.disabled = !online;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
    showState(false);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws");
    socket = ws;
    generation += 1;
    ws.addEventListener("open", function () {
      if (socket !== ws) return;
      showState(true);
      retryDelay = 500;
    });
    ws.addEventListener("message", function (event) {
      if (socket !== ws) return;
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame && typeof frame === "object") onFrame(frame);
    });
    ws.addEventListener("close", function (event) {
      if (socket !== ws) return;
      socket = null;
      typing.hidden = true;
      showState(false);
      if (event.code === 4001) { // the browser started a new conversation (maybe in another tab)
        clearLog();
        retryTimer = setTimeout(connect, 300);
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const delay = retryDelay * (0.8 + Math.random() * 0.4); // jitter: not every tab at once
    retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
    retryTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (!socket) { retryDelay = 500; connect(); }
  }

  async function startNewConversation() {
    newButton.disabled = true;
    try {
      const response = await fetch("/conversations/new", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Requested-With": "ipbot" },
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      outbox = [];
      saveOutbox();
      if (socket) socket.close(4001); // the server closes it too; reconnect on the new id
      else connect();
    } catch (e) {
      notice("暂时无法开始新对话，请稍后再试。");
      newButton.disabled = !isOpen();
    }
  }

  // ---- input ---------------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    autoSize();
    send(text, null);
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing Chinese.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      if (form.requestSubmit) form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true })); // older WebViews
    }
  });

  function autoSize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }
  input.addEventListener("input", autoSize);

  newButton.addEventListener("click", startNewConversation);

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      unread = 0;
      document.title = TITLE;
      reconnectNow();
    }
  });
  window.addEventListener("online", reconnectNow);

  connect();
})();
