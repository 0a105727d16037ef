import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../api/types';
import recorded from '../test/fixtures/council-events.json';
import { renderWithStream } from '../test/fakes';
import { applyEvent, emptyTurn } from './state';
import { TurnView } from './TurnView';

const events = recorded as StoredEvent[];
const ev = (offset: number, type: string, data: unknown): StoredEvent => ({ topic: 'job:j', offset, type, data, time: '' });

describe('TurnView', () => {
  it('shows the three stages of a finished council, labels resolved, simulated output marked', async () => {
    const turn = events.reduce(applyEvent, emptyTurn());
    renderWithStream(<TurnView turn={turn} live={false} />);
    const stage1 = screen.getByRole('region', { name: 'Stage 1' });
    expect(within(stage1).getAllByRole('tab')).toHaveLength(4);
    expect(within(stage1).getByRole('tabpanel')).toHaveTextContent('[simulated alpha]');
    // Keyboard: the arrow key moves to the next member.
    await userEvent.click(within(stage1).getAllByRole('tab')[0]!);
    await userEvent.keyboard('{ArrowRight}');
    expect(within(stage1).getByRole('tabpanel')).toHaveTextContent('[simulated beta]');

    const stage2 = screen.getByRole('region', { name: 'Stage 2' });
    expect(within(stage2).getByRole('tabpanel')).not.toHaveTextContent(/Response [A-D]\b/);
    expect(within(stage2).getByRole('tabpanel')).toHaveTextContent(/Parsed: sim:\w+ › sim:\w+ › sim:\w+ › sim:\w+/);
    const chart = within(stage2).getByRole('figure', { name: 'Aggregate ranking' });
    expect(within(chart).getAllByRole('listitem')).toHaveLength(4);
    expect(chart).toHaveTextContent('2.00');

    const stage3 = screen.getByRole('region', { name: 'Stage 3' });
    expect(stage3).toHaveTextContent('sim:chair');
    expect(stage3).toHaveTextContent('[simulated chair]');
    expect(screen.getAllByText('simulated').length).toBeGreaterThan(0);
    expect(screen.getAllByText(/in \/ \d+ out tokens/).length).toBeGreaterThan(1); // the turn's and each member's
  });

  it('shows each member state while streaming, and a failed member with its message', () => {
    const turn = [
      ev(1, 'job.started', { attempt: 1 }),
      ev(2, 'stage1.start', { members: ['p:one', 'p:two', 'p:three'] }),
      ev(3, 'stage1.delta', { attempt: 1, part: 'stage1/p:one', at: 0, text: 'Streaming…' }),
      ev(4, 'stage1.model_complete', { model: 'p:three', error: 'HTTP 429: rate limited by provider' }),
    ].reduce(applyEvent, emptyTurn());
    renderWithStream(<TurnView turn={turn} live />);
    const tabs = screen.getAllByRole('tab');
    expect(tabs[0]).toHaveTextContent('streaming');
    expect(tabs[1]).toHaveTextContent('waiting');
    expect(tabs[2]).toHaveTextContent('failed');
    expect(screen.getByText('Stage 1: the members answer')).toBeInTheDocument();
  });

  it('renders the answer as Markdown: tables, lists and code', async () => {
    const text = '# Title\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```js\nconst x = 1;\n```\n\n<script>alert(1)</script>';
    const turn = [ev(1, 'stage3.complete', { model: 'p:chair', response: text })].reduce(applyEvent, emptyTurn());
    const { container } = renderWithStream(<TurnView turn={turn} live={false} />);
    const stage3 = screen.getByRole('region', { name: 'Stage 3' });
    expect(within(stage3).getByRole('table')).toBeInTheDocument();
    expect(within(stage3).getAllByRole('listitem')).toHaveLength(2);
    expect(stage3.querySelector('pre code')).toHaveTextContent('const x = 1;');
    expect(container.querySelector('script')).toBeNull();
  });

  it('says why a council failed', () => {
    const turn = [ev(1, 'job.started', { attempt: 1 }), ev(2, 'job.failed', { error: { message: 'every provider is down' } })].reduce(
      applyEvent,
      emptyTurn(),
    );
    renderWithStream(<TurnView turn={turn} live />);
    expect(screen.getByRole('alert')).toHaveTextContent('every provider is down');
  });
});
