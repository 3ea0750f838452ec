// Every visible text, target and quick-reply row of the page against the 长辈版 numbers (text at
// least 20 px, line height 1.5, contrast 7:1 computed from the colours, targets 44 px, at most two
// quick replies a row). Returns the problems found: an empty list when all are met.
() => {
  const problems = [];
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const rgba = (s) => { const m = s.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const hidden = (el) => el.closest('[aria-hidden="true"], .visually-hidden, [hidden]') !== null;
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden"; };
  function background(el) {
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c.a >= 0.99) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  }
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") + " '" + (el.textContent || "").trim().slice(0, 12) + "'";
  for (const el of document.querySelectorAll("body *")) {
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || hidden(el) || !visible(el)) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    if (size < 20) problems.push(name(el) + " font " + size + "px");
    const lineHeight = style.lineHeight === "normal" ? 0 : parseFloat(style.lineHeight);
    if (lineHeight < 1.5 * size - 0.01) problems.push(name(el) + " line-height " + style.lineHeight);
    const fg = rgba(style.color), bg = background(el);
    const a = lum(fg) + 0.05, b = lum(bg) + 0.05;
    const ratio = Math.max(a, b) / Math.min(a, b);
    if (ratio < 7) problems.push(name(el) + " contrast " + ratio.toFixed(2));
  }
  for (const el of document.querySelectorAll("button, input:not([type=hidden]), textarea, select, a[href^='tel:']")) {
    if (hidden(el) || !visible(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 44 || r.height < 44) problems.push(name(el) + " target " + Math.round(r.width) + "×" + Math.round(r.height));
  }
  for (const group of document.querySelectorAll(".buttons")) {
    const rows = {};
    group.querySelectorAll("button").forEach((b) => { const top = Math.round(b.getBoundingClientRect().top); rows[top] = (rows[top] || 0) + 1; });
    Object.values(rows).forEach((n) => { if (n > 2) problems.push("quick replies: " + n + " in a row"); });
  }
  return problems;
}
