// The live page of `tidepool demo`. It draws the report's panels (the
// specification comes from the server, internal/report) with uPlot from the
// samples and events the server streams over Server-Sent Events, and shows the
// final report when the run ends. It fetches nothing but /events.
'use strict';

(function () {
  const PT = 96 / 72; // CSS pixels per point: the report's sizes are in points at 96 DPI
  const HEADROOM = 1.25; // as the report: room above the highest tick for mark labels
  const LABEL_ROWS = 3;
  const SCALE_KINDS = ['scale-out', 'scale-in', 'scale-held', 'scale-failed'];

  // Everything the page knows, exposed for tests and the curious.
  const state = {
    spec: null,
    samples: new Map(), // t -> wire sample
    sorted: [],
    events: [],
    links: [],
    meta: { level: null, levelName: '', instances: [] },
    charts: new Map(), // panel id -> { u, panel, instances }
    drawn: {}, // panel id -> kind -> marks drawn in the last draw
    updates: 0,
    finished: false,
    reportShown: false,
  };
  window.tidepool = state;

  const $ = (id) => document.getElementById(id);

  function clock(sec) {
    const t = Math.round(sec);
    const pad = (n) => String(n).padStart(2, '0');
    if (t >= 3600) return Math.floor(t / 3600) + ':' + pad(Math.floor(t / 60) % 60) + ':' + pad(t % 60);
    return Math.floor(t / 60) + ':' + pad(t % 60);
  }

  // niceTicks is the report's niceTicks: ticks 0, step, ..., top >= hi with
  // a 1-2-2.5-5 step giving about 5 intervals.
  function niceTicks(hi, integer) {
    if (!(hi > 0) || !isFinite(hi)) hi = 1;
    const raw = hi / 5;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * mag;
    for (const m of [1, 2, 2.5, 5]) {
      if (m * mag >= raw) { step = m * mag; break; }
    }
    if (integer) step = Math.max(Math.ceil(step), 1);
    const n = Math.ceil(hi / step - 1e-9);
    const ticks = [];
    for (let i = 0; i <= n; i++) ticks.push(i * step);
    return ticks;
  }

  // timeTicks is the report's timeTicks: about 8 to 16 ticks from 0 to xmax.
  function timeTicks(xmax) {
    const steps = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    let step = steps[steps.length - 1];
    for (const s of steps) {
      if (xmax / s <= 16) { step = s; break; }
    }
    const ticks = [];
    for (let v = 0; v <= xmax + 1e-9; v += step) ticks.push(v);
    return ticks;
  }

  function px(points) { return points * PT; }

  function seriesOpts(name, line, step) {
    const o = {
      label: name,
      stroke: line.Color,
      width: px(line.Width),
      spanGaps: false,
      points: { show: false },
      value: (u, v) => (v == null ? '–' : (Math.round(v * 10) / 10).toString()),
    };
    if (line.Dash && line.Dash.length) o.dash = line.Dash.map(px);
    if (step) o.paths = uPlot.paths.stepped({ align: 1 });
    return o;
  }

  // Extra lines of a panel that are not samples: the load level, the CPU
  // thresholds and the per-instance CPU, drawn under the panel's own series
  // as in the report.
  function extras(panel) {
    const out = [];
    const spec = state.spec;
    if (panel.LoadLevel && state.meta.level != null) {
      out.push({ opts: seriesOpts(state.meta.levelName, spec.levelLine, false), value: () => state.meta.level });
    }
    if (panel.CPUThresholds) {
      for (const th of spec.thresholds) {
        out.push({ opts: seriesOpts(th.Name, spec.thresholdLine, false), value: () => th.Percent });
      }
    }
    if (panel.Instances) {
      state.meta.instances.forEach((name, i) => {
        const line = { Color: spec.instanceColors[i % spec.instanceColors.length], Width: spec.instanceWidth };
        out.push({ opts: seriesOpts(name, line, false), value: (p) => (p.cpu && p.cpu[name] != null ? p.cpu[name] : null) });
      });
    }
    return out;
  }

  function columns(panel, ex) {
    const pts = state.sorted;
    const cols = [pts.map((p) => p.t)];
    for (const e of ex) cols.push(pts.map((p) => e.value(p)));
    for (const s of panel.Series) cols.push(pts.map((p) => (p.v[s.Key] == null ? null : p.v[s.Key])));
    return cols;
  }

  // yTicks are the y ticks of a panel, computed from its data as the report
  // does; the axis goes HEADROOM times higher than the last.
  function yTicks(panel, cols, nExtras) {
    if (panel.ID === 'cpu') return niceTicks(100, false);
    let hi = 0;
    for (let i = 1 + nExtras; i < cols.length; i++) {
      for (const v of cols[i]) if (v != null && v > hi) hi = v;
    }
    if (panel.LoadLevel && state.meta.level != null) hi = Math.max(hi, state.meta.level);
    if (panel.ID === 'pool') {
      for (const ev of state.events) {
        if (ev.kind === 'scale-out' || ev.kind === 'scale-in') hi = Math.max(hi, ev.from, ev.to);
      }
      hi = Math.max(hi, 1);
    }
    if (panel.ID === 'errors') hi = Math.max(hi, 1);
    return niceTicks(hi, panel.Integer);
  }

  function yTop(panel, cols, nExtras) {
    const ticks = yTicks(panel, cols, nExtras);
    return ticks[ticks.length - 1] * HEADROOM;
  }

  function xEnd() {
    let end = 1;
    if (state.sorted.length) end = Math.max(end, state.sorted[state.sorted.length - 1].t);
    for (const ev of state.events) end = Math.max(end, ev.t);
    return end;
  }

  // drawMarks draws the panel's events as vertical lines, scaling events
  // labelled in the band at the top, staggered as in the report.
  function drawMarks(u, panel) {
    const ctx = u.ctx;
    const ratio = uPlot.pxRatio;
    const { left, top, width, height } = u.bbox;
    const drawn = {};
    state.drawn[panel.ID] = drawn;
    const font = 'bold ' + Math.round(10 * PT * ratio) + 'px "Liberation Sans", Arial, sans-serif';
    const rowH = Math.round(13 * PT * ratio);
    const rowEnd = new Array(LABEL_ROWS).fill(-Infinity);
    ctx.save();
    ctx.font = font;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    for (const ev of state.events) {
      if (!panel.Marks.includes(ev.kind)) continue;
      const mark = state.spec.marks[ev.kind];
      const x = Math.round(u.valToPos(ev.t, 'x', true));
      if (x < left - 0.5 || x > left + width + 0.5) continue;
      ctx.strokeStyle = mark.Line.Color;
      ctx.lineWidth = px(mark.Line.Width) * ratio;
      ctx.setLineDash((mark.Line.Dash || []).map((d) => px(d) * ratio));
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      drawn[ev.kind] = (drawn[ev.kind] || 0) + 1;
      if (!mark.Labelled) continue;
      const w = ctx.measureText(ev.label).width;
      let l = x + 3 * ratio;
      if (l + w > left + width) l = x - 3 * ratio - w;
      for (let row = 0; row < LABEL_ROWS; row++) {
        if (l < rowEnd[row] + 4 * ratio) continue;
        rowEnd[row] = l + w;
        const y = top + row * rowH + 2 * ratio;
        ctx.fillStyle = 'rgba(255,255,255,0.88)';
        ctx.fillRect(l - ratio, y - ratio, w + 2 * ratio, rowH);
        ctx.fillStyle = mark.Line.Color;
        ctx.fillText(ev.label, l, y);
        break;
      }
    }
    ctx.restore();
  }

  function makeChart(panel) {
    const host = $('charts');
    let box = $('panel-' + panel.ID);
    if (!box) {
      box = document.createElement('div');
      box.className = 'panel';
      box.id = 'panel-' + panel.ID;
      const h = document.createElement('h3');
      h.textContent = panel.Title;
      box.appendChild(h);
      const plot = document.createElement('div');
      plot.className = 'plot';
      box.appendChild(plot);
      host.appendChild(box);
    }
    const plotBox = box.querySelector('.plot');
    const old = state.charts.get(panel.ID);
    if (old) old.u.destroy();
    const ex = extras(panel);
    const series = [{ label: 'time', value: (u, v) => (v == null ? '–' : clock(v)) }];
    for (const e of ex) series.push(e.opts);
    for (const s of panel.Series) series.push(seriesOpts(s.Name, s.Line, s.Step));
    const entry = { panel, ex, instances: state.meta.instances.join('\n'), level: state.meta.level };
    const opts = {
      width: Math.max(host.clientWidth, 400),
      height: 260,
      scales: {
        x: { time: false, range: () => [0, xEnd()] },
        y: { range: (u) => [0, yTop(panel, u.data, entry.ex.length)] },
      },
      axes: [
        { label: 'time since demo start (min:s)', splits: () => timeTicks(xEnd()), values: (u, splits) => splits.map(clock) },
        { label: panel.YLabel, splits: (u) => yTicks(panel, u.data, entry.ex.length) },
      ],
      series,
      legend: { live: false },
      hooks: { draw: [(u) => drawMarks(u, panel)] },
    };
    entry.u = new uPlot(opts, columns(panel, ex), plotBox);
    state.charts.set(panel.ID, entry);
  }

  function redraw() {
    for (const panel of state.spec.panels) {
      const c = state.charts.get(panel.ID);
      const rebuild = !c || (panel.Instances && c.instances !== state.meta.instances.join('\n')) ||
        (panel.LoadLevel && (c.level == null) !== (state.meta.level == null));
      if (rebuild) {
        makeChart(panel);
      } else {
        if (panel.LoadLevel) c.level = state.meta.level;
        c.u.setData(columns(panel, c.ex));
      }
    }
  }

  function latest(pred) {
    for (let i = state.sorted.length - 1; i >= 0; i--) if (pred(state.sorted[i])) return state.sorted[i];
    return null;
  }

  function fmt(v, digits, unit) {
    return v == null ? '–' : v.toFixed(digits) + unit;
  }

  function tiles() {
    const load = latest((p) => p.v.offered > 0 || p.v.answered > 0);
    $('offered').textContent = load ? fmt(load.v.offered, 1, ' req/s') : '–';
    $('answered').textContent = load ? fmt(load.v.answered, 1, ' req/s') : '–';
    $('latency').textContent = load ? [load.v.p50, load.v.p95, load.v.p99].map((v) => fmt(v, 0, ' ms')).join(' / ') : '–';
    const pool = latest((p) => p.v.pool != null);
    $('pool-size').textContent = pool ? String(pool.v.pool) : '–';
    $('pool-states').textContent = pool
      ? [['running', pool.v.running], ['starting', pool.v.starting], ['draining', pool.v.draining]]
          .map(([n, v]) => (v == null ? '? ' : v + ' ') + n).join(' · ')
      : '';
    const cpu = latest((p) => p.v.cpu != null);
    $('avg-cpu').textContent = cpu ? fmt(cpu.v.cpu, 0, ' %') : '–';
    let failed = 0;
    for (const p of state.sorted) failed += p.v.failed || 0;
    $('failed').textContent = String(failed);
    const last = state.sorted.length ? state.sorted[state.sorted.length - 1].t : 0;
    $('elapsed').textContent = 't = ' + clock(last);
  }

  function alerts() {
    const s = latest((p) => p.alerts);
    const list = $('alert-list');
    if (!s) return;
    list.replaceChildren();
    for (const name of Object.keys(s.alerts).sort()) {
      const li = document.createElement('li');
      li.dataset.alert = name;
      const b = document.createElement('span');
      b.className = 'badge ' + s.alerts[name];
      b.textContent = s.alerts[name];
      li.append(b, document.createTextNode(name));
      list.appendChild(li);
    }
  }

  function log() {
    const body = $('log').tBodies[0];
    body.replaceChildren();
    for (const ev of state.events.slice().reverse()) {
      const tr = document.createElement('tr');
      tr.className = ev.kind;
      const pool = SCALE_KINDS.includes(ev.kind) ? ev.from + ' → ' + ev.to + ' (' + ev.label + ')' : '';
      for (const [text, cls] of [[ev.clock, 'num'], [ev.kind, ''], [pool, ''], [ev.reason, '']]) {
        const td = document.createElement('td');
        if (cls) td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    if (!state.events.length) {
      const tr = document.createElement('tr');
      tr.className = 'none';
      const td = document.createElement('td');
      td.colSpan = 4;
      td.textContent = 'nothing yet';
      tr.appendChild(td);
      body.appendChild(tr);
    }
    const legend = $('marks-legend');
    legend.replaceChildren();
    const present = new Set(state.events.map((e) => e.kind));
    for (const [kind, mark] of Object.entries(state.spec.marks)) {
      if (!present.has(kind)) continue;
      const span = document.createElement('span');
      const sw = document.createElement('i');
      sw.style.borderLeftColor = mark.Line.Color;
      sw.style.borderLeftStyle = mark.Line.Dash && mark.Line.Dash.length ? 'dashed' : 'solid';
      span.append(sw, document.createTextNode(mark.Name));
      legend.appendChild(span);
    }
  }

  function links() {
    const nav = $('links');
    nav.replaceChildren();
    for (const l of state.links) {
      const a = document.createElement('a');
      a.href = l.url;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = l.name;
      nav.appendChild(a);
    }
  }

  function setStatus(text, cls) {
    const s = $('status');
    s.textContent = text;
    s.className = 'status ' + cls;
  }

  function apply(m) {
    for (const smp of m.samples) state.samples.set(smp.t, smp);
    if (m.samples.length) state.sorted = Array.from(state.samples.values()).sort((a, b) => a.t - b.t);
    if (m.events) state.events = m.events;
    if (m.links) { state.links = m.links; links(); }
    if (m.meta) state.meta = m.meta;
    state.updates++;
    redraw();
    tiles();
    alerts();
    if (m.events) log();
    if (m.finished) finish(m.report);
  }

  function finish(html) {
    state.finished = true;
    es.close();
    setStatus('finished', 'finished');
    if (html && !state.reportShown) {
      $('report').srcdoc = html;
      $('final').hidden = false;
      state.reportShown = true;
    }
  }

  function init(m) {
    state.spec = m.spec;
    state.samples.clear();
    state.sorted = [];
    $('title').textContent = m.spec.title + ' — live';
    document.title = m.spec.title + ' — live';
    setStatus('running', 'running');
    apply(m);
  }

  const es = new EventSource('events');
  es.addEventListener('init', (e) => init(JSON.parse(e.data)));
  es.addEventListener('update', (e) => apply(JSON.parse(e.data)));
  es.onerror = () => {
    if (!state.finished) setStatus('reconnecting…', 'reconnecting');
  };
  window.addEventListener('resize', () => {
    const w = Math.max($('charts').clientWidth, 400);
    for (const c of state.charts.values()) c.u.setSize({ width: w, height: 260 });
  });
})();
