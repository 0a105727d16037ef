// The real thing for browser tests: tools/fake-llm, `conclave serve` on a fresh SQLite file in
// a temp dir (both on loopback ports they pick), and Debian's chromium driven by playwright-core.
// Screenshots of each step go to $CONCLAVE_ARTIFACTS (default build/artifacts/browser).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.CONCLAVE_BIN_DIR ?? join(root, 'build', 'release', 'bin');
export const artifacts = process.env.CONCLAVE_ARTIFACTS ?? join(root, 'build', 'artifacts', 'browser');

function start(cmd: string, args: string[], ready: RegExp, log: string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => fail(new Error(`${cmd} did not start:\n${log.join('\n')}`)), 15_000);
    child.on('error', (e) => fail(e));
    child.on('exit', (code) => fail(new Error(`${cmd} exited with ${code}:\n${log.join('\n')}`)));
    createInterface({ input: child.stderr! }).on('line', (l) => log.push(l));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      log.push(l);
      const m = ready.exec(l);
      if (m) {
        clearTimeout(timer);
        ok({ child, url: m[1]! });
      }
    });
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.removeAllListeners('exit');
    child.on('exit', () => done());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000);
  });
}

export interface Stack {
  url: string;
  fakeUrl: string;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  consoleErrors: string[];
  logs: string[];
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  shot(name: string): Promise<void>;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

// `script`: fake-llm's per-model behaviour; `council`: the [council] table.
export async function startStack(name: string, script: object, councilToml: string): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), `conclave-e2e-${name}-`));
  const logs: string[] = [];
  writeFileSync(join(dir, 'script.json'), JSON.stringify(script));
  const fake = await start(
    join(bin, 'fake-llm'),
    ['--listen', '127.0.0.1:0', '--script', join(dir, 'script.json')],
    /listening on (http:\/\/\S+)/,
    logs,
  );
  writeFileSync(
    join(dir, 'conclave.toml'),
    `[providers.fake]\nbase_url = "${fake.url}/v1"\nmax_retries = 1\n\n[council]\n${councilToml}\n\n[types.e2e_remote]\nexecutor = "remote"\nmax_attempts = 1\n`,
  );
  const server = await start(
    join(bin, 'conclave'),
    ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${join(dir, 'c.db')}`, '--config', join(dir, 'conclave.toml')],
    /conclave listening on (http:\/\/\S+)/,
    logs,
  );
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const consoleErrors: string[] = [];
  const watch = (p: Page) => {
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${p.url()}: ${m.text()}`);
    });
    p.on('pageerror', (e) => consoleErrors.push(`${p.url()}: ${e.message}`));
  };
  context.on('page', watch);
  const page = await context.newPage();
  mkdirSync(artifacts, { recursive: true });
  return {
    url: server.url,
    fakeUrl: fake.url,
    browser,
    context,
    page,
    consoleErrors,
    logs,
    async api<T>(method: string, path: string, body?: unknown) {
      const res = await fetch(server.url + path, {
        method,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    },
    async shot(step: string) {
      await page.screenshot({ path: join(artifacts, `${name}-${step}.png`), fullPage: true });
    },
    newPage: () => context.newPage(),
    async close() {
      await browser.close().catch(() => {});
      await stop(server.child);
      await stop(fake.child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
