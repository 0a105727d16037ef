// The council chat in a real browser against the real server and tools/fake-llm.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startStack, type Stack } from './harness';

// fake-llm answers "Answer from MODEL: t0 t1 … t(N-1)", one word per token.
const expected = (model: string, tokens: number) => `Answer from ${model}:${Array.from({ length: tokens }, (_, i) => ` t${i}`).join('')}`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack(
    'council',
    {
      default: { tokens: 12, token_ms: 10, ranking: { tokens: 8, token_ms: 10 } },
      models: {
        slow: { tokens: 60, token_ms: 70 },
        down: { status: 500, fail_times: 1000000 },
      },
    },
    'members = ["fake:a", "fake:slow", "fake:down"]\nchairman = "fake:chair"\ntitle_model = "fake:titler"',
  );
});

afterAll(async () => {
  await stack?.close();
});

const panelText = (model: string) => stack.page.locator(`[aria-label="Stage 1"] [role=tabpanel][data-model="${model}"]`);
// The answer as shown (Markdown rendered), or '' before the first token.
async function answerText(p: Page, model: string): Promise<string> {
  const md = p.locator(`[aria-label="Stage 1"] [role=tabpanel][data-model="${model}"] .markdown`);
  return (await md.count()) ? ((await md.textContent()) ?? '').trim() : '';
}

describe('council chat', () => {
  it('asks a question and shows all three stages, a failing member as failed', async () => {
    const { page } = stack;
    await page.goto(stack.url + '/');
    await page.getByRole('heading', { name: 'Ask the council' }).waitFor();
    await stack.shot('01-empty');
    await page.getByLabel('Your question').fill('Why is the sky blue?');
    await page.getByRole('button', { name: 'Ask' }).click();
    await page.waitForURL(/\/c\/[0-9a-f-]+$/);

    const stage1 = page.getByRole('region', { name: 'Stage 1' });
    await stage1.getByRole('tab').first().waitFor();
    await stack.shot('02-stage1-streaming');
    await expect.poll(() => stage1.getByRole('tab').count()).toBe(3);

    // The failing member: its tab says failed and its panel the provider's error.
    await stage1.getByRole('tab', { name: /down/ }).click();
    await expect.poll(() => stage1.getByRole('tab', { name: /down/ }).textContent(), { timeout: 20_000 }).toContain('failed');
    await expect.poll(() => panelText('fake:down').textContent()).toMatch(/fake:down failed: .*500/);
    await stack.shot('03-failed-member');

    // Stage 2 with labels resolved and the aggregate chart, then the chairman's answer.
    const stage3 = page.getByRole('region', { name: 'Stage 3' });
    await expect.poll(() => stage3.textContent(), { timeout: 30_000 }).toContain(expected('chair', 12));
    const stage2 = page.getByRole('region', { name: 'Stage 2' });
    // Every member ranks (the one that is down fails again); two answers are ranked.
    await expect.poll(() => stage2.getByRole('tab').count()).toBe(3);
    expect(await stage2.getByRole('tabpanel').textContent()).not.toMatch(/Response [A-Z]\b/);
    const chart = stage2.getByRole('figure', { name: 'Aggregate ranking' });
    expect(await chart.getByRole('listitem').count()).toBe(2);
    await expect.poll(() => page.locator('.turn-head').first().textContent(), { timeout: 20_000 }).toContain('Done');

    // The title model named the conversation; the list shows it idle.
    const list = page.getByRole('navigation', { name: 'Conversations' });
    await expect.poll(() => list.textContent(), { timeout: 10_000 }).toContain('Fake Title From titler');
    await expect.poll(() => list.textContent()).toContain('idle');
    await stack.shot('04-all-stages');

    // The saved turn (after a reload) looks the same.
    await page.reload();
    await expect.poll(() => page.getByRole('region', { name: 'Stage 3' }).textContent()).toContain(expected('chair', 12));
    await stack.shot('05-saved-turn');

    // A follow-up in the same conversation: a second turn below the first.
    await page.getByLabel('Your question').fill('And at sunset?');
    await page.getByRole('button', { name: 'Ask' }).click();
    await expect.poll(() => page.locator('.user-message').count()).toBe(2);
    await expect.poll(() => page.getByRole('region', { name: 'Stage 3' }).count(), { timeout: 30_000 }).toBe(2);
    await expect
      .poll(() => page.getByRole('region', { name: 'Stage 3' }).nth(1).textContent(), { timeout: 30_000 })
      .toContain(expected('chair', 12));
    await stack.shot('05b-second-turn');
    expect(stack.consoleErrors).toEqual([]);
  });

  it('reloaded mid-stage-1, the text continues with nothing duplicated or missing; a second tab shows the same', async () => {
    const { page } = stack;
    await page.goto(stack.url + '/');
    await page.getByLabel('Your question').fill('Explain Rayleigh scattering');
    await page.getByLabel('Your question').press('Enter');
    await page.waitForURL(/\/c\/[0-9a-f-]+$/);
    const stage1 = page.getByRole('region', { name: 'Stage 1' });
    await stage1.getByRole('tab', { name: /slow/ }).click();
    // Wait for some of the slow member's tokens, then reload in the middle of its answer.
    await expect.poll(() => answerText(page, 'fake:slow'), { timeout: 20_000 }).toMatch(/ t8\b/);
    const before = await answerText(page, 'fake:slow');
    expect(before).not.toContain(' t59');
    await stack.shot('06-before-reload');
    await page.reload();
    await page.getByRole('region', { name: 'Stage 1' }).getByRole('tab', { name: /slow/ }).click();
    // Right after the reload: the snapshot's text, at least what was shown, and a prefix of the
    // answer (a duplicated or missing token would break the prefix).
    await expect.poll(() => answerText(page, 'fake:slow')).not.toBe('');
    const resumed = await answerText(page, 'fake:slow');
    expect(resumed.length).toBeGreaterThanOrEqual(before.length);
    expect(expected('slow', 60).startsWith(resumed)).toBe(true);
    await stack.shot('07-after-reload');

    const second = await stack.newPage();
    await second.goto(page.url());
    await second.getByRole('region', { name: 'Stage 1' }).getByRole('tab', { name: /slow/ }).click();

    const full = expected('slow', 60);
    for (const p of [page, second]) {
      await expect.poll(() => answerText(p, 'fake:slow'), { timeout: 30_000 }).toBe(full);
    }
    await stack.shot('08-continued');
    await second.close();
    expect(stack.consoleErrors).toEqual([]);
  });

  it('deletes a conversation', async () => {
    const { page } = stack;
    await page.goto(stack.url + '/');
    const list = page.getByRole('navigation', { name: 'Conversations' });
    await expect.poll(() => list.getByRole('link').count()).toBe(2);
    const { body } = await stack.api<{ conversations: { id: string; title: string }[] }>('GET', '/v1/conversations');
    const victim = body.conversations[0]!;
    page.once('dialog', (d) => void d.accept());
    await list
      .getByRole('button', { name: `Delete conversation ${victim.title}` })
      .first()
      .click();
    await expect.poll(() => list.getByRole('link').count(), { timeout: 10_000 }).toBe(1);
    expect((await stack.api('GET', `/v1/conversations/${victim.id}`)).status).toBe(404);
    expect(stack.consoleErrors).toEqual([]);
  });

  it('works at 375 px wide', async () => {
    const { page } = stack;
    await page.setViewportSize({ width: 375, height: 812 });
    await page.goto(stack.url + '/');
    await page.getByRole('navigation', { name: 'Conversations' }).getByRole('link').first().click();
    await page.getByRole('region', { name: 'Stage 3' }).first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await stack.shot('09-narrow');
    await page.goto(stack.url + '/jobs');
    await page.getByRole('region', { name: 'Counts' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await stack.shot('10-narrow-console');
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(stack.consoleErrors).toEqual([]);
  });
});
