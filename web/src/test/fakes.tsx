// Test doubles: a fetch that answers by route, and a live stream whose socket never opens.
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { vi } from 'vitest';
import { StreamProvider } from '../live/context';
import { LiveStream } from '../live/stream';
import { RouterProvider } from '../ui/router';

export type Route = (method: string, url: string, body: unknown) => { status?: number; body?: unknown } | undefined;

export function stubFetch(route: Route) {
  const calls: { method: string; url: string; body: unknown }[] = [];
  const fetch = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET';
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, url, body });
    const r = route(method, url, body);
    if (!r) return new Response(JSON.stringify({ error: { code: 'not_found', message: `no route ${url}` } }), { status: 404 });
    return new Response(r.body === undefined ? '' : JSON.stringify(r.body), { status: r.status ?? 200 });
  });
  vi.stubGlobal('fetch', fetch);
  return calls;
}

export function idleStream(): LiveStream {
  return new LiveStream('ws://test/v1/ws', () => ({
    readyState: 0,
    send: () => {},
    close: () => {},
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
  }));
}

export function renderWithStream(ui: ReactElement, stream = idleStream()) {
  return render(
    <StreamProvider stream={stream}>
      <RouterProvider>{ui}</RouterProvider>
    </StreamProvider>,
  );
}
