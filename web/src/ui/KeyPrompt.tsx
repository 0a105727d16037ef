// Shown when the server answers 401: asks for an API key (`conclave keys create NAME --scopes
// read,submit --config FILE` makes one), keeps it in this browser and reloads the page.
import { useEffect, useState, type FormEvent } from 'react';
import { AUTH_REQUIRED, apiKey, setApiKey } from '../api/key';

export function KeyPrompt() {
  const [reason, setReason] = useState<string | null>(null);
  const [value, setValue] = useState('');
  useEffect(() => {
    const on = (e: Event) => setReason((e as CustomEvent<string>).detail);
    window.addEventListener(AUTH_REQUIRED, on);
    return () => window.removeEventListener(AUTH_REQUIRED, on);
  }, []);
  if (!reason) return null;
  const save = (e: FormEvent) => {
    e.preventDefault();
    setApiKey(value.trim() || null);
    window.location.reload();
  };
  return (
    <form className="key-prompt" onSubmit={save} aria-label="API key required">
      <p role="alert">
        {apiKey() ? 'The server refused this browser’s API key' : 'This server requires an API key'}: {reason}
      </p>
      <label>
        API key
        <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" placeholder="ck_…" />
      </label>
      <div className="row">
        <button type="submit" disabled={!value.trim()}>
          Use this key
        </button>
        {apiKey() && (
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setApiKey(null);
              window.location.reload();
            }}
          >
            Forget the saved key
          </button>
        )}
      </div>
    </form>
  );
}
