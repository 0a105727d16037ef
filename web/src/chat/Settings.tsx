// The council for new conversations: members, chairman and title model, offered from the
// server's configuration (GET /v1/config) and editable (any "provider:model" id).
import { useState } from 'react';
import type { CouncilSettings, ServerConfig } from '../api/types';
import { SimulatedBadge } from '../ui/common';

export function defaultsOf(config: ServerConfig | null): CouncilSettings {
  return { ...(config?.council ?? {}) };
}

export function Settings({
  config,
  value,
  onChange,
  onClose,
}: {
  config: ServerConfig | null;
  value: CouncilSettings;
  onChange(v: CouncilSettings): void;
  onClose(): void;
}) {
  const [members, setMembers] = useState((value.members ?? []).join('\n'));
  const [chairman, setChairman] = useState(value.chairman ?? '');
  const [titleModel, setTitleModel] = useState(value.title_model ?? '');
  const [problem, setProblem] = useState<string | null>(null);
  const save = () => {
    const list = members
      .split(/[\n,]/)
      .map((m) => m.trim())
      .filter(Boolean);
    if (list.length === 0) {
      setProblem('A council needs at least one member.');
      return;
    }
    const next: CouncilSettings = { ...value, members: list };
    if (chairman.trim()) next.chairman = chairman.trim();
    else delete next.chairman;
    if (titleModel.trim()) next.title_model = titleModel.trim();
    else delete next.title_model;
    onChange(next);
    onClose();
  };
  const defaults = config?.council;
  return (
    <section className="settings" aria-label="Council settings">
      <h2>Council for new conversations</h2>
      {config?.simulated && (
        <p className="note">
          <SimulatedBadge /> No API key is configured, so the default council is simulated. Set <code>OPENROUTER_API_KEY</code> (or add
          providers to the config) to ask real models.
        </p>
      )}
      <label>
        Members (one model id per line)
        <textarea value={members} onChange={(e) => setMembers(e.target.value)} rows={5} />
      </label>
      <label>
        Chairman
        <input value={chairman} onChange={(e) => setChairman(e.target.value)} placeholder={defaults?.chairman ?? ''} />
      </label>
      <label>
        Title model
        <input value={titleModel} onChange={(e) => setTitleModel(e.target.value)} placeholder={defaults?.title_model ?? ''} />
      </label>
      {config && (
        <p className="muted small">
          Providers: {config.providers.map((p) => `${p.name}${p.simulated ? ' (simulated)' : p.has_key ? '' : ' (no key)'}`).join(', ')}
        </p>
      )}
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <div className="row">
        <button onClick={save}>Use this council</button>
        <button
          className="secondary"
          onClick={() => {
            onChange(defaultsOf(config));
            onClose();
          }}
        >
          Server defaults
        </button>
        <button className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
    </section>
  );
}
