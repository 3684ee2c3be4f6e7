import { type FeatureSet, LABEL_COLUMN } from '#shared/features/index.ts';
import { type FeatureRow, OfflineDatasetError } from './features-dataset.ts';

/**
 * The offline dataset's feature vectors as CSV, for models trained outside Keel:
 * `customer_id,event_time,<the set's feature names, in order>[,churned]`.
 */

/**
 * Decimal text that parses back to the same float32: a reader that loads it as float32 (as Keel's
 * trainer and serving hold features) gets the very value Keel computed. 9 significant digits always
 * suffice for a float32; fewer are tried first, as most values need 7 or 8 and exact ones fewer.
 */
export function float32Text(value: number): string {
  // Integers below 2^24 are exact in float32 and print as themselves.
  if (Number.isInteger(value) && Math.abs(value) < 2 ** 24) return String(value);
  if (!Number.isFinite(value)) return String(value);
  for (let digits = 6; digits < 9; digits++) {
    const text = String(Number(value.toPrecision(digits)));
    if (Math.fround(Number(text)) === value) return text;
  }
  return String(Number(value.toPrecision(9)));
}

export interface FeatureCsvSummary {
  readonly rows: number;
  /** Whether the CSV has the label column (the dataset's parts have one). */
  readonly labeled: boolean;
}

/** Rows per write: large enough that writing costs little, small enough to keep memory flat. */
const ROWS_PER_WRITE = 1_000;

/**
 * Writes `rows` as CSV of `featureSet`'s features through `write` (awaited, so a slow file holds the
 * reading back). The label column is there when the first row has a label; a later part that differs
 * is refused, naming it, as its rows could not be told apart.
 */
export async function writeFeatureCsv(
  rows: AsyncIterable<FeatureRow>,
  featureSet: FeatureSet,
  write: (text: string) => Promise<void>,
): Promise<FeatureCsvSummary> {
  const header = (labeled: boolean) =>
    `${['customer_id', 'event_time', ...featureSet.names, ...(labeled ? [LABEL_COLUMN] : [])].join(',')}\n`;
  let labeled: boolean | undefined;
  let firstPart: string | undefined;
  let text = '';
  let count = 0;
  for await (const row of rows) {
    if (labeled === undefined) {
      labeled = row.label !== undefined;
      firstPart = row.key;
      text = header(labeled);
    } else if (labeled !== (row.label !== undefined)) {
      throw new OfflineDatasetError(
        `${row.key} ${labeled ? 'has no' : 'has a'} ${LABEL_COLUMN} column, unlike ${firstPart}: ` +
          'export labeled and unlabeled datasets separately (--dataset)',
      );
    }
    text += `${row.customerId},${row.eventTime}`;
    for (const value of row.features) text += `,${float32Text(value)}`;
    text += labeled ? `,${row.label}\n` : '\n';
    if (++count % ROWS_PER_WRITE === 0) {
      await write(text);
      text = '';
    }
  }
  await write(labeled === undefined ? header(false) : text);
  return { rows: count, labeled: labeled ?? false };
}
