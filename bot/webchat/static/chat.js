// The web chat client: one websocket to /ws, typed JSON frames (see README "Websocket protocol").
// Every message is inserted with textContent: text from the server is never parsed as HTML.
"use strict";

(function () {
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  let socket = null;
  let retryDelay = 500;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function addBubble(role, build) {
    const item = el("li", "msg msg--" + role);
    const bubble = el("div", "msg__bubble");
    build(bubble);
    item.appendChild(bubble);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function renderButtons(bubble, buttons) {
    if (!buttons || !buttons.length) return;
    const row = el("div", "buttons");
    buttons.forEach(function (b) {
      const button = el("button", null, b.title);
      button.type = "button";
      button.addEventListener("click", function () {
        row.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        send(b.title, b.payload);
      });
      row.appendChild(button);
    });
    bubble.appendChild(row);
  }

  function renderServicePoint(item) {
    const card = el("section", "card");
    card.appendChild(el("h2", null, item.name));
    card.appendChild(el("p", null, "区县：" + (item.district || "全市")));
    card.appendChild(el("p", null, "地址：" + (item.address || "地址待核实")));
    card.appendChild(el("p", null, "开放时间：" + (item.opening_hours || "待核实")));
    const phone = el("p", null, "电话：");
    if (item.phone) {
      const link = el("a", null, item.phone);
      link.href = "tel:" + item.phone.replace(/[^0-9+-]/g, "");
      phone.appendChild(link);
    } else {
      phone.appendChild(document.createTextNode("待核实"));
    }
    card.appendChild(phone);
    if (item.services) card.appendChild(el("p", null, "服务：" + item.services));
    card.appendChild(el("p", "card__source", "来源：" + item.source));
    return card;
  }

  function renderFrame(frame) {
    const role = frame.type === "error" ? "error" : "bot";
    addBubble(role, function (bubble) {
      if (frame.text) bubble.appendChild(el("div", null, frame.text));
      const custom = frame.custom;
      if (custom && custom.kind === "service_points" && Array.isArray(custom.items)) {
        custom.items.forEach(function (item) { bubble.appendChild(renderServicePoint(item)); });
      }
      renderButtons(bubble, frame.buttons);
    });
  }

  function send(text, payload) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      renderFrame({ type: "error", text: "连接中…请稍后再发送。" });
      return;
    }
    addBubble("user", function (bubble) { bubble.textContent = text; });
    const frame = { type: "message", text: text };
    if (payload) frame.payload = payload;
    socket.send(JSON.stringify(frame));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws");
    socket.addEventListener("open", function () {
      status.classList.add("is-online");
      retryDelay = 500;
    });
    socket.addEventListener("message", function (event) {
      try { renderFrame(JSON.parse(event.data)); } catch (e) { /* ignore a malformed frame */ }
    });
    socket.addEventListener("close", function () {
      status.classList.remove("is-online");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });

  connect();
})();
