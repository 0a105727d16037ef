import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Job, Stats } from '../api/types';
import { renderWithStream, stubFetch } from '../test/fakes';
import { JobDetail } from './JobDetail';
import { JobsPage } from './JobsPage';

afterEach(() => vi.unstubAllGlobals());

const job = (id: string, state: Job['state'], extra: Partial<Job> = {}): Job => ({
  id,
  type: 'sleep',
  queue: 'default',
  state,
  priority: 0,
  payload: { ms: 5 },
  result: null,
  error: state === 'failed' ? { message: 'it broke' } : null,
  progress: null,
  attempts: 1,
  max_attempts: 3,
  timeout_s: 60,
  run_at: '',
  cancel_requested: false,
  idempotency_key: null,
  topics: [],
  lease_owner: null,
  lease_expires_at: null,
  created_at: new Date().toISOString(),
  started_at: null,
  finished_at: null,
  ...extra,
});

const stats: Stats = {
  jobs: { queued: 1, active: 2, succeeded: 30, failed: 2, cancelled: 0 },
  running_here: 2,
  queues: {
    default: { queued: 1, active: 2, succeeded: 30, failed: 2, cancelled: 0 },
    mail: { queued: 0, active: 0, succeeded: 0, failed: 0, cancelled: 0 },
  },
  types: { sleep: { queued: 1, active: 2, succeeded: 30, failed: 2, cancelled: 0 } },
  throughput: {
    bucket_s: 10,
    buckets: Array.from({ length: 60 }, (_, i) => ({ t: 1000 + 10 * i, succeeded: i % 3, failed: i % 7 === 0 ? 1 : 0, cancelled: 0 })),
  },
};

describe('JobsPage', () => {
  it('shows counts by state and queue, throughput, and filters the list', async () => {
    const calls = stubFetch((_method, url) => {
      if (url === '/v1/stats') return { body: stats };
      if (url.startsWith('/v1/jobs?')) {
        const state = new URLSearchParams(url.split('?')[1]).get('state');
        return {
          body: {
            jobs: state === 'failed' ? [job('f1', 'failed')] : [job('a1', 'active'), job('s1', 'succeeded')],
            next_cursor: state ? null : '77',
          },
        };
      }
      return undefined;
    });
    renderWithStream(<JobsPage />);
    const counts = await screen.findByRole('region', { name: 'Counts' });
    expect(within(counts).getByRole('button', { name: /30 succeeded/ })).toBeInTheDocument();
    expect(within(counts).getByRole('table', { name: 'By queue' })).toHaveTextContent('mail');
    expect(screen.getByRole('figure', { name: 'Throughput' })).toHaveTextContent(/Finished in the last 10 minutes/);

    const list = screen.getByRole('region', { name: 'Job list' });
    await waitFor(() => expect(within(list).getAllByRole('row')).toHaveLength(3));
    await userEvent.selectOptions(within(list).getByLabelText('State'), 'failed');
    await waitFor(() => expect(calls.some((c) => c.url.includes('/v1/jobs?state=failed&limit=25'))).toBe(true));
    await waitFor(() => expect(within(list).getAllByRole('row')).toHaveLength(2));

    await userEvent.selectOptions(within(list).getByLabelText('State'), '');
    await userEvent.click(await within(list).findByRole('button', { name: 'Older ›' }));
    await waitFor(() => expect(calls.some((c) => c.url.includes('cursor=77'))).toBe(true));
  });

  it('retries selected failed jobs in bulk and reports what was not retried', async () => {
    const calls = stubFetch((method, url, body) => {
      if (url === '/v1/stats') return { body: stats };
      if (url.startsWith('/v1/jobs?')) return { body: { jobs: [job('f1', 'failed'), job('f2', 'failed')], next_cursor: null } };
      if (method === 'POST' && url === '/v1/jobs:retry') {
        const ids = (body as { ids: string[] }).ids;
        return {
          body: {
            retried: [job(ids[0]!, 'queued')],
            errors: [{ id: ids[1], error: { code: 'invalid_transition', message: 'job is queued' } }],
          },
        };
      }
      return undefined;
    });
    renderWithStream(<JobsPage />);
    const dead = screen.getByRole('region', { name: 'Failed jobs' });
    await waitFor(() => expect(within(dead).getAllByRole('checkbox')).toHaveLength(3));
    await userEvent.click(within(dead).getByLabelText('select all on this page'));
    await userEvent.click(within(dead).getByRole('button', { name: 'Retry selected (2)' }));
    await waitFor(() => expect(within(dead).getByRole('status')).toHaveTextContent('Retried 1 job. Not retried: f2: job is queued'));
    expect(calls.find((c) => c.url === '/v1/jobs:retry')?.body).toEqual({ ids: ['f1', 'f2'] });
  });

  it('shows a server error in words', async () => {
    stubFetch((_m, url) =>
      url === '/v1/stats'
        ? { status: 503, body: { error: { code: 'unavailable', message: 'the store is not ready' } } }
        : { body: { jobs: [], next_cursor: null } },
    );
    renderWithStream(<JobsPage />);
    expect(await screen.findByText('the store is not ready')).toBeInTheDocument();
  });
});

describe('JobDetail', () => {
  it('shows the job, its output so far and timeline, and cancels it', async () => {
    const running = job('j1', 'active', { type: 'type', payload: { text: 'hello' } });
    const calls = stubFetch((method, url) => {
      if (url === '/v1/jobs/j1') return { body: running };
      if (url === '/v1/jobs/j1/snapshot')
        return {
          body: {
            job: running,
            attempt: 1,
            parts: { text: 'Hello wor' },
            complete: true,
            topic: 'job:j1',
            offset: 5,
            events: [
              { topic: 'job:j1', offset: 1, type: 'job.queued', data: {}, time: '2026-01-01T00:00:00.000Z' },
              { topic: 'job:j1', offset: 2, type: 'job.started', data: { attempt: 1 }, time: '2026-01-01T00:00:00.100Z' },
            ],
          },
        };
      if (method === 'POST' && url === '/v1/jobs/j1/cancel') return { body: { ...running, state: 'cancelled' } };
      return undefined;
    });
    renderWithStream(<JobDetail id="j1" />);
    expect(await screen.findByText('Hello wor')).toBeInTheDocument();
    const timeline = screen.getByRole('region', { name: 'Timeline' });
    expect(within(timeline).getAllByRole('listitem')).toHaveLength(2);
    expect(screen.getByRole('region', { name: 'Payload' })).toHaveTextContent('"text": "hello"');
    await userEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(await screen.findByRole('button', { name: 'Retry' })).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'POST' && c.url === '/v1/jobs/j1/cancel')).toBe(true);
  });

  it('shows why a retry was refused', async () => {
    const failed = job('j2', 'failed');
    stubFetch((method, url) => {
      if (url === '/v1/jobs/j2') return { body: failed };
      if (url === '/v1/jobs/j2/snapshot')
        return { body: { job: failed, attempt: 1, parts: {}, complete: true, topic: 'job:j2', offset: 3, events: [] } };
      if (method === 'POST' && url === '/v1/jobs/j2/retry')
        return { status: 409, body: { error: { code: 'conversation_busy', message: 'a newer turn exists' } } };
      return undefined;
    });
    renderWithStream(<JobDetail id="j2" />);
    await userEvent.click(await screen.findByRole('button', { name: 'Retry' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not retry: a newer turn exists');
  });
});
