import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ServerConfig } from '../api/types';
import { renderWithStream, stubFetch } from '../test/fakes';
import { ChatPage } from './ChatPage';

afterEach(() => vi.unstubAllGlobals());

const config: ServerConfig = {
  council: { members: ['sim:alpha', 'sim:beta'], chairman: 'sim:chair', title_model: 'sim:title' },
  providers: [{ name: 'sim', simulated: true, has_key: false }],
  simulated: true,
};

const summary = {
  id: 'c1',
  title: 'Old question',
  created_at: new Date().toISOString(),
  processing_state: 'idle',
  council: {},
  message_count: 2,
  last_job_id: null,
  topic: 'conversation:c1',
};

describe('ChatPage', () => {
  it('lists conversations with their state, says the models are simulated, and asks with the chosen council', async () => {
    const calls = stubFetch((method, url) => {
      if (url.startsWith('/v1/conversations?'))
        return {
          body: { conversations: [summary, { ...summary, id: 'c2', title: 'Running', processing_state: 'active' }], next_cursor: null },
        };
      if (method === 'POST' && url === '/v1/conversations')
        return { status: 201, body: { ...summary, id: 'new1', title: 'New Conversation' } };
      if (method === 'POST' && url === '/v1/conversations/new1/messages') return { status: 202, body: { job_id: 'j1' } };
      if (url === '/v1/conversations/new1') return { body: { ...summary, id: 'new1', messages: [] } };
      return undefined;
    });
    renderWithStream(<ChatPage conversationId={null} config={config} />);
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    await waitFor(() => expect(nav).toHaveTextContent('Old question'));
    expect(nav).toHaveTextContent('active');
    expect(screen.getAllByText('simulated').length).toBeGreaterThan(0);

    await userEvent.click(screen.getByRole('button', { name: 'Settings' }));
    const members = screen.getByLabelText(/Members/);
    await userEvent.clear(members);
    await userEvent.type(members, 'sim:one{enter}sim:two');
    await userEvent.click(screen.getByRole('button', { name: 'Use this council' }));

    await userEvent.type(screen.getByLabelText('Your question'), 'Why is the sky blue?{enter}');
    await waitFor(() => expect(calls.some((c) => c.url === '/v1/conversations/new1/messages')).toBe(true));
    expect(calls.find((c) => c.method === 'POST' && c.url === '/v1/conversations')?.body).toEqual({
      council: { members: ['sim:one', 'sim:two'], chairman: 'sim:chair', title_model: 'sim:title' },
    });
    expect(calls.find((c) => c.url === '/v1/conversations/new1/messages')?.body).toEqual({ content: 'Why is the sky blue?' });
    expect(window.location.pathname).toBe('/c/new1');
  });

  it('shows why a question was refused, and keeps the text', async () => {
    stubFetch((method, url) => {
      if (url.startsWith('/v1/conversations?')) return { body: { conversations: [summary], next_cursor: null } };
      if (url === '/v1/conversations/c1') return { body: { ...summary, messages: [] } };
      if (method === 'POST' && url === '/v1/conversations/c1/messages')
        return {
          status: 409,
          body: { error: { code: 'conversation_busy', message: 'a council is already running in this conversation' } },
        };
      return undefined;
    });
    renderWithStream(<ChatPage conversationId="c1" config={config} />);
    const box = await screen.findByLabelText('Your question');
    await userEvent.type(box, 'again?');
    await userEvent.click(screen.getByRole('button', { name: 'Ask' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('a council is already running in this conversation');
    expect(box).toHaveValue('again?');
  });
});
