// One council turn: stage 1 answers (a tab per member), stage 2 rankings with the anonymous
// labels resolved and the aggregate as a chart, stage 3 the chairman's answer.
import { useState, type ReactElement } from 'react';
import type { AggregateRank } from '../api/types';
import { Badge, ErrorLine, SimulatedBadge, formatUsage } from '../ui/common';
import { Markdown } from './Markdown';
import { isSimulated, resolveLabels, type MemberView, type TurnView as Turn } from './state';

const PHASE_TEXT: Record<Turn['phase'], string> = {
  queued: 'Waiting for a worker…',
  stage1: 'Stage 1: the members answer',
  stage2: 'Stage 2: the members rank each other anonymously',
  stage3: 'Stage 3: the chairman writes the answer',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

function ModelName({ model }: { model: string }) {
  return (
    <span className="model">
      {model || 'unknown model'}
      {isSimulated(model) && (
        <>
          {' '}
          <SimulatedBadge />
        </>
      )}
    </span>
  );
}

function StatusBadge({ m }: { m: MemberView }) {
  return <Badge kind={m.status}>{m.status}</Badge>;
}

function MemberTabs({ label, members, render }: { label: string; members: MemberView[]; render(m: MemberView): ReactElement }) {
  const [picked, setPicked] = useState(0);
  const index = Math.min(picked, Math.max(0, members.length - 1));
  const current = members[index];
  if (!current) return null;
  const id = label.replace(/\W+/g, '-').toLowerCase();
  return (
    <div className="tabs">
      <div role="tablist" aria-label={label} className="tablist">
        {members.map((m, i) => (
          <button
            key={m.model}
            role="tab"
            id={`${id}-tab-${i}`}
            aria-selected={i === index}
            aria-controls={`${id}-panel`}
            tabIndex={i === index ? 0 : -1}
            className={`tab tab-${m.status}`}
            onClick={() => setPicked(i)}
            onKeyDown={(e) => {
              if (e.key === 'ArrowRight') setPicked((index + 1) % members.length);
              if (e.key === 'ArrowLeft') setPicked((index - 1 + members.length) % members.length);
            }}
          >
            <span className="tab-model">{m.model.split('/').pop()}</span> <StatusBadge m={m} />
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`${id}-panel`} aria-labelledby={`${id}-tab-${index}`} className="tabpanel" data-model={current.model}>
        <div className="panel-head">
          <ModelName model={current.model} /> <StatusBadge m={current} />
          {formatUsage(current.usage) && <span className="muted small"> {formatUsage(current.usage)}</span>}
        </div>
        {render(current)}
      </div>
    </div>
  );
}

export function AggregateChart({ ranks }: { ranks: AggregateRank[] }) {
  if (ranks.length === 0) return null;
  const worst = Math.max(...ranks.map((r) => r.average_rank), 1);
  return (
    <figure className="chart" aria-label="Aggregate ranking">
      <figcaption>Aggregate ranking (average position, lower is better)</figcaption>
      <ol className="bars">
        {ranks.map((r) => (
          <li key={r.model} className="bar-row">
            <span className="bar-label">
              <ModelName model={r.model} />
            </span>
            <span className="bar-track">
              <span className="bar" style={{ width: `${Math.max(4, 100 * (1 - (r.average_rank - 1) / Math.max(worst, 2)))}%` }} />
            </span>
            <span className="bar-value">
              {r.average_rank.toFixed(2)} <span className="muted small">({r.rankings_count} votes)</span>
            </span>
          </li>
        ))}
      </ol>
    </figure>
  );
}

function Text({ m }: { m: MemberView }) {
  if (m.status === 'failed') return <ErrorLine error={`${m.model} failed: ${m.error ?? 'no answer'}`} />;
  if (!m.text && m.held) return <p className="muted">{m.held}</p>;
  if (!m.text) return <p className="muted">{m.status === 'waiting' ? 'Waiting for the first tokens…' : '(no text)'}</p>;
  return <Markdown text={m.text} />;
}

export function TurnView({ turn, live }: { turn: Turn; live: boolean }) {
  const stage1 = (turn.members.length ? turn.members : Object.keys(turn.stage1)).map(
    (m) => turn.stage1[m] ?? { model: m, status: 'waiting' as const, text: '' },
  );
  const stage2 = Object.values(turn.stage2).filter((m) => m.model);
  const usage = formatUsage(turn.usage);
  const chair = turn.chairman;
  return (
    <article className={`turn turn-${turn.phase}`} aria-busy={live && !['done', 'failed', 'cancelled'].includes(turn.phase)}>
      <header className="turn-head">
        <Badge kind={turn.phase}>{PHASE_TEXT[turn.phase]}</Badge>
        {turn.simulated && <SimulatedBadge />}
        {usage && <span className="muted small usage">{usage}</span>}
      </header>
      {turn.retrying && <p className="warning">Retrying after: {turn.retrying}</p>}
      {turn.phase !== 'done' && <ErrorLine error={turn.error && turn.phase !== 'cancelled' ? turn.error : null} />}
      {stage1.length > 0 && (
        <section className="stage" aria-label="Stage 1">
          <h3>Stage 1 · individual answers</h3>
          <MemberTabs label="Stage 1 answers" members={stage1} render={(m) => <Text m={m} />} />
        </section>
      )}
      {stage2.length > 0 && (
        <section className="stage" aria-label="Stage 2">
          <h3>Stage 2 · peer rankings</h3>
          <MemberTabs
            label="Stage 2 rankings"
            members={stage2}
            render={(m) => (
              <>
                <Text m={{ ...m, text: resolveLabels(m.text, turn.labelToModel) }} />
                {m.parsed && m.parsed.length > 0 && Object.keys(turn.labelToModel).length > 0 && (
                  <p className="small">Parsed: {m.parsed.map((l) => turn.labelToModel[l] ?? l).join(' › ')}</p>
                )}
              </>
            )}
          />
          <AggregateChart ranks={turn.aggregate} />
        </section>
      )}
      {chair && (
        <section className="stage stage3" aria-label="Stage 3">
          <h3>
            Stage 3 · chairman <ModelName model={chair.model} />
          </h3>
          {chair.status === 'failed' && !chair.text ? (
            <ErrorLine error={chair.error ?? 'the chairman failed'} />
          ) : (
            <Markdown text={chair.text} />
          )}
        </section>
      )}
    </article>
  );
}
