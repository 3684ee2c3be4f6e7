import { intEnv, optionalEnv } from '#shared/env.ts';
import { startApiServer } from '#shared/http/apigw-server.ts';
import { logger, publishMetricsEvery } from '#shared/observability.ts';
import { handler } from './handler.ts';

/**
 * The predict service on ECS Fargate: the Lambda's own handler (same configuration, same model holder,
 * same error mapping) behind the API Gateway adapter, so the VPC-link integration answers exactly as
 * the Lambda integration does. ECS stops a task with SIGTERM: the server drains, publishes its last
 * metrics and exits. Nothing else needs flushing: each prediction's capture line is on
 * stdout before its response (capture.ts), and the awslogs driver (blocking mode) ships what the
 * container wrote after it exits.
 */
// Not frozen between requests: the request metrics go out once a second (CloudWatch's alarms read
// one-minute periods), flushed at SIGTERM with the rest.
const flushMetrics = publishMetricsEvery(1000);
const server = await startApiServer({
  handler,
  host: optionalEnv('HOST', '0.0.0.0'),
  port: intEnv('PORT', 8080, { min: 1, max: 65535 }),
  functionName: 'keel-predict-ecs',
});
logger.info('predict service listening', { url: server.url });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.info('stopping', { signal });
    void server.close().then(() => {
      flushMetrics();
      process.exit(0);
    });
  });
}
