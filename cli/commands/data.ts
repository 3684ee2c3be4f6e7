import type { S3Client } from '@aws-sdk/client-s3';
import { type Command, Option } from 'commander';
import { type Output, parseInteger, UserError } from '#cli/output.ts';
import { keelHome, requireRuntime, runtimeTarget } from '#local/running-platform.ts';
import { parseConceptShift, parseDriftSpec } from '#shared/data/generate.ts';
import type { ImportKind } from '#shared/data/import-file.ts';
import type { ProgressListener } from '#shared/data/raw-data.ts';
import { eventTimeSchema } from '#shared/features/index.ts';

const GENERATE_KINDS = ['customers', 'outcomes'] as const;
/** The kinds of import-file.ts's IMPORT_KINDS (the type checks it), whose module loads the AWS SDK. */
const IMPORT_KIND_NAMES = Object.keys({ customers: true, outcomes: true } satisfies Record<ImportKind, true>);

export function registerData(program: Command, output: Output): void {
  const data = program.command('data').description('customer data: generated, or your own CSV files');
  data
    .command('generate')
    .description(
      'stream generated customers, or their outcomes, as CSV into the raw-data bucket of the running platform',
    )
    .requiredOption('--rows <n>', 'number of customers (1 … 100,000,000)', parseInteger('--rows'))
    .option(
      '--seed <s>',
      'random seed: same rows and seed give the same customers',
      parseInteger('--seed'),
      42,
    )
    .option(
      '--first-id <n>',
      "the first customer's id number: row i is c- + (N - 1 + i), zero-padded to 6 digits",
      parseInteger('--first-id'),
      1,
    )
    .option(
      '--drift <field=factor>',
      'multiply a numeric raw field, e.g. income=1.9 (repeatable)',
      (spec: string, previous: Record<string, number>) => {
        const [field, factor] = parseDriftSpec(spec);
        return { ...previous, [field]: factor };
      },
      {} as Record<string, number>,
    )
    .addOption(
      new Option(
        '--kind <kind>',
        'customers (under raw/) or outcomes: whether the same customers churned (under outcomes/)',
      )
        .choices(GENERATE_KINDS)
        .default('customers'),
    )
    .option('--as-of <iso>', 'customers: event times fall in the week before this instant (default: now)')
    .option(
      '--concept-shift <f>',
      'draw churn from a changed relation to the features, mixed in at share F (0 < F ≤ 1)',
      parseConceptShift,
    )
    .option('--observed-at <iso>', 'outcomes: when they were observed (default: now)')
    .addHelpText(
      'after',
      `
Customers are c-000001, c-000002, …; --first-id 20001 numbers them c-020001, … instead (the row
number plus N - 1), so that new customers do not overwrite those already in the online store; the
same seed gives the same customers under other ids. Outcomes are those of the customers the same
--rows, --seed, --first-id and --drift generate. --concept-shift F draws whether they churn from a
changed relation to the features, for the customers' labels (to train on) and for their outcomes
alike; their fields, the model's inputs, stay those of the unshifted run: at 1 a model of the old
relation ranks them at chance.

Examples:
  $ keel data generate --rows 100000 --seed 7
  $ keel data generate --rows 20000 --drift income=1.9   # a drifted month, for keel drift check
  $ keel data generate --rows 5000 --seed 44 --first-id 20001   # 5,000 new customers, c-020001 …
  $ keel data generate --rows 100000 --seed 7 --kind outcomes --concept-shift 0.5   # for the quality job`,
    )
    .action(async (options: GenerateFlags) => {
      const { writeOutcomes, writeRawData } = await import('#shared/data/raw-data.ts');
      const customers = {
        rows: options.rows,
        seed: options.seed,
        firstId: options.firstId,
        drift: options.drift,
        conceptShift: options.conceptShift,
      };
      if (options.kind === 'outcomes') {
        const observedAt = outcomeTime(options);
        const summary = await generateInto(output, options.rows, (s3, bucket, progress) =>
          writeOutcomes(s3, bucket, { ...customers, observedAt }, progress),
        );
        output.result(summary, () =>
          [
            `wrote s3://${summary.bucket}/${summary.key}`,
            `  outcomes ${summary.rows.toLocaleString('en-US')} (${summary.customerIds.first} … ${summary.customerIds.last}), observed at ${summary.observedAt}, ${(summary.bytes / 1e6).toFixed(1)} MB`,
            `  churn rate ${(summary.churnRate * 100).toFixed(1)}%${summary.conceptShift === null ? '' : `, concept shift ${summary.conceptShift}`}`,
          ].join('\n'),
        );
        return;
      }
      if (options.observedAt !== undefined) throw new UserError('--observed-at is for --kind outcomes');
      const asOf = options.asOf ? new Date(options.asOf) : new Date();
      const summary = await generateInto(output, options.rows, (s3, bucket, progress) =>
        writeRawData(s3, bucket, { ...customers, asOf }, progress),
      );
      output.result(summary, () =>
        [
          `wrote s3://${summary.bucket}/${summary.key}`,
          `  rows ${summary.rows.toLocaleString('en-US')} (${summary.customerIds.first} … ${summary.customerIds.last}), ${(summary.bytes / 1e6).toFixed(1)} MB`,
          `  churn rate ${(summary.churnRate * 100).toFixed(1)}%${summary.conceptShift === null ? '' : ` (concept shift ${summary.conceptShift})`}, mean income ${Math.round(summary.meanIncome).toLocaleString('en-US')}, zero-order customers ${(summary.zeroOrderShare * 100).toFixed(1)}%`,
        ].join('\n'),
      );
    });

  data
    .command('import')
    .description(
      "check a local CSV file's header, then stream it into the raw-data bucket (of the running platform, or of a stage with --stage)",
    )
    .argument('<file>', 'the CSV file: a header line, then one row per line')
    .addOption(
      new Option(
        '--kind <kind>',
        'customers (the raw customer record) or outcomes (customer_id,churned,observed_at)',
      )
        .choices(IMPORT_KIND_NAMES)
        .default('customers'),
    )
    .addHelpText(
      'after',
      `
The header is checked before anything is sent: a missing, renamed or unexpected column is refused with
the columns named. The printed key is what \`keel etl run --input\` takes (without --input the ETL takes
the newest file, which this one now is).

Examples:
  $ keel data import ./customers-november.csv
  $ keel etl run --input raw/20261206T020000Z-customers-november.csv
  $ keel --stage prod data import ./outcomes.csv --kind outcomes`,
    )
    .action(async (file: string, options: { kind: ImportKind }) => {
      const { importCsvFile } = await import('#shared/data/import-file.ts');
      const summary = await output.withPlatform(async (ctx) => {
        const progress = output.progress('importing', undefined, 'bytes');
        const result = await importCsvFile(ctx.clients.s3, ctx.names.raw, {
          path: file,
          kind: options.kind,
          onProgress: (bytes) => progress?.update(bytes),
        });
        progress?.finish(result.bytes);
        return result;
      });
      output.result(summary, () =>
        [
          `imported ${file} as s3://${summary.bucket}/${summary.key}`,
          `  ${summary.kind}: ${summary.rows.toLocaleString('en-US')} rows, ${(summary.bytes / 1e6).toFixed(1)} MB`,
          ...(summary.kind === 'customers' ? [`  next: keel etl run --input ${summary.key}`] : []),
        ].join('\n'),
      );
    });
}

interface GenerateFlags {
  readonly rows: number;
  readonly seed: number;
  readonly firstId: number;
  readonly drift: Partial<Record<string, number>>;
  readonly kind: (typeof GENERATE_KINDS)[number];
  readonly asOf?: string;
  readonly conceptShift?: number;
  readonly observedAt?: string;
}

/** When generated outcomes were observed: `--observed-at`, by default now. */
function outcomeTime(options: GenerateFlags): Date {
  if (options.asOf !== undefined) {
    throw new UserError("--as-of dates the customers' events; outcomes take --observed-at");
  }
  if (options.observedAt === undefined) return new Date();
  if (!eventTimeSchema.safeParse(options.observedAt).success) {
    throw new UserError(
      `--observed-at must be an ISO 8601 time with a zone, e.g. 2026-12-06T02:00:00Z, got "${options.observedAt}"`,
    );
  }
  return new Date(options.observedAt);
}

/** Runs a generated file's writer against the running platform's raw bucket, showing its progress. */
async function generateInto<T extends { readonly rows: number }>(
  output: Output,
  rows: number,
  write: (s3: S3Client, bucket: string, progress: { onProgress: ProgressListener }) => Promise<T>,
): Promise<T> {
  const runtime = await requireRuntime(keelHome());
  const { createS3Client } = await import('#shared/aws/clients.ts');
  const s3 = createS3Client(runtimeTarget(runtime));
  const progress = output.progress('generating', rows);
  try {
    const summary = await write(s3, runtime.names.raw!, { onProgress: (done) => progress?.update(done) });
    progress?.finish(summary.rows);
    return summary;
  } finally {
    s3.destroy();
  }
}
