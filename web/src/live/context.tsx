import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { LiveStream, type StreamStatus } from './stream';

const StreamContext = createContext<LiveStream | null>(null);

// The page's one live stream, shared by every view on it; it lives as long as the page.
export function StreamProvider({ stream, children }: { stream: LiveStream; children: ReactNode }) {
  return <StreamContext.Provider value={stream}>{children}</StreamContext.Provider>;
}

export function useStream(): LiveStream {
  const s = useContext(StreamContext);
  if (!s) throw new Error('useStream outside StreamProvider');
  return s;
}

export function useStreamStatus(): StreamStatus {
  const stream = useStream();
  const [status, setStatus] = useState(stream.status);
  useEffect(() => stream.onStatus(setStatus), [stream]);
  return status;
}
