import type { FastifyInstance } from 'fastify';
import type { Invocation } from '@hearth/api';
import { formatDurationMs } from '@hearth/core';
import type { ServerContext } from '../context.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A page a person can open from a status link: state, provenance, timings and the live log with
 * ANSI colours. Rendered on the server (works without JS); a small inline script follows the
 * live log over SSE and refreshes the status.
 */
export function registerPages(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/', async (_req, reply) => {
    const rows = await ctx.db.selectFrom('invocations').selectAll().orderBy('created_at', 'desc').limit(50).execute();
    const items = rows
      .map((r) => ctx.runs.toInvocation(r))
      .map((i) => `<tr><td><a href="/invocations/${esc(i.invocation_id)}">${esc(i.invocation_id)}</a></td><td class="s-${i.status}">${i.status}</td><td>${esc(i.name)}</td><td>${esc(i.repo)}</td><td>${esc(i.created_at)}</td></tr>`)
      .join('');
    reply.type('text/html; charset=utf-8');
    return page('hearth', `<h1>hearth</h1><table><tr><th>invocation</th><th>status</th><th>name</th><th>repo</th><th>created</th></tr>${items}</table>`);
  });

  app.get('/invocations/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const inv = await ctx.runs.get(id);
    reply.type('text/html; charset=utf-8');
    return page(`${inv.name} · hearth`, invocationBody(inv), id);
  });
}

function invocationBody(inv: Invocation): string {
  const t = inv.timings;
  const steps = (t.steps ?? [])
    .map((s) => `<li>step ${s.index + 1} <code>${esc(s.run)}</code>: ${formatDurationMs(s.duration_ms)}, exit ${s.exit_code ?? '—'}</li>`)
    .join('');
  const runner = inv.runner
    ? `${inv.runner.kind} runner <code>${esc(inv.runner.runner_id)}</code> on executor <code>${esc(inv.runner.executor_id)}</code> — ${esc(inv.runner.reason)}`
    : 'not assigned yet';
  const ms = (v: number | undefined) => (v === undefined ? '—' : formatDurationMs(v));
  return `
<h1>${esc(inv.name)}</h1>
<div id="meta">
<p>Status: <b id="status" class="s-${inv.status}">${inv.status}</b> <span id="reason">${esc(inv.status_reason)}</span> · exit code <b id="exit">${inv.exit_code ?? '—'}</b></p>
<p>Repo <code>${esc(inv.repo)}</code> · branch <code>${esc(inv.branch ?? '—')}</code> · commit <code>${esc(inv.commit_sha ?? '—')}</code></p>
<p>Runner: <span id="runner">${runner}</span></p>
<p>Timings: queued ${ms(t.queued_ms)} · runner ${ms(t.runner_acquire_ms)} · git sync ${ms(t.git_sync_ms)} · total ${ms(t.total_ms)}</p>
<ul id="steps">${steps}</ul>
</div>
<pre id="log"></pre>`;
}

function page(title: string, body: string, followId?: string): string {
  const script = followId
    ? `<script type="module">
const id = ${JSON.stringify(followId)};
const pre = document.getElementById('log');
const dec = new TextDecoder();
const es = new EventSource('/api/v1/invocations/' + encodeURIComponent(id) + '/log?offset=0');
es.onmessage = (e) => {
  const { data } = JSON.parse(e.data);
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  pre.insertAdjacentHTML('beforeend', ansiToHtml(dec.decode(bytes, { stream: true })));
};
es.addEventListener('end', () => { es.close(); setTimeout(() => location.reload(), 300); });
setInterval(async () => {
  if (es.readyState === 2) return;
  const r = await fetch('/api/v1/GetInvocation', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ invocation_id: id }) });
  if (!r.ok) return;
  const inv = await r.json();
  const s = document.getElementById('status'); s.textContent = inv.status; s.className = 's-' + inv.status;
  document.getElementById('reason').textContent = inv.status_reason;
}, 2000);
const COLORS = ['#000','#c33','#3a3','#cc3','#36c','#c3c','#3cc','#ccc'];
const BRIGHT = ['#666','#f66','#6f6','#ff6','#69f','#f6f','#6ff','#fff'];
let style = { fg: null, bold: false };
function esc(s) { return s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]); }
function ansiToHtml(text) {
  let out = '';
  const parts = text.split(/\\x1b\\[([0-9;]*)m/);
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 1) {
      for (const code of (parts[i] || '0').split(';').map(Number)) {
        if (code === 0) style = { fg: null, bold: false };
        else if (code === 1) style.bold = true;
        else if (code === 22) style.bold = false;
        else if (code >= 30 && code <= 37) style.fg = COLORS[code - 30];
        else if (code >= 90 && code <= 97) style.fg = BRIGHT[code - 90];
        else if (code === 39) style.fg = null;
      }
      continue;
    }
    const t = esc(parts[i].replace(/\\x1b\\[[0-9;?]*[A-Za-z]/g, ''));
    if (!t) continue;
    out += style.fg || style.bold ? '<span style="' + (style.fg ? 'color:' + style.fg + ';' : '') + (style.bold ? 'font-weight:bold' : '') + '">' + t + '</span>' : t;
  }
  return out;
}
</script>`
    : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}pre{background:#111;color:#ddd;padding:1em;overflow:auto;white-space:pre-wrap;font:12px ui-monospace,monospace}
.s-succeeded{color:#181}.s-failed,.s-timed_out{color:#b11}.s-cancelled{color:#888}.s-running{color:#16b}.s-queued{color:#a70}td,th{padding:2px 8px;text-align:left}</style>
</head><body>${body}${script}</body></html>`;
}
