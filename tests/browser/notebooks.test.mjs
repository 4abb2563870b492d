// Notebooks in Debian's headless Chromium (playwright-core), as a user
// meets them: sign in, start a notebook from the dashboard, open it through
// the server's proxy, make a Python notebook and run a cell that imports
// torch (the kernel speaks WebSocket through the proxy); another user gets
// 403; a cross-origin request and WebSocket are refused; the server
// restarted while the notebook runs -> it still answers through the proxy
// and the page runs a cell again; idle culling stops it after its short
// idleTimeout and the saved notebook survives in the workspace.
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer, until } from './server.mjs';

const SOURCE = process.env.TRAINYARD_SOURCE_DIR || join(import.meta.dirname ?? '.', '../..');
const { chromium } = createRequire(join(SOURCE, 'ui', 'package.json'))('playwright-core');
const BIN = process.env.TRAINYARD_BIN;
const ARTIFACTS = process.env.TRAINYARD_ARTIFACTS || join(tmpdir(), 'trainyard-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });
if (!existsSync('/usr/bin/jupyter-notebook')) {
  console.error('SKIPPED LOUDLY: /usr/bin/jupyter-notebook is missing (apt-get install jupyter-notebook python3-ipykernel); notebooks untested');
  process.exit(77);
}
const dir = mkdtempSync(join(tmpdir(), 'ty-notebooks-'));
const data = join(dir, 'data');
const ALICE = 'alice-token-0123456789abcdef', BOB = 'bob-token-0123456789abcdef';
writeFileSync(join(dir, 'tokens.yaml'), `tokens:\n  - {token: ${ALICE}, user: alice}\n  - {token: ${BOB}, user: bob}\n`, { mode: 0o600 });

// The first server on any free port; after a restart, on the same one.
const start = (port = 0) => startServer(BIN, data, ['--auth', join(dir, 'tokens.yaml')], port);
// A request with headers fetch() would not send (Origin, Upgrade).
function raw(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => text += c);
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode, text: '' }); });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

let server = await start();
const port = new URL(server.url).port;
const auth = (t) => ({ Authorization: `Bearer ${t}` });
const notebooks = async () => (await (await fetch(server.url + '/api/v1/notebooks', { headers: auth(ALICE) })).json()).items;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
});
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  const page = await context.newPage();
  // Sign in.
  await page.goto(server.url + '/');
  await page.fill('input[name=token]', ALICE);
  await page.click('button[type=submit]');
  await page.waitForSelector('body[data-ready]');
  // New notebook from the dashboard.
  await page.goto(server.url + '/#/notebooks');
  await page.waitForSelector('body[data-ready="/notebooks"]');
  await page.click('#nbnew summary');
  await page.fill('#nbform input[name=name]', 'explore');
  await page.fill('#nbform input[name=cpu]', '500m');
  await page.fill('#nbform input[name=idle]', '30s');
  await page.click('#nbform button[type=submit]');
  await page.waitForSelector('tr[data-notebook="explore"] a[data-open]', { timeout: 120000 });
  await page.screenshot({ path: join(ARTIFACTS, 'notebooks.png') });
  // Open it through the proxy (a new tab), then New > Python 3.
  const [tree] = await Promise.all([context.waitForEvent('page'), page.click('tr[data-notebook="explore"] a[data-open]')]);
  await tree.waitForSelector('#new-dropdown-button', { timeout: 60000 });
  assert.equal(new URL(tree.url()).pathname, '/notebooks/alice/explore/tree');
  await tree.click('#new-dropdown-button');
  const [nb] = await Promise.all([context.waitForEvent('page'), tree.click('#kernel-python3 a')]);
  await nb.waitForSelector('#kernel_indicator_icon.kernel_idle_icon', { timeout: 120000 });
  const runCell = async (p, code, expect) => {
    const cells = await p.$$('.code_cell');
    await cells[cells.length - 1].click();
    await p.keyboard.insertText(code);
    await p.keyboard.press('Shift+Enter');
    await p.waitForFunction((want) => [...document.querySelectorAll('.output_area')].some((o) => o.textContent.includes(want)), expect, { timeout: 120000 });
  };
  await runCell(nb, 'import torch\nprint("sum", torch.tensor([1.0, 2.0, 3.5]).sum().item())', 'sum 6.5');
  await nb.keyboard.press('Control+s');
  await until('the notebook saved in the workspace', () => existsSync(join(data, 'workspaces', 'alice', 'Untitled.ipynb')), 30000);
  await nb.screenshot({ path: join(ARTIFACTS, 'notebook-cell.png') });
  // The Jupyter token never reaches the browser: not in a page, not in a cookie.
  const secret = readFileSync(join(data, 'notebooks', 'nb-alice-explore', 'jupyter-token'), 'utf8').trim();
  assert.ok(secret.length >= 32);
  assert.ok(!(await nb.content()).includes(secret), 'the Jupyter token is in the notebook page');
  assert.ok(!(await tree.content()).includes(secret), 'the Jupyter token is in the tree page');
  assert.ok(!(await context.cookies()).some((c) => c.value.includes(secret)), 'the Jupyter token is in a cookie');

  // Another user: 403 on the same URL, with or without the UI.
  const nbUrl = server.url + '/notebooks/alice/explore/tree';
  assert.equal((await fetch(nbUrl, { headers: auth(BOB) })).status, 403);
  assert.equal((await fetch(server.url + '/notebooks/alice/explore/api/contents', { headers: auth(BOB) })).status, 403);
  assert.equal((await fetch(nbUrl)).status, 401);
  // Cross-origin: a write and a WebSocket from another site's page are refused.
  const evil = { Origin: 'http://evil.example', ...auth(ALICE), 'Content-Type': 'application/json' };
  const write = await raw(server.url + '/notebooks/alice/explore/api/contents', { method: 'POST', headers: evil, body: '{"type":"notebook"}' });
  assert.equal(write.status, 403, write.text);
  assert.match(write.text, /origin/i);
  const kernels = await (await fetch(server.url + '/notebooks/alice/explore/api/kernels', { headers: auth(ALICE) })).json();
  assert.equal(kernels.length, 1);
  const wsPath = `/notebooks/alice/explore/api/kernels/${kernels[0].id}/channels`;
  const upgrade = { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  assert.equal((await raw(server.url + wsPath, { headers: { ...upgrade, ...auth(ALICE), Origin: 'http://evil.example' } })).status, 403);
  assert.equal((await raw(server.url + wsPath, { headers: { ...upgrade, ...auth(ALICE), Origin: server.url } })).status, 101);

  // The server restarted while the notebook runs: it answers through the proxy, and the page's kernel reconnects.
  server.proc.kill('SIGTERM');
  await new Promise((r) => server.proc.on('exit', r));
  server = await start(port);
  await until('the notebook through the restarted server', async () =>
    (await fetch(server.url + '/notebooks/alice/explore/api/status', { headers: auth(ALICE) })).status === 200, 60000);
  await runCell(nb, 'print("after", 6 * 7)', 'after 42');
  assert.equal((await notebooks())[0].state, 'Running');

  // Idle culling: with the pages closed nothing is active; after 30 s it is stopped, its workspace kept.
  await nb.close();
  await tree.close();
  await until('the idle notebook culled', async () => (await notebooks())[0].state === 'Culled', 180000);
  assert.ok(existsSync(join(data, 'workspaces', 'alice', 'Untitled.ipynb')), 'the workspace file is gone');
  const cells = JSON.parse(readFileSync(join(data, 'workspaces', 'alice', 'Untitled.ipynb'), 'utf8')).cells;
  assert.ok(cells.some((c) => c.source.join('').includes('torch.tensor')));
  await page.goto(server.url + '/#/notebooks');
  await page.waitForSelector('tr[data-notebook="explore"] .phase.Culled');
  await page.screenshot({ path: join(ARTIFACTS, 'notebooks-culled.png') });
} catch (e) {
  failed = e;
} finally {
  await browser.close();
  server.proc.kill('SIGTERM');
}
if (failed) {
  console.error(failed);
  console.error('--- server log ---\n' + server.log().slice(-4000));
  process.exit(1);
}
console.log('notebooks: all assertions passed');
