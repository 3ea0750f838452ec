// The leads page: new leads arrive live (/staff/api/leads/live) and are added at the top of the
// list, marked 新, with a notice. Text is set with textContent only.
"use strict";

(function () {
  const { el, reconnectingSocket } = window.ipbot; // common.js
  const table = document.getElementById("leads");
  const note = document.getElementById("live-note");
  if (!table) return;
  const body = table.querySelector("tbody");
  const statusFilter = new URLSearchParams(location.search).get("status") || "new";

  function clock(iso) {
    const d = new Date(iso);
    const pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function cell(text, className) {
    const td = el("td", className || null, text);
    return td;
  }

  function addLead(lead) {
    if (body.querySelector('tr[data-lead-id="' + lead.id + '"]')) return;
    if (statusFilter !== "new" && statusFilter !== "all") return; // not a row of this list
    const row = el("tr", "is-new");
    row.dataset.leadId = String(lead.id);
    const ref = el("td", "nowrap");
    const link = el("a", null, lead.reference);
    link.href = "/staff/leads/" + lead.id;
    ref.appendChild(link);
    row.appendChild(ref);
    row.appendChild(cell(clock(lead.created_at), "nowrap"));
    row.appendChild(cell(lead.company));
    row.appendChild(cell(lead.contact_name));
    row.appendChild(cell(lead.phone, "nowrap"));
    row.appendChild(cell(lead.products || "未选择"));
    const status = el("td");
    status.appendChild(el("span", "badge badge--lead-new", "待联系"));
    status.appendChild(document.createTextNode(" "));
    status.appendChild(el("span", "badge badge--new-row", "新"));
    row.appendChild(status);
    row.appendChild(cell("未认领", "nowrap"));
    row.appendChild(cell("", "nowrap"));
    body.insertBefore(row, body.firstChild);
    const empty = document.getElementById("leads-empty");
    if (empty) empty.remove();
    note.textContent = "收到新的咨询线索 " + lead.reference + "（" + lead.company + "）";
    note.hidden = false;
  }

  // Leads stored between the page's rendering and the socket's opening come first (catch-up).
  const since = encodeURIComponent(table.dataset.latestId || "");
  const connection = reconnectingSocket("/staff/api/leads/live?since=" + since, {
    onState: function () {},
    onFrame: function (frame) {
      if (frame.type === "new_lead" && frame.lead) addLead(frame.lead);
      if (frame.type === "error" && frame.code === "unauthorized") location.href = "/staff/login";
    },
  });
  connection.connect();
})();
