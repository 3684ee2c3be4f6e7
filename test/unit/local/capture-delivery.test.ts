import type { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CaptureDelivery, CaptureDeliveryClosedError } from '#local/capture-delivery.ts';
import { captureLine, captureRecord } from '#shared/inference/capture.ts';
import { servedPrediction } from '../../support/capture.ts';

/** The local stand-in for the log subscription and Firehose, against an S3 that records what it is sent. */
afterEach(() => {
  vi.useRealTimers();
});

function fakeS3(fail: { now: boolean } = { now: false }) {
  const puts: { key: string; lines: string[] }[] = [];
  const s3 = {
    send: async (command: { input: { Key: string; Body: string } }) => {
      if (fail.now) throw new Error('S3 is down');
      puts.push({ key: command.input.Key, lines: command.input.Body.trimEnd().split('\n') });
      return {};
    },
  } as unknown as S3Client;
  return { s3, puts };
}

const line = (i: number, model = 'churn', t = '2026-03-04T05:06:07Z') =>
  captureLine(
    captureRecord(
      servedPrediction({ customerId: `c-${i}`, model: { name: model, version: 'v1' } }),
      new Date(t),
      'api',
    ),
  );

describe('CaptureDelivery', () => {
  it('takes only capture lines, as the subscription filter pattern does', () => {
    const { s3 } = fakeS3();
    const delivery = new CaptureDelivery({ s3, bucket: 'out' });
    expect(delivery.accept('{"level":"INFO","message":"model loaded"}')).toBe(false);
    expect(delivery.accept('{"_aws":{"Timestamp":1},"Latency":2}')).toBe(false);
    expect(delivery.accept(line(1))).toBe(true);
    expect(delivery.stats()).toMatchObject({ accepted: 1, buffered: 1 });
  });

  it('writes after the interval, under the hour the oldest line arrived, one object per model', async () => {
    vi.useFakeTimers({ now: new Date('2026-03-04T05:59:59.700Z') });
    const { s3, puts } = fakeS3();
    const delivery = new CaptureDelivery({ s3, bucket: 'out', intervalMs: 1_000 });
    delivery.accept(line(1));
    vi.advanceTimersByTime(500);
    // The hour turns while the buffer fills: Firehose keeps the buffer's start.
    delivery.accept(line(2));
    delivery.accept(line(3, 'other'));
    expect(puts).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(puts.map((p) => [p.key.replace(/[^/]+$/, ''), p.lines.length])).toEqual([
      ['captures/model=churn/date=2026-03-04/hour=05/', 2],
      ['captures/model=other/date=2026-03-04/hour=05/', 1],
    ]);
    expect(puts[0]!.key).toMatch(/\/20260304T060000700Z-[0-9a-f-]{36}\.jsonl$/);
    expect(puts[0]!.lines).toEqual([line(1), line(2)]);
    expect(delivery.stats()).toMatchObject({ written: 3, objects: 2, buffered: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('writes at once when maxLines wait', async () => {
    const { s3, puts } = fakeS3();
    const delivery = new CaptureDelivery({ s3, bucket: 'out', maxLines: 3, intervalMs: 60_000 });
    for (let i = 0; i < 3; i++) delivery.accept(line(i));
    await vi.waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]!.lines).toHaveLength(3);
    await delivery.close();
  });

  it('writes what is left on close, and refuses capture lines after it', async () => {
    const { s3, puts } = fakeS3();
    const delivery = new CaptureDelivery({ s3, bucket: 'out', intervalMs: 60_000 });
    delivery.accept(line(1));
    delivery.accept(line(2));
    await delivery.close();
    expect(puts.flatMap((p) => p.lines)).toEqual([line(1), line(2)]);
    expect(() => delivery.accept(line(3))).toThrow(CaptureDeliveryClosedError);
    expect(delivery.accept('a log line')).toBe(false);
  });

  it('keeps the lines of a failed write and retries them after another interval', async () => {
    vi.useFakeTimers();
    const fail = { now: true };
    const { s3, puts } = fakeS3(fail);
    const errors: unknown[] = [];
    const delivery = new CaptureDelivery({
      s3,
      bucket: 'out',
      intervalMs: 1_000,
      onError: (e) => errors.push(e),
    });
    delivery.accept(line(1));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(errors).toHaveLength(1);
    expect(delivery.stats()).toMatchObject({ buffered: 1, written: 0, failedWrites: 1 });
    fail.now = false;
    delivery.accept(line(2));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(puts.flatMap((p) => p.lines)).toEqual([line(1), line(2)]);
    expect(delivery.stats()).toMatchObject({ buffered: 0, written: 2 });
  });
});
