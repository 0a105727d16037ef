// The conversation list, live: the `conversations` topic announces every change, and the list is
// fetched again (after each (re)subscription, so nothing between fetch and stream is missed).
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, errorText } from '../api/client';
import type { ConversationSummary } from '../api/types';
import { useStream } from '../live/context';
import { Badge, ErrorLine, timeAgo } from '../ui/common';
import { Link } from '../ui/router';

// `onChange` hears the id of each conversation the topic says changed.
export function useConversations(onChange?: (id: string) => void) {
  const stream = useStream();
  const changed = useRef(onChange);
  changed.current = onChange;
  const [items, setItems] = useState<ConversationSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const load = useCallback(() => {
    api.conversations().then(
      (r) => {
        setItems(r.conversations);
        setError(null);
      },
      (e) => setError(errorText(e)),
    );
  }, []);
  useEffect(() => {
    load();
    const later = () => {
      if (pending.current) return;
      pending.current = setTimeout(() => {
        pending.current = null;
        load();
      }, 150);
    };
    const off = stream.subscribe('conversations', 'now', {
      onEvent: (e) => {
        const id = (e.data as { id?: unknown } | null)?.id;
        if (typeof id === 'string') changed.current?.(id);
        later();
      },
      onSubscribed: later,
    });
    return () => {
      off();
      if (pending.current) clearTimeout(pending.current);
    };
  }, [stream, load]);
  return { items, error, reload: load };
}

export function ConversationList({
  items,
  error,
  currentId,
  onDelete,
}: {
  items: ConversationSummary[] | null;
  error: string | null;
  currentId: string | null;
  onDelete(c: ConversationSummary): void;
}) {
  return (
    <nav aria-label="Conversations" className="conversation-list">
      <ErrorLine error={error} />
      {items === null && !error && <p className="muted">Loading…</p>}
      {items !== null && items.length === 0 && <p className="muted">No conversations yet. Ask the council something.</p>}
      <ul>
        {items?.map((c) => (
          <li key={c.id} className={c.id === currentId ? 'current' : undefined}>
            <Link to={`/c/${c.id}`} aria-current={c.id === currentId ? 'page' : undefined} className="conversation-link">
              <span className="conversation-title">{c.title || 'New Conversation'}</span>
              <span className="conversation-meta">
                <Badge kind={c.processing_state}>{c.processing_state}</Badge> <span className="muted small">{timeAgo(c.created_at)}</span>
              </span>
            </Link>
            <button className="icon-button" aria-label={`Delete conversation ${c.title}`} title="Delete" onClick={() => onDelete(c)}>
              ×
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
