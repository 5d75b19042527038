// Import progress: poll the job's progress endpoint until it has finished, then reload for the report.
(function () {
  const bar = document.getElementById("import-progress");  // its first width (no inline style: see the CSP)
  if (bar && bar.dataset.percent) bar.style.width = bar.dataset.percent + "%";
  const panel = document.getElementById("import-panel");
  if (!panel || panel.dataset.finished === "1") return;
  const url = panel.dataset.progressUrl;
  let startedAs = null;
  async function refresh() {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      if (startedAs === null) startedAs = data.status;
      for (const [name, n] of Object.entries(data)) {
        const cell = panel.querySelector(`[data-count="${name}"]`);
        if (cell) cell.textContent = n;
      }
      document.getElementById("import-progress").style.width = data.progress + "%";
      panel.querySelector(".import-bar").setAttribute("aria-valuenow", data.progress);
      document.getElementById("import-status").textContent = data.status_display;
      const stalled = document.getElementById("import-stalled");
      if (stalled) stalled.hidden = !data.stalled;
      if (data.finished || (data.status !== startedAs && data.status !== "running")) {
        window.location.reload();
        return;
      }
    } catch (e) { /* offline for a moment: try again next tick */ }
    setTimeout(refresh, 1000);
  }
  if (panel.querySelector("#import-continue")) return; // waiting for the mapping step, nothing runs yet
  refresh();
})();
