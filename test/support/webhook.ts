import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An HTTP endpoint standing in for on-call's webhook: it answers 200 and keeps every JSON body POSTed. */
export interface RecordingWebhook {
  readonly url: string;
  /** The bodies received, oldest first (SNS's envelope: Type, TopicArn, Subject, Message, …). */
  readonly posted: Record<string, string>[];
  close(): Promise<void>;
}

export async function startRecordingWebhook(): Promise<RecordingWebhook> {
  const posted: Record<string, string>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      posted.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    posted,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
