import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';

/**
 * What a pipeline run keeps in S3 instead of in its state machine's state: Step Functions refuses any
 * state input or output over 256 KiB, so the plan step writes the whole plan (every chunk or segment)
 * to an object and the state carries its key and the item numbers; each Map item writes its result to
 * an object of its own, and the finalize step reads them back. Nothing grows with the plan in the state
 * but the item numbers (about 5 bytes each).
 */
export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(value),
      ContentType: 'application/json',
    }),
  );
}

export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await object.Body!.transformToString()) as T;
}

/** How many result objects the finalize step reads at once. */
const READ_PARALLEL = 32;

/** The objects at `keys`, in order; a missing one fails with `missing(index)`. */
async function getJsonAll<T>(
  s3: S3Client,
  bucket: string,
  keys: readonly string[],
  missing: (index: number) => Error,
): Promise<T[]> {
  const values = new Array<T>(keys.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < keys.length; i = next++) {
      try {
        values[i] = await getJson<T>(s3, bucket, keys[i]!);
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') throw missing(i);
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_PARALLEL, keys.length) }, worker));
  return values;
}

/**
 * The plan of a run, read once per environment: every Map item of a run reads the same object, and a
 * Lambda environment runs many items of one run in a row.
 */
export function planReader<T>(): (s3: S3Client, bucket: string, key: string) => Promise<T> {
  let cached: { key: string; plan: Promise<T> } | undefined;
  return (s3, bucket, key) => {
    if (cached?.key !== key) {
      const plan = getJson<T>(s3, bucket, key);
      // A failed read is not cached: the retried item reads again.
      plan.catch(() => {
        if (cached?.plan === plan) cached = undefined;
      });
      cached = { key, plan };
    }
    return cached.plan;
  };
}

/** `0, 1, …, count - 1`: the Map state's items. */
const itemNumbers = (count: number): number[] => Array.from({ length: count }, (_, i) => i);

/**
 * Where a run's objects are: what its state carries besides the plan's scalars. A pipeline's run
 * schema spreads this shape after its own fields, its tasks parse their input with it.
 */
export const runObjectsSchema = z.object({
  /** How many Map items the plan has. */
  itemCount: z.number().int().min(0),
  /** The whole plan. */
  planKey: z.string().min(1),
  /** Where each item writes its result, `part-<index>.json`. */
  resultsPrefix: z.string().min(1),
});
export type RunObjects = z.infer<typeof runObjectsSchema>;

/**
 * The plan step's output: the plan without its `itemsKey` list (which is written to `prefix` as
 * `plan.json`), and the item numbers for the Map state.
 */
export function runPlanOf<P extends object, K extends keyof P>(
  plan: P,
  itemsKey: K,
  prefix: string,
): { readonly run: Omit<P, K> & RunObjects; readonly items: number[] } {
  const { [itemsKey]: list, ...rest } = plan;
  const itemCount = (list as unknown[]).length;
  return {
    run: { ...rest, itemCount, planKey: `${prefix}plan.json`, resultsPrefix: `${prefix}results/` },
    items: itemNumbers(itemCount),
  };
}

export const resultKey = (run: RunObjects, index: number) =>
  `${run.resultsPrefix}part-${String(index).padStart(5, '0')}.json`;

/** The result of each of the run's items, in order; a missing one fails with `missing(index)`. */
export const getResults = <T>(
  s3: S3Client,
  bucket: string,
  run: RunObjects,
  missing: (index: number) => Error,
) =>
  getJsonAll<T>(
    s3,
    bucket,
    itemNumbers(run.itemCount).map((index) => resultKey(run, index)),
    missing,
  );
