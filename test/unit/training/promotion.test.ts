import { describe, expect, it } from 'vitest';
import { promotionDecision } from '#shared/training/retrain.ts';

const worse = { auc: 0.7951, champion: 'v1' as const, championAuc: 0.806 };
const better = { auc: 0.8112, champion: 'v1' as const, championAuc: 0.806 };

describe('promotionDecision', () => {
  it('promotes under if-better only a strictly better candidate, beyond the margin', () => {
    expect(promotionDecision(better, 'if-better')).toEqual({
      promote: true,
      reason: 'AUC 0.8112 beats champion v1 (0.8060)',
    });
    expect(promotionDecision(worse, 'if-better')).toEqual({
      promote: false,
      reason: 'AUC 0.7951 does not beat champion v1 (0.8060); kept registered',
    });
    expect(promotionDecision(better, 'if-better', 0.01)).toEqual({
      promote: false,
      reason: 'AUC 0.8112 does not beat champion v1 (0.8060) by more than 0.01; kept registered',
    });
    const tie = promotionDecision({ ...worse, auc: worse.championAuc }, 'if-better');
    expect(tie.promote).toBe(false);
  });

  it('says how the candidate compares when promotion was not requested, and what if-better would do', () => {
    expect(promotionDecision(worse, 'never')).toEqual({
      promote: false,
      reason:
        'registered only (promotion not requested); AUC 0.7951 does not beat champion v1 (0.8060): if-better would keep v1',
    });
    expect(promotionDecision(better, 'never').reason).toMatch(
      /beats champion v1 \(0\.8060\): if-better would promote it$/,
    );
  });

  it('names a forced promotion of a worse candidate as worse', () => {
    expect(promotionDecision(worse, 'always')).toEqual({
      promote: true,
      reason: 'promotion forced; AUC 0.7951 does not beat champion v1 (0.8060)',
    });
  });

  it('promotes the first version unless promotion was not requested', () => {
    const first = { auc: 0.83, champion: null, championAuc: null };
    expect(promotionDecision(first, 'if-better')).toEqual({ promote: true, reason: 'no champion yet' });
    expect(promotionDecision(first, 'always').promote).toBe(true);
    expect(promotionDecision(first, 'never')).toEqual({
      promote: false,
      reason: 'registered only (promotion not requested); no champion to compare with',
    });
  });
});
