import { join } from 'node:path';

/** Where the local platform keeps the EMF metric lines its functions emit (what CloudWatch would read). */
export const metricsFile = (home: string) => join(home, 'metrics', 'emf.jsonl');
