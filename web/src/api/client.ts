// The one way the UI calls the server: JSON in and out, every failure an ApiError whose message
// is fit to show (the server's {"error":{"code","message"}}, or what went wrong on the way).
import type {
  Conversation,
  ConversationSummary,
  CouncilSettings,
  Job,
  JobPage,
  ServerConfig,
  Snapshot,
  Stats,
  StoredEvent,
  TurnStarted,
} from './types';
import { announceAuthRequired, apiKey } from './key';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached. Is conclave running?');
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401) announceAuthRequired(err?.message ?? 'an API key is required');
    throw new ApiError(
      res.status,
      err?.code ?? `http_${res.status}`,
      err?.message ?? `${method} ${path} failed: ${res.status} ${res.statusText}`.trim(),
    );
  }
  return parsed as T;
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

const enc = encodeURIComponent;

export const api = {
  config: () => call<ServerConfig>('GET', '/v1/config'),
  stats: () => call<Stats>('GET', '/v1/stats'),

  conversations: () => call<{ conversations: ConversationSummary[]; next_cursor: string | null }>('GET', '/v1/conversations?limit=100'),
  conversation: (id: string) => call<Conversation>('GET', `/v1/conversations/${enc(id)}`),
  createConversation: (council?: CouncilSettings) => call<ConversationSummary>('POST', '/v1/conversations', council ? { council } : {}),
  deleteConversation: (id: string) => call<unknown>('DELETE', `/v1/conversations/${enc(id)}`),
  ask: (id: string, content: string) => call<TurnStarted>('POST', `/v1/conversations/${enc(id)}/messages`, { content }),

  jobs: (filter: { state?: string; type?: string; queue?: string; cursor?: string | null; limit?: number }) => {
    const q = new URLSearchParams();
    if (filter.state) q.set('state', filter.state);
    if (filter.type) q.set('type', filter.type);
    if (filter.queue) q.set('queue', filter.queue);
    if (filter.cursor) q.set('cursor', filter.cursor);
    q.set('limit', String(filter.limit ?? 25));
    return call<JobPage>('GET', `/v1/jobs?${q.toString()}`);
  },
  job: (id: string) => call<Job>('GET', `/v1/jobs/${enc(id)}`),
  snapshot: (id: string) => call<Snapshot>('GET', `/v1/jobs/${enc(id)}/snapshot`),
  events: (id: string, after: number, limit = 1000) =>
    call<{ events: StoredEvent[]; next_after: number }>('GET', `/v1/jobs/${enc(id)}/events?after=${after}&limit=${limit}`),
  cancel: (id: string) => call<Job>('POST', `/v1/jobs/${enc(id)}/cancel`),
  retry: (id: string) => call<Job>('POST', `/v1/jobs/${enc(id)}/retry`),
  retryMany: (ids: string[]) =>
    call<{ retried: Job[]; errors: { id: string; error: { code: string; message: string } }[] }>('POST', '/v1/jobs:retry', { ids }),
};
