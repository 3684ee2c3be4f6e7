import type { Command } from 'commander';
import { type Output, UserError } from '#cli/output.ts';
import { keelHome, requireRuntime } from '#local/running-platform.ts';

/** `--attr income=52000`: numbers stay numbers, anything else is a string (e.g. plan=premium). */
function parseAttribute(spec: string, previous: Record<string, unknown>): Record<string, unknown> {
  const match = /^([a-z_0-9]+)=(.*)$/.exec(spec);
  if (!match) throw new UserError(`--attr must look like FIELD=VALUE (e.g. income=52000), got "${spec}"`);
  const value = match[2]!;
  return { ...previous, [match[1]!]: value !== '' && Number.isFinite(Number(value)) ? Number(value) : value };
}

/** A route under an API base URL, with or without its trailing slash (API Gateway's URL output has one). */
function apiUrl(base: string, route: string): URL {
  return new URL(route, base.endsWith('/') ? base : `${base}/`);
}

export function registerPredict(program: Command, output: Output): void {
  program
    .command('predict')
    .description(
      'score one customer through the inference API (POST /predict): local, or the stage of --stage',
    )
    .argument('<customer-id>', 'e.g. c-000042')
    .option('--attr <field=value>', 'override a stored field (repeatable)', parseAttribute, {})
    .addHelpText(
      'after',
      `
Examples:
  $ keel predict c-000042
  $ keel predict c-000042 --attr plan=premium --attr support_tickets_90d=0
  $ keel --json predict c-000042 | jq .probability`,
    )
    .action(async (customerId: string, options: { attr: Record<string, unknown> }) => {
      const body = JSON.stringify({
        customerId,
        ...(Object.keys(options.attr).length > 0 ? { attributes: options.attr } : {}),
      });
      const { endpoint } = output.target();
      const stage = await output.stage();
      let response: Response;
      if (stage) {
        const base = endpoint ?? stage.apiUrl;
        if (!base) {
          throw new UserError(
            `stack Keel-${stage.stage}-Inference has no ApiUrl output: deploy it, or pass --endpoint URL`,
          );
        }
        const { signedJsonPost } = await import('#cli/signed-fetch.ts');
        response = await signedJsonPost(apiUrl(base, 'predict'), body, stage.target.region);
      } else {
        const base = endpoint ?? (await requireRuntime(keelHome())).endpoints.api;
        if (!base) throw new UserError('the running platform has no API endpoint; restart `keel up`');
        response = await fetch(apiUrl(base, 'predict'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
      }
      const result = (await response.json().catch(() => ({
        error: { code: 'Internal', message: `HTTP ${response.status} without a JSON body` },
      }))) as Record<string, unknown>;
      if (!response.ok) {
        const error = result.error as { code: string; message: string; details?: unknown };
        throw new UserError(
          `${response.status} ${error.code}: ${error.message}` +
            (error.details ? `\n${JSON.stringify(error.details, null, 2)}` : ''),
        );
      }
      output.result(result, () => {
        const r = result as {
          prediction: number;
          probability: number;
          model: { name: string; version: string; variant?: string };
        };
        return (
          `${customerId}: ${r.prediction === 1 ? 'will churn' : 'will stay'} (probability ${r.probability.toFixed(4)}, ` +
          `model ${r.model.name} ${r.model.version}${r.model.variant === 'canary' ? ', the canary' : ''})` +
          ((result.warnings as string[] | undefined)?.map((w) => `\n  warning: ${w}`).join('') ?? '')
        );
      });
    });
}
