// One WebSocket per page (`/v1/ws`) carrying every topic the page watches. Each subscription
// remembers the offset of the last event it delivered; after a drop the stream reconnects and
// subscribes again from there, so nothing is missed and nothing is delivered twice.
import { apiKey } from '../api/key';
import type { StoredEvent } from '../api/types';

export interface Subscriber {
  onEvent(e: StoredEvent): void;
  onEnd?(state: string): void;
  onReset?(info: { reason: string; offset: number; snapshot: unknown }): void;
  onError?(message: string): void;
  // The server confirmed the subscription (again, after a reconnect): a live list fetches its
  // state now, so that nothing changed between the fetch and the first live event is missed.
  onSubscribed?(): void;
}

export type StreamStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

// `after`: an offset, or 'now' for only what is appended from now on (a live list).
export type After = number | 'now';

interface Subscription {
  topic: string;
  after: After;
  sub: Subscriber;
  ended: boolean;
}

type SocketLike = Pick<WebSocket, 'send' | 'close' | 'readyState'> & {
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
};

export type SocketFactory = (url: string) => SocketLike;

export function defaultUrl(): string {
  const { protocol, host } = window.location;
  const key = apiKey();
  const query = key ? `?token=${encodeURIComponent(key)}` : '';
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}/v1/ws${query}`;
}

export class LiveStream {
  private socket: SocketLike | null = null;
  private subs = new Map<string, Subscription>();
  private statusListeners = new Set<(s: StreamStatus) => void>();
  private status_: StreamStatus = 'closed';
  private retryMs = 250;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private stopped = false;

  constructor(
    private readonly url: string = defaultUrl(),
    private readonly open: SocketFactory = (u) => new WebSocket(u) as SocketLike,
  ) {}

  get status(): StreamStatus {
    return this.status_;
  }

  onStatus(fn: (s: StreamStatus) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  // Delivers the topic's events after `after`, then live ones. One subscriber per topic: a new
  // subscription to a topic replaces the old one.
  subscribe(topic: string, after: After, sub: Subscriber): () => void {
    const existing = this.subs.get(topic);
    if (existing) this.send({ op: 'unsubscribe', topic });
    const s: Subscription = { topic, after, sub, ended: false };
    this.subs.set(topic, s);
    this.connect();
    this.send({ op: 'subscribe', topic, after, id: topic });
    return () => {
      if (this.subs.get(topic) !== s) return;
      this.subs.delete(topic);
      if (!s.ended) this.send({ op: 'unsubscribe', topic });
    };
  }

  close(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pinger) clearInterval(this.pinger);
    this.socket?.close();
    this.socket = null;
    this.setStatus('closed');
  }

  private setStatus(s: StreamStatus) {
    if (s === this.status_) return;
    this.status_ = s;
    for (const fn of this.statusListeners) fn(s);
  }

  private send(msg: object) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(msg));
    // Otherwise the subscription is sent when the socket opens.
  }

  private connect() {
    if (this.socket || this.stopped) return;
    this.setStatus(this.status_ === 'closed' ? 'connecting' : 'reconnecting');
    const ws = this.open(this.url);
    this.socket = ws;
    ws.onopen = () => {
      this.retryMs = 250;
      this.setStatus('open');
      for (const s of this.subs.values()) {
        if (!s.ended) ws.send(JSON.stringify({ op: 'subscribe', topic: s.topic, after: s.after, id: s.topic }));
      }
      this.pinger = setInterval(() => this.send({ op: 'ping' }), 20_000);
    };
    ws.onmessage = (ev) => this.receive(String(ev.data));
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.pinger) clearInterval(this.pinger);
      this.pinger = null;
      this.socket = null;
      if (this.stopped) return;
      const live = [...this.subs.values()].some((s) => !s.ended);
      if (!live) {
        this.setStatus('closed');
        return;
      }
      this.setStatus('reconnecting');
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }

  private receive(text: string) {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    // Replies to a subscribe carry its topic as `id` (errors name no topic of their own).
    const topic = typeof m.topic === 'string' ? m.topic : typeof m.id === 'string' ? m.id : '';
    const s = this.subs.get(topic);
    switch (m.op) {
      case 'event': {
        if (!s) return;
        const e = m as unknown as StoredEvent;
        if (typeof s.after === 'number' && e.offset <= s.after) return; // already delivered
        s.after = e.offset;
        s.sub.onEvent(e);
        return;
      }
      case 'end':
        if (!s) return;
        s.ended = true;
        s.sub.onEnd?.(String(m.state ?? ''));
        return;
      case 'reset':
        if (!s) return;
        const offset = Number(m.offset ?? 0);
        s.after = offset;
        s.sub.onReset?.({ reason: String(m.reason ?? ''), offset, snapshot: m.snapshot ?? null });
        return;
      case 'error': {
        const message = String(m.message ?? 'stream error');
        if (s) {
          // The subscription was refused: it is not followed, and not sent again on reconnect.
          s.ended = true;
          s.sub.onError?.(message);
        } else for (const x of this.subs.values()) x.sub.onError?.(message);
        return;
      }
      case 'subscribed':
        s?.sub.onSubscribed?.();
        return;
      default:
        return; // unsubscribed, pong
    }
  }
}
