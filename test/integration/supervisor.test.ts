import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerNodeOptions } from '#local/container-api.ts';
import { readRuntime, runtimeTarget } from '#local/running-platform.ts';
import { createDocumentClient } from '#shared/aws/clients.ts';
import { getRecord, writeRecords } from '#shared/online-store/store.ts';
import { keelUpEnv, type RunningKeel, startKeelUp } from '../support/cli.ts';
import { alive, processTree, untilGone } from '../support/processes.ts';

/**
 * `keel up` as the supervisor of its processes: storage in a process of its own, the API as the ECS
 * container in two processes, the functions in Lambda-like environments. What a user relies on: a
 * write is read back fresh, a dead storage process is an outage the API reports and recovers from,
 * and Ctrl-C leaves nothing running.
 */
const home = await mkdtemp(join(tmpdir(), 'keel-supervisor-'));
const env = keelUpEnv(home, { KEEL_API_COMPUTE: 'ecs', KEEL_API_WORKERS: '2' });
let keel: RunningKeel;

beforeAll(async () => {
  keel = await startKeelUp(env, /Keel is running/, 180_000);
}, 200_000);
afterAll(async () => {
  await keel?.stop();
  await rm(home, { recursive: true, force: true });
});

const runtime = async () => {
  const info = await readRuntime(home);
  if (!info?.endpoints.api || !info.processes) throw new Error('keel up published no API or processes');
  return { ...info, api: info.endpoints.api, processes: info.processes };
};

async function predict(body: Record<string, unknown>) {
  const response = await fetch(`${(await runtime()).api}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('keel up supervises storage, the API containers and the functions', () => {
  it('serves by customer id from two container processes and reads a write back fresh', async () => {
    const info = await runtime();
    expect(info.processes.api).toHaveLength(2);
    // Each runs node as the image's CMD does.
    const options = containerNodeOptions();
    for (const pid of info.processes.api) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      expect(argv).toEqual(expect.arrayContaining(options));
    }
    const customerId = 'c-000042';
    const before = await predict({ customerId });
    expect(before.status).toBe(200);

    const store = { dynamo: createDocumentClient(runtimeTarget(info)), table: info.names.onlineFeatures! };
    const record = (await getRecord(store, customerId))!;
    const changed = { ...record, support_tickets_90d: 12, days_since_last_order: 360, orders: 0 };
    await writeRecords(store, [changed]);
    store.dynamo.destroy();

    // The next request after the write completed reads it: the same answer as the changed fields sent inline.
    const after = await predict({ customerId });
    const inline = await predict({ customerId, attributes: changed });
    expect(after.status).toBe(200);
    expect(after.body.probability).toBe(inline.body.probability);
    expect(after.body.probability).not.toBe(before.body.probability);
  });

  it('answers 503 Unavailable while the storage process is down and serves again once it is back', async () => {
    const { processes } = await runtime();
    process.kill(processes.storage, 'SIGKILL');
    const down = await predict({ customerId: 'c-000007' });
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ error: { code: 'Unavailable' } });

    const until = Date.now() + 60_000;
    let again = down;
    while (again.status !== 200 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      again = await predict({ customerId: 'c-000007' });
    }
    expect(again.status).toBe(200);
    const restarted = (await runtime()).processes.storage;
    expect(restarted).not.toBe(processes.storage);
    expect(alive(restarted)).toBe(true);
    expect(keel.output()).toContain(`storage process ${processes.storage} died`);
  }, 90_000);

  it('leaves no process behind after Ctrl-C and keeps the state', async () => {
    const { pid } = await runtime();
    const tree = processTree(pid);
    // keel up, storage, two containers and at least the predict environments it prewarmed for the pipelines.
    expect(tree.length).toBeGreaterThanOrEqual(4);
    expect(await keel.stop()).toBe(0);
    expect(await untilGone(tree)).toEqual([]);
    expect(keel.output()).toContain('state kept');
  }, 60_000);
});
