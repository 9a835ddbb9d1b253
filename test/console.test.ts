/**
 * The web console in a real browser: Debian's chromium, driven by
 * playwright-core (no browser is downloaded), against a real control plane
 * and a real agent. Signs in and sees the agent, sees a job's log line within
 * a second of the job printing it (with its progress bar and its folded
 * group), cancels the job from the page, and checks
 * that a viewer gets no buttons (and that the server refuses its calls, and
 * a mutation without the CSRF header), and downloads a job's artifact from
 * its link (another tenant's is not found). Screenshots go to test-artifacts/console.
 */
import { credentials } from '@grpc/grpc-js';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobState, type SubmitBatchResponse } from '../proto/gen/runmesh/v1/job.js';
import { TokenServiceClient, type CreateTokenResponse } from '../proto/gen/runmesh/v1/token.js';
import { adminToken, bearer, TestClient } from './support/client.js';
import { ROOT, startAgent, startServer, tempDir, type ServerProc } from './support/processes.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts', 'console');

let server: ServerProc;
let base: string;
let admin: string;
let viewer: string;
let client: TestClient;
let browser: Browser;

async function createToken(role: string): Promise<string> {
  const tokens = new TokenServiceClient(server.address, credentials.createInsecure(), { interceptors: [bearer(admin)] });
  const res = await new Promise<CreateTokenResponse>((resolve, reject) =>
    tokens.createToken({ name: `console-${role}`, role, tenants: ['default'], ttlSeconds: 0, join: undefined }, (err, r) =>
      err ? reject(err) : resolve(r),
    ),
  );
  tokens.close();
  return res.token;
}

async function signIn(token: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=who]');
  return page;
}

const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

describe.skipIf(!existsSync(CHROMIUM))('web console in chromium', () => {
  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startServer();
    base = `http://${server.http}`;
    admin = adminToken(server.dataDir);
    client = new TestClient(server.address, admin);
    await startAgent(server.address, { name: 'console-agent', slots: 2 });
    viewer = await createToken('viewer');
    await client.waitAgents(1);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      // playwright gives every launch a fresh --user-data-dir of its own (and refuses one passed here).
    });
  });

  afterAll(async () => {
    await browser?.close();
    client?.close();
  });

  it('signs in and shows the agents', async () => {
    const page = await signIn(admin);
    await page.click('a[href="/agents"]');
    const row = page.locator('[data-agent=console-agent]');
    await row.waitFor();
    expect(await row.textContent()).toContain('ready');
    expect(await row.getByRole('button', { name: 'Cordon', exact: true }).count()).toBe(1);
    await shot(page, 'agents-admin');
    await page.goto(`${base}/`);
    await page.waitForSelector('.overview');
    await shot(page, 'overview');
  });

  it("shows a job's log line within a second of the job printing it, and cancels the job from the page", async () => {
    // The job prints once the page follows its log (the test creates `go`), so the measure is the log's way alone.
    const go = join(await tempDir('runmesh-console-'), 'go');
    const job = await client.submit({
      name: 'console-log',
      script: `while [ ! -e ${go} ]; do sleep 0.02; done; printf '::progress 30 warming\\n::group fold-me\\ninside-group\\n::endgroup\\n'; echo "printed-at $(date +%s%3N)"; printf "\\033[32mconsole-line\\033[0m\\n"; sleep 120`,
    });
    const page = await signIn(admin);
    await page.goto(`${base}/jobs/${job.id}`);
    await page.locator('.log-status[data-status=live]').waitFor();
    await writeFile(go, '');
    // The page notes when the line appears (checked every animation frame); the job printed the time just before it.
    const seenAt = await page.waitForFunction(
      () => {
        // Runs in the page (the test's tsconfig has no DOM types); a function, as the page's CSP refuses eval'd strings.
        const doc = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document;
        return doc.querySelector('[data-testid=log]')?.textContent?.includes('console-line') ? Date.now() : 0;
      },
      undefined,
      { timeout: 20_000, polling: 'raf' },
    );
    const seen = await seenAt.jsonValue();
    const text = (await page.locator('[data-testid=log]').textContent()) ?? '';
    const printed = Number(/printed-at (\d+)/.exec(text)?.[1]);
    expect(seen - printed).toBeLessThan(1000);
    expect(await page.locator('.line .fg-c2', { hasText: 'console-line' }).count()).toBe(1); // the ANSI green
    // The agent's report: a progress bar, and the group folded (it ended) under its header.
    await page.locator('[data-testid=progress]', { hasText: '30% warming' }).waitFor({ timeout: 15_000 });
    await page.locator('.log button.group', { hasText: 'fold-me' }).waitFor();
    expect(await page.locator('[data-testid=log]').textContent()).not.toContain('inside-group');
    await shot(page, 'job-log');
    await page.click('button:has-text("Cancel")');
    await client.waitFor(job.id, (j) => j.state === JobState.JOB_STATE_CANCELLED, 15_000);
    await page.locator('[data-testid=job-state]', { hasText: 'cancelled' }).waitFor();
    await shot(page, 'job-cancelled');
  });

  it('shows a viewer no buttons, and refuses its calls anyway', async () => {
    const job = await client.submit({ name: 'console-viewer', script: 'sleep 120' });
    const page = await signIn(viewer);
    await page.goto(`${base}/agents`);
    await page.locator('[data-agent=console-agent]').waitFor();
    expect(await page.locator('main button').count()).toBe(0);
    await shot(page, 'agents-viewer');
    await page.goto(`${base}/jobs/${job.id}`);
    await page.locator('[data-testid=job-state]').waitFor();
    expect(await page.locator('main button').count()).toBe(0);
    // The server refuses the call the page does not offer, with or without the CSRF token.
    const refused = await page.evaluate(async (id) => {
      const s = (await (await fetch('/api/session')).json()) as { csrf: string };
      const withCsrf = await fetch(`/api/jobs/${id}/cancel`, { method: 'POST', headers: { 'x-runmesh-csrf': s.csrf } });
      const without = await fetch(`/api/jobs/${id}/cancel`, { method: 'POST' });
      return [withCsrf.status, without.status];
    }, job.id);
    expect(refused).toEqual([403, 403]);
    expect((await client.get(job.id)).state).not.toBe(JobState.JOB_STATE_CANCELLED);
    await client.cancel(job.id);
  });

  it("links the job's artifacts for download; refuses a download without a session, and hides another tenant's", async () => {
    const script = 'mkdir -p dist && printf "console artifact\\n" > "dist/out put.txt"';
    const job = await client.waitDone((await client.submit({ name: 'console-artifacts', script, artifacts: ['dist/**'] })).id);
    const page = await signIn(viewer);
    await page.goto(`${base}/jobs/${job.id}`);
    const link = page.locator('[data-artifact="dist/out put.txt"]');
    await link.waitFor();
    await shot(page, 'job-artifacts');
    const href = (await link.getAttribute('href'))!;
    const got = await page.evaluate(async (url) => {
      const r = await fetch(url);
      return { status: r.status, body: await r.text(), type: r.headers.get('content-type'), as: r.headers.get('content-disposition') };
    }, href);
    expect(got).toEqual({
      status: 200,
      body: 'console artifact\n',
      type: 'application/octet-stream',
      as: `attachment; filename="out put.txt"; filename*=UTF-8''out%20put.txt`,
    });
    expect((await fetch(base + href)).status).toBe(401);
    const other = await client.submit({ name: 'console-artifacts-other', tenant: 'other', script: 'echo x > o.txt', artifacts: ['o.txt'] });
    await client.waitDone(other.id);
    const hidden = await page.evaluate(async (url) => (await fetch(url)).status, `/api/jobs/${other.id}/artifacts/1/o.txt`);
    expect(hidden).toBe(404);
  });

  it('says why a queued job waits: the selector term no agent matches, and its place in its queue', async () => {
    const job = await client.submit({ name: 'console-waits', argv: ['true'], selector: 'pool=ci,gpu' });
    const page = await signIn(viewer);
    await page.goto(`${base}/jobs/${job.id}`);
    const waiting = page.locator('[data-testid=waiting]');
    await waiting.waitFor();
    const text = (await waiting.textContent()) ?? '';
    expect(text).toContain('No agent matches: pool=ci gpu');
    expect(text).toMatch(/Place in its queue \(standard, tenant default\): 1 of 1/);
    await shot(page, 'job-waiting');
    await client.cancel(job.id);
  });

  it('lists 1,000 jobs drawing only the rows in view', async () => {
    const specs = Array.from({ length: 1000 }, (_, i) => client.spec({ name: `bulk-${i}`, argv: ['true'], selector: 'pool=nowhere' }));
    const res = await new Promise<SubmitBatchResponse>((resolve, reject) =>
      client.jobs.submitBatch({ specs }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    const page = await signIn(viewer);
    await page.goto(`${base}/jobs?name=bulk-`);
    await page.locator('text=(1000 matching)').waitFor();
    expect(await page.locator('.virtual [data-job]').count()).toBeLessThan(60);
    // Newest first: the last submitted on top, the first at the bottom once scrolled there.
    expect(await page.locator('.virtual [data-job]').first().getAttribute('data-job')).toBe(res.jobs.at(-1)!.id);
    await page.locator('.virtual').evaluate((el: { scrollTop: number; scrollHeight: number }) => {
      el.scrollTop = el.scrollHeight;
    });
    await page.locator(`[data-job="${res.jobs[0]!.id}"]`).waitFor();
    await shot(page, 'jobs-1000');
  });
});
