// The council chat: the conversation list, the open conversation's turns (saved ones from the
// messages, the running one live), and the question box.
import { useCallback, useEffect, useState, type FormEvent, type KeyboardEvent, type ReactElement } from 'react';
import { api, errorText } from '../api/client';
import type { Conversation, ConversationSummary, CouncilSettings, Message, ServerConfig } from '../api/types';
import { fromMessage } from '../council/state';
import { TurnView } from '../council/TurnView';
import { useLiveTurn } from '../council/useLiveTurn';
import { ErrorLine, SimulatedBadge } from '../ui/common';
import { useRouter } from '../ui/router';
import { ConversationList, useConversations } from './ConversationList';
import { Settings, defaultsOf } from './Settings';

function LiveTurn({ jobId, onEnd }: { jobId: string; onEnd(): void }) {
  const { turn, error } = useLiveTurn(jobId, onEnd);
  return (
    <>
      <ErrorLine error={error} />
      {turn ? <TurnView turn={turn} live /> : !error && <p className="muted">Joining the council…</p>}
    </>
  );
}

function Turns({ conversation, onEnd }: { conversation: Conversation; onEnd(): void }) {
  const out: ReactElement[] = [];
  const msgs = conversation.messages;
  msgs.forEach((m: Message, i) => {
    if (m.role === 'user') {
      out.push(
        <div key={m.id} className="user-message">
          <p>{m.content}</p>
        </div>,
      );
      const next = msgs[i + 1];
      const answered = next && next.role === 'assistant';
      if (!answered && m.job_id && conversation.processing_state === 'active') {
        out.push(<LiveTurn key={`live-${m.job_id}`} jobId={m.job_id} onEnd={onEnd} />);
      }
    } else {
      out.push(<TurnView key={m.id} turn={fromMessage(m)} live={false} />);
    }
  });
  return <div className="turns">{out}</div>;
}

export function ChatPage({ conversationId, config }: { conversationId: string | null; config: ServerConfig | null }) {
  const { navigate } = useRouter();
  const [conversation, setConversation] = useState<Conversation | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [question, setQuestion] = useState('');
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);
  const [showSettings, setShowSettings] = useState(false);
  const [council, setCouncil] = useState<CouncilSettings | null>(null);
  const effectiveCouncil = council ?? defaultsOf(config);

  const load = useCallback(() => {
    if (!conversationId) {
      setConversation(null);
      return;
    }
    api.conversation(conversationId).then(
      (c) => {
        setConversation(c);
        setLoadError(null);
      },
      (e) => setLoadError(errorText(e)),
    );
  }, [conversationId]);
  useEffect(() => {
    setConversation(null);
    setLoadError(null);
    load();
  }, [load]);
  // Another tab (or the CLI) asking in this conversation shows up here too.
  const list = useConversations((id) => {
    if (id === conversationId) load();
  });

  const ask = async (e?: FormEvent) => {
    e?.preventDefault();
    const content = question.trim();
    if (!content || sending) return;
    setSending(true);
    setSendError(null);
    try {
      let id = conversationId;
      if (!id) {
        const created = await api.createConversation(council ?? undefined);
        id = created.id;
      }
      await api.ask(id, content);
      setQuestion('');
      if (id !== conversationId) navigate(`/c/${id}`);
      else load();
    } catch (err) {
      setSendError(errorText(err));
    } finally {
      setSending(false);
    }
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void ask();
    }
  };

  const remove = async (c: ConversationSummary) => {
    if (!window.confirm(`Delete “${c.title}”? Its messages are deleted and a running council is cancelled.`)) return;
    try {
      await api.deleteConversation(c.id);
      list.reload();
      if (c.id === conversationId) navigate('/');
    } catch (err) {
      setSendError(errorText(err));
    }
  };

  const busy = conversation?.processing_state === 'active';
  return (
    <div className="chat">
      <aside className="sidebar">
        <div className="row">
          <button onClick={() => navigate('/')} className="new-conversation">
            + New conversation
          </button>
          <button className="secondary" onClick={() => setShowSettings((s) => !s)} aria-expanded={showSettings}>
            Settings
          </button>
        </div>
        {showSettings && <Settings config={config} value={effectiveCouncil} onChange={setCouncil} onClose={() => setShowSettings(false)} />}
        <ConversationList items={list.items} error={list.error} currentId={conversationId} onDelete={remove} />
      </aside>
      <main className="conversation" aria-label="Conversation">
        <ErrorLine error={loadError} />
        {conversation ? (
          <>
            <h1 className="conversation-heading">{conversation.title}</h1>
            <Turns conversation={conversation} onEnd={load} />
          </>
        ) : (
          !conversationId && (
            <div className="welcome">
              <h1>Ask the council</h1>
              <p>
                Your question goes to every member ({(effectiveCouncil.members ?? []).join(', ') || 'the configured council'}); they rank
                each other's answers anonymously, and the chairman ({effectiveCouncil.chairman ?? 'configured'}) writes the final answer.
              </p>
              {config?.simulated && (
                <p className="note">
                  <SimulatedBadge /> These models are simulated: no API key is configured.
                </p>
              )}
            </div>
          )
        )}
        {!loadError && (
          <form className="composer" onSubmit={ask}>
            <label htmlFor="question" className="visually-hidden">
              Your question
            </label>
            <textarea
              id="question"
              value={question}
              onChange={(e) => setQuestion(e.target.value)}
              onKeyDown={onKey}
              placeholder={busy ? 'The council is deliberating…' : 'Ask the council (Enter to send, Shift+Enter for a new line)'}
              rows={3}
              disabled={sending}
            />
            <button type="submit" disabled={sending || busy || !question.trim()}>
              {sending ? 'Sending…' : 'Ask'}
            </button>
          </form>
        )}
        <ErrorLine error={sendError} />
      </main>
    </div>
  );
}
