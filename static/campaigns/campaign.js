// The campaign page: its figures drawn on load from the data the page was rendered with, then kept current by
// polling the stats endpoint while the campaign is scheduled, sending or paused; the page reloads when the status
// changes (the controls change with it) and stops polling once the campaign is final.
// The controls that ask first (data-confirm) and the progress bar's width are set here, not inline: the content
// security policy allows no inline script or style.
(function () {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  }
  const bar = document.getElementById("campaign-progress");
  if (bar && bar.dataset.percent) bar.style.width = bar.dataset.percent + "%";
  const panel = document.getElementById("campaign-panel");
  if (!panel) return;
  const chart = document.getElementById("campaign-chart");
  const initial = document.getElementById("campaign-dashboard-data");
  if (chart && initial && window.campaignChart) window.campaignChart.draw(chart, JSON.parse(initial.textContent).timeline);

  const url = panel.dataset.statsUrl;
  const status = panel.dataset.status;
  const rate = (n) => (n === null || n === undefined ? "–" : `${n}%`);

  function setAll(selector, text) {
    for (const node of panel.querySelectorAll(selector)) node.textContent = text;
  }

  function fillRows(tableId, rows, cells, attrs) {
    const table = document.getElementById(tableId);
    if (!table) return;
    const body = table.tBodies[0];
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement("tr");
      for (const [name, value] of Object.entries(attrs(row))) tr.setAttribute(name, value);
      for (const [text, cellAttrs] of cells(row)) {
        const td = document.createElement("td");
        td.textContent = text;
        for (const [name, value] of Object.entries(cellAttrs || {})) td.setAttribute(name, value);
        tr.append(td);
      }
      return tr;
    }));
  }

  function show(id, visible) {
    const node = document.getElementById(id);
    if (node) node.hidden = !visible;
  }

  function update(data) {
    const recipients = data.recipients;
    for (const [name, n] of Object.entries(recipients.counts)) setAll(`[data-count="${name}"]`, n);
    setAll('[data-count="total"]', recipients.total);
    for (const [name, n] of Object.entries(data.counts)) setAll(`[data-message-count="${name}"]`, n);
    setAll('[data-message-count="total"]', data.total);
    setAll('[data-figure="done_percent"]', `${recipients.done_percent}%`);
    setAll('[data-figure="delivery_rate"]', rate(recipients.delivery_rate));
    setAll('[data-figure="recipients_total"]', recipients.total);
    setAll('[data-figure="messages_total"]', data.total);
    setAll('[data-figure="superseded"]', recipients.superseded);
    for (const [name, n] of Object.entries(data.replies || {})) setAll(`[data-reply="${name}"]`, n);
    setAll('[data-count="waiting_window"]', data.waiting_window);
    if (bar) bar.style.width = recipients.done_percent + "%";
    document.getElementById("campaign-final").textContent = recipients.final;
    document.getElementById("campaign-awaiting").textContent = data.awaiting_receipt;
    setAll('[data-timeline="unit"]', data.timeline.unit);
    if (chart && window.campaignChart) window.campaignChart.draw(chart, data.timeline);

    const failovers = document.getElementById("campaign-failovers");
    if (failovers) {
      failovers.replaceChildren(...data.failovers.map((f) => {
        const li = document.createElement("li");
        li.className = "warning";
        li.dataset.failover = f.backup_id;
        const code = f.code ? ` (code ${f.code}${f.circuit_open ? ": the main sender's circuit was open" : ""})` : "";
        li.textContent = `${f.count} message${f.count === 1 ? "" : "s"} moved to backup sender ${f.backup}: ${f.cause.label}${code}.`;
        return li;
      }));
      failovers.hidden = !data.failovers.length;
    }
    fillRows("campaign-senders", data.by_sender,
      (s) => [[s.name], [s.provider_name], [s.sent], [s.delivered], [s.undelivered], [s.failed], [s.failover_in], [rate(s.delivery_rate)]],
      (s) => ({ "data-sender": s.sender_id }));
    show("campaign-senders-section", data.by_sender.length);
    fillRows("campaign-failures", data.failures,
      (f) => [[f.cause.label], [f.count, { "data-count": `cause-${f.cause.code}` }], [f.cause.explanation], [f.cause.advice]],
      (f) => ({ "data-cause": f.cause.code }));
    fillRows("campaign-failure-codes", data.failure_codes,
      (c) => [[c.cause.label], [c.provider_name], [c.code || "–"], [c.meaning || "not documented"], [c.count]],
      (c) => ({ "data-code": c.code }));
    show("campaign-failures-section", data.failures.length);
  }

  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      update(data);
      if (data.status !== status) { clearInterval(timer); window.location.reload(); }
    } catch (e) { /* offline for a moment: try again next tick */ }
  }
  const timer = (status === "sending" || status === "paused" || status === "scheduled") ? setInterval(refresh, 2000) : null;
})();
