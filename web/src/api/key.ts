// The API key this browser uses, when the server requires one (kept in localStorage; sent as a
// bearer token, and on the page's WebSocket as ?token=, since a browser's WebSocket cannot set
// headers). A 401 from the server announces itself so the page can ask for a key.

const STORAGE = 'conclave.apiKey';
export const AUTH_REQUIRED = 'conclave:auth-required';

export function apiKey(): string | null {
  try {
    return window.localStorage.getItem(STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) window.localStorage.setItem(STORAGE, key);
  else window.localStorage.removeItem(STORAGE);
}

export function announceAuthRequired(message: string): void {
  window.dispatchEvent(new CustomEvent(AUTH_REQUIRED, { detail: message }));
}
