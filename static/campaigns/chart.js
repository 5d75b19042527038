// The campaign's timeline, drawn as SVG from its JSON ({unit, points: [{at, sent, delivered, failed}]}): one line
// per series, axes with their labels, and a legend. No library, no inline style (colours come from campaign.css).
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const SERIES = [["sent", "sent (accepted by the provider)"], ["delivered", "delivered"], ["failed", "failed or undelivered"]];
  const W = 900, H = 240, LEFT = 56, RIGHT = 12, TOP = 12, BOTTOM = 44;

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(n) {
    if (n <= 4) return 4;
    const power = Math.pow(10, Math.floor(Math.log10(n)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= n) return step * power;
    return 10 * power;
  }

  function label(iso, unit, spansDays) {
    const at = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    const time = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
    return spansDays || unit === "hour" ? `${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${time}` : time;
  }

  function draw(container, timeline) {
    container.replaceChildren();
    const points = (timeline && timeline.points) || [];
    if (!points.length) {
      const empty = document.createElement("p");
      empty.className = "campaign-chart-empty";
      empty.textContent = "No outcomes yet.";
      container.append(empty);
      return;
    }
    const unit = timeline.unit || "minute";
    const max = niceMax(Math.max(...points.flatMap((p) => [p.sent, p.delivered, p.failed])));
    const width = W - LEFT - RIGHT, height = H - TOP - BOTTOM;
    const x = (i) => LEFT + (points.length === 1 ? width / 2 : (i * width) / (points.length - 1));
    const y = (n) => TOP + height - (n * height) / max;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "campaign-chart-svg", role: "img",
      "aria-label": `Messages sent, delivered and failed per ${unit}` });
    for (const n of [0, max / 4, max / 2, (3 * max) / 4, max]) {
      svg.append(el("line", { x1: LEFT, x2: W - RIGHT, y1: y(n), y2: y(n), class: n ? "chart-grid" : "chart-axis" }));
      svg.append(el("text", { x: LEFT - 6, y: y(n) + 4, class: "chart-tick", "text-anchor": "end" },
        Number.isInteger(n) ? n : n.toFixed(1)));
    }
    svg.append(el("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: TOP + height, class: "chart-axis" }));
    const first = new Date(points[0].at), last = new Date(points[points.length - 1].at);
    const spansDays = first.toDateString() !== last.toDateString();
    const ticks = Math.min(points.length, 7);
    const shown = new Set();
    for (let k = 0; k < ticks; k++) shown.add(ticks === 1 ? 0 : Math.round((k * (points.length - 1)) / (ticks - 1)));
    for (const i of shown) {
      svg.append(el("line", { x1: x(i), x2: x(i), y1: TOP + height, y2: TOP + height + 4, class: "chart-axis" }));
      svg.append(el("text", { x: x(i), y: TOP + height + 17, class: "chart-tick", "text-anchor": "middle" },
        label(points[i].at, unit, spansDays)));
    }
    svg.append(el("text", { x: LEFT + width / 2, y: H - 6, class: "chart-title", "text-anchor": "middle" },
      `time (your time zone), one point per ${unit}`));
    svg.append(el("text", { x: 14, y: TOP + height / 2, class: "chart-title", "text-anchor": "middle",
      transform: `rotate(-90 14 ${TOP + height / 2})` }, `messages per ${unit}`));
    for (const [name] of SERIES) {
      const coords = points.map((p, i) => `${x(i).toFixed(1)},${y(p[name]).toFixed(1)}`).join(" ");
      svg.append(el("polyline", { points: coords, class: `chart-line series-${name}` }));
      if (points.length <= 60) {
        points.forEach((p, i) => {
          const dot = el("circle", { cx: x(i), cy: y(p[name]), r: 3, class: `chart-dot series-${name}` });
          dot.append(el("title", {}, `${label(p.at, unit, true)}: ${p[name]} ${name}`));
          svg.append(dot);
        });
      }
    }
    container.append(svg);
    const legend = document.createElement("ul");
    legend.className = "chart-legend";
    for (const [name, text] of SERIES) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = `chart-swatch series-${name}`;
      item.append(swatch, document.createTextNode(text));
      legend.append(item);
    }
    container.append(legend);
  }

  window.campaignChart = { draw };
})();
