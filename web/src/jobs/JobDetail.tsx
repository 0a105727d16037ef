// One job: its fields, payload, result or error, the timeline of its events, the text its
// deltas have streamed so far (live), and cancel / retry where the state machine allows them.
import { useCallback, useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import type { Job, StoredEvent } from '../api/types';
import { applyDelta, asDelta, isDeltaType, type Parts } from '../live/parts';
import { useStream } from '../live/context';
import { Badge, ErrorLine, Json } from '../ui/common';
import { Link } from '../ui/router';

interface Tail {
  timeline: StoredEvent[];
  parts: Parts;
  offset: number;
}

export function foldTail(t: Tail, e: StoredEvent): Tail {
  if (isDeltaType(e.type)) {
    const d = asDelta(e.data);
    if (!d) return { ...t, offset: e.offset };
    const [parts] = applyDelta(t.parts, d);
    return { ...t, parts, offset: e.offset };
  }
  const timeline = [...t.timeline, e].slice(-500);
  let parts = t.parts;
  if (e.type === 'job.started') {
    const attempt = (e.data as { attempt?: number } | null)?.attempt ?? parts.attempt + 1;
    if (attempt > parts.attempt) parts = { attempt, text: {} };
  }
  return { timeline, parts, offset: e.offset };
}

function summary(e: StoredEvent): string {
  const d = e.data as Record<string, unknown> | null;
  if (!d || typeof d !== 'object') return '';
  if (typeof d.error === 'string') return d.error;
  if (d.error && typeof d.error === 'object' && typeof (d.error as { message?: unknown }).message === 'string')
    return String((d.error as { message: string }).message);
  const keys = Object.keys(d).filter((k) => k !== 'result');
  const text = JSON.stringify(Object.fromEntries(keys.map((k) => [k, d[k]])));
  return text.length > 160 ? `${text.slice(0, 160)}…` : text === '{}' ? '' : text;
}

export function JobDetail({ id }: { id: string }) {
  const stream = useStream();
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [tail, setTail] = useState<Tail | null>(null);
  const [ended, setEnded] = useState(false);
  // Bumped by a retry: the stream ended at the terminal event, and the retried job's topic goes
  // on, so it is followed again from a fresh snapshot.
  const [generation, setGeneration] = useState(0);

  const load = useCallback(() => {
    api.job(id).then(
      (j) => {
        setJob(j);
        setError(null);
      },
      (e) => setError(errorText(e)),
    );
  }, [id]);

  useEffect(() => {
    let off: (() => void) | null = null;
    let live = true;
    setTail(null);
    setEnded(false);
    load();
    api.snapshot(id).then(
      (s) => {
        if (!live) return;
        setJob(s.job);
        const start: Tail = {
          timeline: (s.events ?? []).filter((e) => !isDeltaType(e.type)),
          parts: { attempt: s.attempt, text: { ...s.parts } },
          offset: s.offset,
        };
        setTail(start);
        off = stream.subscribe(`job:${id}`, s.offset, {
          onEvent: (e) => {
            setTail((t) => foldTail(t ?? start, e));
            if (e.type.startsWith('job.')) load();
          },
          onEnd: () => {
            setEnded(true);
            load();
          },
          onReset: () => load(),
          onError: (m) => setError(m),
        });
      },
      (e) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
      off?.();
    };
  }, [id, stream, load, generation]);

  const act = async (what: 'cancel' | 'retry') => {
    setActionError(null);
    try {
      setJob(await (what === 'cancel' ? api.cancel(id) : api.retry(id)));
      if (what === 'retry') setGeneration((g) => g + 1);
    } catch (e) {
      setActionError(`Could not ${what}: ${errorText(e)}`);
    }
  };

  const parts = Object.entries(tail?.parts.text ?? {});
  return (
    <main className="job-detail" aria-label="Job">
      <p>
        <Link to="/jobs">‹ All jobs</Link>
      </p>
      <h1 className="mono">Job {id}</h1>
      <ErrorLine error={error} />
      {job && (
        <>
          <div className="row">
            <Badge kind={job.state}>{job.state}</Badge>
            {job.cancel_requested && job.state === 'active' && <Badge kind="warning">cancel requested</Badge>}
            {(job.state === 'queued' || job.state === 'active') && (
              <button className="danger" onClick={() => act('cancel')}>
                Cancel
              </button>
            )}
            {(job.state === 'failed' || job.state === 'cancelled') && <button onClick={() => act('retry')}>Retry</button>}
          </div>
          <ErrorLine error={actionError} />
          <dl className="fields">
            <dt>type</dt>
            <dd>{job.type}</dd>
            <dt>queue</dt>
            <dd>{job.queue}</dd>
            <dt>attempts</dt>
            <dd>
              {job.attempts} of {job.max_attempts}
            </dd>
            <dt>priority</dt>
            <dd>{job.priority}</dd>
            <dt>created</dt>
            <dd>{job.created_at}</dd>
            <dt>started</dt>
            <dd>{job.started_at ?? '—'}</dd>
            <dt>finished</dt>
            <dd>{job.finished_at ?? '—'}</dd>
            {job.lease_owner && (
              <>
                <dt>worker</dt>
                <dd>{job.lease_owner}</dd>
              </>
            )}
            {job.topics.length > 0 && (
              <>
                <dt>topics</dt>
                <dd>{job.topics.join(', ')}</dd>
              </>
            )}
          </dl>
          <section aria-label="Payload">
            <h2>Payload</h2>
            <Json value={job.payload} />
          </section>
          {job.error != null && (
            <section aria-label="Error">
              <h2>Error</h2>
              <Json value={job.error} />
            </section>
          )}
          {job.result != null && (
            <section aria-label="Result">
              <h2>Result</h2>
              <Json value={job.result} />
            </section>
          )}
        </>
      )}
      {tail && (
        <>
          <section aria-label="Live output">
            <h2>
              Output {tail && tail.parts.attempt > 0 && <span className="muted small">(attempt {tail.parts.attempt})</span>}{' '}
              {tail && (ended ? <Badge kind="done">stream ended</Badge> : <Badge kind="streaming">live</Badge>)}
            </h2>
            {parts.length === 0 && <p className="muted">No streamed text.</p>}
            {parts.map(([part, text]) => (
              <div key={part} className="part" data-part={part}>
                <h3 className="mono small">{part}</h3>
                <pre className="part-text">{text}</pre>
              </div>
            ))}
          </section>
          <section aria-label="Timeline">
            <h2>Timeline</h2>
            <ol className="timeline">
              {(tail?.timeline ?? []).map((e) => (
                <li key={e.offset}>
                  <span className="mono small muted">#{e.offset}</span> <span className="small muted">{e.time.slice(11, 23)}</span>{' '}
                  <strong>{e.type}</strong> <span className="small">{summary(e)}</span>
                </li>
              ))}
            </ol>
          </section>
        </>
      )}
    </main>
  );
}
