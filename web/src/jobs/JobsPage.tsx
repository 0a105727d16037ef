// The jobs console: live counts by state and queue, throughput, a filtered and paged job list,
// and the failed jobs (dead letters) with bulk retry.
import { useCallback, useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import { JOB_STATES, type Job, type Stats } from '../api/types';
import { Badge, ErrorLine, timeAgo } from '../ui/common';
import { Link } from '../ui/router';
import { ThroughputChart } from './ThroughputChart';

const REFRESH_MS = 2000;

function usePolling<T>(load: () => Promise<T>, deps: unknown[]) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const run = () => {
      load().then(
        (v) => {
          if (!live) return;
          setValue(v);
          setError(null);
        },
        (e) => live && setError(errorText(e)),
      );
      timer = setTimeout(run, REFRESH_MS);
    };
    run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { value, error, refresh: () => setTick((t) => t + 1) };
}

function Counts({ stats, onPick }: { stats: Stats; onPick(state: string): void }) {
  const queues = Object.entries(stats.queues ?? {});
  return (
    <section aria-label="Counts">
      <div className="counts">
        {JOB_STATES.map((s) => (
          <button key={s} className={`count count-${s}`} onClick={() => onPick(s)} aria-label={`${stats.jobs[s] ?? 0} ${s}: show them`}>
            <span className="count-n">{stats.jobs[s] ?? 0}</span>
            <span className="count-label">{s}</span>
          </button>
        ))}
      </div>
      {queues.length > 0 && (
        <div className="table-scroll">
          <table className="queues">
            <caption>By queue</caption>
            <thead>
              <tr>
                <th scope="col">queue</th>
                {JOB_STATES.map((s) => (
                  <th key={s} scope="col">
                    {s}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {queues.map(([q, c]) => (
                <tr key={q}>
                  <th scope="row">{q}</th>
                  {JOB_STATES.map((s) => (
                    <td key={s}>{c[s] ?? 0}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function JobTable({ jobs, selected, onSelect }: { jobs: Job[]; selected?: Set<string>; onSelect?(id: string, on: boolean): void }) {
  if (jobs.length === 0) return <p className="muted">No jobs match.</p>;
  return (
    <div className="table-scroll">
      <table className="jobs">
        <thead>
          <tr>
            {onSelect && (
              <th scope="col">
                <span className="visually-hidden">select</span>
              </th>
            )}
            <th scope="col">job</th>
            <th scope="col">type</th>
            <th scope="col">queue</th>
            <th scope="col">state</th>
            <th scope="col">attempts</th>
            <th scope="col">created</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-job={j.id}>
              {onSelect && (
                <td>
                  <input
                    type="checkbox"
                    aria-label={`select job ${j.id}`}
                    checked={selected?.has(j.id) ?? false}
                    onChange={(e) => onSelect(j.id, e.target.checked)}
                  />
                </td>
              )}
              <td>
                <Link to={`/jobs/${j.id}`} className="mono">
                  {j.id.slice(0, 8)}…{j.id.slice(-4)}
                </Link>
              </td>
              <td>{j.type}</td>
              <td>{j.queue}</td>
              <td>
                <Badge kind={j.state}>{j.state}</Badge>
              </td>
              <td>
                {j.attempts}/{j.max_attempts}
              </td>
              <td className="small">{timeAgo(j.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DeadLetters({ onChanged }: { onChanged(): void }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const page = usePolling(() => api.jobs({ state: 'failed', cursor, limit: 50 }), [cursor]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [outcome, setOutcome] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const jobs = page.value?.jobs ?? [];
  const retry = async () => {
    setError(null);
    setOutcome(null);
    try {
      const r = await api.retryMany([...selected]);
      const failed = r.errors.map((e) => `${e.id.slice(0, 8)}: ${e.error.message}`);
      setOutcome(
        `Retried ${r.retried.length} job${r.retried.length === 1 ? '' : 's'}.${failed.length ? ` Not retried: ${failed.join('; ')}` : ''}`,
      );
      setSelected(new Set());
      page.refresh();
      onChanged();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const all = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
  return (
    <section aria-label="Failed jobs" className="dead-letters">
      <h2>Failed jobs (dead letters)</h2>
      <div className="row">
        <label className="inline">
          <input
            type="checkbox"
            checked={all}
            onChange={(e) => setSelected(e.target.checked ? new Set(jobs.map((j) => j.id)) : new Set())}
            disabled={jobs.length === 0}
          />{' '}
          select all on this page
        </label>
        <button onClick={retry} disabled={selected.size === 0}>
          Retry selected ({selected.size})
        </button>
      </div>
      <ErrorLine error={page.error ?? error} />
      {outcome && <p role="status">{outcome}</p>}
      <JobTable
        jobs={jobs}
        selected={selected}
        onSelect={(id, on) =>
          setSelected((s) => {
            const n = new Set(s);
            if (on) n.add(id);
            else n.delete(id);
            return n;
          })
        }
      />
      <Pager cursor={cursor} next={page.value?.next_cursor ?? null} onPage={setCursor} />
    </section>
  );
}

function Pager({ cursor, next, onPage }: { cursor: string | null; next: string | null; onPage(c: string | null): void }) {
  const [history, setHistory] = useState<(string | null)[]>([]);
  return (
    <div className="row pager">
      <button
        className="secondary"
        disabled={history.length === 0}
        onClick={() => {
          const prev = history[history.length - 1] ?? null;
          setHistory((h) => h.slice(0, -1));
          onPage(prev);
        }}
      >
        ‹ Newer
      </button>
      <button
        className="secondary"
        disabled={!next}
        onClick={() => {
          setHistory((h) => [...h, cursor]);
          onPage(next);
        }}
      >
        Older ›
      </button>
    </div>
  );
}

export function JobsPage() {
  const stats = usePolling(() => api.stats(), []);
  const [state, setState] = useState('');
  const [type, setType] = useState('');
  const [queue, setQueue] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const filterKey = `${state}|${type}|${queue}`;
  const list = usePolling(() => api.jobs({ state, type, queue, cursor }), [filterKey, cursor]);
  const resetTo = useCallback((f: () => void) => {
    f();
    setCursor(null);
  }, []);
  const types = Object.keys(stats.value?.types ?? {});
  const queues = Object.keys(stats.value?.queues ?? {});
  return (
    <main className="jobs-page" aria-label="Jobs console">
      <h1>Jobs</h1>
      <ErrorLine error={stats.error} />
      {stats.value && (
        <>
          <Counts stats={stats.value} onPick={(s) => resetTo(() => setState(s))} />
          <ThroughputChart throughput={stats.value.throughput} />
          <p className="muted small">{stats.value.running_here} running on this node · refreshed every 2 s</p>
        </>
      )}
      <section aria-label="Job list">
        <h2>All jobs</h2>
        <form className="filters" onSubmit={(e) => e.preventDefault()}>
          <label>
            State
            <select value={state} onChange={(e) => resetTo(() => setState(e.target.value))}>
              <option value="">any</option>
              {JOB_STATES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Type
            <input list="job-types" value={type} onChange={(e) => resetTo(() => setType(e.target.value.trim()))} placeholder="any" />
            <datalist id="job-types">
              {types.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
          </label>
          <label>
            Queue
            <input list="job-queues" value={queue} onChange={(e) => resetTo(() => setQueue(e.target.value.trim()))} placeholder="any" />
            <datalist id="job-queues">
              {queues.map((q) => (
                <option key={q} value={q} />
              ))}
            </datalist>
          </label>
        </form>
        <ErrorLine error={list.error} />
        {list.value && <JobTable jobs={list.value.jobs} />}
        <Pager key={filterKey} cursor={cursor} next={list.value?.next_cursor ?? null} onPage={setCursor} />
      </section>
      <DeadLetters
        onChanged={() => {
          stats.refresh();
          list.refresh();
        }}
      />
    </main>
  );
}
