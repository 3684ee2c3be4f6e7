/**
 * A fresh predict process, for the cold-start benchmark (bench/cold-start.ts starts it): imports the
 * handler module named by argv[2] — which loads the champion at init, as in Lambda — then answers one
 * API Gateway event, then a few more. Reports on stdout:
 *   COLD_FIRST {…}   as soon as the first request is answered
 *   COLD_RESULT {…}  at the end
 * Times are ms since this process started (performance.timeOrigin).
 */
import { performance } from 'node:perf_hooks';
import type { ProxyHandler } from '#shared/http/apigw-server.ts';
import { apiGatewayEvent, KEEL_ID_BODY, lambdaContext } from './events.ts';

const bootMs = performance.now();
const specifier = process.argv[2];
if (!specifier) throw new Error('usage: cold-start-child <handler module>');
const importStart = performance.now();
const { handler } = (await import(specifier)) as { handler: ProxyHandler };
const importEnd = performance.now();
const first = await handler(apiGatewayEvent('POST', '/predict', KEEL_ID_BODY), lambdaContext());
const firstEnd = performance.now();
process.stdout.write(
  `COLD_FIRST ${JSON.stringify({ firstAnsweredMs: firstEnd, status: first.statusCode })}\n`,
);

const warm: number[] = [];
for (let i = 0; i < 20; i++) {
  const start = performance.now();
  await handler(apiGatewayEvent('POST', '/predict', KEEL_ID_BODY), lambdaContext());
  warm.push(performance.now() - start);
}
const secondRequestMs = warm[0];
warm.sort((a, b) => a - b);
const result = {
  bootMs,
  importMs: importEnd - importStart,
  firstRequestMs: firstEnd - importEnd,
  firstAnsweredMs: firstEnd,
  status: first.statusCode,
  secondRequestMs,
  warmMedianMs: warm[warm.length >> 1],
  rssMb: process.memoryUsage().rss / 2 ** 20,
};
process.stdout.write(`COLD_RESULT ${JSON.stringify(result)}\n`);
// The handler's SDK clients keep sockets open; a Lambda would freeze here.
process.exit(0);
