import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // NodejsFunction bundling and native addons (onnxruntime, leveldb) misbehave in worker threads.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // Handlers under test run outside Lambda: no X-Ray daemon, and EMF/log lines only where a test asks.
      POWERTOOLS_TRACE_ENABLED: 'false',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    },
  },
});
