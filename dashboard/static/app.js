// pgq dashboard. Plain JavaScript, no build step. Every value that comes
// from the server is put in the page with textContent or as an attribute
// value, never parsed as HTML (the page's Content-Security-Policy forbids
// inline scripts as a second line of defence).
'use strict';

const PAGE = 50;
const STATES = ['scheduled', 'available', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'];
const FILTER_STATES = ['pending'].concat(STATES);
const FINISHED = ['succeeded', 'failed', 'cancelled'];
const app = { session: null, overview: null, page: null, onOverview: null, onTheme: null, cleanup: null, es: null };

// ---------- DOM helpers ----------

// el builds an element. attrs: "class", "text", "on<event>" (functions),
// "dataset" (object), anything else as a property or attribute. Children
// may be nodes, strings (text nodes), null or arrays.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}
function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}
function append(e, children) {
  const list = Array.isArray(children) ? children.flat(Infinity) : [children];
  for (const c of list) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
function $(id) { return document.getElementById(id); }

// ---------- formatting ----------

function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  return d.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function fmtDur(sec) {
  if (sec === null || sec === undefined || isNaN(sec)) return '';
  if (sec < 1) return Math.round(sec * 1000) + ' ms';
  if (sec < 60) return sec.toFixed(sec < 10 ? 2 : 1) + ' s';
  if (sec < 3600) return Math.floor(sec / 60) + 'm ' + Math.round(sec % 60) + 's';
  if (sec < 86400) return Math.floor(sec / 3600) + 'h ' + Math.round((sec % 3600) / 60) + 'm';
  return Math.floor(sec / 86400) + 'd ' + Math.round((sec % 86400) / 3600) + 'h';
}
function ago(s) { return s ? fmtDur((Date.now() - new Date(s).getTime()) / 1000) + ' ago' : ''; }
function num(n) { return (n || 0).toLocaleString(); }
function pretty(raw) {
  if (raw === undefined || raw === null) return '';
  try { return JSON.stringify(raw, null, 2); } catch (e) { return String(raw); }
}
function stateBadge(s, id) { return el('span', { class: 'badge st-' + s, id: id, text: s }); }
function jobLink(id, text) { return el('a', { href: '#/jobs/' + id, text: text || ('#' + id) }); }

// ---------- API ----------

async function api(path, opts) {
  opts = opts || {};
  const init = { method: opts.method || 'GET', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (init.method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    if (app.session) init.headers[app.session.csrf_header] = app.session.csrf_token;
    init.body = JSON.stringify(opts.body || {});
  }
  const res = await fetch(path, init);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 401) { location.href = 'login'; throw new Error('authentication required'); }
  if (!res.ok && !(opts.allow && opts.allow.includes(res.status))) {
    throw new Error((body && body.error) || (res.status + ' ' + res.statusText));
  }
  return body;
}
function post(path, body, allow) { return api(path, { method: 'POST', body: body, allow: allow }); }

function toast(msg, isErr) {
  const t = el('div', { class: 'toast' + (isErr ? ' err' : ''), text: msg });
  $('toasts').appendChild(t);
  setTimeout(() => t.remove(), isErr ? 8000 : 4000);
}
// act runs an action, reports its outcome and then refreshes the page.
async function act(label, fn) {
  try {
    const r = await fn();
    toast(label + ': done');
    route();
    return r;
  } catch (e) {
    toast(label + ': ' + e.message, true);
  }
}
function actionButton(text, cls, handler, extra) {
  return el('button', Object.assign({ type: 'button', class: cls || '', text: text, disabled: app.session && app.session.read_only, onclick: handler }, extra || {}));
}

// ---------- theme ----------

function applyTheme(t) {
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', t);
  if (app.onTheme) app.onTheme();
  $('theme').textContent = t === 'auto' ? 'theme: auto' : t === 'dark' ? 'theme: dark' : 'theme: light';
}
function initTheme() {
  let t = 'auto';
  try { t = localStorage.getItem('pgq-theme') || 'auto'; } catch (e) { /* storage off */ }
  applyTheme(t);
  $('theme').addEventListener('click', () => {
    const cur = document.documentElement.getAttribute('data-theme') || 'auto';
    const next = cur === 'auto' ? 'dark' : cur === 'dark' ? 'light' : 'auto';
    try { localStorage.setItem('pgq-theme', next); } catch (e) { /* storage off */ }
    applyTheme(next);
  });
  // In auto, the system's setting can change while the page is open.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (app.onTheme) app.onTheme(); });
}

// ---------- live updates ----------

function connectEvents() {
  const live = $('live');
  const es = new EventSource('api/events');
  app.es = es;
  es.onopen = () => { live.textContent = 'live'; live.className = 'live on'; };
  es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
  es.addEventListener('overview', (ev) => {
    let o;
    try { o = JSON.parse(ev.data); } catch (e) { return; }
    app.overview = o;
    live.textContent = 'live'; live.className = 'live on';
    if (app.onOverview) app.onOverview(o);
  });
  es.addEventListener('error', (ev) => {
    if (!ev.data) return;
    try { live.title = JSON.parse(ev.data).error; } catch (e) { /* ignore */ }
  });
}

// ---------- charts ----------

// The charts are drawn by uPlot (static/vendor/uplot, loaded before this
// script). Their colours are the page's CSS variables, read when a chart is
// made: a change of theme makes the charts again.

function missing(v) { return v === null || v === undefined; }
function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// timeChart returns a card holding a line chart of time series, and
// set(xs, ys) to give it data: xs in Unix seconds, ys one array per series.
// series: [{label, color (a CSS variable)}]; fmt formats y values.
function timeChart(id, title, series, fmt) {
  const box = el('div', { class: 'chart', id: id });
  const card = el('div', { class: 'card' }, el('h2', { text: title }), box);
  let plot = null, data = null;
  function make() {
    if (plot) plot.destroy();
    plot = null;
    if (!data || !box.clientWidth) return;
    const axis = (more) => Object.assign({ stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line'), width: 1 } }, more);
    plot = new uPlot({
      width: box.clientWidth, height: 180,
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.05 : 1] } },
      axes: [axis(), axis({ size: 64, values: (u, ticks) => ticks.map(fmt) })],
      series: [{ label: 'time', value: (u, v) => missing(v) ? '–' : fmtTime(new Date(v * 1000)) }].concat(series.map((s) =>
        ({ label: s.label, stroke: cssVar(s.color), width: 2, value: (u, v) => missing(v) ? '–' : fmt(v) }))),
    }, data, box);
  }
  // Follow the width of the card (the grid's columns, a phone's screen).
  let width = 0;
  const resize = new ResizeObserver(() => {
    if (box.clientWidth === width) return;
    width = box.clientWidth;
    if (plot) plot.setSize({ width: width, height: 180 }); else make();
  });
  resize.observe(box);
  return {
    card: card,
    set(xs, ys) { data = [xs].concat(ys); if (plot) plot.setData(data); else make(); },
    restyle: make,
    destroy() { resize.disconnect(); if (plot) plot.destroy(); plot = null; },
  };
}

// ---------- pages ----------

function pageOverview(main) {
  let range = sessionStorage.getItem('pgq-range') || '15m';
  const tiles = el('div', { class: 'tiles', id: 'tiles' });
  const table = el('div', { class: 'table-wrap card', id: 'queues-table' });
  const charts = el('div', { class: 'grid', id: 'charts' });
  const seg = el('div', { class: 'seg' }, ['5m', '15m', '1h', '6h', '24h'].map((r) =>
    el('button', { type: 'button', class: r === range ? 'on' : '', text: r, onclick: () => { range = r; sessionStorage.setItem('pgq-range', r); loadSeries(); } })));
  append(main, [el('h1', { text: 'Overview' }), tiles, table, el('div', { class: 'actions' }, el('span', { class: 'muted', text: 'Finished jobs over the last' }), seg), charts]);

  function renderOverview(o) {
    clear(tiles);
    const win = fmtDur(o.finished_window_seconds).replace(/ 0m$| 0s$/, '');
    const label = (s) => FINISHED.includes(s) ? s + ' (' + win + ')' : s;
    append(tiles, STATES.map((s) => el('div', { class: 'tile' },
      el('div', { class: 'n st-' + s, id: 'total-' + s, text: num(o.totals[s]) }),
      el('div', { class: 'l', text: label(s) }))));
    append(tiles, el('div', { class: 'tile' }, el('div', { class: 'n', id: 'workers-alive', text: num(o.workers.alive) }), el('div', { class: 'l', text: 'workers alive' })));
    clear(table);
    if (!o.queues.length) { table.appendChild(el('p', { class: 'muted', text: 'No queues yet: enqueue a job.' })); return; }
    const head = el('tr', {}, el('th', { text: 'queue' }), STATES.map((s) => el('th', { class: 'num', text: label(s) })), el('th', { text: 'oldest waiting' }));
    const rows = o.queues.map((q) => el('tr', { dataset: { queue: q.name } },
      el('td', {}, el('a', { href: '#/jobs?queue=' + encodeURIComponent(q.name), text: q.name }), q.paused ? [' ', el('span', { class: 'badge st-retrying', text: 'paused' })] : null),
      STATES.map((s) => el('td', { class: 'num', dataset: { queue: q.name, state: s } },
        q.counts[s] ? el('a', { class: 'st-' + s, href: '#/jobs?queue=' + encodeURIComponent(q.name) + '&state=' + s, text: num(q.counts[s]) }) : el('span', { class: 'muted', text: '0' }))),
      el('td', {}, q.oldest_waiting ? [jobLink(q.oldest_waiting.id), ' ', el('span', { class: 'muted', text: fmtDur(q.oldest_waiting.age_seconds) })] : el('span', { class: 'muted', text: '–' }))));
    table.appendChild(el('table', { id: 'queues' }, el('thead', {}, head), el('tbody', {}, rows)));
    table.appendChild(el('p', { class: 'muted', text: 'Finished jobs are counted over the last ' + win + '; the Queues page has the totals.' }));
  }

  const rate = (v) => v.toFixed(v < 10 ? 2 : 0);
  const plots = [
    timeChart('chart-throughput', 'Throughput (jobs/s)', [{ label: 'succeeded/s', color: '--ok' }, { label: 'failed/s', color: '--bad' }], rate),
    timeChart('chart-latency', 'Latency (average per bucket)', [{ label: 'wait (run time → start)', color: '--info' }, { label: 'run (start → end)', color: '--warn' }], fmtDur),
    timeChart('chart-latency-max', 'Latency (slowest per bucket)', [{ label: 'max wait', color: '--info' }, { label: 'max run', color: '--warn' }], fmtDur),
  ];
  append(charts, plots.map((p) => p.card));

  async function loadSeries() {
    for (const b of seg.children) b.className = b.textContent === range ? 'on' : '';
    try {
      const s = await api('api/series?range=' + encodeURIComponent(range));
      const xs = s.points.map((p) => new Date(p.at).getTime() / 1000);
      const col = (k) => s.points.map((p) => p[k]);
      plots[0].set(xs, [col('succeeded_per_second'), col('failed_per_second')]);
      plots[1].set(xs, [col('wait_avg_seconds'), col('run_avg_seconds')]);
      plots[2].set(xs, [col('wait_max_seconds'), col('run_max_seconds')]);
    } catch (e) { toast('charts: ' + e.message, true); }
  }

  if (app.overview) renderOverview(app.overview);
  else api('api/overview').then(renderOverview).catch((e) => toast(e.message, true));
  app.onOverview = renderOverview;
  app.onTheme = () => plots.forEach((p) => p.restyle());
  loadSeries();
  const timer = setInterval(loadSeries, 10000);
  return () => { clearInterval(timer); plots.forEach((p) => p.destroy()); };
}

function pageJobs(main, params) {
  const f = {
    state: params.get('state') || '', queue: params.get('queue') || '', task: params.get('task') || '',
    q: params.get('q') || '', from: params.get('from') || '', to: params.get('to') || '',
  };
  const selected = new Set();
  let before = 0;
  const stateSel = el('select', { name: 'state' }, el('option', { value: '', text: 'any' }), FILTER_STATES.map((s) => el('option', { value: s, text: s, selected: s === f.state })));
  const inp = (name, ph, type) => el('input', { name: name, value: f[name], placeholder: ph, type: type || 'text' });
  const queueIn = inp('queue', 'queue'), taskIn = inp('task', 'task'), qIn = inp('q', 'text in args or errors', 'search');
  const fromIn = el('input', { name: 'from', type: 'datetime-local', value: toLocalInput(f.from) });
  const toIn = el('input', { name: 'to', type: 'datetime-local', value: toLocalInput(f.to) });
  const form = el('form', { class: 'filters', id: 'job-filters', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (stateSel.value) p.set('state', stateSel.value);
    for (const [k, e] of [['queue', queueIn], ['task', taskIn], ['q', qIn]]) if (e.value.trim()) p.set(k, e.value.trim());
    if (fromIn.value) p.set('from', new Date(fromIn.value).toISOString());
    if (toIn.value) p.set('to', new Date(toIn.value).toISOString());
    location.hash = '#/jobs' + (p.toString() ? '?' + p : '');
  } },
  el('label', {}, 'state', stateSel), el('label', {}, 'queue', queueIn), el('label', {}, 'task', taskIn),
  el('label', {}, 'search', qIn), el('label', {}, 'created from', fromIn), el('label', {}, 'created before', toIn),
  el('button', { type: 'submit', text: 'Filter' }), el('button', { type: 'button', class: 'ghost', text: 'Clear', onclick: () => { location.hash = '#/jobs'; } }));

  const count = el('span', { class: 'muted', text: '' });
  const bulk = (action, label, cls) => actionButton(label, cls, async () => {
    const ids = [...selected];
    if (!ids.length) { toast('select jobs first', true); return; }
    if (!confirm(label + ' ' + ids.length + ' job(s)?')) return;
    try {
      const r = await post('api/jobs/bulk', { action: action, ids: ids });
      toast(label + ': ' + r.ok + ' done, ' + r.failed + ' refused' + (r.failed ? ' (' + r.results.filter((x) => !x.ok).slice(0, 3).map((x) => x.error).join('; ') + ')' : ''), r.failed > 0);
      selected.clear();
      reload();
    } catch (e) { toast(label + ': ' + e.message, true); }
  }, { id: 'bulk-' + action });
  const bar = el('div', { class: 'actions' }, count, bulk('retry', 'Retry'), bulk('revoke', 'Cancel', 'ghost'), bulk('delete', 'Delete', 'danger'),
    el('button', { type: 'button', class: 'ghost', text: 'Refresh', onclick: () => reload() }));
  const all = el('input', { type: 'checkbox', title: 'select all shown', onchange: () => {
    for (const cb of tbody.querySelectorAll('input[type=checkbox]')) { cb.checked = all.checked; toggle(Number(cb.value), cb.checked); }
  } });
  const tbody = el('tbody', { id: 'jobs-body' });
  const more = el('button', { type: 'button', class: 'ghost', text: 'Older →', onclick: () => load(true) });
  const table = el('div', { class: 'table-wrap card' }, el('table', { id: 'jobs' }, el('thead', {}, el('tr', {},
    el('th', {}, all), el('th', { text: 'id' }), el('th', { text: 'task' }), el('th', { text: 'queue' }), el('th', { text: 'state' }),
    el('th', { class: 'num', text: 'attempt' }), el('th', { class: 'hide-sm', text: 'created' }), el('th', { class: 'hide-sm', text: 'finished' }),
    el('th', { text: 'args' }), el('th', { text: 'last error' }))), tbody));
  append(main, [el('h1', { text: 'Jobs' }), form, bar, table, el('div', { class: 'actions' }, el('button', { type: 'button', class: 'ghost', text: '← Newest', onclick: () => reload() }), more)]);

  function toggle(id, on) { if (on) selected.add(id); else selected.delete(id); count.textContent = selected.size + ' selected'; }
  function reload() { before = 0; load(false); }
  // Each request reads a bounded range of ids (the server says where it
  // stopped); keep asking until the page is full, up to 20 ranges.
  async function load(next) {
    let cursor = next ? before : 0;
    const rows = [];
    count.textContent = 'loading…';
    try {
      for (let chunk = 0; chunk < 20; chunk++) {
        const p = new URLSearchParams();
        for (const k of Object.keys(f)) if (f[k]) p.set(k, f[k]);
        if (cursor) p.set('before', cursor);
        p.set('limit', String(PAGE - rows.length));
        const page = await api('api/jobs?' + p);
        rows.push(...page.jobs);
        cursor = page.next_before || 0;
        if (rows.length >= PAGE || !cursor) break;
        count.textContent = 'searching older jobs (ids below ' + cursor + ')…';
      }
    } catch (e) { toast('jobs: ' + e.message, true); return; }
    clear(tbody);
    all.checked = false;
    if (!rows.length) tbody.appendChild(el('tr', {}, el('td', { colspan: 10, class: 'muted', text: cursor ? 'No match among the jobs searched so far: press Older to search further.' : 'No jobs match.' })));
    for (const j of rows) {
      tbody.appendChild(el('tr', { dataset: { id: j.id } },
        el('td', {}, el('input', { type: 'checkbox', value: String(j.id), checked: selected.has(j.id), onchange: (ev) => toggle(j.id, ev.target.checked) })),
        el('td', {}, jobLink(j.id)), el('td', { class: 'mono', text: j.task }), el('td', { text: j.queue }), el('td', {}, stateBadge(j.state)),
        el('td', { class: 'num', text: j.attempt + '/' + (j.max_retries + 1) }),
        el('td', { class: 'hide-sm', title: fmtTime(j.created_at), text: ago(j.created_at) }),
        el('td', { class: 'hide-sm', title: fmtTime(j.finished_at), text: ago(j.finished_at) }),
        el('td', { class: 'trunc mono', title: j.args_preview, text: j.args_preview }),
        el('td', { class: 'trunc', title: j.last_error || '', text: j.last_error || '' })));
    }
    before = cursor;
    more.disabled = !before;
    count.textContent = selected.size + ' selected';
  }
  reload();
}

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

function pageJob(main, id) {
  let lastJSON = '';
  const box = el('div', { id: 'job' });
  main.appendChild(box);
  async function load() {
    let d;
    try { d = await api('api/jobs/' + encodeURIComponent(id)); } catch (e) {
      clear(box); append(box, [el('h1', { text: 'Job #' + id }), el('p', { class: 'muted', text: e.message })]); return;
    }
    const s = JSON.stringify(d);
    if (s === lastJSON) return;
    lastJSON = s;
    render(d);
  }
  function render(d) {
    const j = d.job;
    const waiting = ['scheduled', 'available', 'retrying'].includes(j.state);
    const finished = ['succeeded', 'failed', 'cancelled'].includes(j.state);
    clear(box);
    const actions = el('div', { class: 'actions' },
      actionButton('Retry', '', () => act('retry #' + j.id, () => post('api/jobs/' + j.id + '/retry')), { id: 'action-retry', disabled: ro() || !(j.state === 'failed' || j.state === 'cancelled') }),
      actionButton('Revoke', 'ghost', () => { if (confirm('Revoke job #' + j.id + (j.state === 'running' ? ' and stop its handler' : '') + '?')) act('revoke #' + j.id, () => post('api/jobs/' + j.id + '/revoke', { terminate: true })); }, { id: 'action-revoke', disabled: ro() || finished }),
      actionButton('Delete', 'danger', () => { if (confirm('Delete job #' + j.id + '?')) act('delete #' + j.id, async () => { await post('api/jobs/' + j.id + '/delete'); location.hash = '#/jobs'; }); }, { id: 'action-delete', disabled: ro() || j.state === 'running' }));
    const kv = [
      ['task', el('span', { class: 'mono', id: 'job-task', text: j.task })], ['queue', el('a', { href: '#/jobs?queue=' + encodeURIComponent(j.queue), text: j.queue })],
      ['state', stateBadge(j.state, 'job-state')], ['attempt', j.attempt + ' of ' + (j.max_retries + 1)], ['priority', String(j.priority)],
      ['created', fmtTime(j.created_at)], ['run at', fmtTime(j.run_at)], ['started', fmtTime(j.started_at)], ['finished', fmtTime(j.finished_at)],
      ['worker', j.worker_id || ''], ['unique key', j.unique_key || ''], ['expires', fmtTime(j.expires_at)],
      ['time limit', j.time_limit ? fmtDur(j.time_limit / 1e9) : ''], ['waited', waiting && j.run_at ? ago(j.run_at) : ''],
    ].filter((p) => p[1] !== '');
    const node = (n) => el('li', {},
      el('span', { class: 'badge', text: n.role === 'step' ? n.kind : n.role + ' ' + n.kind }), ' ',
      n.kind === 'task' ? (n.id === j.id ? el('strong', { text: '#' + n.id + ' (this job)' }) : jobLink(n.id)) : el('span', { class: 'muted', text: '#' + n.id }), ' ',
      n.task ? el('span', { class: 'mono', text: n.task }) : null, ' ', stateBadge(n.state),
      n.remaining !== undefined && n.remaining !== null ? el('span', { class: 'muted', text: ' ' + n.remaining + ' to go' }) : null,
      (n.steps || []).length || (n.callbacks || []).length ? el('ul', { class: 'tree' }, (n.steps || []).map(node), (n.callbacks || []).map(node)) : null);
    const wf = d.workflow ? [el('ul', { class: 'tree', id: 'workflow' }, node(d.workflow))] : [];
    append(box, [
      el('h1', {}, 'Job #' + j.id + ' ', stateBadge(j.state)),
      actions,
      el('div', { class: 'grid' },
        el('div', { class: 'card' }, el('h2', { text: 'Summary' }), el('dl', { class: 'kv' }, kv.map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]))),
        el('div', { class: 'card' }, el('h2', { text: 'Timeline' }), el('ol', { class: 'timeline', id: 'timeline' }, d.timeline.map((e) =>
          el('li', { class: e.kind }, el('span', { class: 'muted', text: fmtTime(e.at) + ' · ' }), el('strong', { text: e.kind }), e.attempt ? ' (attempt ' + e.attempt + ')' : '', el('div', { text: e.text })))))),
      el('div', { class: 'grid' },
        el('div', { class: 'card' }, el('h2', { text: 'Arguments' }), el('pre', { id: 'job-args', text: pretty(j.args) })),
        el('div', { class: 'card' }, el('h2', { text: 'Result' }), j.result !== undefined ? el('pre', { id: 'job-result', text: pretty(j.result) }) : el('p', { class: 'muted', text: 'No result.' })),
        el('div', { class: 'card' }, el('h2', { text: 'Headers' }), el('pre', { id: 'job-headers', text: pretty(j.headers) }))),
      el('div', { class: 'card' }, el('h2', { text: 'Errors (' + j.errors.length + ')' }), j.errors.length ? j.errors.slice().reverse().map((e) =>
        el('div', { class: 'error-entry' }, el('div', {}, el('strong', { text: 'attempt ' + e.attempt }), el('span', { class: 'muted', text: ' · ' + fmtTime(e.at) })),
          el('pre', { class: 'err-msg', text: e.error }), e.stack ? el('details', {}, el('summary', { text: 'stack trace' }), el('pre', { text: e.stack })) : null)) : el('p', { class: 'muted', text: 'No errors.' })),
      el('div', { class: 'card' }, el('h2', { text: 'Workflow' }), wf.length ? wf : el('p', { class: 'muted', text: 'Not part of a workflow.' })),
    ]);
  }
  load();
  app.onOverview = () => load();
}

function ro() { return !!(app.session && app.session.read_only); }

function pageWorkers(main) {
  const box = el('div', { class: 'table-wrap card' });
  append(main, [el('h1', { text: 'Workers' }), box]);
  let lastJSON = '';
  async function load() {
    let p;
    try { p = await api('api/workers'); } catch (e) { toast('workers: ' + e.message, true); return; }
    const s = JSON.stringify(p.workers.map((w) => [w.id, w.status, w.concurrency, w.running, w.queues, w.active_jobs.map((a) => a.id), Math.round(w.heartbeat_age_seconds || 0)]));
    if (s === lastJSON) return;
    lastJSON = s;
    clear(box);
    if (!p.workers.length) { box.appendChild(el('p', { class: 'muted', text: 'No workers registered, and none finished a job in the last 10 minutes.' })); return; }
    box.appendChild(el('table', { id: 'workers' }, el('thead', {}, el('tr', {}, ['worker', 'status', 'queues', 'concurrency', 'running', 'heartbeat', 'started', 'active jobs', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, p.workers.map((w) => el('tr', { dataset: { worker: w.id } },
        el('td', { class: 'mono', text: w.id }), el('td', {}, el('span', { class: 'badge st-' + w.status, text: w.status })),
        el('td', { text: w.queues.join(', ') }), el('td', { class: 'num', text: w.status === 'gone' ? '' : String(w.concurrency) }),
        el('td', { class: 'num', text: w.status === 'gone' ? '' : String(w.running) }),
        el('td', { text: w.status === 'gone' ? 'last job ' + ago(w.last_finished_at) : fmtDur(w.heartbeat_age_seconds) + ' ago' }),
        el('td', { text: w.started_at && w.status !== 'gone' ? ago(w.started_at) : '' }),
        el('td', {}, w.active_jobs.slice(0, 10).map((a) => [jobLink(a.id), ' ']), w.active_jobs.length > 10 ? '…' : ''),
        el('td', {}, w.status === 'gone' ? null : el('div', { class: 'actions' },
          actionButton('Pool size', 'small ghost', () => {
            const v = prompt('New concurrency for ' + w.id + ' (a number, or min-max to autoscale):', String(w.concurrency));
            if (!v) return;
            const m = v.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
            if (!m) { toast('pool size: give a number or min-max', true); return; }
            const body = m[2] ? { min: Number(m[1]), max: Number(m[2]) } : { concurrency: Number(m[1]) };
            act('pool size of ' + w.id, () => post('api/workers/' + encodeURIComponent(w.id) + '/pool-size', body));
          }),
          actionButton('Shutdown', 'small danger', () => { if (confirm('Shut down worker ' + w.id + ' gracefully?')) act('shutdown ' + w.id, () => post('api/workers/' + encodeURIComponent(w.id) + '/shutdown')); }))))))));
  }
  load();
  let last = 0;
  app.onOverview = () => { if (Date.now() - last > 4000) { last = Date.now(); load(); } };
}

function pageQueues(main) {
  const box = el('div', { class: 'table-wrap card' });
  append(main, [el('h1', { text: 'Queues' }), box]);
  let editing = null;
  let lastJSON = '';
  async function load() {
    if (editing) return; // do not redraw under an open settings form
    let p;
    try { p = await api('api/queues'); } catch (e) { toast('queues: ' + e.message, true); return; }
    const s = JSON.stringify(p);
    if (s === lastJSON || editing) return; // redraw only on change, never under an open form
    lastJSON = s;
    clear(box);
    if (!p.queues.length) { box.appendChild(el('p', { class: 'muted', text: 'No queues yet.' })); return; }
    box.appendChild(el('table', { id: 'queue-list' }, el('thead', {}, el('tr', {}, ['queue', 'status', 'waiting', 'running', 'finished', 'defaults', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, p.queues.map((q) => [el('tr', { dataset: { queue: q.name } },
        el('td', {}, el('a', { href: '#/jobs?queue=' + encodeURIComponent(q.name), text: q.name })),
        el('td', {}, q.paused ? el('span', { class: 'badge st-retrying', text: 'paused' }) : el('span', { class: 'badge st-succeeded', text: 'active' })),
        el('td', { class: 'num', text: num(q.waiting) }), el('td', { class: 'num', text: num(q.running) }), el('td', { class: 'num', text: num(q.finished) }),
        el('td', { class: 'mono', text: describeDefaults(q.defaults) }),
        el('td', {}, el('div', { class: 'actions' },
          q.paused ? actionButton('Resume', 'small', () => act('resume ' + q.name, () => post('api/queues/' + encodeURIComponent(q.name) + '/resume')), { dataset: { action: 'resume' } })
            : actionButton('Pause', 'small ghost', () => act('pause ' + q.name, () => post('api/queues/' + encodeURIComponent(q.name) + '/pause')), { dataset: { action: 'pause' } }),
          actionButton('Purge', 'small danger', () => {
            const typed = prompt('Purge deletes every waiting job (' + q.waiting + ') of queue ' + q.name + '. Type the queue name to confirm:');
            if (typed === null) return;
            act('purge ' + q.name, () => post('api/queues/' + encodeURIComponent(q.name) + '/purge', { confirm: typed }));
          }, { dataset: { action: 'purge' } }),
          actionButton('Settings', 'small ghost', () => { editing = q.name; box.querySelector('[data-settings="' + CSS.escape(q.name) + '"]').hidden = false; }))),
      ), settingsRow(q)]))));
  }
  function settingsRow(q) {
    const d = q.defaults || {};
    const f = (name, label, v) => el('label', {}, label, el('input', { name: name, type: 'number', min: 0, value: v === undefined || v === null ? '' : String(v), placeholder: 'pgq default' }));
    const form = el('form', { class: 'filters', onsubmit: (ev) => {
      ev.preventDefault();
      const body = {};
      for (const i of form.querySelectorAll('input')) body[i.name] = i.value === '' ? null : Number(i.value);
      editing = null;
      act('settings of ' + q.name, () => post('api/queues/' + encodeURIComponent(q.name) + '/settings', body));
    } },
    f('priority', 'priority (0–9)', d.priority), f('max_retries', 'max retries', d.max_retries), f('retry_delay_ms', 'retry delay ms', d.retry_delay_ms),
    f('time_limit_ms', 'time limit ms', d.time_limit_ms), f('soft_time_limit_ms', 'soft time limit ms', d.soft_time_limit_ms),
    el('button', { type: 'submit', text: 'Save', disabled: ro() }), el('button', { type: 'button', class: 'ghost', text: 'Cancel', onclick: () => { editing = null; lastJSON = ''; load(); } }));
    return el('tr', { hidden: true, dataset: { settings: q.name } }, el('td', { colspan: 7 }, el('p', { class: 'muted', text: 'Defaults for jobs enqueued to ' + q.name + ' without these options (empty = pgq\'s own).' }), form));
  }
  // Full counts read every row: refresh after actions and every 30 s, not
  // at each live event.
  load();
  const timer = setInterval(load, 30000);
  return () => clearInterval(timer);
}

function describeDefaults(d) {
  if (!d) return '';
  const parts = [];
  if (d.priority !== undefined) parts.push('priority ' + d.priority);
  if (d.max_retries !== undefined) parts.push('retries ' + d.max_retries);
  if (d.retry_delay_ms !== undefined) parts.push('delay ' + fmtDur(d.retry_delay_ms / 1000));
  if (d.time_limit_ms !== undefined) parts.push('limit ' + fmtDur(d.time_limit_ms / 1000));
  if (d.soft_time_limit_ms !== undefined) parts.push('soft ' + fmtDur(d.soft_time_limit_ms / 1000));
  return parts.join(', ') || '–';
}

function pagePeriodic(main) {
  const box = el('div', { class: 'table-wrap card' });
  append(main, [el('h1', { text: 'Periodic tasks' }), box]);
  let lastJSON = '';
  async function load() {
    let p;
    try { p = await api('api/periodic'); } catch (e) { toast('periodic: ' + e.message, true); return; }
    const s = JSON.stringify(p.tasks.map((t) => [t.name, t.enabled, t.next_tick, t.last_run_at, t.last_job_id, t.last_job_state, t.error]));
    if (s === lastJSON) return;
    lastJSON = s;
    clear(box);
    if (!p.tasks.length) { box.appendChild(el('p', { class: 'muted', text: 'No periodic tasks. Add one with `pgq periodic add` or periodic.Config.Entries.' })); return; }
    box.appendChild(el('table', { id: 'periodic' }, el('thead', {}, el('tr', {}, ['name', 'schedule', 'task', 'enabled', 'next run', 'last run', 'outcome', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, p.tasks.map((t) => el('tr', { dataset: { name: t.name } },
        el('td', { class: 'mono', text: t.name }), el('td', { class: 'mono', text: t.schedule + (t.time_zone && t.time_zone !== 'UTC' ? ' (' + t.time_zone + ')' : '') }),
        el('td', { class: 'mono', text: t.task }), el('td', { text: t.enabled ? 'yes' : 'no' + (t.removed_at ? ' (removed from code)' : '') }),
        el('td', { title: fmtTime(t.next_tick), text: t.next_tick ? fmtTime(t.next_tick) : (t.error || '–') }),
        el('td', { title: fmtTime(t.last_run_at), text: t.last_run_at ? ago(t.last_run_at) : 'never' }),
        el('td', {}, t.last_job_id ? [jobLink(t.last_job_id), ' ', t.last_job_state ? stateBadge(t.last_job_state) : el('span', { class: 'muted', text: 'pruned' })] : ''),
        el('td', {}, el('div', { class: 'actions' },
          t.enabled ? actionButton('Disable', 'small ghost', () => act('disable ' + t.name, () => post('api/periodic/' + encodeURIComponent(t.name) + '/disable')))
            : actionButton('Enable', 'small', () => act('enable ' + t.name, () => post('api/periodic/' + encodeURIComponent(t.name) + '/enable'))),
          actionButton('Run now', 'small', () => act('run ' + t.name, () => post('api/periodic/' + encodeURIComponent(t.name) + '/run'))))))))));
  }
  load();
  let last = 0;
  app.onOverview = () => { if (Date.now() - last > 4000) { last = Date.now(); load(); } };
}

// ---------- router ----------

function route() {
  if (app.cleanup) { try { app.cleanup(); } catch (e) { /* ignore */ } }
  app.cleanup = null;
  app.onOverview = null;
  app.onTheme = null;
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = h.split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean);
  const page = parts[0] || 'overview';
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  const main = clear($('main'));
  let cleanup = null;
  switch (page) {
    case 'overview': cleanup = pageOverview(main); break;
    case 'jobs': if (parts[1]) pageJob(main, parts[1]); else pageJobs(main, params); break;
    case 'workers': pageWorkers(main); break;
    case 'queues': cleanup = pageQueues(main); break;
    case 'periodic': pagePeriodic(main); break;
    default: main.appendChild(el('p', { class: 'muted', text: 'No such page.' }));
  }
  app.cleanup = cleanup;
  document.title = 'pgq · ' + page;
}

async function start() {
  initTheme();
  try {
    app.session = await api('api/session');
  } catch (e) {
    clear($('main')).appendChild(el('p', { class: 'muted', text: 'Cannot reach the dashboard API: ' + e.message }));
    return;
  }
  $('ro').hidden = !app.session.read_only;
  const lo = $('logout');
  lo.hidden = !app.session.logout;
  lo.addEventListener('click', async () => { try { await post('logout'); } catch (e) { /* redirected */ } location.href = 'login'; });
  window.addEventListener('hashchange', route);
  connectEvents();
  route();
}

document.addEventListener('DOMContentLoaded', start);
