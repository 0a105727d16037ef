// End-to-end tests: a real conclave server, tools/fake-llm and Debian's chromium driven by
// playwright-core. Run by scripts/test-web.sh (which builds what they need) or `npm run e2e`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'node',
    include: ['e2e/**/*.e2e.ts'],
    testTimeout: 90_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
