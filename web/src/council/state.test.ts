// The council view folded from a real council's events (recorded from `conclave serve` with the
// simulated models): full replay, and snapshot-at-any-offset + tail, must agree exactly.
import { describe, expect, it } from 'vitest';
import type { Snapshot, StoredEvent } from '../api/types';
import { applyDelta, asDelta, isDeltaType, type Parts } from '../live/parts';
import recorded from '../test/fixtures/council-events.json';
import { applyEvent, emptyTurn, fromMessage, fromSnapshot, resolveLabels, type TurnView } from './state';

const events = recorded as StoredEvent[];

function replay(list: StoredEvent[], start: TurnView = emptyTurn()): TurnView {
  return list.reduce(applyEvent, start);
}

// What GET /v1/jobs/{id}/snapshot answers after the first `k` events (the server's fold).
function snapshotAt(k: number): Snapshot {
  const head = events.slice(0, k);
  let attempt = 0;
  for (const e of head) if (e.type === 'job.started') attempt = (e.data as { attempt: number }).attempt;
  let parts: Parts = { attempt, text: {} };
  for (const e of head) {
    const d = isDeltaType(e.type) ? asDelta(e.data) : null;
    if (d && d.attempt === attempt) [parts] = applyDelta(parts, d);
  }
  return {
    job: { id: 'j', state: 'active' } as Snapshot['job'],
    attempt,
    parts: parts.text,
    complete: true,
    topic: 'job:j',
    offset: head.at(-1)?.offset ?? 0,
    events: head.filter((e) => !isDeltaType(e.type)),
  };
}

describe('a council turn from its events', () => {
  const done = replay(events);

  it('ends with every stage filled in', () => {
    expect(done.phase).toBe('done');
    expect(done.members).toEqual(['sim:alpha', 'sim:beta', 'sim:gamma', 'sim:delta']);
    for (const m of done.members) {
      expect(done.stage1[m]?.status).toBe('done');
      expect(done.stage1[m]?.text).toMatch(/^\[simulated /);
      expect(done.stage2[m]?.status).toBe('done');
    }
    expect(Object.keys(done.labelToModel)).toHaveLength(4);
    expect(done.aggregate.map((a) => a.model)).toHaveLength(4);
    expect(done.chairman?.model).toBe('sim:chair');
    expect(done.chairman?.text.length).toBeGreaterThan(100);
    expect(done.title).toBe('Why is the sky');
    expect(done.simulated).toBe(true);
    expect(done.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('streams text: the deltas alone build the same text as the stage results', () => {
    const upToStage1 = events.findIndex((e) => e.type === 'stage1.complete');
    const streamed = replay(events.slice(0, upToStage1));
    for (const m of done.members) {
      expect(streamed.stage1[m]?.text).toBe(done.stage1[m]?.text);
    }
    expect(streamed.phase).toBe('stage1');
  });

  it('resumes from a snapshot at any offset with the same result as a full replay', () => {
    for (let k = 0; k <= events.length; k++) {
      const resumed = replay(events.slice(k), fromSnapshot(snapshotAt(k)));
      const full = replay(events.slice(0, events.length));
      expect(resumed.chairman?.text, `cut at ${k}`).toBe(full.chairman?.text);
      for (const m of full.members) expect(resumed.stage1[m]?.text, `cut at ${k}`).toBe(full.stage1[m]?.text);
      expect(resumed.phase).toBe('done');
    }
  });

  it('a snapshot alone shows exactly what the live page showed at that offset', () => {
    for (let k = 0; k <= events.length; k++) {
      const live = replay(events.slice(0, k));
      const snap = fromSnapshot(snapshotAt(k));
      expect(snap.phase, `cut at ${k}`).toBe(live.phase);
      expect(snap.chairman?.text, `cut at ${k}`).toBe(live.chairman?.text);
      for (const m of live.members) {
        expect(snap.stage1[m]?.text, `cut at ${k}`).toBe(live.stage1[m]?.text);
        expect(snap.stage1[m]?.status, `cut at ${k}`).toBe(live.stage1[m]?.status);
        expect(snap.stage2[m]?.text ?? '', `cut at ${k}`).toBe(live.stage2[m]?.text ?? '');
      }
    }
  });

  it('mid-stream, snapshot + tail equals the live view at every point (no duplicate, no gap)', () => {
    const middle = events.findIndex((e) => e.type === 'stage3.delta') + 5;
    const live = replay(events.slice(0, middle));
    for (const k of [1, 5, 40, 120, middle - 1]) {
      const resumed = replay(events.slice(k, middle), fromSnapshot(snapshotAt(k)));
      expect(resumed.chairman?.text).toBe(live.chairman?.text);
      expect(resumed.phase).toBe(live.phase);
      for (const m of live.members) expect(resumed.stage2[m]?.text ?? '').toBe(live.stage2[m]?.text ?? '');
    }
  });

  it('a duplicated event changes nothing', () => {
    const doubled = events.flatMap((e) => (isDeltaType(e.type) ? [e, e] : [e]));
    expect(replay(doubled).chairman?.text).toBe(done.chairman?.text);
  });
});

describe('failures and retries', () => {
  const ev = (offset: number, type: string, data: unknown): StoredEvent => ({ topic: 'job:j', offset, type, data, time: '' });

  it('shows a failing member as failed with the provider message', () => {
    const v = replay([
      ev(1, 'job.started', { attempt: 1 }),
      ev(2, 'stage1.start', { members: ['a:x', 'b:y'] }),
      ev(3, 'stage1.delta', { attempt: 1, part: 'stage1/a:x', at: 0, text: 'Hi' }),
      ev(4, 'stage1.model_complete', { model: 'b:y', error: 'HTTP 500: upstream exploded' }),
    ]);
    expect(v.stage1['a:x']?.status).toBe('streaming');
    expect(v.stage1['b:y']).toMatchObject({ status: 'failed', error: 'HTTP 500: upstream exploded' });
  });

  it('a new attempt voids the text of the earlier one', () => {
    const v = replay([
      ev(1, 'job.started', { attempt: 1 }),
      ev(2, 'stage1.start', { members: ['a:x'] }),
      ev(3, 'stage1.delta', { attempt: 1, part: 'stage1/a:x', at: 0, text: 'first try' }),
      ev(4, 'job.retrying', { attempt: 1, error: { message: 'lease_expired' } }),
      ev(5, 'job.started', { attempt: 2 }),
      ev(6, 'stage1.start', { members: ['a:x'] }),
      ev(7, 'stage1.delta', { attempt: 2, part: 'stage1/a:x', at: 0, text: 'again' }),
    ]);
    expect(v.stage1['a:x']?.text).toBe('again');
    expect(v.retrying).toBeUndefined();
  });

  it('a member held back by its provider budget says so until its text starts', () => {
    const wait = { part: 'stage1/a:x', model: 'a:x', provider: 'a', budget: 'usd_per_day', until: '2026-11-22T00:00:00.000Z' };
    const held = replay([
      ev(1, 'job.started', { attempt: 1 }),
      ev(2, 'stage1.start', { members: ['a:x', 'b:y'] }),
      ev(3, 'llm.budget_wait', wait),
    ]);
    expect(held.stage1['a:x']?.held).toBe('Waiting: a has used its dollars for the day (until 2026-11-22T00:00:00.000Z)');
    expect(held.stage1['b:y']?.held).toBeUndefined();
    const going = applyEvent(held, ev(4, 'stage1.delta', { attempt: 1, part: 'stage1/a:x', at: 0, text: 'Hi' }));
    expect(going.stage1['a:x']).toMatchObject({ status: 'streaming', text: 'Hi', held: undefined });
  });

  it('a failed job says why', () => {
    const v = replay([ev(1, 'job.started', { attempt: 1 }), ev(2, 'job.failed', { attempt: 1, error: { message: 'boom' } })]);
    expect(v.phase).toBe('failed');
    expect(v.error).toBe('boom');
  });
});

describe('saved messages', () => {
  it('rebuild the turn from the assistant message', () => {
    const result = (events.at(-1)!.data as { result: Record<string, unknown> }).result;
    const v = fromMessage({
      id: 'm',
      seq: 2,
      role: 'assistant',
      content: 'x',
      job_id: 'j',
      created_at: '',
      ...(result as object),
    } as never);
    const live = replay(events);
    expect(v.phase).toBe('done');
    expect(v.chairman?.text).toBe(live.chairman?.text);
    expect(v.aggregate).toEqual(live.aggregate);
    expect(v.labelToModel).toEqual(live.labelToModel);
    expect(v.stage2['sim:alpha']?.parsed).toHaveLength(4);
  });

  it('a turn saved with an error is failed', () => {
    const v = fromMessage({
      id: 'm',
      seq: 2,
      role: 'assistant',
      content: '',
      job_id: 'j',
      created_at: '',
      metadata: { error: 'every council member failed' },
    } as never);
    expect(v.phase).toBe('failed');
    expect(v.error).toBe('every council member failed');
  });
});

it('resolves anonymous labels to model names', () => {
  expect(resolveLabels('1. Response B\n2. Response A', { 'Response A': 'x:a', 'Response B': 'y:b' })).toBe('1. **y:b**\n2. **x:a**');
});
