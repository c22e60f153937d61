// Standby operator console: vanilla ES2020, no build step. Served at /api/console/ under a strict CSP,
// so it builds every node with createElement/textContent (API data may carry markup) and styles with
// classes only. Errors go to the page (#status, #key-error, #action-error), never to the JS console.
'use strict';
(() => {
  const KEY_STORE = 'standby.key';
  const DOORS = { operator: '/api/v1', reader: '/api/read/v1' };
  const TERMINAL = new Set(['Succeeded', 'Failed']);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const MAX_POINTS = 2000;
  const $ = (id) => document.getElementById(id);

  // S is the session: the key (memory and sessionStorage only), its role and door, and the view's
  // poll generation (a stale response checks it and drops itself).
  const S = { key: '', role: '', door: '', gen: 0, timer: 0, current: null, pollError: false, fresh: 0 };

  // ---------- DOM helpers ----------
  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false || k === '') continue;
      el.append(k instanceof Node ? k : String(k));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => { const el = document.createElement(tag); setAttrs(el, attrs); return append(el, kids); };
  const svg = (tag, attrs, ...kids) => { const el = document.createElementNS(SVGNS, tag); setAttrs(el, attrs); return append(el, kids); };

  // patch makes parent's children equal to kids while keeping every existing node that is already equal
  // (a poll then leaves focused links, buttons and open <details> alone).
  function patch(parent, kids) {
    const next = kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false && k !== '')
      .map((k) => (k instanceof Node ? k : document.createTextNode(String(k))));
    const old = [...parent.childNodes];
    if (old.length !== next.length) { parent.replaceChildren(...next); return; }
    next.forEach((n, i) => patchNode(old[i], n));
  }
  function patchNode(old, n) {
    if (old.nodeName === 'DETAILS' && n.nodeName === 'DETAILS' && old.open) n.open = true;
    if (old.isEqualNode(n)) return;
    if (old.nodeType !== 1 || n.nodeType !== 1 || !old.cloneNode(false).isEqualNode(n.cloneNode(false))) { old.replaceWith(n); return; }
    patch(old, [...n.childNodes]);
  }

  function setStatus(msg, isError) {
    const el = $('status');
    el.textContent = msg || '';
    el.classList.toggle('is-error', !!isError && !!msg);
  }

  // ---------- formatting ----------
  const isZero = (t) => !t || String(t).startsWith('0001-01-01');
  const toDate = (t) => (isZero(t) ? null : new Date(t));
  const utc = (d) => d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

  // dur is a human duration: "4 s", "3 min 2 s", "2 h 5 min", "3 d 4 h".
  function dur(sec) {
    if (sec === null || sec === undefined || !isFinite(sec)) return '—';
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return `${sec} s`;
    const units = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
    const i = units.findIndex(([, n]) => sec >= n);
    const q1 = Math.floor(sec / units[i][1]);
    const q2 = Math.floor((sec - q1 * units[i][1]) / units[i + 1][1]);
    return `${q1} ${units[i][0]}` + (q2 ? ` ${q2} ${units[i + 1][0]}` : '');
  }
  function bytes(n) {
    if (!n || n < 0) return '0 B';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
    return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
  }
  // time is a <time> in the browser's locale with UTC in its title; ago the same as an age.
  function time(t, opts) {
    const d = toDate(t);
    if (!d || isNaN(d)) return h('span', { class: 'muted' }, '—');
    return h('time', { class: 'at', datetime: d.toISOString(), title: utc(d) }, d.toLocaleString(undefined, opts || { dateStyle: 'medium', timeStyle: 'long' }));
  }
  function ago(t) {
    const d = toDate(t);
    if (!d || isNaN(d)) return h('span', { class: 'muted' }, 'never');
    const s = (Date.now() - d.getTime()) / 1000;
    return h('time', { datetime: d.toISOString(), title: `${utc(d)} (${d.toLocaleString()})` }, s < 1 ? 'just now' : `${dur(s)} ago`);
  }
  const kindOf = (k) => (String(k || '').toLowerCase().startsWith('app') ? 'app' : 'crash');
  const kindLabel = (k) => (kindOf(k) === 'app' ? 'app-consistent' : 'crash-consistent');
  // A group not replicating this way (failed over, disabled) has no health to rate.
  const healthBadge = (v) => h('span', { class: `badge h-${(v || 'unknown').toLowerCase()}` }, v || 'Not rated');
  const stateBadge = (v) => h('span', { class: `badge s-${String(v || 'unknown').toLowerCase()}` }, v || 'Unknown');
  const tableWrap = (t) => h('div', { class: 'table-wrap' }, t);
  const thead = (...cols) => h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c))));
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const section = (id, title, ...body) => h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), body);
  const groupLink = (g) => h('a', { href: `#/groups/${encodeURIComponent(g)}` }, g);
  const jobLink = (id, text) => h('a', { href: `#/jobs/${encodeURIComponent(id)}`, class: 'mono' }, text || id);
  const sub = (text) => (text ? h('div', { class: 'sub' }, text) : null);

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  // request calls door+path with the key; errors carry the problem's detail (RFC 7807) or the text the
  // host answered. The key never appears in a URL or a message.
  async function request(door, path, { method = 'GET', body, key = S.key } = {}) {
    const init = { method, cache: 'no-store', credentials: 'same-origin', headers: { 'x-functions-key': key, Accept: 'application/json' } };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    let res;
    try { res = await fetch(door + path, init); } catch (e) {
      throw new ApiError(0, 'Cannot reach the Standby API (network error). It will be retried.');
    }
    let text = '';
    try { text = await res.text(); } catch (e) { text = ''; }
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      const detail = (data && (data.detail || data.title)) || text.trim().slice(0, 400) || res.statusText || 'request failed';
      throw new ApiError(res.status, `${detail} (HTTP ${res.status})`);
    }
    return data;
  }
  const api = (path, opts) => request(S.door, path, opts);

  // ---------- sign-in ----------
  async function signIn(key) {
    $('key-error').textContent = '';
    setStatus('Checking the key…');
    const refused = [];
    for (const role of ['operator', 'reader']) {
      try {
        await request(DOORS[role], '/groups', { key });
        return accept(key, role);
      } catch (e) {
        if (e.status === 401 || e.status === 403) { refused.push(e.status); continue; }
        if (e.status === 0) {
          setStatus(e.message, true);
          $('key-error').textContent = 'The Standby API could not be reached to check the key. Check the connection and try again.';
          return false;
        }
        // Any other answer came from behind the door: the host accepted the key.
        accept(key, role);
        setStatus(`Signed in, but listing the groups failed: ${e.message}`, true);
        return true;
      }
    }
    sessionStorage.removeItem(KEY_STORE);
    setStatus('');
    const codes = refused[0] === refused[1] ? `${refused[0]} from /api/v1 and /api/read/v1` : `${refused[0]} from /api/v1 and ${refused[1]} from /api/read/v1`;
    $('key-error').textContent = `This key was not accepted (${codes}). Use a function key of the api function (operator) or of the reader function — \`make demo\` prints one.`;
    $('key').focus();
    return false;
  }

  function accept(key, role) {
    Object.assign(S, { key, role, door: DOORS[role] });
    sessionStorage.setItem(KEY_STORE, key);
    $('key').value = '';
    $('signin').hidden = true;
    $('view').hidden = false;
    $('nav').hidden = false;
    $('who').hidden = false;
    $('role').textContent = role;
    $('role-note').textContent = role === 'reader' ? 'read-only (reader key)' : '';
    setStatus('');
    route();
    return true;
  }

  function signOut(message) {
    stopPolling();
    Object.assign(S, { key: '', role: '', door: '', current: null });
    sessionStorage.removeItem(KEY_STORE);
    const dlg = $('action-dialog');
    if (dlg.open) dlg.close();
    $('view').replaceChildren();
    $('view').hidden = true;
    $('nav').hidden = true;
    $('who').hidden = true;
    $('role').textContent = '';
    $('role-note').textContent = '';
    $('signin').hidden = false;
    $('key-error').textContent = message || '';
    setStatus(message ? '' : 'Signed out.');
    $('key').focus();
  }

  // ---------- routing and polling ----------
  function stopPolling() { S.gen++; clearTimeout(S.timer); }

  // poll runs render now and then every `every` ms until it returns false or the view changes; a
  // failure shows in #status and the next success clears it.
  function poll(render, every) {
    const gen = ++S.gen;
    clearTimeout(S.timer);
    const tick = async () => {
      if (gen !== S.gen) return;
      let again = true;
      if (!document.hidden) {
        try {
          again = (await render(gen)) !== false;
          if (gen === S.gen) S.fresh = Date.now();
          if (gen === S.gen && S.pollError) { S.pollError = false; setStatus(''); $('view').classList.remove('stale'); }
        } catch (e) {
          if (gen === S.gen) failed(e);
        }
      }
      if (gen === S.gen && again) S.timer = setTimeout(tick, every);
    };
    tick();
  }
  // failed says what went wrong, and marks what the page shows as stale: it is what the API said at
  // the last successful refresh (its time), not now — an age or a health badge would otherwise go on
  // reading as current.
  function failed(e) {
    if (e && e.status === 401) { signOut('The key is no longer accepted (401). Sign in again.'); return; }
    S.pollError = true;
    const since = S.fresh ? ` The data below is from ${new Date(S.fresh).toLocaleTimeString(undefined, { timeZoneName: 'short' })} and may be out of date.` : '';
    setStatus(((e && e.message) || 'Something went wrong.') + since, true);
    $('view').classList.add('stale');
  }

  function route() {
    if (!S.role) return;
    stopPolling();
    S.current = null;
    const view = $('view');
    view.replaceChildren();
    const hash = location.hash || '#/groups';
    let m, arg = '';
    const drill = /^#\/drills\/([a-z0-9-]{1,63})\/([0-9a-f]{32})$/.exec(hash);
    if (drill) {
      document.title = `Drill ${drill[2]} · Standby`;
      poll((gen) => renderDrill(gen, drill[1], drill[2]), 3000);
      return;
    }
    try { m = /^#\/(groups|jobs)(?:\/([^/]+))?\/?$/.exec(hash); arg = m && m[2] ? decodeURIComponent(m[2]) : ''; } catch (e) { m = null; }
    for (const a of document.querySelectorAll('#nav a')) {
      if (m && a.dataset.nav === m[1]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    if (!m) {
      if (hash === '#' || hash === '#/') { location.replace('#/groups'); return; }
      document.title = 'Not found · Standby';
      patch(view, [h('h1', {}, 'Not found'), h('p', {}, 'There is no page at this address. ', h('a', { href: '#/groups' }, 'Go to the groups'), '.')]);
      return;
    }
    if (m[1] === 'groups' && !arg) { document.title = 'Groups · Standby'; poll(renderGroups, 5000); }
    else if (m[1] === 'groups') {
      document.title = `${arg} · Standby`;
      S.current = { name: arg, tick: 0, pointKey: null, points: null, rpo: null, group: null };
      const c = S.current;
      poll((gen) => renderGroup(gen, c), 5000);
    } else if (!arg) { document.title = 'Jobs · Standby'; poll(renderJobs, 5000); }
    else { document.title = `Job ${arg} · Standby`; poll((gen) => renderJob(gen, arg), 1000); }
  }

  // ---------- #/groups ----------
  async function renderGroups(gen) {
    const data = await api('/groups');
    if (gen !== S.gen) return;
    const groups = (data && data.groups) || [];
    patch($('view'), [
      h('h1', {}, 'Protection groups'),
      groups.length ? null : h('p', { class: 'muted' }, 'No group is protected yet.'),
      tableWrap(h('table', { id: 'groups', class: 'cards' },
        h('caption', { class: 'sr-only' }, 'Protection groups, refreshed every 5 seconds'),
        thead('Group', 'State', 'Health', 'RPO', 'Newest point', 'Pending batches', 'Agent last seen', 'Initial replication'),
        h('tbody', {}, groups.map(groupRow)))),
    ]);
  }
  // Each cell carries its column's name (data-label): on a phone the rows become labelled cards.
  function groupRow(g) {
    return h('tr', { 'data-group': g.group },
      h('th', { scope: 'row' }, groupLink(g.group)),
      h('td', { class: 'state', 'data-label': 'State' }, stateBadge(g.state), sub(g.reason)),
      h('td', { class: 'health', 'data-label': 'Health' }, healthBadge(g.health), sub(g.healthReason)),
      h('td', { class: 'rpo num', 'data-label': 'RPO' }, rpo(g)),
      h('td', { class: 'point-age', 'data-label': 'Newest point' }, ago(g.lastRecoveryPoint)),
      h('td', { class: 'num', 'data-label': 'Pending batches' }, String(g.pendingBatches || 0)),
      h('td', { class: 'seen', 'data-label': 'Agent last seen' }, lastSeen(g)),
      h('td', { class: 'baseline', 'data-label': 'Initial replication' }, baseline(g.initialReplication)));
  }
  // A group that no longer replicates this way (failed over, disabled) has no RPO to show: the API's
  // figure keeps growing from its last write.
  const rpo = (g) => (g.replicating ? dur(g.rpoSeconds) : h('span', { class: 'muted' }, 'not replicating'));

  // The agent's last heartbeat, and when its newest write was applied.
  function lastSeen(g) {
    return [h('div', {}, g.agentSeenAt ? ago(g.agentSeenAt) : 'never'), isZero(g.lastAppliedAt) ? null : h('div', { class: 'sub' }, 'applied ', ago(g.lastAppliedAt))];
  }
  function baseline(b) {
    if (!b) return h('span', { class: 'muted' }, '—');
    const pct = Math.max(0, Math.min(100, Number(b.percent) || 0));
    const eta = pct >= 100 ? 'done' : b.etaSeconds > 0 ? `ETA ${dur(b.etaSeconds)}` : 'ETA unknown';
    const label = `${Math.floor(pct)}% · ${eta}`;
    const rate = b.rateBytesPerSecond > 0 ? ` at ${bytes(b.rateBytesPerSecond)}/s` : '';
    return h('div', { class: 'baseline-box' },
      h('progress', { max: '100', value: pct.toFixed(1), 'aria-label': `Initial replication ${label}` }),
      h('span', { class: 'baseline-label' }, label),
      sub(`${bytes(b.doneBytes)} of ${bytes(b.totalBytes)}${rate}`),
      b.blocksCompared ? sub(`${b.blocksSent} of ${b.blocksCompared} blocks differed`) : null);
  }

  // ---------- #/groups/<name> ----------
  async function renderGroup(gen, c) {
    const g = encodeURIComponent(c.name);
    const [grp, events, jobs, drills] = await Promise.allSettled([
      api(`/groups/${g}`), api(`/groups/${g}/events?limit=20`), api(`/jobs?group=${g}&limit=20`), api(`/groups/${g}/drills?limit=10`)]);
    if (grp.status === 'rejected') {
      if (grp.reason.status !== 404 && grp.reason.status !== 400) throw grp.reason;
      if (gen === S.gen) {
        patch($('view'), [h('h1', { id: 'group-name' }, c.name), h('p', { class: 'error' }, grp.reason.message), h('p', {}, h('a', { href: '#/groups' }, 'Back to the groups'))]);
      }
      return false;
    }
    for (const r of [events, jobs, drills]) if (r.status === 'rejected' && r.reason.status === 401) throw r.reason;
    const group = grp.value || {};
    // Points and RPO history are the heavy reads: again every 30 s, or at once when a point came or went.
    const rw = group.retentionWindow || {};
    const pointKey = [group.lastRecoveryPoint, rw.points, rw.oldestPoint, group.state].join('|');
    if (c.tick++ % 6 === 0 || pointKey !== c.pointKey) {
      [c.points, c.rpo] = await Promise.allSettled([loadPoints(g), api(`/groups/${g}/rpo-history`)]);
      c.pointKey = pointKey;
    }
    if (gen !== S.gen) return;
    c.group = group;
    patch($('view'), [
      h('p', { class: 'crumbs' }, h('a', { href: '#/groups' }, '← All groups')),
      h('h1', { id: 'group-name' }, group.group || c.name),
      groupSummary(group),
      S.role === 'operator' ? actionBar(group) : h('p', { class: 'note' }, 'Read-only (reader key): failover actions are not available.'),
      section('rpo-title', 'RPO over time', settled(c.rpo, (v) => rpoChart((v && v.samples) || [], group.policy || {}))),
      section('points-title', 'Recovery points', settled(c.points, timeline)),
      section('disks-title', 'Disks', disksTable(group)),
      section('net-title', 'Network mapping', networkTable(group)),
      section('target-title', 'Target', targetInfo(group)),
      section('readiness-title', 'Failover readiness', readiness(group)),
      section('drills-title', 'Drills', settled(drills, (v) => drillsTable(c.name, (v && v.drills) || []))),
      section('events-title', 'Events', settled(events, eventsTable)),
      section('jobs-title', 'Jobs', settled(jobs, (v) => jobsTable((v && v.jobs) || [], false))),
    ]);
  }
  // settled renders a section's data, or the reason it could not be read.
  function settled(r, render) {
    if (!r) return h('p', { class: 'muted' }, 'Loading…');
    return r.status === 'fulfilled' ? render(r.value) : h('p', { class: 'error' }, `Could not load: ${r.reason.message}`);
  }
  async function loadPoints(g) {
    let page = await api(`/groups/${g}/recovery-points?limit=1000`);
    const points = [...((page && page.points) || [])];
    const window = (page && page.restorableWindow) || {};
    while (page && page.next && points.length < MAX_POINTS) {
      page = await api(`/groups/${g}/recovery-points?limit=1000&after=${encodeURIComponent(page.next)}`);
      points.push(...((page && page.points) || []));
    }
    return { points: points.slice(0, MAX_POINTS), window, more: !!(page && page.next) || points.length > MAX_POINTS };
  }

  const REPLICATION_STATES = { stopped: 'Stopped (not replicating this way)', initialSync: 'Initial sync', rescan: 'Resync',
    disconnected: 'Disconnected: the agent is silent', stalled: 'Stalled: apply takes nothing', backlog: 'Catching up', continuous: 'Continuous' };

  // Each thing wrong, with what to do about it.
  function healthErrors(errs) {
    if (!errs || !errs.length) return null;
    return h('ul', { id: 'health-errors', class: 'health-errors' }, errs.map((e) => h('li', { 'data-code': e.code },
      h('div', {}, e.message), h('div', { class: 'sub' }, 'What to do: ', e.recommendedAction))));
  }

  function groupSummary(g) {
    const rw = g.retentionWindow;
    const m = g.lastMarker;
    return kv([
      ['State', [stateBadge(g.state), sub(g.reason)]],
      ['Health', [healthBadge(g.health), healthErrors(g.healthErrors)]],
      ['Replication', h('span', { id: 'replication-state' }, REPLICATION_STATES[g.replicationState] || g.replicationState || '—')],
      ['RPO', h('span', { class: 'rpo' }, rpo(g))],
      ['Newest recovery point', [ago(g.lastRecoveryPoint), sub(g.lastRecoveryPoint ? time(g.lastRecoveryPoint) : null)]],
      ['Newest app-consistent point', ago(g.lastAppConsistentPoint)],
      ['Agent last seen', g.agentSeenAt ? ago(g.agentSeenAt) : 'never'],
      ['Last source write', ago(g.lastSourceTime)],
      ['Last applied', ago(g.lastAppliedAt)],
      ['Pending batches', String(g.pendingBatches || 0)],
      ['Applied', `${g.batchesApplied || 0} batches, ${bytes(g.bytesApplied)}` + (g.applyBytesPerSecond > 0 ? ` (last at ${bytes(g.applyBytesPerSecond)}/s)` : '')],
      rw && ['Retention', `${rw.points} points kept, policy ${rw.hours} h`],
      m && ['Last marker', [`#${m.seq} ${m.consistency || ''} at `, time(m.sourceTime)]],
      g.initialReplication && ['Initial replication', baseline(g.initialReplication)],
      g.scrub && g.scrub.length && ['Scrub (target against source)', h('div', { id: 'scrub' }, g.scrub.map((d) => h('div', { class: d.mismatches ? 'error' : null },
        h('span', { class: 'mono' }, d.disk), ': ', d.lastFullPass ? ['last full pass ', ago(d.lastFullPass), d.lastPassClean ? ', clean' : ', found damage'] : 'first pass',
        ` (${Math.floor(d.passPercent || 0)}% of the current pass)`,
        d.mismatches ? sub(`${d.mismatches} blocks found differing; last: ${d.lastMismatch || ''} at seq ${d.lastMismatchSeq}`) : null)))],
      ['Created', time(g.createdAt)],
    ]);
  }

  // ---------- RPO chart ----------
  // Width follows the page so that labels stay legible on a phone; the viewBox makes it scale.
  const chartWidth = () => Math.max(320, Math.min(1000, ($('view').clientWidth || 640) - 8));
  function timeTicks(t0, t1, n) {
    const out = [];
    for (let i = 0; i <= n; i++) out.push(t0 + ((t1 - t0) * i) / n);
    return out;
  }
  // The first and last tick labels hug the edges so that they are not clipped.
  const anchor = (i, n) => (i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle');
  // Axis labels as precise as the span needs: days for long spans, seconds for the first minutes.
  const shortTime = (t, span) => new Date(t).toLocaleString(undefined, span > 36 * 3600e3 ? { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }
    : span < 10 * 60e3 ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { hour: '2-digit', minute: '2-digit' });

  function rpoChart(samples, policy) {
    const W = chartWidth(), H = 250, L = 64, R = 14, T = 22, B = 38;
    const pts = samples.map((s) => ({ t: new Date(s.time).getTime(), v: Math.max(0, Number(s.rpoSeconds) || 0), s })).filter((p) => !isNaN(p.t));
    const root = svg('svg', { id: 'rpo-chart', class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-samples': String(pts.length),
      'aria-label': pts.length ? `RPO over time: ${pts.length} samples, latest ${dur(pts[pts.length - 1].v)}` : 'RPO over time: no samples yet' });
    if (!pts.length) {
      root.append(svg('text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, 'No RPO samples yet (one a minute)'));
      return root;
    }
    let t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    if (t1 - t0 < 60e3) { t0 -= 30 * 60e3; t1 += 30 * 60e3; }
    // Round the y scale to a step people read (10 s, 1 min, 5 min…) so that the ticks are whole.
    const top = Math.max(1, ...pts.map((p) => p.v));
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400].find((n) => n * 4 >= top) || Math.ceil(top / 4 / 86400) * 86400;
    const vmax = step * Math.max(1, Math.ceil(top / step));
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / vmax) * (H - T - B);
    const g = svg('g', { class: 'axes' });
    for (let v = 0; v <= vmax + 1e-9; v += step) {
      g.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }),
        svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, dur(v)));
    }
    timeTicks(t0, t1, W < 500 ? 2 : 4).forEach((t, i, all) => {
      g.append(svg('text', { x: x(t), y: H - B + 18, 'text-anchor': anchor(i, all.length) }, shortTime(t, t1 - t0)));
    });
    g.append(svg('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }), svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }),
      svg('text', { x: L - 6, y: 12, 'text-anchor': 'end', class: 'axis-title' }, 'RPO'),
      svg('text', { x: W - R, y: H - 2, 'text-anchor': 'end', class: 'axis-title' }, 'time (local)'));
    root.append(g);
    // The policy's thresholds, when they fall inside the chart.
    for (const [cls, min] of [['warn', policy.rpoWarningMinutes], ['crit', policy.rpoCriticalMinutes]]) {
      if (min > 0 && min * 60 < vmax) root.append(svg('line', { x1: L, x2: W - R, y1: y(min * 60), y2: y(min * 60), class: `threshold ${cls}` }, svg('title', {}, `${cls === 'warn' ? 'Warning' : 'Critical'} above ${min} min`)));
    }
    root.append(svg('polyline', { class: 'line', points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
    const dots = svg('g', { class: 'samples' });
    for (const p of pts) {
      dots.append(svg('circle', { class: `sample h-${String(p.s.health || 'unknown').toLowerCase()}`, cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: pts.length > 300 ? 1.6 : 3 },
        svg('title', {}, `${new Date(p.t).toLocaleString()}: RPO ${dur(p.v)}${p.s.health ? `, ${p.s.health}` : ''}`)));
    }
    root.append(dots);
    return root;
  }

  // ---------- recovery point timeline ----------
  function timeline(data) {
    const { points, window: win, more } = data;
    const W = chartWidth(), H = 130, L = 16, R = 16, yCrash = 44, yApp = 78;
    const times = points.map((p) => new Date(p.sourceTime).getTime()).filter((t) => !isNaN(t));
    const from = toDate(win.from), to = toDate(win.to);
    if (from) times.push(from.getTime());
    if (to) times.push(to.getTime());
    let t0 = Math.min(...times), t1 = Math.max(...times);
    if (!times.length) { t1 = Date.now(); t0 = t1 - 3600e3; }
    if (t1 - t0 < 60e3) { t0 -= 5 * 60e3; t1 += 5 * 60e3; }
    const pad = (t1 - t0) * 0.02;
    t0 -= pad; t1 += pad;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const root = svg('svg', { id: 'timeline', class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-points': String(points.length),
      'aria-label': `Recovery points timeline: ${points.length} points` + (from && to ? `, restorable from ${from.toLocaleString()} to ${to.toLocaleString()}` : '') });
    if (from && to) {
      root.append(svg('rect', { class: `window${win.journalCovers ? ' covered' : ''}`, x: x(from.getTime()).toFixed(1), y: 20, width: Math.max(1, x(to.getTime()) - x(from.getTime())).toFixed(1), height: 76 },
        svg('title', {}, `Restorable window ${from.toLocaleString()} – ${to.toLocaleString()}`)));
    }
    root.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: 100, y2: 100 }));
    timeTicks(t0 + pad, t1 - pad, W < 500 ? 2 : 4).forEach((t, i, all) => {
      root.append(svg('text', { x: x(t), y: 122, 'text-anchor': anchor(i, all.length) }, shortTime(t, t1 - t0)));
    });
    for (const p of points) {
      const t = new Date(p.sourceTime).getTime();
      if (isNaN(t)) continue;
      const kind = kindOf(p.kind), cx = x(t);
      const tip = svg('title', {}, `${p.id}: ${kindLabel(p.kind)}, ${new Date(t).toLocaleString()} (${utc(new Date(t))})${p.suspect ? ` — suspect: ${p.suspect}` : ''}`);
      const attrs = { class: `point ${kind}${p.suspect ? ' suspect' : ''}`, 'data-point-id': p.id };
      root.append(kind === 'app'
        ? svg('rect', { ...attrs, x: (cx - 4).toFixed(1), y: yApp - 4, width: 8, height: 8, transform: `rotate(45 ${cx.toFixed(1)} ${yApp})` }, tip)
        : svg('circle', { ...attrs, cx: cx.toFixed(1), cy: yCrash, r: points.length > 300 ? 2.5 : 4 }, tip));
    }
    const apps = points.filter((p) => kindOf(p.kind) === 'app').length;
    let coverage;
    if (!from) coverage = 'No recovery point yet: nothing can be restored.';
    else if (win.journalCovers) coverage = 'The journal covers the whole window: any point in time in it can be restored, not only the recovery points.';
    else coverage = `The journal does not cover the whole window: only the recovery points can be restored${win.reason ? ` (${win.reason})` : ''}.`;
    return [
      h('div', { class: 'chart-box' }, root),
      h('ul', { class: 'legend' },
        h('li', {}, h('span', { class: 'swatch crash', 'aria-hidden': 'true' }), `Crash-consistent (${points.length - apps})`),
        h('li', {}, h('span', { class: 'swatch app', 'aria-hidden': 'true' }), `App-consistent (${apps})`),
        h('li', {}, h('span', { class: 'swatch window', 'aria-hidden': 'true' }), 'Restorable window')),
      h('p', {}, from && to ? ['Restorable window: ', time(win.from), ' to ', time(win.to), ` (${dur((to - from) / 1000)}). `] : null, coverage),
      more ? h('p', { class: 'muted' }, `Showing the newest ${MAX_POINTS} points.`) : null,
    ];
  }

  // ---------- group details ----------
  function disksTable(g) {
    const capture = new Map((g.capture || []).map((c) => [c.disk, c]));
    const rows = [];
    for (const vm of g.vms || []) {
      for (const d of vm.disks || []) {
        const c = capture.get(`${vm.name}/${d.name}`) || {};
        rows.push(h('tr', {}, h('td', { 'data-label': 'VM' }, vm.name), h('td', { 'data-label': 'Disk' }, d.name),
          h('td', { class: 'num', 'data-label': 'Size' }, bytes(d.sizeBytes)), h('td', { 'data-label': 'Role' }, d.role || '—'),
          h('td', { class: 'mono wrap', 'data-label': 'Source' }, d.source || ''), h('td', { 'data-label': 'Capture' }, c.mode || ''),
          h('td', { class: 'crash-consistent', 'data-label': 'Crash-consistent' }, c.crashConsistent ? 'yes' : h('strong', {}, 'no')),
          h('td', { class: 'wrap', 'data-label': 'Note' }, c.note || '—')));
      }
    }
    const vms = (g.vms || []).map((vm) => h('tr', {}, h('td', {}, vm.name), h('td', {}, vm.subnet || '—'), h('td', {}, vm.staticIP || '—'),
      h('td', {}, vm.zone ? `zone ${vm.zone}` : vm.availabilitySet ? `set ${vm.availabilitySet}` : '—'), h('td', {}, vm.size || 'default')));
    return [
      tableWrap(h('table', { id: 'disks', class: 'cards' }, h('caption', {}, 'Disks and how their writes are captured'),
        thead('VM', 'Disk', 'Size', 'Role', 'Source', 'Capture', 'Crash-consistent', 'Note'), h('tbody', {}, rows))),
      tableWrap(h('table', {}, h('caption', {}, 'VM placement on failover'), thead('VM', 'Source subnet', 'Static IP', 'Zone / set', 'Size'), h('tbody', {}, vms))),
    ];
  }
  function networkTable(g) {
    const maps = (g.network && g.network.mappings) || [];
    if (!maps.length) return h('p', { class: 'muted' }, 'No network mapping.');
    return tableWrap(h('table', {}, thead('Source subnet', 'Target subnet', 'Test subnet (isolated)'),
      h('tbody', {}, maps.map((m) => h('tr', {}, h('td', { class: 'mono wrap' }, m.source), h('td', { class: 'mono wrap' }, m.target, m.targetPrefix ? ` (${m.targetPrefix})` : ''),
        h('td', { class: 'mono wrap' }, m.test || '—', m.testPrefix ? ` (${m.testPrefix})` : ''))))));
  }
  function targetInfo(g) {
    const t = g.target || {}, r = g.targetResources, p = g.policy || {};
    return [
      kv([['Container', t.container || '—'], ['Resource group', t.resourceGroup || 'default'],
        ['Points', `crash-consistent every ${dur(p.crashConsistentIntervalSeconds)}, app-consistent ${p.appConsistentIntervalSeconds > 0 ? `every ${dur(p.appConsistentIntervalSeconds)}` : 'off'}`],
        ['Retention', `${p.retentionHours || 0} h; journal ${p.journalWindowMinutes || 0} min`],
        ['RPO alerts', `Warning above ${p.rpoWarningMinutes || 0} min, Critical above ${p.rpoCriticalMinutes || 0} min or no point for ${p.noPointCriticalMinutes || 0} min`]]),
      r ? [h('h3', {}, 'Target resources'), kv([
        ['Resource group', [r.resourceGroup, sub(r.resourceGroupId)]],
        ['Deployment', [stateBadge(r.state), r.deployment ? ` ${r.deployment}` : '', r.error ? h('div', { class: 'error' }, r.error) : null]],
        r.subnets && ['Subnets', h('ul', { class: 'plain' }, Object.entries(r.subnets).map(([k, v]) => h('li', { class: 'mono wrap' }, `${k} → ${v}`)))],
        r.availabilitySets && ['Availability sets', h('ul', { class: 'plain' }, r.availabilitySets.map((v) => h('li', { class: 'mono wrap' }, v)))],
        r.created && ['Created', h('ul', { class: 'plain' }, r.created.map((v) => h('li', { class: 'mono wrap' }, v)))]])]
        : h('p', { class: 'muted' }, 'No target resources were made (no compute configured).'),
    ];
  }
  function eventsTable(page) {
    const events = (page && page.events) || [];
    if (!events.length) return h('p', { class: 'muted' }, 'No events.');
    return tableWrap(h('table', { id: 'events' }, thead('Time', 'Kind', 'Message'),
      h('tbody', {}, events.map((e) => h('tr', {}, h('td', {}, time(e.time)), h('td', {}, e.kind), h('td', { class: 'wrap' }, e.message))))));
  }
  function jobsTable(jobs, withGroup) {
    if (!jobs.length) return h('p', { class: 'muted' }, 'No jobs.');
    return tableWrap(h('table', { id: withGroup ? 'jobs' : 'group-jobs', class: 'cards' },
      thead('Job', ...(withGroup ? ['Group / plan'] : []), 'Type', 'State', 'Created', 'Updated'),
      h('tbody', {}, jobs.map((j) => h('tr', { 'data-job': j.id }, h('td', { 'data-label': 'Job' }, jobLink(j.id, j.id.slice(0, 8))),
        withGroup ? h('td', { 'data-label': 'Group / plan' }, j.group ? groupLink(j.group) : j.plan ? `plan ${j.plan}` : '—') : null,
        h('td', { 'data-label': 'Type' }, j.type), h('td', { 'data-label': 'State' }, stateBadge(j.state)),
        h('td', { 'data-label': 'Created' }, time(j.createdAt)), h('td', { 'data-label': 'Updated' }, time(j.updatedAt)))))));
  }

  // ---------- drills ----------
  // readiness is the group's: its last drill, the last success against the drill's window, the schedule.
  function readiness(g) {
    const r = g.readiness || {};
    const d = g.drill || {};
    return kv([
      ['Ready', h('span', { id: 'ready', class: `badge ${r.ready ? 's-succeeded' : 's-failed'}` }, r.ready ? 'Yes' : 'No'),
        sub(r.ready ? `a drill succeeded within ${r.windowDays} days` : `no drill succeeded within ${r.windowDays} days`)],
      ['Last successful drill', r.lastSuccessfulDrillAt ? [ago(r.lastSuccessfulDrillAt), sub(time(r.lastSuccessfulDrillAt))] : 'never'],
      ['Last drill', r.lastDrill ? [drillLink(g.group, r.lastDrill, r.lastDrillResult), sub(r.lastDrillAt ? time(r.lastDrillAt) : null)] : 'none'],
      ['Schedule', d.schedule ? [h('span', { class: 'mono' }, d.schedule), ' (UTC)', sub(r.nextDrill ? ['next ', time(r.nextDrill)] : null)] : 'on request only'],
      ['Checks', d.checks && d.checks.length ? d.checks.map((c) => h('div', {}, h('strong', {}, c.name), ` on ${c.vm}: `,
        h('span', { class: 'mono' }, c.command || `HTTP GET of ${c.http.vm}, port ${c.http.port}, path ${c.http.path || '/'}, from ${c.vm}`))) : 'none (the VMs booting is the test)'],
      r.lastTestFailover && ['Last test failover', h('span', { id: 'last-test' }, jobLink(r.lastTestFailover.job, r.lastTestFailover.job.slice(0, 8)), ' ',
        stateBadge(r.lastTestFailover.result), sub([time(r.lastTestFailover.started), r.lastTestFailover.point ? `, point ${r.lastTestFailover.point}` : '',
          r.lastTestFailover.rtoSeconds ? `, RTO ${dur(r.lastTestFailover.rtoSeconds)}` : ''].filter(Boolean)))],
      ['Test failover active', r.drillActive ? jobLink(r.drillActive) : 'no'],
    ]);
  }
  const drillLink = (g, id, text) => h('a', { href: `#/drills/${encodeURIComponent(g)}/${encodeURIComponent(id)}` }, text || id);
  function drillsTable(group, drills) {
    if (!drills.length) return h('p', { class: 'muted' }, 'No drills yet.');
    return tableWrap(h('table', { id: 'drills' }, thead('Drill', 'Started', 'Result', 'Point', 'RTO', 'Checks'),
      h('tbody', {}, drills.map((d) => h('tr', { 'data-drill': d.id },
        h('td', {}, drillLink(group, d.id, d.id.slice(0, 8))), h('td', {}, time(d.started), d.slot ? sub('scheduled') : null),
        h('td', {}, stateBadge(d.state)), h('td', { class: 'mono' }, d.point || '—'), h('td', { class: 'num' }, d.rtoSeconds ? dur(d.rtoSeconds) : '—'),
        h('td', {}, `${(d.checks || []).filter((c) => c.passed).length} of ${(d.checks || []).length} passed`))))));
  }

  // ---------- #/drills/<group>/<id>: the report an auditor prints ----------
  async function renderDrill(gen, group, id) {
    let d;
    try { d = await api(`/groups/${encodeURIComponent(group)}/drills/${id}`); } catch (e) {
      if (e.status !== 404 && e.status !== 400) throw e;
      if (gen === S.gen) patch($('view'), [h('h1', {}, 'Drill'), h('p', { class: 'error' }, e.message), h('p', {}, groupLink(group))]);
      return false;
    }
    if (gen !== S.gen || !d) return;
    const done = TERMINAL.has(d.state);
    patch($('view'), [
      h('p', { class: 'crumbs no-print' }, groupLink(group), ' · ', h('button', { type: 'button', id: 'print-report' }, 'Print this report')),
      h('h1', {}, `Drill report: ${group}`),
      h('article', { id: 'drill-report', class: 'report' },
        kv([
          ['Drill', h('span', { class: 'mono' }, d.id)],
          ['Result', h('span', { id: 'drill-result', class: `badge s-${String(d.state).toLowerCase()}` }, d.state)],
          ['Started', [time(d.started), sub(d.slot ? ['for the schedule\'s slot ', time(d.slot)] : 'on request')]],
          d.ended && ['Ended', time(d.ended)],
          ['Recovery point', [h('span', { class: 'mono' }, d.point || '—'), d.pointTime ? sub(['taken ', time(d.pointTime), `, ${dur(d.pointAgeSeconds)} before the drill`]) : null]],
          ['RTO', d.rtoSeconds ? `${dur(d.rtoSeconds)} to every VM healthy` : '—'],
          ['Cleanup', h('span', { class: 'wrap' }, d.cleanup || (done ? '—' : 'pending'))],
          d.error && ['Error', h('span', { class: 'error wrap' }, d.error)],
        ]),
        h('h2', {}, 'VMs and their boot evidence'),
        tableWrap(h('table', { id: 'drill-vms' }, thead('VM', 'Evidence'),
          h('tbody', {}, (d.vms || []).map((v) => h('tr', {}, h('th', { scope: 'row' }, v.name), h('td', { class: 'wrap mono small' }, v.evidence || '—')))))),
        h('h2', {}, 'Checks'),
        (d.checks || []).length ? h('ol', { id: 'drill-checks', class: 'checks' }, d.checks.map((c) => h('li', { 'data-passed': String(c.passed) },
          h('div', {}, h('strong', {}, c.name), ` on ${c.vm} (${c.kind}) `, h('span', { class: `badge ${c.passed ? 's-succeeded' : 's-failed'}` }, c.passed ? 'passed' : 'failed'),
            ` ${dur((new Date(c.ended) - new Date(c.started)) / 1000)}`),
          c.reason ? h('div', { class: 'error' }, c.reason) : null,
          c.output ? h('pre', { class: 'output' }, c.output) : null))) : h('p', { class: 'muted' }, done ? 'No checks.' : 'Not run yet.'),
        h('h2', {}, 'Steps'),
        h('ol', { id: 'drill-steps', class: 'steps' }, (d.steps || []).map(stepItem))),
    ]);
    const print = $('print-report');
    if (print) print.onclick = () => window.print();
    return !done;
  }

  // ---------- #/jobs ----------
  async function renderJobs(gen) {
    let jobs, problem = null;
    try { jobs = ((await api('/jobs?limit=50')) || {}).jobs || []; } catch (e) {
      if (e.status === 401 || e.status === 0) throw e;
      problem = e;
    }
    if (gen !== S.gen) return;
    patch($('view'), [h('h1', {}, 'Recent jobs'), problem ? h('p', { class: 'error' }, `Could not list the jobs: ${problem.message}`) : jobsTable(jobs, true)]);
  }

  // ---------- #/jobs/<id> ----------
  async function renderJob(gen, id) {
    let j;
    try { j = await api(`/jobs/${encodeURIComponent(id)}`); } catch (e) {
      if (e.status !== 404 && e.status !== 400) throw e;
      if (gen === S.gen) patch($('view'), [h('h1', {}, 'Job'), h('p', { class: 'error' }, e.message), h('p', {}, h('a', { href: '#/jobs' }, 'Recent jobs'))]);
      return false;
    }
    if (gen !== S.gen || !j) return;
    const done = TERMINAL.has(j.state);
    const steps = j.steps || [];
    patch($('view'), [
      h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, '← Recent jobs'), j.group ? [' · ', groupLink(j.group)] : null),
      h('h1', {}, `${j.type || 'Job'} job `, h('span', { class: 'mono small' }, j.id)),
      kv([
        ['State', [h('span', { id: 'job-state', class: `badge s-${String(j.state).toLowerCase()}` }, j.state), done ? '' : h('span', { class: 'muted' }, ' (refreshing every second)')]],
        ['Type', j.type],
        j.group && ['Group', groupLink(j.group)],
        j.plan && ['Plan', j.plan],
        j.parent && ['Started by plan job', jobLink(j.parent)],
        j.recoveryPoint && ['Recovery point asked', h('span', { class: 'mono' }, j.recoveryPoint)],
        j.point && ['Recovery point used', h('span', { class: 'mono' }, j.point)],
        ['Created', time(j.createdAt)],
        ['Updated', time(j.updatedAt)],
        ['Duration', dur(((done ? new Date(j.updatedAt) : Date.now()) - new Date(j.createdAt)) / 1000)],
      ]),
      j.error ? h('div', { class: 'error-box', id: 'job-error' }, h('strong', {}, 'Error: '), j.error) : null,
      h('h2', {}, `Steps (${steps.filter((s) => s.state === 'done').length} of ${steps.length} done)`),
      h('ol', { id: 'job-steps', class: 'steps' }, steps.map(stepItem)),
      resultTable(j.result),
    ]);
    return !done;
  }
  function stepItem(s) {
    const started = toDate(s.started), ended = toDate(s.ended);
    return h('li', { class: `step step-${s.state || 'pending'}`, 'data-state': s.state || 'pending' },
      h('div', { class: 'step-head' }, h('strong', { class: 'step-name' }, s.name), ' ', h('span', { class: `badge s-${s.state || 'pending'}` }, s.state || 'pending'),
        s.tries > 1 ? h('span', { class: 'muted' }, ` ${s.tries} tries`) : null),
      started ? h('div', { class: 'sub' }, 'started ', time(s.started), ended ? [', ended ', time(s.ended), ` (${dur((ended - started) / 1000)})`] : null) : null,
      s.outcome ? h('div', { class: 'step-outcome wrap' }, s.outcome) : null);
  }
  function resultTable(result) {
    const entries = Object.entries(result || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!entries.length) return null;
    return [h('h2', {}, 'Result'), tableWrap(h('table', { id: 'job-result' }, thead('Key', 'Value'),
      h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row', class: 'mono' }, k),
        h('td', { class: 'wrap' }, String(v).length > 160 || String(v).includes('\n')
          ? h('details', {}, h('summary', {}, `${String(v).length} characters`), h('pre', {}, String(v)))
          : String(v)))))))];
  }

  // ---------- actions ----------
  const ACTIONS = {
    'test-failover': { op: 'test', label: 'Test failover', point: true, submit: 'Start test failover',
      desc: 'Brings the group\'s VMs up from the chosen recovery point in the isolated test subnet, while replication goes on. Clean it up when the drill is over.',
      req: (g, p) => [`/groups/${g}/failover`, { type: 'test', recoveryPoint: p }] },
    drill: { op: 'drill', label: 'Drill now', point: true, submit: 'Start drill',
      desc: 'A test failover that proves itself: the VMs come up from the chosen point in the isolated test subnet, the drill\'s checks run in them, and everything is cleaned up — also when a check fails. The report stays.',
      req: (g, p) => [`/groups/${g}/drills`, { recoveryPoint: p }] },
    'cleanup-test': { op: 'cleanup-test-failover', label: 'Clean up test', submit: 'Clean up',
      desc: 'Deletes the test failover\'s VMs and disks and releases the recovery points it held.',
      req: (g) => [`/groups/${g}/cleanup-test-failover`] },
    'planned-failover': { op: 'planned', label: 'Planned failover', confirm: true, danger: true, submit: 'Fail over (planned)',
      desc: 'Stops the source: the agent stops taking writes, flushes and reports its last write; Standby applies everything and brings the VMs up in the target region — no data is lost. Needs a Protected group. Replication this way stops.',
      req: (g) => [`/groups/${g}/failover`, { type: 'planned' }] },
    'unplanned-failover': { op: 'unplanned', label: 'Unplanned failover', point: true, confirm: true, danger: true, submit: 'Fail over now',
      desc: 'Fails over at once to the chosen recovery point without waiting for the source (for when the source site is down). Writes after that point are lost. Replication this way stops.',
      req: (g, p) => [`/groups/${g}/failover`, { type: 'unplanned', recoveryPoint: p }] },
    'change-point': { op: 'change-recovery-point', label: 'Change recovery point', point: true, submit: 'Change point',
      desc: 'Deletes the failed-over VMs and makes them again from another recovery point. Possible until the failover is committed.',
      req: (g, p) => [`/groups/${g}/change-recovery-point`, { recoveryPoint: p }] },
    commit: { op: 'commit', label: 'Commit', confirm: true, danger: true, submit: 'Commit failover',
      desc: 'Finalizes the failover: the other recovery points are deleted and the point can no longer change. Needed before reprotect.',
      req: (g) => [`/groups/${g}/commit`] },
    reprotect: { op: 'reprotect', label: 'Reprotect', submit: 'Reprotect',
      desc: 'Starts replicating back, from the failed-over VMs to the original disks, through the peer site (only the blocks that differ travel). Needs a committed failover; after a failback it resumes replication in the first direction.',
      req: (g) => [`/groups/${g}/reprotect`] },
    failback: { op: 'failback', label: 'Failback', confirm: true, danger: true, submit: 'Fail back',
      desc: 'Runs a planned failover back to the original region through the peer site. Needs a Reprotected group.',
      req: (g) => [`/groups/${g}/failback`] },
    resync: { label: 'Resync', submit: 'Request resync',
      desc: 'Asks the agent for a checksum resync: it compares every disk with its replica and sends the blocks that differ. Replication stops at its watermark until the resync arrives.',
      req: (g) => [`/groups/${g}/resync`] },
  };

  // actionBar offers the actions the group's state admits now (allowedOperations, the API's own rules)
  // and says why each other one is not offered (notAllowed). Resync is offered while replicating.
  function actionBar(group) {
    const allowed = new Set(group.allowedOperations || []);
    const why = new Map((group.notAllowed || []).map((n) => [n.operation, n.reason]));
    const offered = Object.entries(ACTIONS).filter(([, a]) => (a.op ? allowed.has(a.op) : group.replicating));
    const held = Object.entries(ACTIONS).filter(([, a]) => a.op && why.has(a.op));
    return h('div', {},
      h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' },
        offered.length ? offered.map(([k, a]) => h('button', { type: 'button', 'data-action': k, class: a.danger ? 'danger' : null }, a.label))
          : h('p', { class: 'note' }, 'No action is possible in this state.')),
      held.length ? h('details', { id: 'not-offered' }, h('summary', {}, `Not offered now (${held.length})`),
        h('ul', {}, held.map(([, a]) => h('li', {}, h('strong', {}, a.label), ': ', why.get(a.op))))) : null);
  }

  const A = { action: '', trigger: null, busy: false };
  // Local datetime-local value of a time ("YYYY-MM-DDTHH:MM:SS").
  function localInput(d) {
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function openAction(action, trigger) {
    const a = ACTIONS[action], c = S.current;
    if (!a || !c || S.role !== 'operator') return;
    const dlg = $('action-dialog');
    if (dlg.open) return;
    Object.assign(A, { action, trigger, busy: false });
    const name = (c.group && c.group.group) || c.name;
    $('action-title').textContent = `${a.label}: ${name}`;
    $('action-desc').textContent = a.desc;
    $('action-error').textContent = '';
    $('action-submit').textContent = a.submit;
    $('action-submit').classList.toggle('danger', !!a.danger);
    const fields = [];
    if (a.point) fields.push(pointFields(c));
    if (a.confirm) {
      fields.push(h('div', { class: 'field' },
        h('label', { for: 'confirm-name' }, 'Type the group\'s name, ', h('strong', { class: 'mono' }, name), ', to confirm'),
        h('input', { id: 'confirm-name', type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'action-desc' })));
    }
    $('action-fields').replaceChildren(...fields);
    updateSubmit();
    dlg.showModal();
    // Focus the first thing to fill in; for an action without inputs, Cancel (Enter must not start it).
    const first = $('point-choice') || $('confirm-name') || $('action-cancel');
    first.focus();
  }

  function pointFields(c) {
    const sel = h('select', { id: 'point-choice' },
      h('option', { value: 'latest' }, 'Latest (lowest RPO)'),
      h('option', { value: 'latestProcessed', selected: true }, 'Latest processed (lowest RTO)'),
      h('option', { value: 'latestAppConsistent' }, 'Latest app-consistent'));
    const pts = (c.points && c.points.status === 'fulfilled' && c.points.value.points) || [];
    if (pts.length) {
      sel.append(h('optgroup', { label: 'Recovery points' }, pts.map((p) =>
        h('option', { value: p.id }, `${new Date(p.sourceTime).toLocaleString()} · ${kindLabel(p.kind)}`))));
    }
    sel.append(h('option', { value: 'custom' }, 'A custom time (any point in the restorable window)…'));
    const win = (c.points && c.points.status === 'fulfilled' && c.points.value.window) || {};
    const newest = toDate(win.to) || (pts[0] && toDate(pts[0].sourceTime)) || new Date();
    const timeField = h('div', { class: 'field', id: 'point-time-field', hidden: true },
      h('label', { for: 'point-time' }, 'Custom time (your local time, to the second)'),
      h('input', { id: 'point-time', type: 'datetime-local', step: '1', value: localInput(newest), disabled: true }),
      win.from ? h('p', { class: 'hint' }, 'Restorable from ', time(win.from), ' to ', time(win.to),
        win.journalCovers ? ' (any point in time).' : ' (the journal does not cover it all: a time restores to the point before it).') : null);
    return h('div', { class: 'field' }, h('label', { for: 'point-choice' }, 'Recovery point'), sel, timeField);
  }

  function updateSubmit() {
    const a = ACTIONS[A.action];
    const c = S.current;
    const name = c && ((c.group && c.group.group) || c.name);
    const confirmOK = !a || !a.confirm || ($('confirm-name') && $('confirm-name').value === name);
    $('action-submit').disabled = A.busy || !confirmOK;
  }

  // chosenPoint is the select's value, a custom time as RFC 3339 UTC, or null (with the error shown).
  function chosenPoint() {
    const v = $('point-choice').value;
    if (v !== 'custom') return v;
    const raw = $('point-time').value;
    const d = raw ? new Date(raw) : null; // a datetime-local value without an offset is local time
    if (!d || isNaN(d)) { $('action-error').textContent = 'Enter the custom time, or choose another recovery point.'; $('point-time').focus(); return null; }
    return d.toISOString().replace('.000Z', 'Z');
  }

  async function submitAction() {
    const a = ACTIONS[A.action], c = S.current;
    if (!a || !c || A.busy) return;
    updateSubmit();
    if ($('action-submit').disabled) return;
    $('action-error').textContent = '';
    let point;
    if (a.point && (point = chosenPoint()) === null) return;
    const [path, body] = a.req(encodeURIComponent(c.name), point);
    A.busy = true;
    updateSubmit();
    $('action-submit').setAttribute('aria-busy', 'true');
    try {
      const res = await api(path, { method: 'POST', body });
      $('action-dialog').close();
      if (res && res.id && Array.isArray(res.steps)) { location.hash = `#/jobs/${encodeURIComponent(res.id)}`; return; }
      setStatus(A.action === 'resync' ? `Resync requested: the group is ${(res && res.state) || 'updated'}.` : `${a.label} accepted.`);
      if (S.current === c) { c.pointKey = null; poll((gen) => renderGroup(gen, c), 5000); }
    } catch (e) {
      if (e.status === 401) { signOut('The key is no longer accepted (401). Sign in again.'); return; }
      $('action-error').textContent = e.message;
    } finally {
      A.busy = false;
      $('action-submit').removeAttribute('aria-busy');
      if ($('action-dialog').open) updateSubmit();
    }
  }

  // ---------- wiring ----------
  function init() {
    // A key in the URL (?code=) is taken and removed from the address bar at once, keeping the hash.
    const params = new URLSearchParams(location.search);
    let key = params.get('code');
    if (key !== null) {
      params.delete('code');
      const rest = params.toString();
      history.replaceState(history.state, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
    }
    if (!key) { try { key = sessionStorage.getItem(KEY_STORE); } catch (e) { key = null; } }

    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = $('key').value.trim();
      if (!k) { $('key-error').textContent = 'Enter a function key.'; $('key').focus(); return; }
      $('key-submit').disabled = true;
      signIn(k).catch(() => setStatus('Signing in failed unexpectedly.', true)).finally(() => { $('key-submit').disabled = false; });
    });
    $('sign-out').addEventListener('click', () => signOut(''));
    $('skip-link').addEventListener('click', (ev) => { ev.preventDefault(); $('main').focus(); }); // #main is no route
    window.addEventListener('hashchange', () => { route(); if (S.role) $('main').focus({ preventScroll: true }); });

    $('view').addEventListener('click', (ev) => {
      const btn = ev.target.closest('button[data-action]');
      if (btn) openAction(btn.dataset.action, btn);
    });
    const dlg = $('action-dialog');
    $('action-form').addEventListener('submit', (ev) => { ev.preventDefault(); submitAction().catch((e) => { $('action-error').textContent = String(e && e.message); }); });
    $('action-cancel').addEventListener('click', () => dlg.close());
    dlg.addEventListener('input', (ev) => { if (ev.target.id === 'confirm-name') updateSubmit(); });
    dlg.addEventListener('change', (ev) => {
      if (ev.target.id !== 'point-choice') return;
      const custom = ev.target.value === 'custom';
      $('point-time-field').hidden = !custom;
      $('point-time').disabled = !custom;
      if (custom) $('point-time').focus();
    });
    dlg.addEventListener('close', () => {
      $('action-fields').replaceChildren();
      // Back to the button that opened it (a refresh keeps it, but look it up again to be sure).
      const btn = (A.trigger && A.trigger.isConnected) ? A.trigger : document.querySelector(`button[data-action="${A.action}"]`);
      if (btn && !location.hash.startsWith('#/jobs/')) btn.focus();
    });

    if (key) signIn(key).catch(() => setStatus('Signing in failed unexpectedly.', true));
    else $('key').focus();
  }

  // Nothing may reach the JS console: an unexpected rejection shows in #status instead.
  window.addEventListener('unhandledrejection', (ev) => { ev.preventDefault(); setStatus('Unexpected error: ' + ((ev.reason && ev.reason.message) || 'unknown'), true); });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
