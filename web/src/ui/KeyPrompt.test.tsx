import { act, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, expect, it, vi } from 'vitest';
import { announceAuthRequired } from '../api/key';
import { KeyPrompt } from './KeyPrompt';

afterEach(() => window.localStorage.clear());

it('appears on a 401 and saves the key the user gives', async () => {
  const reload = vi.fn();
  Object.defineProperty(window, 'location', { value: { ...window.location, reload }, writable: true });
  render(<KeyPrompt />);
  expect(screen.queryByRole('alert')).toBeNull();
  act(() => announceAuthRequired('an API key is required'));
  expect(screen.getByRole('alert')).toHaveTextContent('This server requires an API key: an API key is required');
  await userEvent.type(screen.getByLabelText('API key'), 'ck_abc');
  await userEvent.click(screen.getByRole('button', { name: 'Use this key' }));
  expect(window.localStorage.getItem('conclave.apiKey')).toBe('ck_abc');
  expect(reload).toHaveBeenCalled();
});
