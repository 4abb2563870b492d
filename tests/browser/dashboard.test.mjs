// The dashboard in Debian's headless Chromium, driven by playwright-core:
// loads each page, clicks through a job and an experiment, asserts what is
// shown, and saves screenshots (TRAINYARD_ARTIFACTS) as test artifacts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startServer, until } from './server.mjs';

// playwright-core is a dev dependency of ui/ (installed by the build's npm ci).
const SOURCE = process.env.TRAINYARD_SOURCE_DIR || join(import.meta.dirname ?? '.', '../..');
const { chromium } = createRequire(join(SOURCE, 'ui', 'package.json'))('playwright-core');

const BIN = process.env.TRAINYARD_BIN;
const ARTIFACTS = process.env.TRAINYARD_ARTIFACTS || join(tmpdir(), 'trainyard-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'ty-browser-'));
const data = join(dir, 'data');

const server = await startServer(BIN, data);
const env = { ...process.env, TRAINYARD_SERVER: server.url };
const ty = (...args) => execFileSync(BIN, args, { env, encoding: 'utf8' });
async function api(path) {
  const r = await fetch(server.url + '/api/v1' + path);
  return r.json();
}

function write(name, text) {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const job = (name, script) => `apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: ${name}}\nspec:\n  command: [/bin/sh, -c, ${JSON.stringify(script)}]\n  resources: {cpu: 100m}\n`;
// A long series (downsampled in the chart) and a short one.
ty('submit', write('long.yaml', job('curve-long', "seq 1 6000 | awk '{printf \"step=%d loss=%.6f\\n\", $1, 1/$1 + ($1 % 97 == 0 ? 0.5 : 0)}'; echo hello-output > $TRAINYARD_OUTPUT_DIR/notes.txt")));
ty('submit', write('short.yaml', job('curve-short', "for s in 1 2 3 4 5; do echo step=$s loss=0.$s; done")));
// Counters beside a result: epoch is the step key; epochs, steps and global_step are series, not results.
ty('submit', write('counters.yaml', job('counters', "for e in 1 2 3; do echo epoch=$e epochs=3 steps=$((e * 10)) global_step=$((e * 10)) accuracy=0.$e; done")));
// Steps with an epoch series beside them: epoch 1 is steps 1-2, epoch 2 steps 3-4.
ty('submit', write('epochs.yaml', job('by-epoch', "for s in 1 2 3 4; do echo step=$s epoch=$(( (s + 1) / 2 )) loss=0.$s; done")));
const sweep = (name, objectives, trials) => `apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {name: ${name}}
spec:
  ${objectives}
  algorithm: {name: random}
  parallelTrials: 3
  maxTrials: ${trials}
  seed: 3
  parameters:
    - {name: x, type: double, min: 0, max: 1}
    - {name: opt, type: categorical, values: [adam, sgd]}
  trialTemplate:
    spec:
      command: [/bin/sh, -c, "echo loss=\${trialParameters.x} size=$(awk 'BEGIN{print (1 - \${trialParameters.x})^2}')"]
      resources: {cpu: 100m}
`;
ty('submit', write('sweep.yaml', sweep('sweep', 'objective: {metric: loss, goal: minimize}', 8)));
// Early stopping: a grid, one trial at a time; x 0.1 and 0.2 finish, 0.9 and 0.95 report worse
// than their median and would run on for minutes: the median rule stops them (phase Stopped).
ty('submit', write('stopping.yaml', `apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {name: stopping}
spec:
  objective: {metric: loss, goal: minimize}
  algorithm: {name: grid}
  earlyStopping: {name: median, settings: {min_trials_required: 2, start_step: 2}}
  parallelTrials: 1
  maxTrials: 4
  parameters:
    - {name: x, type: discrete, values: [0.1, 0.2, 0.9, 0.95]}
  trialTemplate:
    spec:
      command: [/bin/sh, -c, "for s in 1 2 3; do echo step=$s loss=\${trialParameters.x}; done; case \${trialParameters.x} in 0.9*) sleep 300;; esac"]
      resources: {cpu: 100m}
`));
ty('submit', write('pareto.yaml', sweep('pareto', 'objective: {objectives: [{metric: loss, goal: minimize}, {metric: size, goal: minimize}]}', 6)));
await until('jobs and experiments to finish', async () => {
  const e = (await api('/experiments')).items;
  const j = await api('/jobs?state=active&limit=1');
  return e.length === 3 && e.every((x) => x.phase !== 'Running') && j.total === 0;
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
});
let failed = null;
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const ready = (path) => page.waitForSelector(`body[data-ready="${path}"]`, { timeout: 30000 });

  // Overview.
  await page.goto(server.url + '/');
  await ready('/');
  assert.equal(await page.textContent('[data-count="Succeeded"] .n'), '20', '4 jobs and 16 trial jobs succeeded');
  // Trials that early stopping ended are Stopped, not failures.
  assert.equal(await page.textContent('[data-count="Stopped"] .n'), '2', 'two trial jobs stopped early');
  assert.equal(await page.textContent('[data-count="Failed"] .n'), '0', 'nothing failed');
  await page.waitForSelector('text=curve-long');
  assert.match(await page.textContent('#exps'), /sweep/);
  assert.match(await page.textContent('#nodes'), /cores/);
  await page.screenshot({ path: join(ARTIFACTS, 'overview.png'), fullPage: true });
  // Live: a job submitted now shows up without a reload (the state stream).
  await page.waitForSelector('#live.on');
  ty('submit', write('live.yaml', job('arrives-live', 'echo hello')));
  await page.waitForSelector('#jobs >> text=arrives-live', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('[data-count="Succeeded"] .n')?.textContent === '21');

  // Job page: conditions, attempts, a downsampled chart, the log.
  await page.click('#jobs >> text=curve-long');
  await ready('/jobs/curve-long');
  assert.match(await page.textContent('#conds'), /Succeeded/);
  assert.match(await page.textContent('#attempts'), /worker-0/);
  await page.waitForSelector('#charts [data-metric="loss"][data-points]');
  const pts = Number(await page.getAttribute('#charts [data-metric="loss"]', 'data-points'));
  assert.ok(pts > 100 && pts <= 2000, `the chart got ${pts} points (downsampled from 6000)`);
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('step=6000'));
  assert.match(await page.textContent('#events'), /JobSucceeded/);
  // Its outputs, listed with sizes and previewed; how it was made.
  await page.waitForSelector('#outputs [data-output="notes.txt"]');
  assert.match(await page.textContent('#outputs [data-output="notes.txt"]'), /13 B/);
  await page.click('#outputs [data-output="notes.txt"] [data-preview]');
  await page.waitForFunction(() => document.getElementById('preview').textContent.includes('hello-output'));
  assert.match(await page.textContent('#record'), /local on/);
  await page.screenshot({ path: join(ARTIFACTS, 'job.png'), fullPage: true });

  // Smoothing changes what is drawn, not the data; log y; the data as CSV.
  await page.goto(server.url + '/#/jobs/curve-short');
  await ready('/jobs/curve-short');
  await page.waitForSelector('#charts [data-metric="loss"][data-drawn-last]');
  assert.equal(await page.getAttribute('#charts [data-metric="loss"]', 'data-drawn-last'), '0.5', 'unsmoothed: the last value');
  await page.$eval('#smooth', (e) => { e.value = '0.9'; e.dispatchEvent(new Event('input')); });
  const drawn = Number(await page.getAttribute('#charts [data-metric="loss"]', 'data-drawn-last'));
  assert.ok(drawn > 0.1 && drawn < 0.5, `smoothed last value ${drawn} lies between the first and the last`);
  await page.selectOption('#xaxis', 'relative');
  assert.equal(await page.getAttribute('#charts [data-metric="loss"]', 'data-xaxis'), 'relative');
  const firstX = Number(await page.getAttribute('#charts [data-metric="loss"]', 'data-first-x'));
  assert.ok(firstX >= 0 && firstX < 600, `seconds since the job started: ${firstX}`);
  await page.selectOption('#xaxis', 'step');
  assert.equal(await page.getAttribute('#charts [data-metric="loss"]', 'data-first-x'), '1');
  await page.check('#logy');
  assert.equal(await page.getAttribute('#charts [data-metric="loss"]', 'data-logy'), 'true');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button[data-csv="loss"]')]);
  const csvText = readFileSync(await download.path(), 'utf8');
  assert.deepEqual(csvText.trim().split('\n').map((l) => l.split(',').slice(0, 2).join(',')),
    ['step,value', '1,0.1', '2,0.2', '3,0.3', '4,0.4', '5,0.5'], 'the CSV has the raw points, not the smoothed ones');
  const [image] = await Promise.all([page.waitForEvent('download'), page.click('button[data-png="loss"]')]);
  assert.deepEqual([...readFileSync(await image.path()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG image');

  // The cluster page: nodes against capacity, the queues, who runs what, what waits and why.
  await page.click('nav >> text=Cluster');
  await ready('/cluster');
  assert.ok((await page.$$('#cnodes tr[data-node]')).length >= 1, 'a node row');
  assert.match(await page.textContent('#cqueues tr[data-queue="default"]'), /unlimited/);
  assert.match(await page.textContent('#cpending'), /nothing waits/);
  assert.match(await page.textContent('#cusers'), /nothing running/);
  const gate = join(dir, 'gate');
  ty('submit', write('busy.yaml', job('busy', `while [ ! -e ${gate} ]; do sleep 0.05; done`)));
  await page.waitForSelector('#cusers tr[data-user]', { timeout: 15000 });
  assert.match(await page.textContent('#cusers tr[data-user]'), /1\s*cpu 0\.1/, 'one running job holding 0.1 cpu');
  writeFileSync(gate, '');
  ty('submit', write('held.yaml', job('held', 'echo never').replace('  resources:', '  suspend: true\n  resources:')));
  await page.waitForSelector('#cpending tr[data-pending="held"]', { timeout: 15000 });
  await page.screenshot({ path: join(ARTIFACTS, 'cluster.png'), fullPage: true });
  assert.match(await page.textContent('#cpending tr[data-pending="held"]'), /suspended .*trainyard resume held/);

  // The epoch as the x axis, from the job's epoch series.
  await page.goto(server.url + '/#/jobs/by-epoch');
  await ready('/jobs/by-epoch');
  await page.waitForSelector('#charts [data-metric="loss"][data-first-x="1"][data-last-x="4"]');  // steps 1..4
  await page.selectOption('#xaxis', 'epoch');
  await page.waitForSelector('#charts [data-metric="loss"][data-xaxis="epoch"][data-last-x="2"]');  // epochs 1..2
  await page.screenshot({ path: join(ARTIFACTS, 'job-by-epoch.png'), fullPage: true });

  // Counters are not charted unless asked; the result is.
  await page.goto(server.url + '/#/jobs/counters');
  await ready('/jobs/counters');
  await page.waitForSelector('#charts [data-metric="accuracy"]');
  assert.deepEqual(await page.$$eval('#charts [data-metric]', (els) => els.map((e) => e.dataset.metric)), ['accuracy']);
  assert.match(await page.textContent('#hiddencounters'), /not charted: .*epochs/);
  await page.check('#counters');
  await page.waitForSelector('#charts [data-metric="steps"]');
  assert.ok((await page.$$('#charts [data-metric]')).length >= 3, 'counters charted when asked');

  // An experiment with early stopping: its stopped trials are on the chart, marked apart.
  await page.goto(server.url + '/#/experiments/stopping');
  await ready('/experiments/stopping');
  await page.waitForSelector('#objchart[data-stopped="2"]');
  // Every trial's curve, coloured by x, the stopped ones dashed, the median rule's start step marked.
  await page.waitForSelector('#curves[data-curves="4"]');
  await page.screenshot({ path: join(ARTIFACTS, 'experiment-early-stopping.png'), fullPage: true });
  assert.equal(await page.getAttribute('#curves', 'data-dashed'), '2');
  assert.equal(await page.getAttribute('#curves', 'data-rungs'), '2');
  assert.deepEqual(await page.$$eval('#curvecolor option', (o) => o.map((x) => x.textContent)), ['x']);
  assert.equal(await page.getAttribute('#objchart', 'data-points'), '2');

  // Experiment page: trial table sorted and filtered, charts.
  await page.goto(server.url + '/#/');
  await ready('/');
  await page.click('#exps >> text=sweep');
  await ready('/experiments/sweep');
  assert.equal(await page.locator('#trials tbody tr').count(), 8);
  await page.click('#trials th:has-text("loss")');  // sort by objective, ascending
  await page.waitForSelector('#trials th.sorted:has-text("loss")');
  const col = await page.locator('#trials tbody tr td:nth-child(4)').allTextContents();
  const values = col.map(Number);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), 'sorted by objective');
  await page.click('#trials th:has-text("loss")');  // descending
  await page.waitForSelector('#trials th.sorted:has-text("▼")');
  const desc = (await page.locator('#trials tbody tr td:nth-child(4)').allTextContents()).map(Number);
  assert.equal(desc[0], Math.max(...values));
  assert.match(await page.textContent('#best'), new RegExp(`loss=${String(Math.min(...values)).slice(0, 4)}`));
  assert.equal(await page.getAttribute('#parallel', 'data-lines'), '8');
  assert.equal(await page.getAttribute('#objchart', 'data-points'), '8');
  assert.equal(await page.getAttribute('#progress', 'data-progress'), '1');
  await page.selectOption('#tstate', 'Failed');
  await page.waitForSelector('#trials td.muted');  // nothing failed
  await page.selectOption('#tstate', '');
  await page.waitForFunction(() => document.querySelectorAll('#trials tbody tr').length === 8);
  await page.screenshot({ path: join(ARTIFACTS, 'experiment.png'), fullPage: true });

  // Compare two trials' curves from the trial table.
  const boxes = page.locator('#trials input[type=checkbox]');
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.click('#tcmp');
  await ready('/compare');
  await page.waitForSelector('#cchart[data-series="2"]');
  assert.equal((await page.getAttribute('#cchart', 'data-legend')).split(',').length, 2, 'one legend entry per job');
  await page.screenshot({ path: join(ARTIFACTS, 'compare.png'), fullPage: true });

  // Multi-objective: the Pareto front.
  await page.goto(server.url + '/#/experiments/pareto');
  await ready('/experiments/pareto');
  const front = Number(await page.getAttribute('#pareto', 'data-front'));
  const expected = (await api('/experiments/pareto')).paretoFront.length;
  assert.ok(front > 0 && front === expected, `Pareto front ${front} vs API ${expected}`);
  await page.screenshot({ path: join(ARTIFACTS, 'pareto.png'), fullPage: true });

  // An unknown job: the error is shown, not a blank page.
  await page.goto(server.url + '/#/jobs/missing');
  await ready('error');
  assert.match(await page.textContent('.error'), /not found/);
  assert.deepEqual(errors, [], 'no JavaScript errors');
  console.log(`dashboard OK; screenshots in ${ARTIFACTS}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
  server.proc.kill('SIGTERM');
  if (!failed) rmSync(dir, { recursive: true, force: true });
}
if (failed) {
  console.error(failed);
  console.error('server data kept in', dir);
  process.exit(1);
}
