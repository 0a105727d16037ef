// Vite builds web/dist, which CMake embeds into the conclave binary. `npm run dev` serves the UI
// with hot reload and proxies the API to a server on :8080 (`make run`).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const api = process.env.CONCLAVE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 800 },
  server: {
    proxy: {
      '/v1': { target: api, ws: true },
      '/api': api,
      '/healthz': api,
    },
  },
  test: {
    environment: 'jsdom',
    globals: true,
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
  },
});
