// Helpers shared by the web chat (chat.js) and the staff console (console.js), loaded before
// either of them. A plain script, as they are (no modules, no bundler): it defines `window.ipbot`.
"use strict";

window.ipbot = (function () {
  const FIRST_RETRY_MS = 500;
  const MAX_RETRY_MS = 10000;

  // A new element; text goes in as textContent, so server text is never parsed as HTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The id the server acknowledges a sent message (or form) by.
  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // 14:05 (local time); "" for no date.
  function clock(date) {
    return date ? pad(date.getHours()) + ":" + pad(date.getMinutes()) : "";
  }

  // Enter sends, Shift+Enter is a new line; never while an IME is composing Chinese.
  function isSendKey(event) {
    return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229;
  }

  // A websocket to `path` on this host that comes back by itself: after a drop with a doubling
  // delay (with jitter, so that not every page reconnects at once), and at once when the page is
  // shown again or the network returns. Nothing happens until `connect()`.
  // handlers.onState(online): show whether the page is connected;
  // handlers.onFrame(frame): each JSON object the server sends;
  // handlers.onNewSocket(): optional, a new socket was made (frames sent before went elsewhere);
  // handlers.onClose(event, opened): optional, the socket closed (`opened`: it had opened);
  //   a number returned is the delay (ms) to reconnect after, instead of the doubling one.
  function reconnectingSocket(path, handlers) {
    let socket = null;
    let retryDelay = FIRST_RETRY_MS;
    let retryTimer = null;

    function connect() {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
      handlers.onState(false);
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + path);
      let opened = false;
      socket = ws;
      if (handlers.onNewSocket) handlers.onNewSocket();
      ws.addEventListener("open", function () {
        if (socket !== ws) return;
        opened = true;
        retryDelay = FIRST_RETRY_MS;
        handlers.onState(true);
      });
      ws.addEventListener("message", function (event) {
        if (socket !== ws) return;
        let frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        if (frame && typeof frame === "object") handlers.onFrame(frame);
      });
      ws.addEventListener("close", function (event) {
        if (socket !== ws) return;
        socket = null;
        handlers.onState(false);
        const after = handlers.onClose ? handlers.onClose(event, opened) : undefined;
        if (typeof after === "number") {
          retryTimer = setTimeout(connect, after);
          return;
        }
        scheduleReconnect();
      });
    }

    function scheduleReconnect() {
      if (retryTimer) return;
      const delay = retryDelay * (0.8 + Math.random() * 0.4); // jitter: not every page at once
      retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
      retryTimer = setTimeout(connect, delay);
    }

    function reconnectNow() {
      if (!socket) { retryDelay = FIRST_RETRY_MS; connect(); }
    }

    document.addEventListener("visibilitychange", function () { if (!document.hidden) reconnectNow(); });
    window.addEventListener("online", reconnectNow);

    return {
      connect: connect,
      isOpen: function () { return !!socket && socket.readyState === WebSocket.OPEN; },
      // Callers check isOpen() first.
      send: function (frame) { socket.send(JSON.stringify(frame)); },
      // Close the socket with `code` (it reconnects as after any close); false when there is none.
      close: function (code) {
        if (!socket) return false;
        socket.close(code);
        return true;
      },
    };
  }

  return {
    el: el,
    newClientId: newClientId,
    pad: pad,
    clock: clock,
    isSendKey: isSendKey,
    reconnectingSocket: reconnectingSocket,
  };
})();
