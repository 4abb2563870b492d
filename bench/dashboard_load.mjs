// Experiment page load in headless Chromium: 10,000 trials against 100
// (baseline), both from the store server_bench leaves with --keep.
//   build/bin/server_bench --keep /tmp/ty-dash
//   node bench/dashboard_load.mjs /tmp/ty-dash        (target: <= 2 s)
// Time = navigation until the page has rendered its table and charts
// (body[data-ready]), median of 5 cold loads each.
import os from 'node:os';
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(join(root, 'ui', 'package.json'))('playwright-core');
const data = process.argv[2] || '/tmp/ty-dash';
const bin = process.env.TRAINYARD_BIN || join(root, 'build/bin/trainyard');

const server = spawn(bin, ['--data-dir', data, 'server', '--port', '0', '--run-as', os.userInfo().username], { stdio: ['ignore', 'pipe', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  const on = (b) => { out += b; const m = out.match(/listening on (http:\/\/\S+)/); if (m) resolve(m[1]); };
  server.stdout.on('data', on);
  server.stderr.on('data', on);
  server.on('exit', () => reject(new Error(out)));
});
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
});
async function load(name) {
  const times = [];
  for (let i = 0; i < 5; ++i) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await ctx.newPage();
    const t0 = performance.now();
    await page.goto(`${url}/#/experiments/${name}`);
    await page.waitForSelector(`body[data-ready="/experiments/${name}"]`, { timeout: 60000 });
    times.push(performance.now() - t0);
    const rows = await page.locator('#trials tbody tr').count();
    const lines = await page.getAttribute('#parallel', 'data-lines');
    if (i === 0) console.log(`${name}: ${rows} rows on the first page, ${lines} lines in the parallel plot`);
    await ctx.close();
  }
  times.sort((a, b) => a - b);
  return times[2];
}
const small = await load('small-sweep');
const big = await load('big-sweep');
console.log(`experiment page, 100 trials:    ${small.toFixed(0)} ms`);
console.log(`experiment page, 10,000 trials: ${big.toFixed(0)} ms  (target <= 2000)  ratio ${(big / small).toFixed(2)}`);
await browser.close();
server.kill('SIGTERM');
