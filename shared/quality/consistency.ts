import type { CaptureRecord } from '#shared/inference/capture.ts';
import type { ConsistencyFigures } from './types.ts';

/**
 * Batch/real-time consistency: the customers answered both by batch scoring and by the API, by the
 * same model version, from the same stored record (the record's event_time, which capture keeps when
 * the features came from the record alone). With one feature module and one model file the two must
 * decide alike; a difference means the paths compute or score differently, or that the record changed
 * under the same event_time (a write behind the ETL's back).
 */
export interface ConsistencyCheck {
  /** Offers one captured answer; answers with request attributes, or shadow scores, are not paired. */
  add(record: CaptureRecord): void;
  figures(): ConsistencyFigures;
}

interface Answers {
  readonly api: { probability: number; prediction: number }[];
  batch?: { probability: number; prediction: number };
}

export function createConsistencyCheck(): ConsistencyCheck {
  const byRecord = new Map<string, Answers>();
  return {
    add(record) {
      if (!record.eventTime || record.variant === 'shadow') return;
      const key = `${record.version}\u0000${record.customerId}\u0000${record.eventTime}`;
      let answers = byRecord.get(key);
      if (!answers) {
        answers = { api: [] };
        byRecord.set(key, answers);
      }
      const answer = { probability: record.probability, prediction: record.prediction };
      if (record.source === 'batch') answers.batch ??= answer;
      else answers.api.push(answer);
    },
    figures() {
      let [pairs, identicalDecisions, maxScoreDifference] = [0, 0, 0];
      for (const { api, batch } of byRecord.values()) {
        if (!batch) continue;
        for (const answer of api) {
          pairs++;
          if (answer.prediction === batch.prediction) identicalDecisions++;
          maxScoreDifference = Math.max(maxScoreDifference, Math.abs(answer.probability - batch.probability));
        }
      }
      return {
        pairs,
        identicalDecisions,
        share: pairs === 0 ? null : identicalDecisions / pairs,
        maxScoreDifference: pairs === 0 ? null : maxScoreDifference,
      };
    },
  };
}
