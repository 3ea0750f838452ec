// 长辈版 (elder mode) of the web chat: larger text, stronger colours, bigger targets, no motion,
// and a 朗读 (read aloud) button on the assistant's messages. Kept apart from chat.js: it only
// watches the page. Loaded in <head> without defer so the mode is set before the first paint.
// The switch is remembered by this browser (localStorage); typing "长辈版" / "大字" turns it on,
// "标准版" / "小字" off, without sending anything to the server.
"use strict";

(function () {
  const KEY = "ipbot.elder";
  const ON_WORDS = ["长辈版", "大字", "大字版", "老年版"];
  const OFF_WORDS = ["标准版", "小字", "普通版"];
  const root = document.documentElement;

  function stored() {
    try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; }
  }

  function remember(on) {
    try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
  }

  root.classList.toggle("elder", stored());

  // ---- read aloud ----------------------------------------------------------------------------

  const speech = window.speechSynthesis || null;
  let chineseVoice = null;

  function findChineseVoice() {
    if (!speech || typeof window.SpeechSynthesisUtterance !== "function") return null;
    const voices = speech.getVoices() || [];
    return voices.find(function (v) { return /^zh([-_]CN)?/i.test(v.lang || ""); }) ||
      voices.find(function (v) { return /^(zh|cmn)/i.test(v.lang || ""); }) || null;
  }

  // The words of a message as a screen reader would get them, without the "助手：" prefix.
  function messageText(item) {
    const parts = [];
    item.querySelectorAll(".msg__bubble, .card").forEach(function (node) { parts.push(node.innerText || node.textContent || ""); });
    return parts.join("\n").trim();
  }

  function readAloud(item, button) {
    if (!speech || !chineseVoice) return;
    const wasSpeaking = button.getAttribute("aria-pressed") === "true";
    speech.cancel();
    document.querySelectorAll(".read-aloud[aria-pressed=true]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    if (wasSpeaking) return; // a second press stops it
    const utterance = new SpeechSynthesisUtterance(messageText(item));
    utterance.lang = chineseVoice.lang || "zh-CN";
    try { utterance.voice = chineseVoice; } catch (e) { /* the lang picks a Chinese voice anyway */ }
    utterance.rate = 0.9; // a little slower than the default, for older listeners
    utterance.onend = utterance.onerror = function () { button.setAttribute("aria-pressed", "false"); };
    button.setAttribute("aria-pressed", "true");
    speech.speak(utterance);
  }

  function addReadButton(item) {
    const body = item.querySelector(".msg__body");
    if (!body || body.querySelector(".read-aloud") || !messageText(item)) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "read-aloud";
    button.textContent = "朗读";
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "朗读这条消息");
    button.addEventListener("click", function () { readAloud(item, button); });
    body.appendChild(button);
  }

  function addReadButtons(log) {
    if (!chineseVoice) return;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    log.querySelectorAll(".msg--bot, .msg--staff").forEach(addReadButton);
    if (atEnd) log.scrollTop = log.scrollHeight;
  }

  // ---- the switch ----------------------------------------------------------------------------

  function setMode(on, toggle) {
    root.classList.toggle("elder", on);
    toggle.setAttribute("aria-checked", on ? "true" : "false");
    remember(on);
    if (!on && speech) speech.cancel();
  }

  function localNotice(log, text) {
    const item = document.createElement("li");
    item.className = "notice notice--mode";
    item.textContent = text;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  // A typed "长辈版" is handled here, before chat.js's submit handler: nothing is sent.
  function interceptWords(form, input, toggle, log) {
    document.addEventListener("submit", function (event) {
      if (event.target !== form) return;
      const text = input.value.trim();
      const on = ON_WORDS.indexOf(text) !== -1;
      const off = OFF_WORDS.indexOf(text) !== -1;
      if (!on && !off) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      input.value = "";
      input.dispatchEvent(new Event("input"));
      setMode(on, toggle);
      localNotice(log, on
        ? "已切换到长辈版：字更大，颜色更清楚。点击顶部的“长辈版”按钮或输入“标准版”可切换回来。"
        : "已切换到标准版。点击顶部的“长辈版”按钮或输入“长辈版”可再切换回来。");
      input.focus();
    }, true);
  }

  function start() {
    const toggle = document.getElementById("elder-toggle");
    const log = document.getElementById("log");
    const form = document.getElementById("composer");
    const input = document.getElementById("text");
    if (!toggle || !log || !form || !input) return;
    toggle.setAttribute("aria-checked", root.classList.contains("elder") ? "true" : "false");
    toggle.addEventListener("click", function () { setMode(!root.classList.contains("elder"), toggle); });
    interceptWords(form, input, toggle, log);

    const refreshVoice = function () {
      chineseVoice = findChineseVoice();
      root.classList.toggle("can-read-aloud", !!chineseVoice);
      addReadButtons(log);
    };
    refreshVoice();
    if (speech && typeof speech.addEventListener === "function") speech.addEventListener("voiceschanged", refreshVoice);
    // New messages get their button in the same task they are added in, so the live region
    // announces each message once (with its button), not twice.
    new MutationObserver(function () { addReadButtons(log); }).observe(log, { childList: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
