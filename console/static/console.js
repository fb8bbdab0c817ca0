// The live map: one EventSource, four frames a second; each frame places every avatar's dot
// (entity -> circle) in its hall's SVG and updates the counters and alerts. No framework.
"use strict";
(function () {
  const maps = {};
  document.querySelectorAll("svg.hall-map").forEach((svg) => {
    maps[svg.dataset.hall] = { svg, depth: parseFloat(svg.dataset.depth), dots: svg.querySelector(".dots"), byEntity: new Map() };
  });
  if (!Object.keys(maps).length || !window.EventSource) return;
  const names = new Map();
  const NS = "http://www.w3.org/2000/svg";
  const setText = (selector, value) => document.querySelectorAll(selector).forEach((el) => { el.textContent = value; });

  function place(map, rows) {
    const seen = new Set();
    for (const [entity, xdm, ydm, staff] of rows) {
      seen.add(entity);
      let dot = map.byEntity.get(entity);
      if (!dot) {
        dot = document.createElementNS(NS, "circle");
        dot.setAttribute("r", "0.9");
        dot.dataset.entity = entity;
        if (staff) dot.classList.add("staff");
        const title = document.createElementNS(NS, "title");
        title.textContent = names.get(String(entity)) || "visitor " + entity;
        dot.appendChild(title);
        map.dots.appendChild(dot);
        map.byEntity.set(entity, dot);
      }
      dot.setAttribute("cx", (xdm / 10).toFixed(1));
      dot.setAttribute("cy", (map.depth - ydm / 10).toFixed(1));
    }
    for (const [entity, dot] of map.byEntity) {
      if (!seen.has(entity)) { dot.remove(); map.byEntity.delete(entity); }
    }
  }

  const source = new EventSource("/organiser/live");
  source.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    // an entity is this process's number, or "<process>:<number>" for another hall process's avatar
    for (const [entity, name] of Object.entries(frame.names || {})) names.set(entity, name);
    for (const [hall, rows] of Object.entries(frame.halls)) if (maps[hall]) place(maps[hall], rows);
    document.body.dataset.liveFrames = String(Number(document.body.dataset.liveFrames || 0) + 1);
    if (frame.halls_count) {
      let total = 0;
      for (const [hall, n] of Object.entries(frame.halls_count)) { setText(`[data-hall-count="${hall}"]`, n); total += n; }
      setText("#connected", total);
      for (const [booth, n] of Object.entries(frame.booths_count)) setText(`[data-booth-count="${booth}"]`, n);
      setText("#tick-p99", frame.tick_p99_ms === null ? "-" : frame.tick_p99_ms + " ms");
      const list = document.getElementById("alerts");
      const text = frame.alerts.map((a) => a.kind + ":" + a.message).join("\n");
      if (list && list.dataset.text !== text) {  // only a change is announced to screen readers
        list.dataset.text = text;
        list.replaceChildren(...frame.alerts.map((a) => {
          const li = document.createElement("li"); li.className = "alert-" + a.kind; li.textContent = a.message;
          const csrf = document.querySelector('input[name="csrf"]');
          if (a.process && csrf) {  // a cluster process alert: the same Dismiss form the page renders
            const f = document.createElement("form"); f.method = "post"; f.className = "inline";
            f.action = "/organiser/processes/" + encodeURIComponent(a.process) + "/dismiss";
            const t = document.createElement("input"); t.type = "hidden"; t.name = "csrf"; t.value = csrf.value;
            const b = document.createElement("button"); b.type = "submit"; b.textContent = "Dismiss";
            f.append(t, b); li.append(f);
          }
          return li;
        }));
      }
    }
  };
})();
