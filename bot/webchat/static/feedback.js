// 👍 / 👎 under each bot answer, with an optional reason on 👎 (issue 17). Stored with the
// message on the server (a "feedback" frame, answered by "feedback_saved"); plain buttons with
// aria-pressed, so a keyboard and a screen reader use them like any other button.
"use strict";

window.ipbotFeedback = (function () {
  const { el } = window.ipbot; // common.js
  const REASONS = [["not_answered", "没回答我的问题"], ["wrong", "信息有误"], ["unclear", "看不懂"]];
  const shown = new Map(); // bot message id -> {up, down, reasons}
  let send = function () { return false; };

  function announce(text) {
    const announcer = document.getElementById("announcer");
    if (announcer) announcer.textContent = text;
  }

  function press(buttons, pressed) {
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", b === pressed ? "true" : "false"); });
  }

  function choose(id, value, reason) {
    if (!send({ type: "feedback", message_id: id, value: value, reason: reason || null })) {
      announce("网络连接中，请稍后再评价。");
    }
  }

  // The buttons under one stored bot answer (`frame.id`); `frame.feedback` is the saved choice.
  // A message offering choices (buttons) is a question to the citizen, not an answer.
  function attach(body, frame) {
    if (typeof frame.id !== "number" || shown.has(frame.id)) return;
    if (Array.isArray(frame.buttons) && frame.buttons.length) return;
    const bar = el("div", "feedback");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "这条回答对您有帮助吗");
    const up = el("button", "feedback__thumb", "👍");
    const down = el("button", "feedback__thumb", "👎");
    up.setAttribute("aria-label", "有帮助");
    down.setAttribute("aria-label", "没有帮助");
    const reasons = el("div", "feedback__reasons");
    reasons.id = "feedback-reasons-" + frame.id;
    reasons.setAttribute("role", "group");
    reasons.setAttribute("aria-label", "没有帮助的原因（选填）");
    reasons.hidden = true;
    down.setAttribute("aria-controls", reasons.id);
    down.setAttribute("aria-expanded", "false");
    [up, down].forEach(function (b) { b.type = "button"; b.setAttribute("aria-pressed", "false"); });
    REASONS.forEach(function (r) {
      const button = el("button", "feedback__reason", r[1]);
      button.type = "button";
      button.dataset.reason = r[0];
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () { choose(frame.id, "down", r[0]); });
      reasons.appendChild(button);
    });
    up.addEventListener("click", function () { choose(frame.id, "up", null); });
    down.addEventListener("click", function () { choose(frame.id, "down", null); });
    bar.appendChild(up);
    bar.appendChild(down);
    body.appendChild(bar);
    body.appendChild(reasons);
    shown.set(frame.id, { up: up, down: down, reasons: reasons });
    if (frame.feedback) show(frame.id, frame.feedback, null);
  }

  function show(id, value, reason) {
    const parts = shown.get(id);
    if (!parts) return;
    press([parts.up, parts.down], value === "up" ? parts.up : parts.down);
    parts.reasons.hidden = value !== "down";
    parts.down.setAttribute("aria-expanded", value === "down" ? "true" : "false");
    const chosen = parts.reasons.querySelector('[data-reason="' + reason + '"]');
    press(Array.from(parts.reasons.querySelectorAll("button")), chosen);
  }

  // "feedback_saved": show the stored choice and thank the citizen.
  function saved(frame) {
    show(frame.message_id, frame.value, frame.reason);
    if (frame.value === "down" && !frame.reason) announce("已收到反馈。可以选择没有帮助的原因（选填）。");
    else announce("感谢您的反馈");
  }

  // True when an error frame is about feedback (said quietly, not as a chat bubble).
  function failed(frame) {
    if (frame.code !== "bad_feedback" && frame.code !== "feedback_not_stored") return false;
    announce(frame.text || "反馈没有保存成功，请稍后再试。");
    return true;
  }

  return {
    setup: function (sender) { send = sender; },
    attach: attach,
    saved: saved,
    failed: failed,
  };
})();
