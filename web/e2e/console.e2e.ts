// The jobs console in a real browser: live counts, a job's live output, cancel and retry, and
// the failed list's bulk retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './harness';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack('console', { default: { tokens: 5, token_ms: 5 } }, 'members = ["fake:a"]\nchairman = "fake:a"');
});

afterAll(async () => {
  await stack?.close();
});

interface Job {
  id: string;
  state: string;
}

describe('jobs console', () => {
  it('shows a job streaming, cancels it and retries it', async () => {
    const { page } = stack;
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    const { body: job } = await stack.api<Job>('POST', '/v1/jobs', { type: 'type', payload: { text, chunk: 3, interval_ms: 40 } });
    await page.goto(`${stack.url}/jobs/${job.id}`);
    const output = page.getByRole('region', { name: 'Live output' });
    await expect.poll(() => output.locator('.part-text').first().textContent(), { timeout: 15_000 }).toMatch(/The quick brown fox jumps/);
    await stack.shot('01-job-streaming');

    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => page.locator('.job-detail .badge').first().textContent(), { timeout: 10_000 }).toBe('cancelled');
    expect((await stack.api<Job>('GET', `/v1/jobs/${job.id}`)).body.state).toBe('cancelled');
    await stack.shot('02-job-cancelled');

    await page.getByRole('button', { name: 'Retry' }).click();
    // The retried job runs again from the start and streams the whole text this time.
    await expect.poll(async () => (await stack.api<Job>('GET', `/v1/jobs/${job.id}`)).body.state, { timeout: 30_000 }).toBe('succeeded');
    await expect.poll(() => page.locator('.job-detail .badge').first().textContent(), { timeout: 10_000 }).toBe('succeeded');
    await expect.poll(() => output.locator('.part-text').first().textContent(), { timeout: 10_000 }).toBe(text);
    const timeline = await page.getByRole('region', { name: 'Timeline' }).textContent();
    expect(timeline).toContain('job.cancelled');
    expect(timeline).toContain('job.succeeded');
    await stack.shot('03-job-retried');
    expect(stack.consoleErrors).toEqual([]);
  });

  it('lists failed jobs and retries them in bulk; counts update live', async () => {
    const { page } = stack;
    // Two remote jobs failed for good by a "worker" over the real protocol.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { body } = await stack.api<Job>('POST', '/v1/jobs', { type: 'e2e_remote', payload: { n: i } });
      ids.push(body.id);
    }
    const { body: claimed } = await stack.api<{ jobs: { id: string; lease_token: string }[] }>('POST', '/v1/workers/claim', {
      worker: 'e2e',
      types: ['e2e_remote'],
      max: 2,
      wait_s: 5,
    });
    expect(claimed.jobs).toHaveLength(2);
    for (const j of claimed.jobs) {
      const r = await stack.api('POST', `/v1/jobs/${j.id}/fail`, {
        lease_token: j.lease_token,
        error: { message: 'disk on fire' },
        retryable: false,
      });
      expect(r.status).toBe(200);
    }

    await page.goto(`${stack.url}/jobs`);
    const counts = page.getByRole('region', { name: 'Counts' });
    await expect.poll(() => counts.getByRole('button', { name: /failed/ }).textContent(), { timeout: 10_000 }).toMatch(/^2/);
    const dead = page.getByRole('region', { name: 'Failed jobs' });
    await expect.poll(() => dead.locator('tbody tr').count(), { timeout: 10_000 }).toBe(2);
    await stack.shot('04-failed-list');

    await dead.getByLabel('select all on this page').check();
    await dead.getByRole('button', { name: 'Retry selected (2)' }).click();
    await expect.poll(() => dead.getByRole('status').textContent()).toBe('Retried 2 jobs.');
    await expect.poll(() => dead.locator('tbody tr').count(), { timeout: 10_000 }).toBe(0);
    for (const id of ids) expect((await stack.api<Job>('GET', `/v1/jobs/${id}`)).body.state).toBe('queued');
    await expect.poll(() => counts.getByRole('button', { name: /queued/ }).textContent(), { timeout: 10_000 }).toMatch(/^2/);
    await stack.shot('05-bulk-retried');

    // Filters: the list shows only the chosen type.
    const list = page.getByRole('region', { name: 'Job list' });
    await list.getByLabel('Type').fill('e2e_remote');
    await expect.poll(() => list.locator('tbody tr').count(), { timeout: 10_000 }).toBe(2);
    expect(stack.consoleErrors).toEqual([]);
  });
});
