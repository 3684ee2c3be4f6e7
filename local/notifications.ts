import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The local stand-in for the on-call SNS topic: what pipelines and alarms publish is appended to
 * `${KEEL_HOME}/notifications.jsonl` (one JSON document a line) and handed to a listener (the console).
 * Alarm notifications (local/alarms.ts) and what the on-call and pipeline notifications topics carry
 * (local/sns.ts `deliverLocally`) are also POSTed to `KEEL_ONCALL_WEBHOOK`; the outcome of that
 * delivery is recorded on the notification.
 */
export interface Notification {
  readonly at: string;
  /** `pipeline:<name>` or `alarm:<id>`. */
  readonly source: string;
  readonly subject: string;
  readonly message: unknown;
  /** The webhook delivery of this notification, when one was attempted. */
  readonly webhook?: WebhookDelivery;
}

export interface WebhookDelivery {
  readonly url: string;
  readonly status: 'delivered' | 'failed';
  readonly attempts: number;
  /** The last attempt's HTTP status or error. */
  readonly detail: string;
}

export const notificationsFile = (home: string) => join(home, 'notifications.jsonl');

export type Notifier = (notification: Notification) => Promise<void>;

/** A notifier writing to `home`'s notifications file, then telling `listener` (after the write). */
export function fileNotifier(home: string, listener?: (notification: Notification) => void): Notifier {
  return async (notification) => {
    const file = notificationsFile(home);
    await mkdir(dirname(file), { recursive: true });
    await appendFile(file, `${JSON.stringify(notification)}\n`);
    listener?.(notification);
  };
}

/** The newest `limit` notifications, oldest first; none when the file does not exist yet. */
export async function readNotifications(home: string, limit: number): Promise<Notification[]> {
  let text: string;
  try {
    text = await readFile(notificationsFile(home), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const notifications: Notification[] = [];
  for (const line of text.split('\n').slice(-(limit + 1))) {
    if (line.trim() === '') continue;
    try {
      notifications.push(JSON.parse(line) as Notification);
    } catch {
      // A line cut by a crash mid-write is not a notification.
    }
  }
  return notifications.slice(-limit);
}
