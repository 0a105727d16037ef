import { describe, expect, it } from 'vitest';
import { applyDelta, asDelta, isDeltaType, type Parts } from './parts';

const empty: Parts = { attempt: 1, text: {} };

describe('applyDelta', () => {
  it('appends a delta that continues the text', () => {
    let [p, o] = applyDelta(empty, { attempt: 1, part: 'a', at: 0, text: 'Hel' });
    expect(o).toBe('applied');
    [p, o] = applyDelta(p, { attempt: 1, part: 'a', at: 3, text: 'lo' });
    expect(o).toBe('applied');
    expect(p.text.a).toBe('Hello');
  });

  it('ignores a duplicate and keeps only the new tail of an overlap', () => {
    let [p] = applyDelta(empty, { attempt: 1, part: 'a', at: 0, text: 'abc' });
    const [same, o] = applyDelta(p, { attempt: 1, part: 'a', at: 0, text: 'abc' });
    expect(o).toBe('duplicate');
    expect(same).toBe(p);
    [p] = applyDelta(p, { attempt: 1, part: 'a', at: 1, text: 'bcde' });
    expect(p.text.a).toBe('abcde');
  });

  it('refuses a gap instead of corrupting the text', () => {
    const [p] = applyDelta(empty, { attempt: 1, part: 'a', at: 0, text: 'ab' });
    const [q, o] = applyDelta(p, { attempt: 1, part: 'a', at: 5, text: 'zz' });
    expect(o).toBe('gap');
    expect(q.text.a).toBe('ab');
  });

  it('counts UTF-16 units as the server does (an emoji is two)', () => {
    let [p] = applyDelta(empty, { attempt: 1, part: 'a', at: 0, text: '😀' });
    [p] = applyDelta(p, { attempt: 1, part: 'a', at: 2, text: '!' });
    expect(p.text.a).toBe('😀!');
  });

  it('starts over for a newer attempt and voids an older one', () => {
    const [p] = applyDelta(empty, { attempt: 1, part: 'a', at: 0, text: 'old' });
    const [q] = applyDelta(p, { attempt: 2, part: 'a', at: 0, text: 'new' });
    expect(q).toEqual({ attempt: 2, text: { a: 'new' } });
    const [r, o] = applyDelta(q, { attempt: 1, part: 'a', at: 3, text: 'x' });
    expect(o).toBe('stale');
    expect(r).toBe(q);
  });
});

describe('delta events', () => {
  it('recognises delta types and validates their data', () => {
    expect(isDeltaType('stage1.delta')).toBe(true);
    expect(isDeltaType('delta')).toBe(true);
    expect(isDeltaType('stage1.complete')).toBe(false);
    expect(asDelta({ attempt: 1, part: 'p', at: 0, text: 'x' })).toEqual({ attempt: 1, part: 'p', at: 0, text: 'x' });
    expect(asDelta({ part: 'p', text: 'x' })).toBeNull();
    expect(asDelta(null)).toBeNull();
  });
});
