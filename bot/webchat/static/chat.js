// The web chat client: one websocket to /ws, typed JSON frames (see README "Websocket protocol").
// Text from the server is never parsed as HTML: every node is built with textContent, and links
// and **bold** are turned into DOM nodes by a tiny parser. During a human handoff the same socket
// carries staff messages, system notices, the queue position and the ticket and rating cards.
"use strict";

(function () {
  const { el, newClientId, clock, isSendKey, reconnectingSocket } = window.ipbot; // common.js
  const TITLE = document.title;
  const OUTBOX_KEY = "ipbot.outbox";
  const TIME_GAP_MS = 5 * 60 * 1000; // WeChat shows a time stamp when five minutes have passed
  const WEEKDAYS = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"];

  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const statusDot = document.getElementById("status");
  const stateText = document.getElementById("state-text");
  const typing = document.getElementById("typing");
  const newButton = document.getElementById("new-conversation");
  const humanButton = document.getElementById("request-human");
  const title = document.getElementById("title");
  const banner = document.getElementById("banner");
  const announcer = document.getElementById("announcer");
  const typingAvatar = document.getElementById("typing-avatar");
  const typingDots = document.getElementById("typing-dots");
  const typingText = document.getElementById("typing-text");

  let generation = 0; // which socket an outbox entry was last sent on
  let lastShownTime = null;
  let unread = 0;
  let lastNoticeAt = 0;
  const shownIds = new Set(); // server ids of messages on screen
  const userBubbles = new Map(); // client id -> the user's message <li>
  let outbox = loadOutbox(); // [{id, text, payload, sentOn}] typed but not yet acknowledged

  // ---- small helpers (el, newClientId, clock… are common.js's) --------------------------------

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

  // WeChat-style: 14:05 today, 昨天 14:05, 星期三 14:05 within a week, else the full date.
  function timeLabel(date) {
    const hm = clock(date);
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
    item.appendChild(avatar(role === "staff"));
    const body = el("div", "msg__body");
    if (role === "staff") { // the agent's name above the bubble, as in a WeChat group
      body.appendChild(el("span", "visually-hidden", "人工客服"));
      body.appendChild(el("span", "msg__name", frame.agent || "人工客服"));
      body.appendChild(el("span", "visually-hidden", "："));
    } else {
      body.appendChild(el("span", "visually-hidden", "助手："));
    }
    if (frame.text || options.title) {
      const bubble = el("div", "msg__bubble");
      if (frame.text) appendRich(bubble, String(frame.text));
      if (options.title) bubble.appendChild(el("div", "msg__subtitle", options.title));
      body.appendChild(bubble);
    }
    renderCustom(body, frame.custom);
    renderButtons(body, frame.buttons, options.used);
    if (role === "bot" && frame.text) window.ipbotFeedback.attach(body, frame); // feedback.js
    item.appendChild(body);
    log.appendChild(item);
    if (!options.quiet) noteUnread();
    scrollToEnd();
    return item;
  }

  // The bot is "知" on green; a person is a drawn silhouette (CSS), so the two never look alike.
  function avatar(staff) {
    const node = el("span", staff ? "avatar avatar--staff" : "avatar", staff ? null : "知");
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  // A stored notice (joined, handed back, closed, transferred): centred and grey, as in WeChat.
  function addSystem(frame, options) {
    options = options || {};
    if (frame.id !== undefined && shownIds.has(frame.id)) return null;
    if (frame.id !== undefined) shownIds.add(frame.id);
    if (frame.time) maybeTimeDivider(new Date(frame.time));
    const item = el("li", "system");
    item.appendChild(el("span", "system__text", frame.text || ""));
    log.appendChild(item);
    if (!options.quiet) {
      lastSystem = { text: String(frame.text || ""), at: Date.now() };
      noteUnread();
    }
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
    log.textContent = ""; // a ticket or rating card being filled in survives this (see showCard)
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
      } else if (m.type === "system") {
        addSystem(m, { quiet: true });
      } else {
        addIncoming(m, { used: answeredLater(m, messages.slice(index + 1)), quiet: true });
      }
    });
    applyHandoff(frame.handoff || { state: "none" }, true);
    if (frame.rating_request && handoff.state === "none") showCard("rating", frame.rating_request);
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
    return connection.isOpen();
  }

  // Send every unacknowledged message not yet sent on this socket, in the order it was typed.
  function flush() {
    if (!isOpen()) return;
    outbox.forEach(function (m) {
      if (m.sentOn === generation) return;
      m.sentOn = generation;
      const frame = { type: "message", id: m.id, text: m.text };
      if (m.payload) frame.payload = m.payload;
      connection.send(frame);
    });
  }

  // Acknowledged messages, kept a while: one the gateway could not route yet comes back as
  // not_stored after its ack and is sent again (bot/conversation/pipeline.py).
  const recentlyAcked = new Map();

  function onAck(frame) {
    const acked = outbox.find(function (m) { return m.id === frame.client_id; });
    if (acked) {
      recentlyAcked.set(acked.id, acked);
      if (recentlyAcked.size > 20) recentlyAcked.delete(recentlyAcked.keys().next().value);
    }
    outbox = outbox.filter(function (m) { return m.id !== frame.client_id; });
    saveOutbox();
    setState(userBubbles.get(frame.client_id), "sent");
    if (frame.id !== undefined) shownIds.add(frame.id);
  }

  function onError(frame) {
    if (frame.code === "not_stored" && recentlyAcked.has(frame.client_id)) {
      outbox.push(recentlyAcked.get(frame.client_id));
      recentlyAcked.delete(frame.client_id);
      saveOutbox();
    }
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
      case "bot": addIncoming(frame); break;
      case "staff": if (typingWho === "staff") showTyping(false, null); addIncoming(frame); break;
      case "system": addSystem(frame); break;
      case "handoff": applyHandoff(frame, false); break;
      case "typing": showTyping(!!frame.on, frame.who || null, frame.text || null); break;
      case "ticket_saved": onTicketSaved(frame); break;
      case "rating_saved": onRatingSaved(frame); break;
      case "rating_request": showCard("rating", frame); break; // the bot-only rating card
      case "feedback_saved": window.ipbotFeedback.saved(frame); break;
      case "error": if (!cardError(frame) && !window.ipbotFeedback.failed(frame)) onError(frame); break;
      default: break; // a newer server's frame: ignored
    }
  }

  // ---- human handoff -------------------------------------------------------------------------

  const BOT_TITLE = title.textContent;
  const RATINGS = [[5, "非常满意"], [4, "满意"], [3, "基本满意"], [2, "不满意"], [1, "非常不满意"]];
  const TYPING_EVERY_MS = 2000; // at most one "on" per 2 s while the user types
  const TYPING_IDLE_MS = 3000; // "off" after 3 s without a key
  const STAFF_TYPING_MS = 10000; // a lost "off" (staff disconnected) must not leave it on
  const MOBILE = /^1[3-9]\d{9}$/;
  const LANDLINE = /^0\d{2,3}-?\d{7,8}$/;

  let handoff = { state: "none" }; // the last handoff frame
  let card = null; // {kind: "ticket"|"rating", handoffId, item, done, pendingId, pending}
  let lastSystem = { text: "", at: 0 }; // the last live system notice (for the announcer)
  let typingWho = null; // who the typing indicator shows: null (the bot) or "staff"
  let staffTypingTimer = null;
  let typingOn = false; // we told the server the user is typing
  let typingSentAt = 0;
  let typingIdleTimer = null;
  let fieldCount = 0;

  function applyHandoff(frame, restoring) {
    const previous = handoff;
    const state = frame.state || "none";
    handoff = { state: state, id: frame.handoff_id, agent: frame.agent };
    const active = state === "active";
    title.textContent = active && frame.agent ? "人工客服 " + frame.agent : BOT_TITLE;
    title.parentElement.classList.toggle("is-human", active);
    humanButton.disabled = state === "waiting" || active;
    showWaiting(state === "waiting" ? frame.position : null);
    if (!active) stopTyping();
    if (state === "offline") showCard("ticket", frame);
    else if (state === "closed") showCard("rating", frame);
    else dropCard();
    if (active && !restoring && (previous.state !== "active" || previous.agent !== frame.agent)) {
      announceJoined(frame.agent || "");
    }
  }

  // "…您前面还有 N 位" under the header; the banner is a status region, so a move is announced.
  function showWaiting(position) {
    if (position === null || position === undefined) {
      banner.hidden = true;
      banner.textContent = "";
      return;
    }
    const ahead = Math.max(0, (parseInt(position, 10) || 1) - 1);
    const text = "正在为您转接人工客服，您前面还有 " + ahead + " 位";
    banner.dataset.position = String(position);
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = false;
  }

  // The log (a live region) usually says it through the system notice; the announcer says it
  // only when no such notice came with the state change, so a screen reader hears it once.
  function announceJoined(agent) {
    const text = "人工客服 " + agent + " 已接入";
    setTimeout(function () {
      if (Date.now() - lastSystem.at < 3000 && lastSystem.text.indexOf(agent) !== -1) return;
      announcer.textContent = text;
    }, 400);
  }

  // One card at a time, at the end of the log. A card being filled in is kept across a reconnect
  // (the history frame rebuilds the log), so nothing typed into it is lost.
  function showCard(kind, frame) {
    if (card && card.kind === kind && card.handoffId === frame.handoff_id && card.scope === (frame.scope || null)) {
      if (!card.item.isConnected) log.appendChild(card.item);
      if (card.pending) setPending(card, false); // its answer was lost with the old socket
      return;
    }
    dropCard();
    card = { kind: kind, handoffId: frame.handoff_id, scope: frame.scope || null, done: false, pendingId: null, pending: false };
    card.item = kind === "ticket" ? ticketCard(frame) : ratingCard(card.scope);
    log.appendChild(card.item);
    scrollToEnd();
  }

  function dropCard() {
    if (card && !card.done && card.item.isConnected) card.item.remove();
    card = null;
  }

  function cardShell(className, heading, intro) {
    const item = el("li", "handoff-card " + className);
    const formNode = el("form", "handoff-card__form");
    formNode.noValidate = true;
    formNode.setAttribute("aria-label", heading);
    formNode.appendChild(el("h3", "handoff-card__title", heading));
    if (intro) formNode.appendChild(el("p", "handoff-card__intro", intro));
    item.appendChild(formNode);
    return { item: item, form: formNode };
  }

  function field(parent, labelText, control) {
    fieldCount += 1;
    control.id = "handoff-field-" + fieldCount;
    const label = el("label", "handoff-card__label", labelText);
    label.htmlFor = control.id;
    parent.appendChild(label);
    parent.appendChild(control);
    return control;
  }

  function errorLine(parent) {
    const line = el("p", "handoff-card__error");
    line.id = "handoff-error-" + (fieldCount += 1);
    line.setAttribute("role", "alert");
    line.hidden = true;
    parent.appendChild(line);
    return line;
  }

  function showCardError(target, text, control) {
    const line = target.item.querySelector(".handoff-card__error");
    line.textContent = text;
    line.hidden = !text;
    target.item.querySelectorAll("[aria-invalid]").forEach(function (c) { c.removeAttribute("aria-invalid"); });
    if (control && text) {
      if (control.tagName !== "BUTTON") control.setAttribute("aria-invalid", "true");
      control.setAttribute("aria-describedby", line.id);
      control.focus();
    }
  }

  function setPending(target, pending) {
    target.pending = pending;
    const button = target.item.querySelector(".handoff-card__submit");
    button.disabled = pending;
    button.textContent = pending ? "提交中…" : "提交";
  }

  function finishCard(target, text) {
    target.done = true;
    target.item.textContent = "";
    target.item.classList.add("is-done");
    target.item.appendChild(el("p", "handoff-card__done", text));
    scrollToEnd();
  }

  function sendCardFrame(target, frame) {
    if (!isOpen()) {
      showCardError(target, "网络连接中，请稍后再提交。");
      return;
    }
    showCardError(target, "");
    setPending(target, true);
    connection.send(frame);
  }

  // The same rules as the server (bot/kb/phone.py): a mainland mobile or a landline with area code.
  function normalizePhone(text) {
    return text.replace(/[\s\u3000]/g, "").replace(/[－—]/g, "-");
  }

  function phoneProblem(value) {
    if (MOBILE.test(value) || LANDLINE.test(value)) return null;
    const digits = value.replace(/\D/g, "");
    if (!digits) return "请填写联系电话";
    if (digits.charAt(0) === "1" && digits.length !== 11) return "手机号应为11位，您输入的是" + digits.length + "位";
    if (digits.charAt(0) === "1") return "手机号的第二位应为3至9";
    if (digits.charAt(0) === "0") return "固定电话应带区号，例如0574-87654321";
    return "号码格式不对，请输入11位手机号或带区号的固定电话";
  }

  function ticketCard(frame) {
    // The reason (out of hours, nobody online) is the system notice just above the card.
    const shell = cardShell("handoff-card--ticket", "留言", "请留下电话和问题，工作人员会给您回电。");
    if (frame.hours && frame.hours !== "全天") {
      const hours = el("p", "handoff-card__intro", "人工客服工作时间：");
      hours.appendChild(el("span", "nowrap", frame.hours));
      shell.form.appendChild(hours);
    }
    const phone = el("input", "handoff-card__input");
    phone.type = "tel";
    phone.name = "phone";
    phone.inputMode = "tel";
    phone.autocomplete = "tel";
    phone.maxLength = 20;
    phone.placeholder = "手机号或带区号的固定电话";
    field(shell.form, "联系电话", phone);
    const message = el("textarea", "handoff-card__input");
    message.name = "message";
    message.rows = 3;
    message.maxLength = 500;
    message.placeholder = "请简要描述您要咨询的问题";
    field(shell.form, "留言内容", message);
    errorLine(shell.form);
    const submit = el("button", "handoff-card__submit", "提交");
    submit.type = "submit";
    shell.form.appendChild(submit);
    shell.form.addEventListener("submit", function (event) {
      event.preventDefault();
      const target = card;
      if (!target || target.item !== shell.item || target.pending) return;
      const number = normalizePhone(phone.value);
      const problem = phoneProblem(number);
      if (problem) { showCardError(target, problem, phone); return; }
      const text = message.value.trim();
      if (!text) { showCardError(target, "请填写留言内容", message); return; }
      target.pendingId = newClientId();
      sendCardFrame(target, { type: "ticket", id: target.pendingId, phone: number, text: text });
    });
    return shell.item;
  }

  // scope "conversation": a conversation the bot handled alone (no handoff id).
  function ratingCard(scope) {
    const heading = scope === "conversation" ? "请对本次咨询服务进行评价" : "请对本次人工服务进行评价";
    const shell = cardShell("handoff-card--rating", heading, null);
    const group = el("div", "rating");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "满意程度");
    let score = null;
    RATINGS.forEach(function (level) {
      const button = el("button", "rating__level", level[1]);
      button.type = "button";
      button.dataset.score = String(level[0]);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        score = level[0];
        group.querySelectorAll("button").forEach(function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
      group.appendChild(button);
    });
    shell.form.appendChild(group);
    const comment = el("textarea", "handoff-card__input");
    comment.name = "comment";
    comment.rows = 2;
    comment.maxLength = 500;
    field(shell.form, "其他意见（选填）", comment);
    errorLine(shell.form);
    const submit = el("button", "handoff-card__submit", "提交");
    submit.type = "submit";
    shell.form.appendChild(submit);
    shell.form.addEventListener("submit", function (event) {
      event.preventDefault();
      const target = card;
      if (!target || target.item !== shell.item || target.pending) return;
      if (score === null) { showCardError(target, "请选择满意程度", group.querySelector("button")); return; }
      const frame = { type: "rating", score: score, comment: comment.value.trim() };
      if (target.scope) frame.scope = target.scope;
      else frame.handoff_id = target.handoffId;
      sendCardFrame(target, frame);
    });
    return shell.item;
  }

  function onTicketSaved(frame) {
    if (card && card.kind === "ticket" && card.pendingId === frame.client_id) {
      finishCard(card, frame.text || "留言已收到，工作人员会尽快与您联系。");
    }
  }

  function onRatingSaved(frame) {
    const same = card && (card.scope ? frame.scope === card.scope : card.handoffId === frame.handoff_id);
    if (card && card.kind === "rating" && same) {
      finishCard(card, "感谢您的评价");
    }
  }

  // An error about the card being sent is shown in the card (true), not as a chat bubble.
  function cardError(frame) {
    if (!card || !card.pending) return false;
    // A ticket's answer names its client id; a rating's does not (bad_rating, or not_stored
    // without a client id: every chat message has one).
    const mine = card.kind === "ticket"
      ? frame.client_id !== undefined && frame.client_id === card.pendingId
      : frame.code === "bad_rating" || (frame.code === "not_stored" && !frame.client_id);
    if (!mine) return false;
    setPending(card, false);
    const control = frame.code === "bad_phone" ? card.item.querySelector('input[name="phone"]') : null;
    showCardError(card, frame.text || "提交失败，请稍后再试。", control);
    return true;
  }

  // The indicator: three dots for the bot, "对方正在输入…" next to a person for staff; a notice
  // from the server (e.g. "正在排队，请稍候" while Rasa is saturated) in place of the dots.
  function showTyping(on, who, notice) {
    clearTimeout(staffTypingTimer);
    typingWho = on ? who : null;
    const staff = who === "staff";
    const text = on && notice ? notice : (staff ? "对方正在输入…" : null);
    typing.hidden = !on;
    typingAvatar.className = staff ? "avatar avatar--staff" : "avatar";
    typingAvatar.textContent = staff ? "" : "知";
    typingDots.hidden = !!text;
    typingText.hidden = !text;
    if (text) typingText.textContent = text;
    if (on && staff) staffTypingTimer = setTimeout(function () { showTyping(false, null); }, STAFF_TYPING_MS);
    if (on) scrollToEnd();
  }

  function sendTyping(on) {
    if (isOpen()) connection.send({ type: "typing", on: on });
  }

  // The staff member sees the citizen typing, only during an active handoff.
  function userTyped() {
    if (handoff.state !== "active") return;
    if (!input.value.trim()) { stopTyping(); return; }
    const now = Date.now();
    if (now - typingSentAt >= TYPING_EVERY_MS) {
      typingSentAt = now;
      typingOn = true;
      sendTyping(true);
    }
    clearTimeout(typingIdleTimer);
    typingIdleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdleTimer);
    typingIdleTimer = null;
    if (!typingOn) return;
    typingOn = false;
    sendTyping(false);
  }

  // ---- connection ----------------------------------------------------------------------------

  function showState(online) {
    statusDot.classList.toggle("is-online", online);
    stateText.textContent = online ? "在线" : "连接中…";
    newButton.disabled = !online;
  }

  // Reconnects by itself (common.js): with back-off, and at once when the tab is shown again.
  const connection = reconnectingSocket("/ws", {
    onState: showState,
    onFrame: onFrame,
    onNewSocket: function () { generation += 1; },
    onClose: function (event) {
      showTyping(false, null);
      typingOn = false; // the server forgets it with the socket
      if (event.code === 4001) { // the browser started a new conversation (maybe in another tab)
        clearLog();
        return 300; // reconnect soon, to the new conversation
      }
      return undefined;
    },
  });

  window.ipbotFeedback.setup(function (frame) { // feedback.js sends through this socket
    if (!isOpen()) return false;
    connection.send(frame);
    return true;
  });

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
      // The server closes it too; reconnect on the new id.
      if (!connection.close(4001)) connection.connect();
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
    stopTyping();
    send(text, null);
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter is a new line; never while an IME is composing Chinese.
    if (isSendKey(event)) {
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
  input.addEventListener("input", userTyped);
  humanButton.addEventListener("click", function () { send("转人工", "/request_human"); });

  newButton.addEventListener("click", startNewConversation);

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { // (and the connection comes back at once: common.js)
      unread = 0;
      document.title = TITLE;
    }
  });

  connection.connect();
})();
