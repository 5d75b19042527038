// Live counts on the campaign page: poll the stats endpoint while the campaign is sending.
// The controls that ask first (data-confirm) and the progress bar's first width are set here, not inline: the
// content security policy allows no inline script or style.
(function () {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  }
  const bar = document.getElementById("campaign-progress");
  if (bar && bar.dataset.percent) bar.style.width = bar.dataset.percent + "%";
  const panel = document.getElementById("campaign-panel");
  if (!panel) return;
  const url = panel.dataset.statsUrl;
  let status = panel.dataset.status;
  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      for (const [name, n] of Object.entries(data.counts)) {
        const cell = panel.querySelector(`[data-count="${name}"]`);
        if (cell) cell.textContent = n;
      }
      for (const [name, n] of Object.entries(data.replies || {})) {
        const cell = panel.querySelector(`[data-reply="${name}"]`);
        if (cell) cell.textContent = n;
      }
      const waiting = panel.querySelector('[data-count="waiting_window"]');
      if (waiting) waiting.textContent = data.waiting_window;
      const total = panel.querySelector('[data-count="total"]');
      if (total) total.textContent = data.total;
      document.getElementById("campaign-progress").style.width = data.done_percent + "%";
      document.getElementById("campaign-final").textContent = data.final;
      document.getElementById("campaign-awaiting").textContent = data.awaiting_receipt;
      if (data.status !== status) { window.location.reload(); return; }
    } catch (e) { /* offline for a moment: try again next tick */ }
  }
  if (status === "sending" || status === "paused" || status === "scheduled") setInterval(refresh, 2000);
})();
