// A council turn as the page shows it, built from the job's events (live, or replayed after a
// snapshot) or from the saved assistant message. Pure functions: the component tests and the
// browser see the same folding.
import type { AggregateRank, Message, Snapshot, StoredEvent, Usage } from '../api/types';
import { applyDelta, asDelta, isDeltaType, type Parts } from '../live/parts';

export type MemberStatus = 'waiting' | 'streaming' | 'done' | 'failed';

export interface MemberView {
  model: string;
  status: MemberStatus;
  text: string;
  error?: string;
  parsed?: string[];
  usage?: Usage;
  // Why the call has not started: its provider's budget is spent (llm.budget_wait).
  held?: string;
}

export type Phase = 'queued' | 'stage1' | 'stage2' | 'stage3' | 'done' | 'failed' | 'cancelled';

export interface TurnView {
  phase: Phase;
  attempt: number;
  members: string[];
  stage1: Record<string, MemberView>;
  stage2: Record<string, MemberView>;
  labelToModel: Record<string, string>;
  aggregate: AggregateRank[];
  chairman: MemberView | null;
  title?: string;
  error?: string;
  retrying?: string;
  usage?: Usage;
  simulated: boolean;
  parts: Parts;
}

export function emptyTurn(): TurnView {
  return {
    phase: 'queued',
    attempt: 0,
    members: [],
    stage1: {},
    stage2: {},
    labelToModel: {},
    aggregate: [],
    chairman: null,
    simulated: false,
    parts: { attempt: 0, text: {} },
  };
}

export function isSimulated(model: string): boolean {
  return model.startsWith('sim:');
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function errorMessage(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const o = obj(v);
  return str(o.message) ?? (v ? JSON.stringify(v) : undefined);
}

function member(model: string, prev?: MemberView): MemberView {
  return prev ?? { model, status: 'waiting', text: '' };
}

function stageOf(part: string): { stage: string; model: string } {
  const slash = part.indexOf('/');
  return slash < 0 ? { stage: part, model: '' } : { stage: part.slice(0, slash), model: part.slice(slash + 1) };
}

// Applies one part's text (from a delta or a snapshot) to the member it belongs to.
function withPartText(v: TurnView, part: string, text: string): TurnView {
  const { stage, model } = stageOf(part);
  if (stage === 'stage1' || stage === 'stage2') {
    const key = stage as 'stage1' | 'stage2';
    const m = member(model, v[key][model]);
    const status = m.status === 'waiting' ? 'streaming' : m.status;
    return { ...v, [key]: { ...v[key], [model]: { ...m, text, status, held: undefined } } };
  }
  if (stage === 'stage3') {
    const m = v.chairman && v.chairman.model === model ? v.chairman : member(model);
    const status = m.status === 'waiting' ? 'streaming' : m.status;
    return { ...v, chairman: { ...m, text, status, held: undefined } };
  }
  return v;
}

// A call held back by its provider's budget: shown on its member until its text starts.
function withBudgetWait(v: TurnView, data: Obj): TurnView {
  const { stage, model } = stageOf(str(data.part) ?? '');
  const budget = str(data.budget) === 'usd_per_day' ? 'dollars for the day' : 'tokens for the minute';
  const until = str(data.until);
  const held = `Waiting: ${str(data.provider) ?? 'the provider'} has used its ${budget}${until ? ` (until ${until})` : ''}`;
  if (stage === 'stage1' || stage === 'stage2') {
    const key = stage as 'stage1' | 'stage2';
    return { ...v, [key]: { ...v[key], [model]: { ...member(model, v[key][model]), held } } };
  }
  if (stage === 'stage3') {
    const m = v.chairman && v.chairman.model === model ? v.chairman : member(model);
    return { ...v, chairman: { ...m, held } };
  }
  return v;
}

function withDelta(v: TurnView, data: unknown): TurnView {
  const d = asDelta(data);
  if (!d) return v;
  const [parts, outcome] = applyDelta(v.parts, d);
  if (outcome !== 'applied') return parts === v.parts ? v : { ...v, parts };
  let next: TurnView = { ...v, parts };
  if (parts.attempt !== v.parts.attempt) next = resetAttempt(next, parts.attempt);
  return withPartText(next, d.part, parts.text[d.part] ?? '');
}

// A new attempt voids the texts streamed by the earlier one (its recorded steps come back in
// the new attempt's *.complete events).
function resetAttempt(v: TurnView, attempt: number): TurnView {
  return {
    ...emptyTurn(),
    attempt,
    phase: 'queued',
    title: v.title,
    parts: v.parts.attempt === attempt ? v.parts : { attempt, text: {} },
  };
}

function stageResults(list: unknown, textKey: 'response' | 'ranking', prev: Record<string, MemberView>) {
  const out: Record<string, MemberView> = { ...prev };
  for (const item of arr(list)) {
    const o = obj(item);
    const model = str(o.model) ?? '';
    const error = str(o.error);
    out[model] = {
      model,
      status: error ? 'failed' : 'done',
      text: str(o[textKey]) ?? '',
      error,
      parsed: arr(o.parsed_ranking).filter((x): x is string => typeof x === 'string'),
      usage: o.usage as Usage | undefined,
    };
  }
  return out;
}

function withResult(v: TurnView, result: unknown): TurnView {
  const r = obj(result);
  const meta = obj(r.metadata);
  let next: TurnView = {
    ...v,
    stage1: stageResults(r.stage1, 'response', v.stage1),
    stage2: stageResults(r.stage2, 'ranking', v.stage2),
    labelToModel: (meta.label_to_model as Record<string, string>) ?? v.labelToModel,
    aggregate: (meta.aggregate_rankings as AggregateRank[]) ?? v.aggregate,
    usage: (meta.usage as Usage) ?? v.usage,
    simulated: meta.simulated === true || v.simulated,
    title: str(meta.title) ?? v.title,
  };
  if (next.members.length === 0) next = { ...next, members: Object.keys(next.stage1) };
  const s3 = obj(r.stage3);
  if (str(s3.model) !== undefined || str(s3.response) !== undefined) {
    const error = str(s3.error);
    next = {
      ...next,
      chairman: {
        model: str(s3.model) ?? '',
        text: str(s3.response) ?? '',
        status: error ? 'failed' : 'done',
        error,
        usage: s3.usage as Usage | undefined,
      },
    };
  }
  return next;
}

export function applyEvent(v: TurnView, e: StoredEvent): TurnView {
  const data = obj(e.data);
  if (isDeltaType(e.type)) return withDelta(v, e.data);
  switch (e.type) {
    case 'job.queued':
      return v;
    case 'job.started': {
      const attempt = typeof data.attempt === 'number' ? data.attempt : v.attempt + 1;
      const next = attempt > v.attempt ? resetAttempt(v, attempt) : v;
      return { ...next, retrying: undefined };
    }
    case 'job.retrying':
      return { ...v, retrying: errorMessage(data.error) ?? 'retrying' };
    case 'stage1.start': {
      const members = arr(data.members).filter((x): x is string => typeof x === 'string');
      const stage1 = { ...v.stage1 };
      for (const m of members) stage1[m] = member(m, stage1[m]);
      return { ...v, phase: 'stage1', members, stage1 };
    }
    case 'stage1.model_complete':
    case 'stage2.model_complete': {
      const key = e.type.startsWith('stage1') ? 'stage1' : 'stage2';
      const model = str(data.model) ?? '';
      const error = str(data.error);
      const m = member(model, v[key][model]);
      return { ...v, [key]: { ...v[key], [model]: { ...m, status: error ? 'failed' : 'done', error } } };
    }
    case 'stage1.complete':
      return { ...v, stage1: stageResults(data.results, 'response', v.stage1) };
    case 'stage2.start': {
      const stage2 = { ...v.stage2 };
      for (const m of v.members) stage2[m] = member(m, stage2[m]);
      return { ...v, phase: 'stage2', stage2 };
    }
    case 'stage2.complete':
      return {
        ...v,
        stage2: stageResults(data.results, 'ranking', v.stage2),
        labelToModel: (data.label_to_model as Record<string, string>) ?? {},
        aggregate: (data.aggregate_rankings as AggregateRank[]) ?? [],
      };
    case 'stage3.start':
      return { ...v, phase: 'stage3' };
    case 'stage3.complete': {
      const error = str(data.error);
      const model = str(data.model) ?? v.chairman?.model ?? '';
      const text = str(data.response) ?? v.chairman?.text ?? '';
      return { ...v, phase: 'stage3', chairman: { model, text, status: error ? 'failed' : 'done', error } };
    }
    case 'title':
      return { ...v, title: str(data.title) ?? v.title };
    case 'llm.budget_wait':
      return withBudgetWait(v, data);
    case 'job.succeeded':
      return { ...withResult(v, data.result), phase: 'done', retrying: undefined };
    case 'job.failed':
      return { ...v, phase: 'failed', error: errorMessage(data.error) ?? 'the council failed', retrying: undefined };
    case 'job.cancelled':
      return { ...v, phase: 'cancelled', error: 'cancelled', retrying: undefined };
    default:
      return v;
  }
}

// The state at the snapshot's offset: its structural events, then each part's text so far.
export function fromSnapshot(s: Snapshot): TurnView {
  let v = emptyTurn();
  v = { ...v, attempt: s.attempt, parts: { attempt: s.attempt, text: { ...s.parts } } };
  for (const e of s.events ?? []) {
    if (!isDeltaType(e.type)) v = applyEvent(v, e);
  }
  for (const [part, text] of Object.entries(s.parts)) v = withPartText(v, part, text);
  return v;
}

// A finished turn from its saved assistant message.
export function fromMessage(m: Message): TurnView {
  const meta = m.metadata ?? {};
  let v = withResult(emptyTurn(), { stage1: m.stage1, stage2: m.stage2, stage3: m.stage3, metadata: meta });
  const error = errorMessage(meta.error);
  const failed = !!error || (!m.stage3?.response && !!m.stage3?.error);
  v = { ...v, phase: failed ? 'failed' : 'done', error: error ?? (failed ? m.stage3?.error : undefined) };
  if (!v.chairman && m.content) v = { ...v, chairman: { model: '', text: m.content, status: 'done' } };
  return v;
}

// Rankings with "Response X" labels resolved to model names, for display.
export function resolveLabels(text: string, labelToModel: Record<string, string>): string {
  let out = text;
  for (const [label, model] of Object.entries(labelToModel)) {
    out = out.split(label).join(`**${model}**`);
  }
  return out;
}
