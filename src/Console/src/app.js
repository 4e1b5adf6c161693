// The console's shell: sign-in, the hash router (every view has a deep link), the header, and the
// refresh loop, which reads each view once per interval and backs off while the tab is hidden.
import { Api, ApiError, savedCredentials, saveCredentials, forgetCredentials, stats } from './api.js';
import { h } from './dom.js';
import * as views from './views.js';

const VISIBLE_INTERVAL_MS = 5000;
const HIDDEN_MAX_INTERVAL_MS = 120000;

const routes = [
  [/^#\/clusters\/([^/]+)\/services\/([^/]+)$/, ['cluster', 'service'], views.service],
  [/^#\/clusters\/([^/]+)\/tasks\/([^/]+)$/, ['cluster', 'task'], views.task],
  [/^#\/clusters\/([^/]+)$/, ['cluster'], views.cluster],
  [/^#\/clusters$/, [], views.clusters],
  [/^#\/task-definitions\/([^/]+)\/(\d+)$/, ['family', 'revision'], views.revision],
  [/^#\/task-definitions\/([^/]+)$/, ['family'], views.family],
  [/^#\/task-definitions$/, [], views.families],
  [/^#\/secrets$/, [], views.secrets],
  [/^#\/logs\/(.+)$/, ['group'], views.logGroup],
  [/^#\/logs$/, [], views.logGroups],
];

const NAV = [['#/clusters', 'Clusters'], ['#/task-definitions', 'Task definitions'], ['#/secrets', 'Secrets and parameters'], ['#/logs', 'Log groups']];

let api = null;
let current = null; // { view, timer, interval, generation }
let generation = 0;

const main = document.getElementById('main');
const header = document.getElementById('top');
const alerts = h('div', { class: 'alerts', role: 'alert', 'aria-live': 'assertive' });
const statusLine = h('p', { class: 'status-line', 'aria-live': 'off', id: 'status-line' });

/** Numbers the benchmark and the browser test read: requests sent, and the last refresh's calls and time. */
window.consoleStats = { stats, lastRefresh: null, firstRender: null };

function start() {
  const saved = savedCredentials();
  if (saved) api = new Api(saved);
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    if (current && !document.hidden) refreshNow();
  });
  document.addEventListener('keydown', shortcuts);
  route();
}

function shortcuts(e) {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName) || e.target.isContentEditable;
  if (typing) return;
  if (e.key === 'r') { e.preventDefault(); refreshNow(); }
  if (e.key === '/') {
    const search = main.querySelector('input[type=search]');
    if (search) { e.preventDefault(); search.focus(); }
  }
  const n = Number(e.key);
  if (n >= 1 && n <= NAV.length) { e.preventDefault(); location.hash = NAV[n - 1][0]; }
}

function renderHeader(title, crumbs = []) {
  const nav = api ? h('nav', { 'aria-label': 'Sections' },
    h('ul', {}, NAV.map(([hash, label], i) => h('li', {},
      h('a', { href: hash, 'aria-current': location.hash.startsWith(hash) ? 'page' : null, 'aria-keyshortcuts': String(i + 1) }, label))))) : null;
  header.replaceChildren(
    h('div', { class: 'brand' }, h('a', { href: '#/clusters' }, 'ECS console')),
    nav ?? '',
    api ? h('div', { class: 'who' },
      h('span', { class: 'key-id', title: 'Access key id of this session' }, `${api.credentials.accessKeyId} · ${api.region}`),
      h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out')) : '');
  const crumbNav = crumbs.length ? h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' },
    h('ol', {}, crumbs.map(([hash, label]) => h('li', {}, h('a', { href: hash }, label))), h('li', { 'aria-current': 'page' }, title))) : '';
  return [crumbNav, h('h1', {}, title)];
}

function signOut() {
  forgetCredentials();
  api = null;
  stopView();
  location.hash = '#/sign-in';
  route();
}

function stopView() {
  if (current?.timer) clearTimeout(current.timer);
  current = null;
  generation += 1;
}

function showError(action, error) {
  const message = error instanceof ApiError ? error.toString() : error?.code ? `${error.code}: ${error.message}` : String(error?.message ?? error);
  alerts.replaceChildren(h('p', { class: 'error' }, action ? `${action} failed: ` : '', h('span', { class: 'api-error' }, message),
    ' ', h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss', onclick: () => alerts.replaceChildren() }, '×')));
}

function route() {
  stopView();
  alerts.replaceChildren();
  statusLine.textContent = '';
  delete main.dataset.loaded;
  const hash = location.hash || '#/clusters';
  if (!api) { signInView(hash === '#/sign-in' ? '#/clusters' : hash); return; }
  if (hash === '#/sign-in' || hash === '#/' || hash === '#') { location.replace('#/clusters'); return; }
  const match = routes.map(([re, names, view]) => [hash.match(re), names, view]).find(([m]) => m);
  if (!match) {
    main.replaceChildren(...renderHeader('Not found'), h('p', {}, 'No view has this address. ', h('a', { href: '#/clusters' }, 'Clusters')));
    return;
  }
  const [m, names, factory] = match;
  const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(m[i + 1])]));
  const ctx = {
    api, params,
    go: (target) => { location.hash = target; },
    refreshNow: () => refreshNow(),
    act: (label, fn, { quiet = false, refresh: again = true } = {}) => act(label, fn, quiet, again),
  };
  const view = factory(ctx);
  document.title = `${view.title} · ECS console`;
  main.replaceChildren(...renderHeader(view.title, view.crumbs), alerts, view.node, statusLine);
  current = { view, timer: null, interval: VISIBLE_INTERVAL_MS, generation, first: true, again: false, opened: performance.now() };
  main.focus({ preventScroll: true });
  refresh(current);
}

async function act(label, fn, quiet, again) {
  alerts.replaceChildren();
  try {
    await fn();
    if (!quiet) alerts.replaceChildren(h('p', { class: 'ok' }, `${label}: done.`));
    if (again) await refreshNow();
  } catch (e) {
    showError(label, e);
  }
}

async function refresh(state) {
  if (state !== current || state.busy) return;
  state.busy = true;
  const before = stats.requests;
  const started = performance.now();
  try {
    await state.view.refresh();
    if (state !== current) return;
    const calls = stats.requests - before;
    const ms = performance.now() - started;
    window.consoleStats.lastRefresh = { view: location.hash, calls, ms };
    if (state.first) {
      state.first = false;
      window.consoleStats.firstRender = { view: location.hash, ms: performance.now() - state.opened, calls };
    }
    statusLine.textContent = `Updated ${new Date().toLocaleTimeString()} · ${calls} API calls in ${Math.round(ms)} ms${state.view.live === false ? '' : ' · refreshes every 5 s (press r to refresh now)'}`;
    main.dataset.loaded = 'true';
  } catch (e) {
    if (state === current) showError('Refresh', e);
  } finally {
    state.busy = false;
  }
  // Asked for while this refresh was in flight (after an action): its reads may predate the action, so read again now.
  if (state.again) {
    state.again = false;
    await refresh(state);
    return;
  }
  schedule(state);
}

function schedule(state) {
  if (state !== current || state.view.live === false) return;
  // Visible: every 5 s. Hidden: twice as long each time, up to 2 minutes; visible again refreshes at once.
  state.interval = document.hidden ? Math.min(HIDDEN_MAX_INTERVAL_MS, state.interval * 2) : VISIBLE_INTERVAL_MS;
  clearTimeout(state.timer);
  state.timer = setTimeout(() => refresh(state), state.interval);
}

async function refreshNow() {
  const state = current;
  if (!state) return;
  clearTimeout(state.timer);
  state.interval = VISIBLE_INTERVAL_MS;
  if (state.busy) { state.again = true; return; }
  await refresh(state);
}

function signInView(returnTo) {
  const keyId = h('input', { id: 'access-key-id', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: false });
  const secret = h('input', { id: 'secret-access-key', name: 'secretAccessKey', type: 'password', autocomplete: 'current-password', required: true });
  const region = h('input', { id: 'region', name: 'region', value: 'us-east-1', required: true, spellcheck: false });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', {
    class: 'sign-in', 'aria-label': 'Sign in',
    onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      alerts.replaceChildren();
      const credentials = { accessKeyId: keyId.value.trim(), secretAccessKey: secret.value, region: region.value.trim() };
      try {
        // A signed call proves the pair before it is kept.
        await new Api(credentials).call('ecs', 'ListClusters', { maxResults: 1 });
        saveCredentials(credentials);
        api = new Api(credentials);
        if (location.hash === returnTo) route(); else location.hash = returnTo;
      } catch (error) {
        showError('Sign-in', error);
        submit.disabled = false;
        secret.focus();
      }
    },
  },
  h('p', { class: 'hint' }, 'The key pair is kept in this browser tab only (sessionStorage) and signs each request here (SigV4); it is never sent.'),
  h('label', { for: 'access-key-id' }, 'Access key id'), keyId,
  h('label', { for: 'secret-access-key' }, 'Secret access key'), secret,
  h('label', { for: 'region' }, 'Region'), region,
  submit);
  document.title = 'Sign in · ECS console';
  main.replaceChildren(...renderHeader('Sign in'), alerts, form);
  keyId.focus();
}

start();
