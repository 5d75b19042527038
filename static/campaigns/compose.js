// The compose panel under the campaign's message: encoding and segments as staff type (SmsSegments, the same
// counting as messaging.encoding on the server), the characters that force UCS-2 highlighted with a one-click
// replacement of look-alikes, and a preview of the message for real recipients of the chosen lists.
(function () {
  "use strict";
  const body = document.getElementById("id_body");
  const script = document.getElementById("compose-script");
  if (!body || !script || !window.SmsSegments) return;
  const previewUrl = script.dataset.previewUrl;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");

  const panel = document.createElement("div");
  panel.className = "compose-panel";
  panel.id = "compose-panel";
  panel.innerHTML =
    '<p class="compose-count" id="compose-count" aria-live="polite"></p>' +
    '<div class="compose-ucs2" id="compose-ucs2" hidden>' +
    '<p>These characters make the whole message UCS-2 (70 characters per segment instead of 160): ' +
    '<span id="compose-chars"></span></p>' +
    '<div class="compose-highlight" id="compose-highlight"></div>' +
    '<button type="button" class="button" id="compose-replace" hidden>Replace look-alikes</button></div>' +
    '<div class="compose-preview" id="compose-preview" aria-live="polite"></div>';
  // Below the field's row (label and text box), full width, rather than squeezed beside the text box.
  (body.closest(".flex-container") || body).insertAdjacentElement("afterend", panel);

  const $ = (id) => document.getElementById(id);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const unitName = (encoding) => (encoding === "GSM-7" ? "septets" : "UTF-16 units");

  function describe(info) {
    if (!info.units) return "Empty message.";
    const limit = info.segments > 1 ? `${info.perSegment} per segment when split` : `${info.perSegment} in one segment`;
    return `${info.encoding}: ${info.units} ${unitName(info.encoding)}, ${plural(info.segments, "segment")} ` +
      `(${limit}; ${info.remaining} left in the last).`;
  }

  function highlight(text, nonGsm) {
    const container = $("compose-highlight");
    container.textContent = "";
    const bad = new Set(nonGsm);
    let run = "";
    for (const ch of text) {
      if (bad.has(ch)) {
        if (run) { container.appendChild(document.createTextNode(run)); run = ""; }
        const mark = document.createElement("mark");
        mark.textContent = ch === "\u00a0" ? "\u2423" : ch;
        mark.title = "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
        container.appendChild(mark);
      } else {
        run += ch;
      }
    }
    if (run) container.appendChild(document.createTextNode(run));
  }

  function updateCount() {
    const text = body.value;
    const info = SmsSegments.info(text);
    const count = $("compose-count");
    count.textContent = "Template " + describe(info);
    count.dataset.encoding = info.encoding;
    count.dataset.segments = info.segments;
    count.dataset.units = info.units;
    count.classList.toggle("compose-ucs2-warning", info.encoding === "UCS-2");
    const box = $("compose-ucs2");
    box.hidden = info.nonGsm.length === 0;
    $("compose-chars").textContent = info.nonGsm.map((ch) => (ch === "\u00a0" ? "non-breaking space" : ch)).join(" ");
    highlight(text, info.nonGsm);
    const replaced = SmsSegments.replaceLookalikes(text);
    const button = $("compose-replace");
    button.hidden = replaced === text;
  }

  $("compose-replace").addEventListener("click", function () {
    body.value = SmsSegments.replaceLookalikes(body.value);
    body.dispatchEvent(new Event("input", { bubbles: true }));
    body.focus();
  });

  function chosenLists() {
    const chosen = document.getElementById("id_lists_to") || document.getElementById("id_lists");
    if (!chosen) return [];
    const options = chosen.id === "id_lists_to" ? Array.from(chosen.options) : Array.from(chosen.selectedOptions);
    return options.map((o) => o.value);
  }

  function renderPreview(data) {
    const box = $("compose-preview");
    box.textContent = "";
    const add = (tag, cls, text) => {
      const el = document.createElement(tag);
      if (cls) el.className = cls;
      if (text !== undefined) el.textContent = text;
      box.appendChild(el);
      return el;
    };
    if (data.error) { add("p", "errornote compose-error", data.error); return; }
    if (!data.recipients) { add("p", "help", "Choose audience lists to preview the message for real recipients."); return; }
    add("h3", "", `Preview for recipients of the chosen lists (${data.recipients} in all)`);
    for (const [name, n] of Object.entries(data.empty || {})) {
      add("p", "compose-empty-warning", `${name} is empty for ${plural(n, "recipient")}: ` +
        `use {{ ${name}|default:"…" }} to avoid a gap.`).dataset.field = name;
    }
    for (const s of data.samples) {
      const item = add("div", "compose-sample");
      const label = document.createElement("div");
      label.className = "compose-sample-label";
      label.textContent = s.label + (s.missing.length ? ` (no ${s.missing.join(", ")})` : "");
      item.appendChild(label);
      const text = document.createElement("pre");
      text.className = "sms-preview";
      text.textContent = s.error ? "Cannot be rendered: " + s.error : s.body;
      item.appendChild(text);
      const meta = document.createElement("div");
      meta.className = "help";
      meta.textContent = s.error ? "" : `${s.encoding}, ${s.units} ${unitName(s.encoding)}, ${plural(s.segments, "segment")}`;
      item.appendChild(meta);
    }
    if (data.longest) {
      const p = add("p", "compose-longest", `Longest personalized message found: ${plural(data.longest.segments, "segment")} ` +
        `(${data.longest.encoding}, ${data.longest.units} ${unitName(data.longest.encoding)}), for ${data.longest.label}. ` +
        "The confirmation before sending counts every recipient.");
      p.dataset.segments = data.longest.segments;
    }
  }

  let timer = null;
  let inFlight = null;
  let lastKey = "";
  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(preview, 350);
  }
  async function preview() {
    const lists = chosenLists();
    const key = JSON.stringify([body.value, lists]);
    if (key === lastKey) return;
    lastKey = key;
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    const form = new FormData();
    form.append("body", body.value);
    lists.forEach((id) => form.append("lists", id));
    try {
      const response = await fetch(previewUrl, {
        method: "POST", body: form, credentials: "same-origin", signal: inFlight.signal,
        headers: { "X-CSRFToken": csrf ? csrf.value : "" },
      });
      if (!response.ok) { lastKey = ""; return; }
      renderPreview(await response.json());
      $("compose-preview").dataset.ready = key;
    } catch (e) { if (e.name !== "AbortError") lastKey = ""; }
  }

  body.addEventListener("input", function () { updateCount(); schedulePreview(); });
  const chosen = document.getElementById("id_lists_to") || document.getElementById("id_lists");
  if (chosen) {
    chosen.addEventListener("change", schedulePreview);
    new MutationObserver(schedulePreview).observe(chosen, { childList: true });
  }
  // filter_horizontal builds its boxes after this script runs: watch for them once.
  window.addEventListener("load", function () {
    const box = document.getElementById("id_lists_to");
    if (box && box !== chosen) new MutationObserver(schedulePreview).observe(box, { childList: true });
    schedulePreview();
  });
  updateCount();
})();
