import type { ReactNode } from 'react';

export function ErrorLine({ error }: { error: string | null | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

export function Badge({ kind, children }: { kind: string; children: ReactNode }) {
  return <span className={`badge badge-${kind}`}>{children}</span>;
}

export function SimulatedBadge() {
  return (
    <span className="badge badge-sim" title="Output of a simulated model (no API key configured), not a real LLM">
      simulated
    </span>
  );
}

export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(t).toLocaleDateString();
}

export function formatUsage(u: { prompt_tokens?: number; completion_tokens?: number; cost?: number } | undefined): string | null {
  if (!u) return null;
  const parts: string[] = [];
  if (u.prompt_tokens !== undefined || u.completion_tokens !== undefined) {
    parts.push(`${u.prompt_tokens ?? 0} in / ${u.completion_tokens ?? 0} out tokens`);
  }
  if (typeof u.cost === 'number' && u.cost > 0) parts.push(`$${u.cost.toFixed(u.cost < 0.01 ? 5 : 4)}`);
  return parts.length ? parts.join(' · ') : null;
}

export function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span className="muted">none</span>;
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}
