import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, api } from './client';

afterEach(() => vi.unstubAllGlobals());

describe('api client', () => {
  it("turns the server's error body into an ApiError with its words", async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(
        async () => new Response(JSON.stringify({ error: { code: 'invalid_transition', message: 'job is succeeded' } }), { status: 409 }),
      ),
    );
    const err = await api.retry('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'invalid_transition', message: 'job is succeeded' });
  });

  it('says when the server cannot be reached', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))),
    );
    await expect(api.stats()).rejects.toThrow(/cannot be reached/);
  });

  it('describes an error without a JSON body by its status', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => new Response('gateway down', { status: 502, statusText: 'Bad Gateway' })),
    );
    await expect(api.stats()).rejects.toThrow('GET /v1/stats failed: 502 Bad Gateway');
  });

  it('puts job filters in the query', async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ jobs: [], next_cursor: null })));
    vi.stubGlobal('fetch', fetch);
    await api.jobs({ state: 'failed', queue: 'q 1', cursor: '42' });
    expect(fetch).toHaveBeenCalledWith('/v1/jobs?state=failed&queue=q+1&cursor=42&limit=25', expect.anything());
  });
});

describe('API keys', () => {
  afterEach(() => window.localStorage.clear());

  it('sends the saved key as a bearer token, and a 401 asks for one', async () => {
    window.localStorage.setItem('conclave.apiKey', 'ck_test');
    const fetch = vi.fn(
      async () => new Response(JSON.stringify({ error: { code: 'unauthorized', message: 'unknown or revoked API key' } }), { status: 401 }),
    );
    vi.stubGlobal('fetch', fetch);
    const asked = vi.fn();
    window.addEventListener('conclave:auth-required', (e) => asked((e as CustomEvent).detail));
    await expect(api.stats()).rejects.toThrow('unknown or revoked API key');
    expect(fetch).toHaveBeenCalledWith(
      '/v1/stats',
      expect.objectContaining({ headers: expect.objectContaining({ Authorization: 'Bearer ck_test' }) }),
    );
    expect(asked).toHaveBeenCalledWith('unknown or revoked API key');
  });
});
