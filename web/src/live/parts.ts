// Token deltas (`*.delta` events, data {attempt, part, at, text}) folded into each part's text.
// A delta is appended only when `at` equals the length held (UTF-16 units, as String.length
// counts), so a duplicate is ignored and a gap is noticed instead of corrupting the text.

export interface Delta {
  attempt: number;
  part: string;
  at: number;
  text: string;
}

export function isDeltaType(type: string): boolean {
  return type === 'delta' || type.endsWith('.delta');
}

export function asDelta(data: unknown): Delta | null {
  const d = data as Partial<Delta> | null;
  if (!d || typeof d.part !== 'string' || typeof d.at !== 'number' || typeof d.text !== 'string') return null;
  return { attempt: typeof d.attempt === 'number' ? d.attempt : 0, part: d.part, at: d.at, text: d.text };
}

export type ApplyOutcome = 'applied' | 'duplicate' | 'gap' | 'stale';

export interface Parts {
  attempt: number;
  text: Record<string, string>;
}

// Returns the new parts (the same object when nothing changed) and what happened.
export function applyDelta(parts: Parts, d: Delta): [Parts, ApplyOutcome] {
  if (d.attempt !== 0 && d.attempt < parts.attempt) return [parts, 'stale'];
  let base = parts;
  if (d.attempt > parts.attempt) base = { attempt: d.attempt, text: {} };
  const have = base.text[d.part] ?? '';
  const end = d.at + d.text.length;
  if (end <= have.length) return [base, base === parts ? 'duplicate' : 'applied'];
  if (d.at > have.length) return [base, 'gap'];
  // Overlap (a merged delta covering text already held): append only the new tail.
  const tail = d.text.slice(have.length - d.at);
  return [{ attempt: base.attempt, text: { ...base.text, [d.part]: have + tail } }, 'applied'];
}
