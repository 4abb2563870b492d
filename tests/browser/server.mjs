// What the browser tests share: `trainyard server` on a data dir, its URL
// once it listens (and its output, for a failure's message); polling until
// a condition holds.
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';

export function startServer(bin, data, args = [], port = 0) {
  const proc = spawn(bin, ['--data-dir', data, 'server', '--port', String(port), '--run-as', userInfo().username, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (b) => {
      out += b;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) resolve({ proc, url: m[1], log: () => out });
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
    setTimeout(() => reject(new Error('server did not start: ' + out)), 30000);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export async function until(what, pred, timeoutMs = 120000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(everyMs);
  }
  throw new Error('timed out waiting for ' + what);
}
