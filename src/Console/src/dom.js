// Small DOM helpers: every text goes in as a text node (never as HTML), every style through CSSOM, so
// nothing the API returns can run as code and the content security policy needs no 'unsafe-inline'.

/** h('a', {href: '#/x', class: 'y', onclick: f}, 'text', child, [more]) */
export function h(tag, attributes = {}, ...children) {
  const element = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'style' && typeof value === 'object') Object.assign(element.style, value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function table(caption, headers, rows, empty = 'None.') {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'scroll' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c)))))));
}

export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), children);
}

export function status(value) {
  const v = String(value ?? '');
  const tone = /^(ACTIVE|RUNNING|COMPLETED|HEALTHY|healthy|PRIMARY|Successful|ENABLED|SUCCESSFUL|ROLLBACK_SUCCESSFUL|SUCCEEDED)$/.test(v) ? 'good'
    : /^(STOPPED|FAILED|UNHEALTHY|unhealthy|INACTIVE|Failed|DRAINING|ROLLBACK_FAILED)$/.test(v) ? 'bad'
      : v ? 'busy' : '';
  return h('span', { class: `status ${tone}` }, v || '—');
}

export function time(value) {
  if (value === undefined || value === null || value === '') return '—';
  const date = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return h('time', { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

export function shortArn(arn) {
  const s = String(arn ?? '');
  return s.slice(s.lastIndexOf('/') + 1) || s;
}

/** A horizontal bar: `value` of `max` with a label read out by screen readers; a part drawn narrower than its value (the share not already drawn by an earlier part) gives `width`. */
export function bar(label, parts, max) {
  const width = (v) => `${max > 0 ? Math.min(100, (v / max) * 100) : 0}%`;
  return h('div', { class: 'bar-row' },
    h('span', { class: 'bar-label' }, label),
    h('div', { class: 'bar', role: 'img', 'aria-label': `${label}: ${parts.map((p) => `${p.name} ${p.value}`).join(', ')} of ${max}` },
      parts.map((p) => h('span', { class: `bar-part ${p.kind}`, style: { width: width(p.width ?? p.value) }, title: `${p.name}: ${p.value}` }))),
    h('span', { class: 'bar-text' }, parts.map((p) => `${p.name} ${p.value}`).join(' · '), ` / ${max}`));
}

/** A line chart of one or more series [{name, points: [[t, v]...]}] as SVG; the numbers also as a table for screen readers. */
export function chart(title, series, { unit = '', max } = {}) {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return h('figure', { class: 'chart' }, h('figcaption', {}, title), h('p', { class: 'empty' }, 'No datapoints yet.'));
  const W = 600, H = 160, P = 28;
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  const top = max ?? Math.max(1, ...all.map((p) => p[1])) * 1.1;
  const x = (t) => P + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P - (v / top) * (H - 2 * P);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': title },
    h('svg:line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' }),
    h('svg:text', { x: 2, y: P - 6, class: 'tick' }, `${Math.round(top)}${unit}`),
    h('svg:text', { x: 2, y: H - P, class: 'tick' }, `0${unit}`),
    h('svg:text', { x: P, y: H - 6, class: 'tick' }, new Date(t0).toLocaleTimeString()),
    h('svg:text', { x: W - P, y: H - 6, class: 'tick end' }, new Date(t1).toLocaleTimeString()),
    series.map((s, i) => h('svg:polyline', {
      class: `line line-${i}`,
      points: s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' '),
    })));
  return h('figure', { class: 'chart' },
    h('figcaption', {}, title, ' ', series.map((s, i) => h('span', { class: `key key-${i}` }, s.name))),
    svg);
}

/** Asks before a destructive action; resolves true when confirmed. The native modal dialog keeps focus inside and closes on Escape. */
export function confirmDialog(question, confirmLabel = 'Confirm') {
  return new Promise((resolve) => {
    const close = (value) => () => dialog.close(value);
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-q' },
      h('p', { id: 'confirm-q' }, question),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: close('cancel') }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', 'data-confirm': '', onclick: close('ok') }, confirmLabel)));
    // Escape closes with an empty returnValue: a refusal.
    dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'ok'); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}
