import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '../api/types';
import { LiveStream } from './stream';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.drop();
  }
  open() {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({} as CloseEvent);
  }
  server(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) } as MessageEvent);
  }
}

const event = (topic: string, offset: number): object => ({ op: 'event', topic, offset, type: 'x', data: {}, time: '' });

describe('LiveStream', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  const make = () => new LiveStream('ws://test/v1/ws', (u) => new FakeSocket(u));

  it('uses one socket for every topic and subscribes from the given offsets', () => {
    const s = make();
    s.subscribe('job:a', 5, { onEvent: () => {} });
    s.subscribe('conversations', 'now', { onEvent: () => {} });
    expect(FakeSocket.all).toHaveLength(1);
    FakeSocket.all[0]!.open();
    expect(FakeSocket.all[0]!.sent).toEqual([
      { op: 'subscribe', topic: 'job:a', after: 5, id: 'job:a' },
      { op: 'subscribe', topic: 'conversations', after: 'now', id: 'conversations' },
    ]);
  });

  it('delivers each event once and resumes after a drop from the last offset', () => {
    const s = make();
    const got: number[] = [];
    s.subscribe('job:a', 0, { onEvent: (e: StoredEvent) => got.push(e.offset) });
    const first = FakeSocket.all[0]!;
    first.open();
    first.server(event('job:a', 1));
    first.server(event('job:a', 2));
    first.server(event('job:a', 2)); // a duplicate is dropped
    first.drop();
    expect(s.status).toBe('reconnecting');
    vi.advanceTimersByTime(300);
    const second = FakeSocket.all[1]!;
    second.open();
    expect(second.sent).toEqual([{ op: 'subscribe', topic: 'job:a', after: 2, id: 'job:a' }]);
    second.server(event('job:a', 3));
    expect(got).toEqual([1, 2, 3]);
    expect(s.status).toBe('open');
  });

  it('stops following a topic that ended and tells the subscriber', () => {
    const s = make();
    const onEnd = vi.fn();
    s.subscribe('job:a', 0, { onEvent: () => {}, onEnd });
    const ws = FakeSocket.all[0]!;
    ws.open();
    ws.server({ op: 'end', topic: 'job:a', state: 'succeeded' });
    expect(onEnd).toHaveBeenCalledWith('succeeded');
    ws.drop();
    vi.advanceTimersByTime(10_000);
    expect(FakeSocket.all).toHaveLength(1); // nothing left to follow: no reconnect
  });

  it('unsubscribes, and a reset moves the position to where the server goes on', () => {
    const s = make();
    const onReset = vi.fn();
    const off = s.subscribe('job:a', 0, { onEvent: () => {}, onReset });
    const ws = FakeSocket.all[0]!;
    ws.open();
    ws.server({ op: 'reset', topic: 'job:a', reason: 'retention', offset: 40, snapshot: null });
    expect(onReset).toHaveBeenCalledWith({ reason: 'retention', offset: 40, snapshot: null });
    off();
    expect(ws.sent.at(-1)).toEqual({ op: 'unsubscribe', topic: 'job:a' });
  });

  it('tells the subscriber when the server confirms (to fetch a live list then)', () => {
    const s = make();
    const onSubscribed = vi.fn();
    s.subscribe('conversations', 'now', { onEvent: () => {}, onSubscribed });
    FakeSocket.all[0]!.open();
    FakeSocket.all[0]!.server({ op: 'subscribed', topic: 'conversations', after: 0 });
    expect(onSubscribed).toHaveBeenCalledTimes(1);
  });

  it('passes a refused subscription on in words, to its subscriber only', () => {
    const s = make();
    const onError = vi.fn();
    const other = vi.fn();
    s.subscribe('job:a', 0, { onEvent: () => {}, onError });
    s.subscribe('job:b', 0, { onEvent: () => {}, onError: other });
    FakeSocket.all[0]!.open();
    FakeSocket.all[0]!.server({ op: 'error', code: 'not_found', message: 'no such topic', id: 'job:a' });
    expect(onError).toHaveBeenCalledWith('no such topic');
    expect(other).not.toHaveBeenCalled();
  });
});
