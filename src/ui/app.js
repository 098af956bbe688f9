// The live cluster page. Plain browser JavaScript, no build step and no dependencies: it asks
// the node that served it for GET v1/overview about once a second (the node gathers the data
// from every other node and caches it), keeps the last minute of samples for the sparklines,
// and redraws. Lock names, owners, keys and node ids come from users and other nodes: every
// one of them enters the DOM as a text node (el() below), never as markup.
'use strict';

(() => {
  /** Samples kept per series (a minute at the default refresh). */
  const SAMPLES_MAX = 60;
  /** A request for the overview that takes longer than this is abandoned. */
  const FETCH_TIMEOUT_MS = 5000;
  /** Refresh when the node does not say (its overview cache time). */
  const DEFAULT_REFRESH_MS = 1000;
  /** Asked less often while the tab is hidden. */
  const HIDDEN_REFRESH_MS = 5000;
  /** A lease with less than this left is shown in red. */
  const LEASE_LOW_MS = 5000;

  const view = {
    overview: null,
    receivedAt: 0,
    lastError: null,
    lastSuccessAt: 0,
    history: new Map(),
    inspectKey: null,
    inspection: null,
    inspectError: null,
  };

  // ---- DOM helpers: text only ----------------------------------------------------------

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    return e;
  }

  function table(headers, rows) {
    const head = el('tr', null, headers.map((h) => {
      const [label, cls] = Array.isArray(h) ? h : [h, null];
      return el('th', { class: cls }, label);
    }));
    return el('div', { class: 'table-wrap' }, el('table', null, el('thead', null, head),
      el('tbody', null, rows)));
  }

  function show(id, ...content) {
    const target = document.getElementById(id);
    if (target !== null) {
      target.replaceChildren(...content.flat().filter((c) => c !== null && c !== undefined));
    }
  }

  // ---- formatting --------------------------------------------------------------------------

  function num(n) {
    return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
  }

  function bytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
  }

  function duration(ms) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
    if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
    if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor(ms / 1000) % 60} s`;
    return `${(ms / 3_600_000).toFixed(1)} h`;
  }

  function rate(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
    return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
  }

  function percent(v) {
    return typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : '–';
  }

  // ---- samples and rates -------------------------------------------------------------------

  /** Adds one sample of a counter taken at `t` (ms); a repeated `t` is ignored. */
  function sample(name, t, v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    const s = view.history.get(name) || [];
    if (s.length > 0 && s[s.length - 1].t === t) return;
    s.push({ t, v });
    while (s.length > SAMPLES_MAX + 1) s.shift();
    view.history.set(name, s);
  }

  /** Per-second rates between successive samples; a counter that went back (a restart) is a
   * gap, not a negative rate. */
  function rates(name) {
    const s = view.history.get(name) || [];
    const out = [];
    for (let i = 1; i < s.length; i++) {
      const dt = (s[i].t - s[i - 1].t) / 1000;
      const dv = s[i].v - s[i - 1].v;
      out.push(dt > 0 && dv >= 0 ? dv / dt : 0);
    }
    return out;
  }

  function sparkline(values, width = 170, height = 30) {
    const box = svg('svg', { class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`,
      role: 'img', 'aria-label': 'rate over the last minute' });
    if (values.length < 2) return box;
    const max = Math.max(...values, 1e-9);
    // Newest on the right; a short history is spread over at least a third of the line.
    const step = width / (Math.max(values.length, SAMPLES_MAX / 3) - 1);
    const x0 = width - (values.length - 1) * step;
    const pts = values.map((v, i) =>
      `${(x0 + i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
    box.append(svg('path', { d: `M${x0.toFixed(1)},${height} L${pts.join(' L')} ` +
      `L${width},${height} Z` }));
    box.append(svg('polyline', { points: pts.join(' ') }));
    return box;
  }

  // ---- reading the overview ----------------------------------------------------------------

  function raftOf(n) {
    return n.up && n.health && typeof n.health.raft === 'object' ? n.health.raft : null;
  }

  /** The node that says it leads with the highest term, else the leader most nodes name. */
  function lockLeader(nodes) {
    let best = null;
    for (const n of nodes) {
      const r = raftOf(n);
      if (r !== null && r.state === 'leader' && (best === null || r.term > best.term)) {
        best = { id: n.node, term: r.term };
      }
    }
    return best;
  }

  function cacheTotals(nodes) {
    let hits = 0;
    let misses = 0;
    for (const n of nodes) {
      if (n.up && n.stats) { hits += n.stats.hits || 0; misses += n.stats.misses || 0; }
    }
    return { hits, misses, ratio: hits + misses > 0 ? hits / (hits + misses) : null };
  }

  function recordSamples(ov) {
    const t = ov.generatedAt;
    const lock = ov.services.lock.nodes;
    const commits = Math.max(0, ...lock.map((n) => (raftOf(n) || {}).commitIndex || 0));
    if (lock.some((n) => raftOf(n) !== null)) sample('lock.commits', t, commits);
    const cache = ov.services.cache.nodes;
    if (cache.some((n) => n.up)) sample('cache.hits', t, cacheTotals(cache).hits);
    for (const n of cache) {
      if (n.up && n.stats && n.node) sample(`cache.hits.${n.node}`, t, n.stats.hits);
    }
  }

  // ---- sections ----------------------------------------------------------------------------

  function card(label, value, sub, extra, testid) {
    return el('div', { class: 'card', 'data-testid': testid },
      el('div', { class: 'label' }, label), el('div', { class: 'value' }, value),
      sub === null ? null : el('div', { class: 'sub' }, sub), extra);
  }

  function renderSummary(ov) {
    const s = ov.services;
    const all = [...s.lock.nodes, ...s.queue.nodes, ...s.cache.nodes];
    const up = all.filter((n) => n.up).length;
    const per = ['lock', 'queue', 'cache'].map((k) =>
      `${k} ${s[k].nodes.filter((n) => n.up).length}/${s[k].nodes.length}`).join(' · ');
    const leader = lockLeader(s.lock.nodes);
    const commitRates = rates('lock.commits');
    const locks = s.lock.locks || [];
    const waiting = locks.reduce((a, l) => a + l.waiters.length, 0);
    const held = locks.filter((l) => l.holders.length > 0).length;
    const totals = cacheTotals(s.cache.nodes);
    const hitRates = rates('cache.hits');
    const topics = s.queue.topics;
    show('summary',
      card('Nodes up', `${up} / ${all.length}`, per, null, 'nodes-up'),
      card('Lock leader', el('span', { 'data-testid': 'lock-leader',
        class: leader === null ? 'error' : null }, leader === null ? 'none' : leader.id),
      leader === null ? (s.lock.nodes.length === 0 ? 'no lock nodes' : 'election or no quorum')
        : `term ${leader.term}`, null, 'lock-leader-card'),
      card('Commits / s', rate(commitRates[commitRates.length - 1]), null,
        sparkline(commitRates), 'commit-rate'),
      card('Locks held', s.lock.locks === null ? '–' : num(held),
        s.lock.locks === null ? (s.lock.locksError || 'unknown') : `${num(waiting)} waiting`,
        null, 'locks-held'),
      card('Cache hit ratio', percent(totals.ratio),
        `${rate(hitRates[hitRates.length - 1])} hits/s`, sparkline(hitRates), 'hit-ratio'),
      card('Queue topics', topics === null ? '–' : num(s.queue.topicsTotal ?? topics.length),
        s.queue.nodes.length === 0 ? 'no queue nodes' : `${s.queue.nodes.length} nodes`,
        null, 'queue-topics'));
  }

  function statusCell(n) {
    return el('td', { 'data-field': 'status', title: n.error || null },
      el('span', { class: `dot ${n.up ? (n.error ? 'dot-warn' : 'dot-up') : 'dot-down'}` }),
      n.up ? 'up' : 'down');
  }

  function nodeRow(n, ov, cells) {
    const self = n.node === ov.servedBy.node && n.up;
    return el('tr', { 'data-node': n.node || n.url, 'data-up': String(n.up),
      class: `${n.up ? '' : 'is-down'} ${self ? 'is-self' : ''}`.trim() },
    el('td', { class: 'mono', title: n.url }, n.node || n.url), statusCell(n), cells);
  }

  /** A service this node knows no URL of. */
  function showNone(id, service, what) {
    show(id, el('div', { class: 'empty', 'data-testid': `no-${service}` }, `no ${what} ` +
      `(start them and pass their URLs with --system-urls ${service}=…)`));
  }

  function roleBadge(role) {
    return el('span', { class: `badge role-${role}`, 'data-field': 'role' }, role);
  }

  function renderLockNodes(ov) {
    const nodes = ov.services.lock.nodes;
    if (nodes.length === 0) return showNone('lock-nodes', 'lock', 'lock nodes');
    const commit = Math.max(0, ...nodes.map((n) => (raftOf(n) || {}).commitIndex || 0));
    const rows = nodes.map((n) => {
      const r = raftOf(n);
      if (r === null) {
        return nodeRow(n, ov, [el('td', null, roleBadge('down')),
          el('td', { class: 'wrap muted', colspan: 6 }, n.error || 'no Raft view')]);
      }
      return nodeRow(n, ov, [
        el('td', null, roleBadge(r.state)),
        el('td', { class: 'num' }, num(r.term)),
        el('td', { class: 'mono' }, r.leader || '–'),
        el('td', { class: 'num' }, num(r.commitIndex)),
        el('td', { class: 'num' }, num(r.appliedIndex)),
        el('td', { class: 'num', 'data-field': 'lag' }, num(commit - r.appliedIndex)),
        el('td', { class: 'num muted' }, n.latencyMs === undefined ? '–' : `${n.latencyMs} ms`),
      ]);
    });
    show('lock-nodes', table(['Node', 'Status', 'Role', ['Term', 'num'], 'Leader',
      ['Commit', 'num'], ['Applied', 'num'], ['Lag', 'num'], ['RTT', 'num']], rows));
  }

  function renderLocks(ov) {
    const s = ov.services.lock;
    if (s.locks === null) {
      show('locks', el('div', { class: 'empty error' }, s.locksError || 'unknown'));
      return;
    }
    if (s.locks.length === 0) {
      show('locks', el('div', { class: 'empty' }, 'no lock is held or waited on'));
      return;
    }
    const elapsed = Date.now() - view.receivedAt;
    const rows = s.locks.map((l) => el('tr', { 'data-testid': 'lock-row' },
      el('td', { class: 'mono name', 'data-field': 'name', title: l.name }, l.name),
      el('td', null, l.mode || 'free'),
      el('td', { class: 'wrap', 'data-field': 'holders' }, l.holders.length === 0 ? '–'
        : l.holders.map((h) => {
          const left = h.leaseMsRemaining - elapsed;
          return el('span', { class: 'holder', title: `expires at ${new Date(h.expiresAt)
            .toISOString()}` }, el('span', { class: 'mono' }, h.owner),
          ` · #${h.token}${h.mode === 'shared' ? ' · shared' : ''} · `,
          el('span', { class: left < LEASE_LOW_MS ? 'lease-low' : null }, duration(left)));
        })),
      el('td', { class: 'wrap', 'data-field': 'waiters' }, l.waiters.length === 0 ? '–'
        : l.waiters.map((w) => el('span', { class: 'waiter' }, el('span', { class: 'mono' },
          w.owner), w.mode === 'shared' ? ' · shared' : '')))));
    const more = s.locksTotal > s.locks.length
      ? el('div', { class: 'note' }, `showing ${s.locks.length} of ${num(s.locksTotal)} locks`)
      : null;
    show('locks', table(['Lock', 'Mode', 'Holders · token · lease left', 'Waiting'], rows), more);
  }

  function mesiCounts(states) {
    return ['M', 'E', 'S'].map((k) => el('span', { class: 'mesi-count' },
      el('span', { class: `mesi mesi-${k}` }, k), num((states || {})[k])));
  }

  /** A pod that answers but cannot serve everything says why in its /health. */
  function withCacheWarnings(n) {
    const h = n.health || {};
    const why = h.storeUp === false ? 'the backing store is not reachable'
      : h.startupGrace === true ? 'in start-up grace: waiting out copies of its earlier life'
        : null;
    return why === null || n.error ? n : { ...n, error: why };
  }

  function renderCacheNodes(ov) {
    const nodes = ov.services.cache.nodes;
    if (nodes.length === 0) return showNone('cache-nodes', 'cache', 'cache pods');
    const rows = nodes.map((pod) => {
      const n = withCacheWarnings(pod);
      const st = n.up ? n.stats : null;
      if (!st) {
        return nodeRow(n, ov, [el('td', { class: 'wrap muted', colspan: 7 },
          n.error || 'no statistics')]);
      }
      const total = st.hits + st.misses;
      const used = st.capacityBytes > 0 ? Math.min(1, st.bytes / st.capacityBytes) : 0;
      const hitRates = rates(`cache.hits.${n.node}`);
      return nodeRow(n, ov, [
        el('td', { class: 'num' }, total > 0 ? percent(st.hits / total) : '–'),
        el('td', null, sparkline(hitRates, 56, 18), ' ',
          el('span', { class: 'muted' }, rate(hitRates[hitRates.length - 1]))),
        el('td', { class: 'num' }, num(st.entries)),
        el('td', { class: 'num', title: `${bytes(st.bytes)} of ${bytes(st.capacityBytes)} ` +
          `(${percent(used)})` }, bytes(st.bytes)),
        el('td', null, mesiCounts(st.states)),
        el('td', { class: 'num' }, st.dirtyBytes === undefined ? '–' : bytes(st.dirtyBytes)),
      ]);
    });
    show('cache-nodes', table(['Pod', 'Status', ['Hit %', 'num'], 'Hits / s',
      ['Entries', 'num'], ['Bytes', 'num'], 'M · E · S', ['Dirty', 'num']], rows));
  }

  /** Partition → the view of the node with the highest term for it. */
  function partitionsOf(nodes) {
    const parts = new Map();
    for (const n of nodes) {
      if (!n.up || !n.health || !Array.isArray(n.health.partitions)) continue;
      for (const p of n.health.partitions) {
        const cur = parts.get(p.partition);
        const replicas = (cur ? cur.replicas : 0) + 1;
        const better = !cur || p.term > cur.term ||
          (p.term === cur.term && p.leader && !cur.leader);
        parts.set(p.partition, better ? { ...p, replicas } : { ...cur, replicas });
      }
    }
    return [...parts.values()].sort((a, b) => a.partition - b.partition);
  }

  function topicRow(t) {
    const groups = t && typeof t.groups === 'object' && t.groups !== null ? Object.values(t.groups)
      : [];
    const ready = groups.reduce((a, g) => a + (g.ready || 0), 0);
    const inflight = groups.reduce((a, g) => a + (g.inflight || 0), 0);
    return el('tr', null, el('td', { class: 'mono name', title: t.topic }, t.topic),
      el('td', { class: 'num' }, num(t.partition)), el('td', { class: 'mono' }, t.leader || '–'),
      el('td', { class: 'num' }, num(ready)), el('td', { class: 'num' }, num(inflight)),
      el('td', { class: 'num' }, duration(t.oldestAgeMs)),
      el('td', { class: `num ${t.dlq > 0 ? 'error' : ''}` }, num(t.dlq)));
  }

  function renderQueue(ov) {
    const q = ov.services.queue;
    if (q.nodes.length === 0) return showNone('queue', 'queue', 'queue nodes');
    const parts = partitionsOf(q.nodes);
    const rows = q.nodes.map((n) => {
      const hosted = n.up && n.health && Array.isArray(n.health.partitions)
        ? n.health.partitions : [];
      const led = hosted.filter((p) => p.state === 'leader').length;
      return nodeRow(n, ov, [el('td', { class: 'num' }, n.up ? num(hosted.length) : '–'),
        el('td', { class: 'num' }, n.up ? num(led) : '–'),
        el('td', { class: 'wrap muted' }, n.up ? '' : n.error || '')]);
    });
    const grid = el('div', { class: 'parts' }, parts.map((p) => el('span', {
      class: `part ${p.leader ? '' : 'no-leader'}`,
      title: `partition ${p.partition}: leader ${p.leader || 'none'}, term ${p.term}, ` +
        `${p.replicas} replicas answering` }, `P${p.partition}`)));
    const topics = q.topics === null
      ? el('div', { class: 'empty' }, q.topicsError || 'topics unknown')
      : q.topics.length === 0 ? el('div', { class: 'empty' }, 'no topics yet')
        : table(['Topic', ['Partition', 'num'], 'Leader', ['Depth', 'num'],
          ['In flight', 'num'], ['Oldest', 'num'], ['DLQ', 'num']], q.topics.map(topicRow));
    show('queue', table(['Node', 'Status', ['Partitions', 'num'], ['Leading', 'num'], ''], rows),
      el('h3', null, 'Partitions'), parts.length === 0
        ? el('div', { class: 'empty' }, 'no partition reported') : grid,
      el('h3', null, 'Topics'), topics);
  }

  function renderInspection() {
    if (view.inspectKey === null) {
      show('inspect', el('div', { class: 'empty' }, 'type a key to see its MESI line on every ' +
        'cache pod (M modified, E exclusive, S shared, I invalid)'));
      return;
    }
    if (view.inspection === null) {
      show('inspect', el('div', { class: view.inspectError ? 'empty error' : 'empty' },
        view.inspectError || 'asking the cache pods…'));
      return;
    }
    if (view.inspection.lines.length === 0) {
      showNone('inspect', 'cache', 'cache pods');
      return;
    }
    const rows = view.inspection.lines.map((l) => el('tr', { 'data-node': l.node || l.url,
      class: l.up ? null : 'is-down' },
    el('td', { class: 'mono' }, l.node || l.url),
    el('td', null, l.up ? el('span', { class: `mesi mesi-${l.state}`, 'data-field': 'state' },
      l.state) : el('span', { class: 'error', 'data-field': 'state' }, 'down')),
    el('td', { class: 'mono' }, l.home || '–', l.up && l.home === l.node ? ' (here)' : ''),
    el('td', { class: 'wrap muted' }, l.up ? (l.absent ? 'absent: the line records that ' +
      'the key does not exist' : '') : l.error || '')));
    show('inspect', el('div', { class: 'muted' }, 'key ', el('code', null, view.inspection.key)),
      table(['Pod', 'Line', 'Home', ''], rows),
      view.inspectError ? el('div', { class: 'note' }, view.inspectError) : null);
  }

  function renderFreshness() {
    const pill = document.getElementById('freshness');
    if (pill === null) return;
    const age = Date.now() - view.lastSuccessAt;
    if (view.overview === null) {
      pill.className = `pill ${view.lastError ? 'pill-bad' : 'pill-wait'}`;
      pill.textContent = view.lastError ? `no answer: ${view.lastError}` : 'connecting…';
    } else if (view.lastError) {
      pill.className = 'pill pill-bad';
      pill.textContent = `stale (${duration(age)} old): ${view.lastError}`;
    } else {
      pill.className = 'pill pill-ok';
      pill.textContent = `live · ${duration(Date.now() - view.overview.generatedAt)} old`;
    }
  }

  function render() {
    const ov = view.overview;
    renderFreshness();
    if (ov === null) return;
    const by = document.getElementById('served-by');
    if (by !== null) {
      by.replaceChildren('served by ', el('code', null, ov.servedBy.node),
        ` (${ov.servedBy.service})`);
    }
    renderSummary(ov);
    renderLockNodes(ov);
    renderLocks(ov);
    renderCacheNodes(ov);
    renderQueue(ov);
    renderInspection();
  }

  // ---- polling -----------------------------------------------------------------------------

  async function getJson(url) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch(url, { cache: 'no-store', signal: ac.signal,
        headers: { accept: 'application/json' } });
      const body = await res.json();
      if (!res.ok) {
        const e = body && body.error;
        throw new Error(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`);
      }
      return body;
    } catch (err) {
      throw new Error(err && err.name === 'AbortError' ? 'the node did not answer in time'
        : err && err.message ? err.message : String(err), { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async function refresh() {
    try {
      const ov = await getJson('v1/overview');
      view.overview = ov;
      view.receivedAt = Date.now();
      view.lastSuccessAt = view.receivedAt;
      view.lastError = null;
      recordSamples(ov);
    } catch (err) {
      view.lastError = err.message;
    }
    if (view.inspectKey !== null) await refreshInspection();
    render();
  }

  async function refreshInspection() {
    const key = view.inspectKey;
    try {
      const r = await getJson(`v1/overview/cache/${encodeURIComponent(key)}`);
      if (key === view.inspectKey) { view.inspection = r; view.inspectError = null; }
    } catch (err) {
      if (key === view.inspectKey) view.inspectError = err.message;
    }
  }

  async function loop() {
    await refresh();
    const every = document.hidden ? HIDDEN_REFRESH_MS
      : (view.overview && view.overview.refreshMs) || DEFAULT_REFRESH_MS;
    setTimeout(() => { void loop(); }, every);
  }

  function start() {
    const form = document.getElementById('inspect-form');
    const input = document.getElementById('inspect-key');
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const key = input.value;
      if (key.length === 0) return;
      view.inspectKey = key;
      view.inspection = null;
      view.inspectError = null;
      renderInspection();
      void refreshInspection().then(renderInspection);
    });
    renderInspection();
    void loop();
  }

  start();
})();
