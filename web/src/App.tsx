import { useEffect, useMemo, useState, type ReactElement } from 'react';
import { api } from './api/client';
import type { ServerConfig } from './api/types';
import { ChatPage } from './chat/ChatPage';
import { JobDetail } from './jobs/JobDetail';
import { JobsPage } from './jobs/JobsPage';
import { StreamProvider, useStreamStatus } from './live/context';
import { LiveStream } from './live/stream';
import { KeyPrompt } from './ui/KeyPrompt';
import { Link, RouterProvider, match, useRouter } from './ui/router';

function StreamStatus() {
  const status = useStreamStatus();
  const text = { open: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'idle' }[status];
  return (
    <span
      className={`stream-status stream-${status}`}
      role="status"
      aria-label={`live stream ${text}`}
      title="The page's one live stream (/v1/ws)"
    >
      ● {text}
    </span>
  );
}

function Pages() {
  const { path } = useRouter();
  const [config, setConfig] = useState<ServerConfig | null>(null);
  useEffect(() => {
    // Settings fall back to the server's defaults when /v1/config is unavailable.
    api.config().then(setConfig, () => setConfig(null));
  }, []);
  const conversation = match('/c/:id', path);
  const job = match('/jobs/:id', path);
  const onJobs = path.startsWith('/jobs');
  let page: ReactElement;
  if (job) page = <JobDetail id={job.id!} />;
  else if (match('/jobs', path)) page = <JobsPage />;
  else if (conversation || match('/', path)) page = <ChatPage conversationId={conversation?.id ?? null} config={config} />;
  else
    page = (
      <main>
        <h1>Not found</h1>
        <p>
          There is no page at <code>{path}</code>. <Link to="/">Go to the council</Link>.
        </p>
      </main>
    );
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          Conclave
        </Link>
        <nav aria-label="Main">
          <Link to="/" aria-current={!onJobs ? 'page' : undefined}>
            Council
          </Link>
          <Link to="/jobs" aria-current={onJobs ? 'page' : undefined}>
            Jobs
          </Link>
        </nav>
        <StreamStatus />
      </header>
      <KeyPrompt />
      {page}
    </div>
  );
}

export function App({ stream }: { stream?: LiveStream }) {
  const live = useMemo(() => stream ?? new LiveStream(), [stream]);
  return (
    <StreamProvider stream={live}>
      <RouterProvider>
        <Pages />
      </RouterProvider>
    </StreamProvider>
  );
}
