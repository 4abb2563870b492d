// Trainyard dashboard: a small single-page app over the REST API
// (/api/v1), live through Server-Sent Events, charts by ECharts.
import * as echarts from 'echarts/core';
import { LineChart, ScatterChart, ParallelChart } from 'echarts/charts';
import { GridComponent, TooltipComponent, LegendComponent, DataZoomComponent, ParallelComponent,
  TitleComponent, VisualMapComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, ScatterChart, ParallelChart, GridComponent, TooltipComponent, LegendComponent,
  DataZoomComponent, ParallelComponent, TitleComponent, VisualMapComponent, CanvasRenderer]);

const app = document.getElementById('app');
const live = document.getElementById('live');
let cleanup = [];  // closers of the current page (event sources, charts, timers)

// ------------------------------------------------------------------ helpers
async function api(path, opts = {}) {
  const r = await fetch('/api/v1' + path, { credentials: 'same-origin', ...opts });
  if (r.status === 401) { location.href = '/'; throw new Error('signed out'); }
  const body = r.headers.get('content-type')?.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body?.error?.message || r.statusText);
  return body;
}
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const phase = (p) => `<span class="phase ${esc(p)}">${esc(p)}</span>`;
const time = (t) => (t ? new Date(t * 1000).toLocaleString() : '-');
function dur(s) {
  if (s == null || !isFinite(s) || s < 0) return '-';
  if (s < 60) return s.toFixed(1) + 's';
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h}h${String(m % 60).padStart(2, '0')}m` : `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}
const fmt = (v) => (v == null ? '-' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(5)) : esc(v));
const jobLink = (n) => `<a href="#/jobs/${encodeURIComponent(n)}">${esc(n)}</a>`;
const expLink = (n) => `<a href="#/experiments/${encodeURIComponent(n)}">${esc(n)}</a>`;
function chart(el) {
  const c = echarts.init(el);
  const onResize = () => c.resize();
  window.addEventListener('resize', onResize);
  cleanup.push(() => { window.removeEventListener('resize', onResize); c.dispose(); });
  return c;
}
function stream(path, handlers) {
  const es = new EventSource('/api/v1' + path);
  es.onopen = () => live.classList.add('on');
  es.onerror = () => live.classList.remove('on');
  for (const [ev, fn] of Object.entries(handlers)) es.addEventListener(ev, fn);
  cleanup.push(() => es.close());
  return es;
}
// Coalesces bursts of change events into one refresh.
function debounce(fn, ms) {
  let t = null;
  const d = () => { clearTimeout(t); t = setTimeout(fn, ms); };
  cleanup.push(() => clearTimeout(t));
  return d;
}

// A paged, sortable table whose rows come from the server.
function pagedTable(el, { columns, load, pageSize = 50, sort = null, order = 'asc', onRows }) {
  const state = { offset: 0, sort, order, filter: {} };
  async function render() {
    const res = await load({ offset: state.offset, limit: pageSize, sort: state.sort, order: state.order, ...state.filter });
    const head = columns.map((c) => `<th class="${c.sort ? 'sortable' : ''} ${c.sort && c.sort === state.sort ? 'sorted' : ''}" data-sort="${esc(c.sort || '')}">${esc(c.title)}${c.sort === state.sort ? (state.order === 'asc' ? ' ▲' : ' ▼') : ''}</th>`).join('');
    const rows = res.items.map((r) => `<tr>${columns.map((c) => `<td class="${c.cls || ''}">${c.cell(r)}</td>`).join('')}</tr>`).join('');
    const last = Math.min(state.offset + res.items.length, res.total);
    el.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${rows || `<tr><td colspan="${columns.length}" class="muted">nothing here yet</td></tr>`}</tbody></table>
      <div class="toolbar pager"><span class="muted">${res.total ? state.offset + 1 : 0}–${last} of ${res.total}</span>
      <button data-page="prev" ${state.offset === 0 ? 'disabled' : ''}>‹ Prev</button>
      <button data-page="next" ${res.nextOffset == null ? 'disabled' : ''}>Next ›</button></div>`;
    el.querySelectorAll('th.sortable').forEach((th) => th.onclick = () => {
      const s = th.dataset.sort;
      state.order = state.sort === s && state.order === 'asc' ? 'desc' : 'asc';
      state.sort = s; state.offset = 0; render();
    });
    el.querySelector('[data-page=prev]').onclick = () => { state.offset = Math.max(0, state.offset - pageSize); render(); };
    el.querySelector('[data-page=next]').onclick = () => { state.offset += pageSize; render(); };
    onRows?.(res);
  }
  return { render, setFilter: (f) => { state.filter = f; state.offset = 0; return render(); } };
}

// ------------------------------------------------------------------ overview
async function overview() {
  app.innerHTML = `<h1>Overview</h1><div class="cards" id="counts"></div>
    <h2>Nodes</h2><div class="panel" id="nodes"></div>
    <h2>Experiments</h2><div class="panel" id="exps"></div>
    <h2>Jobs</h2><div class="panel"><div class="toolbar">
      <label>State <select id="state"><option value="">any</option><option>active</option><option>Queued</option><option>Running</option>
      <option>Succeeded</option><option>Failed</option><option>Stopped</option></select></label>
      <label><input type="checkbox" id="trials"> include trial jobs</label>
      <label>Label <input id="label" placeholder="key=value" size="16"></label>
      <button id="cmp">Compare selected</button></div><div id="jobs"></div></div>`;
  const selected = new Set();
  const counts = async () => {
    // Stopped: ended by early stopping (a trial doing worse than others), not a failure.
    const [q, r, s, f, st, n] = await Promise.all(['Queued', 'Running', 'Succeeded', 'Failed', 'Stopped'].map((p) => api(`/jobs?state=${p}&limit=1`)).concat([api('/nodes')]));
    document.getElementById('counts').innerHTML = [['Running', r.total], ['Queued', q.total], ['Succeeded', s.total], ['Failed', f.total], ['Stopped', st.total]]
      .map(([l, v]) => `<div class="card" data-count="${l}"><div class="n">${v}</div><div class="l">${l}</div></div>`).join('');
    document.getElementById('nodes').innerHTML = nodesTable(n);
  };
  const exps = pagedTable(document.getElementById('exps'), {
    pageSize: 20,
    load: (p) => api(`/experiments?offset=${p.offset}&limit=${p.limit}`),
    columns: [
      { title: 'Name', cell: (e) => expLink(e.name) }, { title: 'Phase', cell: (e) => phase(e.phase) },
      { title: 'Trials', cell: (e) => `${e.trials} / ${e.maxTrials}` },
      { title: 'Progress', cell: (e) => `<div class="bar"><div style="width:${(100 * e.progress).toFixed(0)}%"></div></div>` },
      { title: 'Best', cell: (e) => (e.best ? Object.entries(e.best.objective).map(([k, v]) => `${esc(k)}=${fmt(v)}`).join(' ') : '-') },
      { title: 'ETA', cell: (e) => dur(e.etaSeconds) }, { title: 'Created', cell: (e) => time(e.createdAt) }],
  });
  const jobs = pagedTable(document.getElementById('jobs'), {
    load: (p) => api(`/jobs?order=desc&offset=${p.offset}&limit=${p.limit}&trials=${p.trials ? 'true' : 'false'}${p.state ? '&state=' + p.state : ''}${p.label ? '&label=' + encodeURIComponent(p.label) : ''}`),
    columns: [
      { title: '', cell: (j) => `<input type="checkbox" data-job="${esc(j.name)}" ${selected.has(j.name) ? 'checked' : ''}>` },
      { title: 'Name', cell: (j) => jobLink(j.name) }, { title: 'Phase', cell: (j) => phase(j.phase) },
      { title: 'Framework', cell: (j) => esc(j.framework) }, { title: 'Replicas', cell: (j) => j.replicas },
      { title: 'Progress', cell: (j) => (j.progress != null ? `<div class="bar" title="ETA ${dur(j.etaSeconds)}"><div style="width:${(100 * j.progress).toFixed(0)}%"></div></div>` : '') },
      { title: 'Restarts', cell: (j) => j.restarts }, { title: 'User', cell: (j) => esc(j.user || '-') },
      { title: 'Created', cell: (j) => time(j.createdAt) },
      { title: 'Duration', cell: (j) => dur(j.startedAt ? (j.finishedAt || Date.now() / 1000) - j.startedAt : null) },
      { title: 'Message', cls: 'wrap', cell: (j) => esc(j.message) }],
    onRows: () => document.querySelectorAll('[data-job]').forEach((cb) => cb.onchange = () => {
      cb.checked ? selected.add(cb.dataset.job) : selected.delete(cb.dataset.job);
    }),
  });
  const filter = () => jobs.setFilter({ state: document.getElementById('state').value, trials: document.getElementById('trials').checked, label: document.getElementById('label').value });
  document.getElementById('state').onchange = filter;
  document.getElementById('trials').onchange = filter;
  document.getElementById('label').onchange = filter;
  document.getElementById('cmp').onclick = () => { location.hash = `#/compare?jobs=${[...selected].map(encodeURIComponent).join(',')}`; };
  await Promise.all([counts(), exps.render(), jobs.render()]);
  const refresh = debounce(() => Promise.all([counts(), exps.render(), jobs.render()]).catch(() => {}), 400);
  stream('/stream', { job: refresh, experiment: refresh });
}

// ------------------------------------------------------------------ job
// TensorBoard's smoothing: an exponential moving average, debiased so the
// first points are not pulled toward 0. Applied here, to the values drawn;
// the data (and its CSV) stay as the server sent them.
function smoothed(values, weight) {
  if (!weight) return values.slice();
  let acc = 0, n = 0;
  return values.map((v) => {
    if (v == null || !Number.isFinite(v)) return v;
    acc = acc * weight + (1 - weight) * v;
    n += 1;
    return acc / (1 - weight ** n);
  });
}

// Options every chart of a page shares: smoothing weight, log y, the x axis
// (step; or the time each point was collected, relative to t0 or wall).
const chartView = { smooth: 0, logy: false, x: 'step', t0: 0, epochs: null };

// The epoch at a step, from the job's "epoch" series (the last epoch
// reported at or before it); null without one.
function epochAt(step) {
  const e = chartView.epochs;
  if (!e || !e.step.length || step < e.step[0]) return null;
  let lo = 0, hi = e.step.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (e.step[mid] <= step) lo = mid; else hi = mid - 1;
  }
  return e.last[lo];
}

function seriesChart(el, job, info) {
  const c = chart(el);
  let data = null;  // the last response, redrawn when the view options change
  function draw() {
    const s = data;
    // Time needs each point's time: raw points have it, buckets do not (zoom in).
    const byEpoch = chartView.x === 'epoch' && chartView.epochs?.step.length > 0;
    const byTime = (chartView.x === 'relative' || chartView.x === 'wall') && s.time?.length === s.step.length;
    const t0 = chartView.t0 || (s.time?.[0] ?? 0);
    const xs = byEpoch ? s.step.map(epochAt)
      : !byTime ? s.step : chartView.x === 'wall' ? s.time.map((t) => t * 1000) : s.time.map((t) => t - t0);
    el.dataset.xaxis = byEpoch ? 'epoch' : byTime ? chartView.x : 'step';
    el.dataset.firstX = String(xs[0] ?? '');
    el.dataset.lastX = String(xs[xs.length - 1] ?? '');
    const raw = s.step.map((_, i) => [xs[i], s.last[i]]);
    const sm = smoothed(s.last, chartView.smooth);
    const last = s.step.map((_, i) => [xs[i], sm[i]]);
    el.dataset.drawnLast = String(sm[sm.length - 1] ?? '');
    const series = [{ name: info.name, type: 'line', showSymbol: last.length < 60, data: last, sampling: null }];
    if (chartView.smooth) series.push({ name: 'raw', type: 'line', showSymbol: false, data: raw, lineStyle: { width: 1, opacity: 0.3 }, z: 1 });
    if (s.downsampled) {
      // Each bucket's extremes as faint lines around the last values: spikes stay visible.
      const faint = { width: 1, opacity: 0.35 };
      series.push({ name: 'max', type: 'line', showSymbol: false, data: s.step.map((_, i) => [xs[i], s.max[i]]), lineStyle: faint, z: 1 });
      series.push({ name: 'min', type: 'line', showSymbol: false, data: s.step.map((_, i) => [xs[i], s.min[i]]), lineStyle: faint, z: 1 });
    }
    c.setOption({
      title: { text: info.name, subtext: `${s.totalPoints} points${s.downsampled ? `, ${s.step.length} buckets of ${s.bucketWidth} steps (min/max lines)` : ''}`, textStyle: { fontSize: 13 } },
      grid: { left: 55, right: 20, top: 55, bottom: 55 },
      // Hover: the step, the value and, for raw points, when it was collected.
      tooltip: { trigger: 'axis', formatter: (ps) => {
        const i = ps[0]?.dataIndex ?? 0;
        const when = s.time?.[i] ? new Date(s.time[i] * 1000).toLocaleTimeString() : '';
        return `step ${s.step[i]}${byEpoch ? ` (epoch ${xs[i]})` : ''}<br>${esc(info.name)} ${fmt(s.last[i])}${when ? `<br>${when}` : ''}`;
      } },
      xAxis: byTime && chartView.x === 'wall' ? { type: 'time', name: 'time' }
        : { type: 'value', name: byEpoch ? 'epoch' : byTime ? 'seconds' : chartView.x === 'step' ? 'step'
          : chartView.x === 'epoch' ? 'step (no epoch series)' : 'step (no times when downsampled)', min: 'dataMin', max: 'dataMax' },
      yAxis: chartView.logy ? { type: 'log', scale: true } : { type: 'value', scale: true },
      dataZoom: [{ type: 'inside', filterMode: 'none' }, { type: 'slider', filterMode: 'none', height: 18, bottom: 8 }],
      series,
    }, { replaceMerge: ['series'] });
    el.dataset.points = String(s.step.length);
    el.dataset.logy = String(chartView.logy);
  }
  async function load(from, to) {
    const q = from != null ? `&from=${Math.floor(from)}&to=${Math.ceil(to)}` : '';
    data = await api(`/jobs/${encodeURIComponent(job)}/metrics/${encodeURIComponent(info.name)}?maxPoints=2000${q}`);
    draw();
  }
  // The points as the server sent them (bucket min/max when downsampled), as CSV.
  function csv() {
    const s = data;
    const rows = ['step,value,min,max,time'];
    s.step.forEach((x, i) => rows.push([x, s.last[i], s.min?.[i] ?? s.last[i], s.max?.[i] ?? s.last[i], s.time?.[i] ?? ''].join(',')));
    return rows.join('\n') + '\n';
  }
  // A button above the chart that downloads what href() gives (a data or blob URL).
  const download = (kind, href) => {
    const b = document.createElement('button');
    b.className = 'csv';
    b.dataset[kind] = info.name;
    b.textContent = kind.toUpperCase();
    b.onclick = () => {
      const a = document.createElement('a');
      a.href = href();
      a.download = `${job}-${info.name}.${kind}`;
      a.click();
      if (a.href.startsWith('blob:')) setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    };
    el.parentElement?.insertBefore(b, el);
  };
  download('csv', () => URL.createObjectURL(new Blob([csv()], { type: 'text/csv' })));
  download('png', () => c.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: '#fff' }));
  let zoomT = null;
  c.on('datazoom', () => {
    clearTimeout(zoomT);
    if (chartView.x !== 'step') return;  // a zoomed range is in steps
    zoomT = setTimeout(() => {
      const ax = c.getModel().getComponent('xAxis', 0).axis.scale.getExtent();
      load(ax[0], ax[1]).catch(() => {});
    }, 300);
  });
  return { load, draw: () => data && draw() };
}

async function jobPage(name) {
  const j = await api(`/jobs/${encodeURIComponent(name)}`);
  const latest = Math.max(0, ...j.attempts.map((a) => a.attempt));
  const replicas = [...new Set(j.attempts.map((a) => a.replica))];
  app.innerHTML = `<h1>Job ${esc(j.name)} <span id="jphase">${phase(j.phase)}</span></h1>
    <div class="panel" id="summary"></div>
    <div class="grid2"><div><h2>Conditions</h2><div class="panel" id="conds"></div></div>
    <div><h2>Replicas and attempts</h2><div class="panel" id="attempts"></div></div></div>
    <h2>Metrics</h2><div class="toolbar"><label><input type="checkbox" id="counters"> chart counters too (step, epoch, ...)</label>
      <label>Smoothing <input type="range" id="smooth" min="0" max="0.99" step="0.01" value="0"></label>
      <label><input type="checkbox" id="logy"> log y</label>
      <label>X <select id="xaxis"><option value="step">step</option><option value="relative">time since start</option><option value="wall">wall time</option><option value="epoch">epoch</option></select></label>
      <span class="muted" id="hiddencounters"></span></div><div class="charts" id="charts"></div>
    <h2>Logs</h2><div class="panel"><div class="toolbar"><label>Replica <select id="replica">${replicas.map((r) => `<option>${esc(r)}</option>`).join('')}</select></label>
      <label>Attempt <select id="attempt">${[...Array(latest + 1).keys()].reverse().map((a) => `<option>${a}</option>`).join('')}</select></label></div>
      <pre class="log" id="log"></pre></div>
    <div class="grid2"><div><h2>Outputs</h2><div class="panel" id="outputs"></div></div>
    <div><h2>Reproduce</h2><div class="panel" id="record"></div></div></div>
    <h2>Events</h2><div class="panel" id="events"></div>`;
  renderOutputs(j.name);
  renderRecord(j.record);
  const renderJob = (j) => {
    document.getElementById('jphase').innerHTML = phase(j.phase);
    document.getElementById('summary').innerHTML = `<table><tbody>
      <tr><th>Reason</th><td class="wrap">${esc(j.reason)} ${esc(j.message)}</td><th>Restarts</th><td>${j.restarts}</td></tr>
      ${j.progress != null ? `<tr><th>Progress</th><td><div class="bar" id="jprogress" data-progress="${j.progress}"><div style="width:${(100 * j.progress).toFixed(0)}%"></div></div> ${(100 * j.progress).toFixed(0)}%</td><th>ETA</th><td id="jeta">${dur(j.etaSeconds)}</td></tr>` : ''}
      <tr><th>Created</th><td>${time(j.createdAt)}</td><th>Started</th><td>${time(j.startedAt)}</td></tr>
      <tr><th>Finished</th><td>${time(j.finishedAt)}</td><th>User</th><td>${esc(j.user || '-')}</td></tr>
      <tr><th>Outputs</th><td class="wrap">${esc(j.outputsDir)}</td><th>Labels</th><td class="wrap">${Object.entries(j.labels || {}).map(([k, v]) => esc(`${k}=${v}`)).join(', ') || '-'}</td></tr></tbody></table>`;
    document.getElementById('conds').innerHTML = `<table><thead><tr><th>Type</th><th>Reason</th><th>Time</th><th>Message</th></tr></thead><tbody>${
      j.conditions.map((c) => `<tr><td>${phase(c.type)}</td><td>${esc(c.reason)}</td><td>${time(c.time)}</td><td class="wrap">${esc(c.message)}</td></tr>`).join('')}</tbody></table>`;
    document.getElementById('attempts').innerHTML = `<table><thead><tr><th>Attempt</th><th>Replica</th><th>State</th><th>PID</th><th>Exit</th><th>Reason</th><th>Started</th></tr></thead><tbody>${
      j.attempts.map((a) => `<tr><td>${a.attempt + 1}</td><td>${esc(a.replica)}</td><td>${esc(a.state)}</td><td>${a.pid}</td><td>${a.signal != null ? 'signal ' + a.signal : fmt(a.exitCode)}</td><td>${esc(a.reason)}</td><td>${time(a.startedAt)}</td></tr>`).join('')}</tbody></table>`;
    document.getElementById('events').innerHTML = `<table><thead><tr><th>Time</th><th>Type</th><th>Reason</th><th>Message</th></tr></thead><tbody>${
      j.events.map((e) => `<tr><td>${time(e.time)}</td><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td class="wrap">${esc(e.message)}</td></tr>`).join('')}</tbody></table>`;
  };
  renderJob(j);
  const charts = new Map();
  // Counters (step, epoch, their totals) are axes, not results: not charted unless asked
  // (the same list as metrics::isCounter, which `get jobs` uses).
  const isCounter = (name) => /^(global_?step|steps?|epochs?|iter(ation)?s?|batch(es)?|total_steps|total_epochs|num_epochs|progress)$/i.test(name);
  let lastSeries = j.series;
  const renderCharts = async (series) => {
    lastSeries = series;
    const box = document.getElementById('charts');
    const showCounters = document.getElementById('counters').checked;
    const hidden = series.filter((s) => isCounter(s.name)).map((s) => s.name);
    document.getElementById('hiddencounters').textContent = hidden.length && !showCounters ? `not charted: ${hidden.join(', ')}` : '';
    series = showCounters ? series : series.filter((s) => !isCounter(s.name));
    if (!series.length && !charts.size) box.innerHTML = '<div class="muted">no metrics reported yet</div>';
    for (const s of series) {
      if (!charts.has(s.name)) {
        if (!charts.size) box.innerHTML = '';
        const wrap = document.createElement('div');
        wrap.dataset.chartOf = s.name;
        const el = document.createElement('div');
        el.className = 'panel chart';
        el.dataset.metric = s.name;
        wrap.appendChild(el);
        box.appendChild(wrap);
        charts.set(s.name, seriesChart(el, j.name, s));
      }
      await charts.get(s.name).load();
    }
  };
  await renderCharts(j.series);
  chartView.smooth = 0;
  chartView.logy = false;
  chartView.x = 'step';
  chartView.t0 = j.startedAt || 0;
  chartView.epochs = null;
  document.getElementById('xaxis').onchange = async (ev) => {
    chartView.x = ev.target.value;
    if (chartView.x === 'epoch' && !chartView.epochs && j.series.some((s) => s.name === 'epoch'))
      chartView.epochs = await api(`/jobs/${encodeURIComponent(j.name)}/metrics/epoch?maxPoints=10000`).catch(() => null);
    for (const c of charts.values()) c.draw();
  };
  document.getElementById('smooth').oninput = (ev) => {
    chartView.smooth = Number(ev.target.value);
    for (const c of charts.values()) c.draw();
  };
  document.getElementById('logy').onchange = (ev) => {
    chartView.logy = ev.target.checked;
    for (const c of charts.values()) c.draw();
  };
  document.getElementById('counters').onchange = async () => {
    for (const [name, c] of charts) if (isCounter(name) && !document.getElementById('counters').checked) {
      document.querySelector(`#charts [data-chart-of="${CSS.escape(name)}"]`)?.remove();
      charts.delete(name);
    }
    await renderCharts(lastSeries);
  };

  let logSource = null;
  const logEl = document.getElementById('log');
  const follow = () => {
    logSource?.close();
    logEl.textContent = '';
    const r = document.getElementById('replica').value, a = document.getElementById('attempt').value;
    if (!r) return;
    logSource = stream(`/jobs/${encodeURIComponent(j.name)}/logs?follow=true&tail=65536&replica=${encodeURIComponent(r)}&attempt=${a}`, {
      log: (ev) => {
        const atEnd = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 5;
        logEl.textContent += JSON.parse(ev.data);
        if (logEl.textContent.length > 400000) logEl.textContent = logEl.textContent.slice(-300000);
        if (atEnd) logEl.scrollTop = logEl.scrollHeight;
      },
      end: () => logSource.close(),
    });
  };
  document.getElementById('replica').onchange = follow;
  document.getElementById('attempt').onchange = follow;
  follow();
  // Metrics and status refresh while the job runs.
  if (!['Succeeded', 'Failed', 'Stopped'].includes(j.phase)) {
    const timer = setInterval(async () => {
      try {
        const now = await api(`/jobs/${encodeURIComponent(name)}`);
        renderJob(now);
        await renderCharts(now.series);
        if (['Succeeded', 'Failed', 'Stopped'].includes(now.phase)) clearInterval(timer);
      } catch (e) { /* transient */ }
    }, 2000);
    cleanup.push(() => clearInterval(timer));
  }
}

// A job's outputs: names and sizes; images shown, text previewed, every
// file downloadable (the server serves what a job wrote as an attachment
// unless it is an image or plain text).
async function renderOutputs(job) {
  const box = document.getElementById('outputs');
  let o;
  try { o = await api(`/jobs/${encodeURIComponent(job)}/outputs`); } catch (e) { box.innerHTML = `<div class="muted">${esc(e.message)}</div>`; return; }
  if (!o.items.length) { box.innerHTML = '<div class="muted">no outputs</div>'; return; }
  const url = (p) => `/api/v1/jobs/${encodeURIComponent(job)}/outputs/${p.split('/').map(encodeURIComponent).join('/')}`;
  const size = (n) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
  const image = (p) => /\.(png|jpe?g|gif|webp)$/i.test(p), text = (p) => /\.(txt|log|json|csv|ya?ml|md|diff|tsv)$/i.test(p);
  box.innerHTML = `<table><thead><tr><th>File</th><th>Size</th><th>Modified</th><th></th></tr></thead><tbody>${
    o.items.map((f, i) => `<tr data-output="${esc(f.path)}"><td class="wrap">${esc(f.path)}</td><td>${size(f.size)}</td><td>${time(f.modified)}</td>
      <td><a href="${esc(url(f.path))}" download>download</a>${text(f.path) ? ` <a href="#" data-preview="${i}">preview</a>` : ''}</td></tr>
      ${image(f.path) ? `<tr><td colspan="4"><img class="thumb" loading="lazy" alt="${esc(f.path)}" src="${esc(url(f.path))}"></td></tr>` : ''}`).join('')}</tbody></table>
    ${o.truncated ? '<div class="muted">(more files than are listed)</div>' : ''}<pre class="log" id="preview" hidden></pre>`;
  box.querySelectorAll('[data-preview]').forEach((a) => {
    a.onclick = async (ev) => {
      ev.preventDefault();
      const f = o.items[Number(a.dataset.preview)];
      // The first 64 KiB only: a large file is not fetched whole for a look.
      const r = await fetch(url(f.path), { credentials: 'same-origin' });
      const reader = r.body.getReader(), parts = [];
      let got = 0;
      while (got < 65536) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        got += value.length;
      }
      reader.cancel().catch(() => {});
      const pre = document.getElementById('preview');
      pre.hidden = false;
      const bytes = new Uint8Array(got);
      let at = 0;
      for (const p of parts) { bytes.set(p, at); at += p.length; }
      pre.textContent = new TextDecoder().decode(bytes.subarray(0, 65536));
      pre.dataset.file = f.path;
    };
  });
}

// How the job was made (its run record), as `trainyard describe job` shows it.
function renderRecord(r) {
  const box = document.getElementById('record');
  if (!r) { box.innerHTML = '<div class="muted">recorded when the job starts</div>'; return; }
  const rows = [];
  for (const g of r.git || []) rows.push(['Code', g.commit ? `${g.dir} at ${g.commit.slice(0, 12)}${g.dirty ? ' + uncommitted changes' + (g.diff ? ` (outputs: ${g.diff})` : '') : ''}` : `${g.dir} (${g.note})`]);
  for (const im of r.images || []) rows.push(['Image', `${im.image} ${im.digest ? '@ ' + im.digest : '(' + (im.note || '') + ')'}`]);
  if (r.seed) rows.push(['Seed', r.seed]);
  rows.push(['Versions', Object.entries(r.versions || {}).map(([k, v]) => `${k} ${v}`).join(', ') || '-']);
  rows.push(['Backend', `${r.backend} on ${r.nodes || '-'}`]);
  for (const role of r.roles || []) rows.push([`Command (${role.role})`, (role.command || []).join(' ')]);
  box.innerHTML = `<table><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td class="wrap">${esc(v)}</td></tr>`).join('')}</tbody></table>
    <div class="muted">again: <code>trainyard rerun ${esc(r.job || '')}</code></div>`;
}

// ------------------------------------------------------------------ experiment
async function experimentPage(name) {
  const e = await api(`/experiments/${encodeURIComponent(name)}`);
  const multi = e.objectives.length > 1;
  const obj = e.objectives[0];
  app.innerHTML = `<h1>Experiment ${esc(e.name)} <span id="ephase">${phase(e.phase)}</span></h1>
    <div class="panel" id="esummary"></div>
    <div class="grid2"><div class="panel chart" id="objchart"></div><div class="panel chart" id="${multi ? 'pareto' : 'parallel'}"></div></div>
    ${multi ? '<div class="panel chart" id="parallel"></div>' : ''}
    <div class="panel"><div class="toolbar"><label>Colour by <select id="curvecolor"></select></label></div>
      <div class="chart" id="curves" style="height:360px"></div></div>
    <h2>Trials</h2><div class="panel"><div class="toolbar">
      <label>State <select id="tstate"><option value="">any</option><option>Running</option><option>Succeeded</option><option>Failed</option>
      <option>EarlyStopped</option><option>MetricsUnavailable</option><option>Cancelled</option></select></label>
      <button id="tcmp">Compare selected</button></div><div id="trials"></div></div>`;
  const summary = (e) => {
    document.getElementById('ephase').innerHTML = phase(e.phase);
    document.getElementById('esummary').innerHTML = `<table><tbody>
      <tr><th>Objective</th><td>${e.objectives.map((o) => `${o.goal} ${esc(o.metric)}`).join(', ')}</td><th>Progress</th>
        <td><div class="bar" id="progress" data-progress="${e.progress}"><div style="width:${(100 * e.progress).toFixed(0)}%"></div></div>
        ${Object.values(e.counts).reduce((a, b) => a + b, 0) - (e.counts.Running || 0)} / ${e.maxTrials} finished, ${e.counts.Running || 0} running</td></tr>
      <tr><th>${multi ? 'Pareto front' : 'Best'}</th><td id="best">${multi ? `trials ${(e.paretoFront || []).map((n) => '#' + n).join(', ') || '-'}` : e.best ? `trial ${e.best.trial}: ${Object.entries(e.best.objective).map(([k, v]) => `${esc(k)}=${fmt(v)}`).join(' ')} (${Object.entries(e.best.parameters).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ')})` : '-'}</td>
        <th>Elapsed / ETA</th><td>${dur(e.elapsedSeconds)} / <span id="eta">${dur(e.etaSeconds)}</span></td></tr>
      <tr><th>Reason</th><td class="wrap" colspan="3">${esc(e.reason)} ${esc(e.message)}</td></tr></tbody></table>`;
  };
  summary(e);
  // Every trial's objective against its step, coloured by a parameter; trials
  // early stopping ended are dashed; ASHA's rungs (or median's start step)
  // are the vertical lines where trials were judged.
  const curveChart = chart(document.getElementById('curves'));
  const colorSel = document.getElementById('curvecolor');
  const curveParams = (e.spec?.parameters || []).map((p) => p.name);
  colorSel.innerHTML = curveParams.map((p) => `<option>${esc(p)}</option>`).join('');
  const rungs = (() => {
    const s = e.spec?.earlyStoppingSettings || {};
    if (e.spec?.earlyStopping === 'asha' || e.spec?.earlyStopping === 'hyperband') {
      const out = [], eta = Number(s.reduction_factor || 3), max = Number(s.max_resource || 0);
      for (let r = Number(s.min_resource || 1); r <= max && out.length < 12; r *= eta) out.push(r);
      return out;
    }
    return e.spec?.earlyStopping === 'median' ? [Number(s.start_step || 4)] : [];
  })();
  async function curves() {
    // The latest 100 trials: one request each.
    const list = (await api(`/experiments/${encodeURIComponent(name)}/trials?limit=100&sort=number&order=desc`)).items || [];
    const shown = list.filter((t) => t.job).reverse();
    const pname = colorSel.value;
    const vals = shown.map((t) => t.parameters?.[pname]);
    const nums = vals.map(Number), numeric = vals.every((v) => v != null && Number.isFinite(Number(v)));
    const lo = Math.min(...nums), hi = Math.max(...nums);
    const cats = [...new Set(vals)];
    const palette = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4'];
    const colorOf = (v) => {
      if (!numeric) return palette[cats.indexOf(v) % palette.length];
      const f = hi > lo ? (Number(v) - lo) / (hi - lo) : 0.5;
      return `hsl(${Math.round(230 - 230 * f)}, 70%, 45%)`;
    };
    const series = await Promise.all(shown.map(async (t) => {
      let data = [];
      try {
        const s = await api(`/jobs/${encodeURIComponent(t.job)}/metrics/${encodeURIComponent(obj.metric)}?maxPoints=200`);
        data = s.step.map((x, i) => [x, s.last[i]]);
      } catch { /* no series yet */ }
      return { name: `#${t.trial} ${pname}=${t.parameters?.[pname]}`, type: 'line', showSymbol: false, data,
        lineStyle: { color: colorOf(t.parameters?.[pname]), width: 1.5, type: t.state === 'EarlyStopped' ? 'dashed' : 'solid' },
        itemStyle: { color: colorOf(t.parameters?.[pname]) } };
    }));
    if (series.length && rungs.length)
      series[0].markLine = { silent: true, symbol: 'none', lineStyle: { color: '#aaa', type: 'dotted' },
        label: { formatter: 'rung {c}' }, data: rungs.map((r) => ({ xAxis: r })) };
    curveChart.setOption({
      title: { text: `${obj.metric} by step, every trial`, subtext: `colour: ${pname}${numeric ? ` (${lo} blue .. ${hi} red)` : ''}; dashed: stopped early`, textStyle: { fontSize: 13 } },
      grid: { left: 55, right: 20, top: 60, bottom: 40 }, tooltip: { trigger: 'item' },
      xAxis: { type: 'value', name: 'step' }, yAxis: { type: 'value', scale: true }, series,
    }, { replaceMerge: ['series'] });
    const el = document.getElementById('curves');
    el.dataset.curves = String(series.filter((s) => s.data.length).length);
    el.dataset.dashed = String(series.filter((s) => s.lineStyle.type === 'dashed').length);
    el.dataset.rungs = rungs.join(',');
  }
  colorSel.onchange = () => curves().catch(() => {});

  const objChart = chart(document.getElementById('objchart'));
  const parChart = chart(document.getElementById('parallel'));
  const paretoChart = multi ? chart(document.getElementById('pareto')) : null;
  const maximize = obj.goal === 'maximize';
  async function charts() {
    const cols = await api(`/experiments/${encodeURIComponent(name)}/trials?view=columns&sort=number`);
    const pts = [], best = [], stopped = [];
    let b = null;
    cols.number.forEach((n, i) => {
      const v = cols.objective[i]?.[0];
      // A trial early stopping ended has the value it had reached: shown, marked, not "best so far".
      if (v != null && cols.state[i] === 'EarlyStopped') stopped.push([n, v]);
      if (v == null || cols.state[i] !== 'Succeeded') return;
      pts.push([n, v]);
      b = b == null ? v : maximize ? Math.max(b, v) : Math.min(b, v);
      best.push([n, b]);
    });
    objChart.setOption({
      title: { text: `${obj.metric} per trial`, subtext: `${pts.length} trials with a result` + (stopped.length ? `, ${stopped.length} stopped early` : ''), textStyle: { fontSize: 13 } },
      grid: { left: 55, right: 20, top: 55, bottom: 40 }, tooltip: { trigger: 'item' }, legend: { right: 10, top: 5 },
      xAxis: { type: 'value', name: 'trial' }, yAxis: { type: 'value', scale: true },
      series: [{ name: 'trial', type: 'scatter', symbolSize: pts.length > 2000 ? 3 : 6, data: pts, large: pts.length > 2000 },
        { name: 'best so far', type: 'line', step: 'end', showSymbol: false, data: best },
        { name: 'stopped early', type: 'scatter', symbol: 'emptyCircle', symbolSize: 7, itemStyle: { color: '#8a94b8' }, data: stopped }],
    });
    document.getElementById('objchart').dataset.points = String(pts.length);
    document.getElementById('objchart').dataset.stopped = String(stopped.length);
    const names = Object.keys(cols.params);
    const dims = names.map((p, i) => {
      const col = cols.params[p];
      const cat = col.some((v) => typeof v === 'string');
      return cat ? { dim: i, name: p, type: 'category', data: [...new Set(col.filter((v) => v != null))] } : { dim: i, name: p };
    });
    dims.push({ dim: names.length, name: obj.metric });
    const rows = [];
    cols.number.forEach((n, i) => {
      const v = cols.objective[i]?.[0];
      if (v == null) return;
      rows.push([...names.map((p) => cols.params[p][i]), v]);
    });
    parChart.setOption({
      title: { text: 'Parameters vs objective', textStyle: { fontSize: 13 } },
      parallelAxis: dims, parallel: { left: 50, right: 80, top: 60, bottom: 30 },
      visualMap: { show: true, dimension: names.length, min: Math.min(...rows.map((r) => r.at(-1))), max: Math.max(...rows.map((r) => r.at(-1))),
        inRange: { color: maximize ? ['#d0d8ea', '#2f6fdf'] : ['#2f6fdf', '#d0d8ea'] }, right: 0, top: 'middle', itemHeight: 100 },
      series: [{ type: 'parallel', lineStyle: { width: 1, opacity: rows.length > 1000 ? 0.25 : 0.6 }, data: rows, progressive: 1000 }],
    });
    document.getElementById('parallel').dataset.lines = String(rows.length);
    if (paretoChart) {
      const front = new Set(e.paretoFront || []);
      const o2 = e.objectives[1];
      const all = [], pf = [];
      cols.number.forEach((n, i) => {
        const o = cols.objective[i];
        if (!o || o.length < 2 || cols.state[i] !== 'Succeeded') return;
        (front.has(n) ? pf : all).push([o[0], o[1], n]);
      });
      pf.sort((a, b) => a[0] - b[0]);
      paretoChart.setOption({
        title: { text: 'Pareto front', subtext: `${pf.length} trials on the front`, textStyle: { fontSize: 13 } },
        grid: { left: 60, right: 20, top: 60, bottom: 45 }, tooltip: { formatter: (p) => `trial ${p.data[2]}: ${fmt(p.data[0])}, ${fmt(p.data[1])}` },
        legend: { right: 10, top: 5 },
        xAxis: { type: 'value', name: obj.metric, scale: true }, yAxis: { type: 'value', name: o2.metric, scale: true },
        series: [{ name: 'trials', type: 'scatter', data: all, symbolSize: 5, itemStyle: { color: '#aab3c5' } },
          { name: 'front', type: 'line', data: pf, symbolSize: 8, itemStyle: { color: '#d64545' } }],
      });
      document.getElementById('pareto').dataset.front = String(pf.length);
    }
  }
  const selected = new Set();
  const paramNames = (e.spec.parameters || []).map((p) => p.name);
  const table = pagedTable(document.getElementById('trials'), {
    sort: 'number',
    load: (p) => api(`/experiments/${encodeURIComponent(name)}/trials?offset=${p.offset}&limit=${p.limit}&sort=${encodeURIComponent(p.sort)}&order=${p.order}${p.state ? '&state=' + p.state : ''}`),
    columns: [
      { title: '', cell: (t) => `<input type="checkbox" data-trial-job="${esc(t.job)}" ${selected.has(t.job) ? 'checked' : ''}>` },
      { title: 'Trial', sort: 'number', cell: (t) => t.trial }, { title: 'State', sort: 'state', cell: (t) => phase(t.state) },
      ...e.objectives.map((o, k) => ({ title: o.metric, sort: k === 0 ? 'objective' : null, cell: (t) => fmt(t.objective[o.metric]) })),
      ...paramNames.map((p) => ({ title: p, sort: 'param:' + p, cell: (t) => esc(t.parameters[p]) })),
      { title: 'Rung', cell: (t) => (t.rung >= 0 ? t.rung : '-') }, { title: 'Job', cell: (t) => jobLink(t.job) },
      { title: 'Duration', sort: 'duration', cell: (t) => dur(t.finishedAt ? t.finishedAt - t.createdAt : null) },
      { title: 'Message', cls: 'wrap', cell: (t) => esc(t.message) }],
    onRows: () => document.querySelectorAll('[data-trial-job]').forEach((cb) => cb.onchange = () => {
      cb.checked ? selected.add(cb.dataset.trialJob) : selected.delete(cb.dataset.trialJob);
    }),
  });
  document.getElementById('tstate').onchange = (ev) => table.setFilter({ state: ev.target.value });
  document.getElementById('tcmp').onclick = () => { location.hash = `#/compare?metric=${encodeURIComponent(obj.metric)}&jobs=${[...selected].map(encodeURIComponent).join(',')}`; };
  await Promise.all([charts(), table.render(), curves().catch(() => {})]);
  let curvesAt = Date.now();
  const refresh = debounce(async () => {
    try {
      const now = await api(`/experiments/${encodeURIComponent(name)}`);
      summary(now);
      e.paretoFront = now.paretoFront;
      await Promise.all([charts(), table.render()]);
      if (Date.now() - curvesAt > 5000) {  // a request per trial: not on every change
        curvesAt = Date.now();
        await curves();
      }
    } catch (err) { /* transient */ }
  }, 500);
  stream('/stream', { experiment: (ev) => { if (JSON.parse(ev.data).name === name) refresh(); } });
}

// ------------------------------------------------------------------ compare
async function comparePage(params) {
  const jobs = (params.get('jobs') || '').split(',').filter(Boolean);
  app.innerHTML = `<h1>Compare</h1><div class="panel"><div class="toolbar">
    <label>Jobs <input id="cjobs" size="60" value="${esc(jobs.join(','))}" placeholder="job-a,job-b"></label>
    <label>Metric <select id="cmetric"></select></label><button id="cgo">Show</button></div>
    <div class="chart" id="cchart" style="height:480px"></div></div>`;
  const c = chart(document.getElementById('cchart'));
  const infos = await Promise.all(jobs.map((j) => api(`/jobs/${encodeURIComponent(j)}/metrics`).then((r) => r.items).catch(() => [])));
  const names = [...new Set(infos.flat().map((s) => s.name))].sort();
  const sel = document.getElementById('cmetric');
  sel.innerHTML = names.map((n) => `<option ${n === params.get('metric') ? 'selected' : ''}>${esc(n)}</option>`).join('');
  async function draw() {
    const metric = sel.value;
    if (!metric) { c.clear(); return; }
    const series = await Promise.all(jobs.map(async (j) => {
      try {
        const s = await api(`/jobs/${encodeURIComponent(j)}/metrics/${encodeURIComponent(metric)}?maxPoints=2000`);
        return { name: j, type: 'line', showSymbol: false, data: s.step.map((x, i) => [x, s.last[i]]) };
      } catch { return { name: j, type: 'line', data: [] }; }
    }));
    c.setOption({ title: { text: metric, textStyle: { fontSize: 13 } }, tooltip: { trigger: 'axis' }, legend: { top: 5, right: 10 },
      grid: { left: 60, right: 20, top: 60, bottom: 50 }, xAxis: { type: 'value', name: 'step' }, yAxis: { type: 'value', scale: true },
      dataZoom: [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 8 }], series }, { replaceMerge: ['series'] });
    document.getElementById('cchart').dataset.series = String(series.filter((s) => s.data.length).length);
    document.getElementById('cchart').dataset.legend = c.getOption().legend?.[0] ? series.map((s) => s.name).join(',') : '';
  }
  document.getElementById('cgo').onclick = () => {
    location.hash = `#/compare?metric=${encodeURIComponent(sel.value)}&jobs=${document.getElementById('cjobs').value.split(',').map((s) => encodeURIComponent(s.trim())).join(',')}`;
  };
  sel.onchange = draw;
  await draw();
}

// ------------------------------------------------------------------ cluster
function nodesTable(n) {
  return `<table><thead><tr><th>Node</th><th>CPU</th><th></th><th>Memory</th><th></th><th>GPU</th><th>State</th></tr></thead><tbody>${
    n.items.map((x) => {
      const pc = (a, b) => (b ? Math.min(100, (100 * a) / b) : 0);
      const gb = (b) => (b / 2 ** 30).toFixed(1) + ' GiB';
      return `<tr data-node="${esc(x.name)}"><td>${esc(x.name)}</td><td>${x.allocated.cpu} / ${x.allocatable.cpu} cores</td><td><div class="bar"><div style="width:${pc(x.allocated.cpu, x.allocatable.cpu)}%"></div></div></td>
        <td>${gb(x.allocated.memoryBytes)} / ${gb(x.allocatable.memoryBytes)}</td><td><div class="bar"><div style="width:${pc(x.allocated.memoryBytes, x.allocatable.memoryBytes)}%"></div></div></td>
        <td>${x.allocated.gpu} / ${x.allocatable.gpu}</td><td>${esc(x.state || 'Ready')}</td></tr>`;
    }).join('')}</tbody></table>`;
}

// Nodes (allocation against capacity), queues (quota, usage, borrowing),
// who uses what, and the jobs that wait with why.
async function clusterPage() {
  app.innerHTML = `<h1>Cluster</h1><h2>Nodes</h2><div class="panel" id="cnodes"></div>
    <h2>Queues</h2><div class="panel" id="cqueues"></div>
    <div class="grid2"><div><h2>Usage by user</h2><div class="panel" id="cusers"></div></div>
    <div><h2>Pending jobs</h2><div class="panel" id="cpending"></div></div></div>`;
  const amount = (a) => Object.entries(a || {}).map(([k, v]) => `${esc(k)} ${k === 'memory' ? (v / 2 ** 30).toFixed(1) + ' GiB' : fmt(v)}`).join(', ') || 'unlimited';
  const render = async () => {
    const [n, q] = await Promise.all([api('/nodes'), api('/queues')]);
    document.getElementById('cnodes').innerHTML = nodesTable(n);
    document.getElementById('cqueues').innerHTML = `<table><thead><tr><th>Queue</th><th>Cohort</th><th>Quota</th><th>Usage</th><th>Running</th><th>Pending</th></tr></thead><tbody>${
      q.items.map((x) => `<tr data-queue="${esc(x.name)}"><td>${esc(x.name)}</td><td>${esc(x.cohort || '-')}</td><td>${amount(x.quota)}</td>
        <td>${amount(x.usage)}${x.borrowing ? ' <span class="phase Restarting">borrowing</span>' : ''}</td><td>${x.running}</td><td>${x.pending}</td></tr>`).join('')}</tbody></table>`;
    document.getElementById('cusers').innerHTML = (q.users || []).length
      ? `<table><thead><tr><th>User</th><th>Running</th><th>Holds</th></tr></thead><tbody>${
        q.users.map((u) => `<tr data-user="${esc(u.user)}"><td>${esc(u.user)}</td><td>${u.running}</td><td>${amount(u.usage)}</td></tr>`).join('')}</tbody></table>`
      : '<div class="muted">nothing running</div>';
    const pending = q.items.flatMap((x) => x.jobs.map((j) => ({ ...j, queue: x.name })));
    document.getElementById('cpending').innerHTML = pending.length
      ? `<table><thead><tr><th>Job</th><th>Queue</th><th>User</th><th>Priority</th><th>Why pending</th></tr></thead><tbody>${
        pending.map((j) => `<tr data-pending="${esc(j.name)}"><td>${j.name ? jobLink(j.name) : '(another user\'s)'}</td><td>${esc(j.queue)}</td><td>${esc(j.user)}</td><td>${j.priority}</td><td class="wrap">${esc(j.message || '')}</td></tr>`).join('')}</tbody></table>`
      : '<div class="muted">nothing waits</div>';
  };
  await render();
  const timer = setInterval(() => render().catch(() => {}), 3000);
  cleanup.push(() => clearInterval(timer));
}

// ------------------------------------------------------------------ notebooks
const ago = (t) => (t ? dur(Date.now() / 1000 - t) + ' ago' : '-');

// Jupyter servers: the caller's (an admin's: everyone's), with state and
// last activity; "New notebook" starts one; Open goes through the proxy.
async function notebooksPage() {
  app.innerHTML = `<h1>Notebooks</h1>
    <details class="panel" id="nbnew"><summary>New notebook</summary>
      <form id="nbform" class="form">
        <label>Name <input name="name" required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" placeholder="explore"></label>
        <label>CPU <input name="cpu" value="1"></label>
        <label>Memory <input name="memory" value="2Gi"></label>
        <label>GPU <input name="gpu" value="0"></label>
        <label>Image <input name="image" placeholder="(this machine's Python)"></label>
        <label>Idle timeout <input name="idle" value="1h"></label>
        <button type="submit">Start</button> <span id="nberr" class="error-text"></span>
      </form></details>
    <div class="panel" id="nblist"></div>`;
  document.getElementById('nbform').onsubmit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const spec = { resources: { cpu: f.get('cpu'), memory: f.get('memory'), gpu: Number(f.get('gpu') || 0) }, idleTimeout: f.get('idle') };
    if (f.get('image')) spec.image = f.get('image');
    const doc = { apiVersion: 'trainyard.dev/v1', kind: 'Notebook', metadata: { name: f.get('name') }, spec };
    try {
      await api('/notebooks', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ yaml: JSON.stringify(doc), file: 'dashboard' }) });
      document.getElementById('nberr').textContent = '';
      document.getElementById('nbnew').open = false;
      await render();
    } catch (err) { document.getElementById('nberr').textContent = err.message; }
  };
  const act = async (n, what) => {
    const path = `/notebooks/${encodeURIComponent(n.owner || '_')}/${encodeURIComponent(n.name)}`;
    await api(what === 'delete' ? path : `${path}/${what}`, { method: what === 'delete' ? 'DELETE' : 'POST', headers: { 'Content-Type': 'application/json' }, body: what === 'delete' ? undefined : '{}' });
    await render();
  };
  let items = [];
  const render = async () => {
    items = (await api('/notebooks')).items;
    const el = document.getElementById('nblist');
    el.innerHTML = items.length ? `<table><thead><tr><th>Notebook</th><th>Owner</th><th>State</th><th>Resources</th><th>Last activity</th><th>Idle timeout</th><th></th></tr></thead><tbody>${
      items.map((n, i) => `<tr data-notebook="${esc(n.name)}"><td>${esc(n.name)}</td><td>${esc(n.owner || '-')}</td>
        <td>${phase(n.state)}${n.culledMessage ? ` <span class="muted">${esc(n.culledMessage)}</span>` : ''}</td>
        <td>${+n.resources.cpu.toFixed(3)} cpu, ${(n.resources.memoryBytes / 2 ** 30).toFixed(1)} GiB${n.resources.gpu ? `, ${n.resources.gpu} gpu` : ''}${n.image ? `, ${esc(n.image)}` : ''}</td>
        <td data-activity>${ago(n.lastActivity)}</td><td>${n.idleTimeoutSeconds ? dur(n.idleTimeoutSeconds) : 'never'}</td>
        <td>${n.state === 'Running' ? `<a class="button" data-open href="${esc(n.url)}" target="_blank" rel="noopener">Open</a> <button data-i="${i}" data-act="stop">Stop</button>`
          : ['Stopped', 'Culled', 'Failed', 'Succeeded'].includes(n.state) ? `<button data-i="${i}" data-act="start">Start</button> <button data-i="${i}" data-act="delete">Delete</button>` : ''}</td></tr>`).join('')}</tbody></table>`
      : '<div class="muted">no notebooks yet: start one above</div>';
    el.querySelectorAll('button[data-act]').forEach((b) => b.onclick = () => act(items[Number(b.dataset.i)], b.dataset.act).catch((err) => alert(err.message)));
  };
  await render();
  const timer = setInterval(() => render().catch(() => {}), 3000);
  cleanup.push(() => clearInterval(timer));
}

// ------------------------------------------------------------------ router
async function route() {
  for (const f of cleanup.splice(0)) f();
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  app.innerHTML = 'Loading…';
  try {
    if (parts[0] === 'jobs' && parts[1]) await jobPage(parts[1]);
    else if (parts[0] === 'experiments' && parts[1]) await experimentPage(parts[1]);
    else if (parts[0] === 'compare') await comparePage(params);
    else if (parts[0] === 'cluster') await clusterPage();
    else if (parts[0] === 'notebooks') await notebooksPage();
    else await overview();
    document.body.dataset.ready = path;
  } catch (err) {
    app.innerHTML = `<div class="error">${esc(err.message)}</div>`;
    document.body.dataset.ready = 'error';
  }
}
window.addEventListener('hashchange', route);
route();
