// Follows a running council job: its snapshot (the text so far and the events that shaped it),
// then the live events after the snapshot's offset over the page's one stream.
import { useEffect, useState } from 'react';
import { api, errorText } from '../api/client';
import type { Snapshot, StoredEvent } from '../api/types';
import { useStream } from '../live/context';
import { applyEvent, emptyTurn, fromSnapshot, type TurnView } from './state';

// Without `events` in the snapshot (an older server), the state is rebuilt from the whole log.
async function initial(jobId: string): Promise<{ turn: TurnView; offset: number }> {
  const snap: Snapshot = await api.snapshot(jobId);
  if (snap.events) return { turn: fromSnapshot(snap), offset: snap.offset };
  let turn = emptyTurn();
  let after = 0;
  for (;;) {
    const page = await api.events(jobId, after);
    for (const e of page.events) turn = applyEvent(turn, e);
    if (page.events.length === 0 || page.next_after === after) break;
    after = page.next_after;
  }
  return { turn, offset: after };
}

export function useLiveTurn(jobId: string | null, onEnd: () => void) {
  const stream = useStream();
  const [turn, setTurn] = useState<TurnView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!jobId) return;
    let unsubscribe: (() => void) | null = null;
    let cancelled = false;
    setTurn(null);
    setError(null);
    initial(jobId).then(
      ({ turn: start, offset }) => {
        if (cancelled) return;
        setTurn(start);
        unsubscribe = stream.subscribe(`job:${jobId}`, offset, {
          onEvent: (e: StoredEvent) => setTurn((t) => applyEvent(t ?? emptyTurn(), e)),
          onEnd: () => onEnd(),
          onReset: () => {
            // Retention removed what our position needs: start again from a fresh snapshot.
            initial(jobId).then(
              ({ turn: again }) => !cancelled && setTurn(again),
              (e) => setError(errorText(e)),
            );
          },
          onError: (m) => setError(m),
        });
      },
      (e) => !cancelled && setError(errorText(e)),
    );
    return () => {
      cancelled = true;
      unsubscribe?.();
    };
    // onEnd is read when the job ends; a new function each render must not restart the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId, stream]);
  return { turn, error };
}
