// The sessionrec dashboard: draws the timeline JSON of stream/watch/timeline.py with plotly.js.
// Live, it polls the server's data endpoint; in a run report the data is in the page (window.SESSIONREC_DATA).
// Each chart's div gets data-points (the non-empty values it draws), and the body data-drawn (how many draws), for a reader to check.
(function () {
  "use strict";

  const options = JSON.parse(document.body.dataset.options || "{}");
  const config = { displayModeBar: false, responsive: true };  // drag to zoom, double-click to reset
  const colours = { "hr@1": "#1f77b4", "hr@5": "#9467bd", "hr@20": "#2ca02c", "mrr@20": "#d62728" };
  const eventColours = { promoted: "#1b7f3b", "rolled back": "#c62828", pinned: "#a26b00" };  // seeding and unpinning change nothing served
  let draws = 0;

  function layout(yTitle, data, extra) {
    const marks = eventMarks(data);
    return Object.assign({
      margin: { l: 56, r: 16, t: 12, b: 36 },
      xaxis: { type: "date", title: { text: "time (UTC)" } },
      yaxis: { title: { text: yTitle }, rangemode: "tozero" },
      legend: { orientation: "h", y: 1.12, x: 0 },
      shapes: marks.shapes,
      annotations: marks.annotations,
      uirevision: "keep",  // a redraw keeps the reader's zoom
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
    }, extra || {});
  }

  // The registry's pointer moves (promotions, rollbacks, pins) as vertical lines, labelled inside the plot's top.
  function eventMarks(data) {
    const shapes = [], annotations = [];
    for (const e of data.events || []) {
      const x = e.at * 1000, colour = eventColours[e.event];
      if (!colour) continue;
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: { color: colour, width: 1.5, dash: "dot" } });
      annotations.push({ x: x, xref: "x", y: 1, yref: "paper", yanchor: "top", xanchor: "left", showarrow: false, font: { size: 10, color: colour },
                         bgcolor: "rgba(255, 255, 255, 0.8)", text: e.event + " " + e.version });
    }
    return { shapes: shapes, annotations: annotations };
  }

  function trace(name, x, y, extra) {
    return Object.assign({ type: "scatter", mode: "lines+markers", name: name, x: x, y: y, connectgaps: false, marker: { size: 4 } }, extra || {});
  }

  function points(traces) {
    return traces.reduce((n, t) => n + t.y.filter((v) => v !== null && v !== undefined && !Number.isNaN(v)).length, 0);
  }

  function chart(id, traces, lay) {
    const div = document.getElementById(id);
    return Plotly.react(div, traces, lay, config).then(() => { div.dataset.points = String(points(traces)); });
  }

  function ms(values) { return values.map((v) => (v === null ? null : v * 1000)); }

  function fixed(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

  function text(id, value) { document.getElementById(id).textContent = value; }

  function table(id, heads, rows, empty) {
    const holder = document.getElementById(id);
    if (!rows.length) { holder.innerHTML = ""; const p = document.createElement("p"); p.className = "empty"; p.textContent = empty; holder.append(p); return; }
    const t = document.createElement("table"), head = t.createTHead().insertRow();
    for (const [label, numeric] of heads) { const th = document.createElement("th"); th.textContent = label; if (numeric) th.className = "n"; head.append(th); }
    const body = t.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      row.forEach((value, i) => { const td = tr.insertCell(); td.textContent = value.text === undefined ? value : value.text;
                                  if (heads[i][1]) td.className = "n"; if (value.cls) td.classList.add(value.cls); });
    }
    holder.innerHTML = "";
    holder.append(t);
  }

  function clock(at) { return new Date(at * 1000).toISOString().slice(11, 19); }

  function draw(data) {
    const b = data.buckets, x = b.t.map((t) => t * 1000);
    const accuracy = [];
    for (const name of ["hr@1", "hr@20", "mrr@20"]) {
      accuracy.push(trace(name.toUpperCase(), x, b[name], { line: { color: colours[name] }, legendgroup: name }));
      accuracy.push(trace(name.toUpperCase() + " running", x, b[name + " running"],
                          { mode: "lines", line: { color: colours[name], dash: "dash", width: 1.5 }, legendgroup: name, showlegend: false }));
    }
    const throughput = [trace("clicks/s", x, b.clicks_per_s, { line: { color: "#1d2330" } })];
    const latency = [trace("p50", x, ms(b.latency_p50_s), { line: { color: "#1f77b4" } }),
                     trace("p99", x, ms(b.latency_p99_s), { line: { color: "#ff7f0e" } })];
    const lag = [trace("lag", x, b.lag, { line: { color: "#8c564b" }, fill: "tozeroy" })];
    const drawn = [
      chart("accuracy", accuracy, layout("rate", data, { yaxis: { title: { text: "rate" }, range: [0, 1] } })),
      chart("throughput", throughput, layout("clicks/s", data)),
      chart("latency", latency, layout("ms", data, { yaxis: { title: { text: "ms (log)" }, type: "log" } })),
      chart("lag", lag, layout("records", data)),
    ];

    const t = data.total;
    text("model", (data.model_version || "none yet") + (data.pinned ? " (pinned)" : ""));
    text("workers", String((data.workers || []).length));
    text("clicks", Number(t.clicks).toLocaleString("en"));
    text("hr20", fixed(t["hr@20"], 4));
    text("mrr20", fixed(t["mrr@20"], 4));

    table("worker-table", [["worker"], ["model"], ["partitions: lag"], ["clicks", true], ["up, s", true]],
          (data.workers || []).map((w) => [w.worker, w.model_version || "–",
                                           Object.entries(w.partitions || {}).map(([p, n]) => p + ": " + n).join(", ") || "–",
                                           Number(w.clicks_processed || 0).toLocaleString("en"), fixed(w.uptime_s, 0)]),
          "no worker heartbeat in the last seconds");
    table("cycle-table", [["when"], ["decision"], ["from"], ["to"], ["new clicks", true], ["held out", true], ["served MRR@20", true],
                          ["tuned MRR@20", true], ["s", true], ["reason"]],
          (data.cycles || []).map((c) => [clock(c.at), { text: c.decision, cls: c.decision }, c.parent || "–", c.version || "–",
                                          Number(c.new_clicks).toLocaleString("en"), Number(c.valid_sessions || 0).toLocaleString("en"),
                                          fixed((c.served || {})["mrr@20"], 4), fixed((c.tuned || {})["mrr@20"], 4), fixed(c.seconds, 1), c.reason]),
          "no trainer cycle recorded (is a trainer running on this prefix?)");
    return Promise.all(drawn).then(() => { draws += 1; document.body.dataset.drawn = String(draws); });
  }

  function state(message, failed) {
    const el = document.getElementById("state");
    el.textContent = message;
    el.classList.toggle("failed", failed);
  }

  async function poll() {
    try {
      const response = await fetch("data?window=" + encodeURIComponent(options.window_s), { cache: "no-store" });
      if (!response.ok) throw new Error("the server answered " + response.status + ": " + (await response.text()));
      const data = await response.json();
      await draw(data);
      state("updated " + clock(data.now) + " UTC · every " + options.refresh_ms / 1000 + " s", false);
    } catch (err) {
      state("update failed: " + err.message, true);
    } finally {
      setTimeout(poll, options.refresh_ms);
    }
  }

  if (window.SESSIONREC_DATA) {
    draw(window.SESSIONREC_DATA).then(() => state("run report · " + new Date(window.SESSIONREC_DATA.now * 1000).toISOString().slice(0, 19) + " UTC", false));
  } else {
    poll();
  }
})();
