import type { Stats } from '../api/types';

// Jobs finished per bucket over the last minutes, as stacked bars (succeeded, failed, cancelled).
export function ThroughputChart({ throughput }: { throughput: Stats['throughput'] }) {
  if (!throughput || throughput.buckets.length === 0) return <p className="muted">No throughput data.</p>;
  const { buckets, bucket_s } = throughput;
  const max = Math.max(1, ...buckets.map((b) => b.succeeded + b.failed + b.cancelled));
  const w = 600;
  const h = 120;
  const bw = w / buckets.length;
  const total = buckets.reduce((n, b) => n + b.succeeded + b.failed + b.cancelled, 0);
  const minutes = Math.round((buckets.length * bucket_s) / 60);
  const last = buckets.slice(-6).reduce((n, b) => n + b.succeeded + b.failed + b.cancelled, 0);
  const rate = last / (6 * bucket_s);
  return (
    <figure className="throughput" aria-label="Throughput">
      <figcaption>
        Finished in the last {minutes} minutes: <strong>{total}</strong> · last minute: <strong>{rate.toFixed(rate < 10 ? 2 : 0)}</strong>{' '}
        jobs/s
      </figcaption>
      <svg
        viewBox={`0 0 ${w} ${h}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${total} jobs finished in the last ${minutes} minutes`}
      >
        {buckets.map((b, i) => {
          const parts: [number, string][] = [
            [b.succeeded, 'ok'],
            [b.failed, 'fail'],
            [b.cancelled, 'cancel'],
          ];
          let y = h;
          return (
            <g key={b.t}>
              <title>{`${new Date(b.t * 1000).toLocaleTimeString()}: ${b.succeeded} succeeded, ${b.failed} failed, ${b.cancelled} cancelled`}</title>
              {parts.map(([n, kind]) => {
                const bh = (n / max) * (h - 4);
                y -= bh;
                return n > 0 ? (
                  <rect key={kind} className={`tp-${kind}`} x={i * bw + 1} y={y} width={Math.max(1, bw - 2)} height={bh} />
                ) : null;
              })}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
