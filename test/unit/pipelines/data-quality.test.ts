import { describe, expect, it } from 'vitest';
import {
  changedField,
  countFieldIssues,
  countUnseenCategories,
  describeFieldChange,
  emptyDataQuality,
  FieldDomainChangeError,
  mergeDataQuality,
  OTHER_VALUES,
  unseenCategoryRows,
} from '#shared/etl/data-quality.ts';
import { BadRowShareError, type EtlChunkResult, finalizeEtl } from '#shared/etl/etl.ts';

const incomeIssue = [{ path: 'income', message: 'Too small: expected number to be >=0' }];

describe('data quality counts', () => {
  it('counts rows per failed field with the first reason and up to three distinct examples', () => {
    const quality = emptyDataQuality();
    for (const income of ['-1', '-2', '-1', '-3', '-4'])
      countFieldIssues(quality, [...incomeIssue, ...incomeIssue], { income });
    countFieldIssues(quality, [{ path: '', message: 'row: 3 cells, the header has 11' }], {});
    expect(quality.fieldProblems).toEqual({
      income: { rows: 5, message: incomeIssue[0]!.message, examples: ['-1', '-2', '-3'] },
    });
  });

  it('cuts long example values short', () => {
    const quality = emptyDataQuality();
    countFieldIssues(quality, incomeIssue, { income: 'x'.repeat(1000) });
    expect(quality.fieldProblems.income!.examples[0]).toHaveLength(40);
  });

  it('counts unseen category values per field, at most 20 by name and the rest together', () => {
    const quality = emptyDataQuality();
    countUnseenCategories(quality, { plan: 'basic', region: 'north' });
    for (let i = 0; i < 25; i++) countUnseenCategories(quality, { plan: `plan-${i}`, region: 'north' });
    countUnseenCategories(quality, { plan: 'plan-0', region: 'atlantis' });
    expect(quality.unseenCategories.region).toEqual({ atlantis: 1 });
    expect(quality.unseenCategories.plan!['plan-0']).toBe(2);
    expect(quality.unseenCategories.plan![OTHER_VALUES]).toBe(5);
    expect(Object.keys(quality.unseenCategories.plan!)).toHaveLength(21);
    expect(unseenCategoryRows(quality)).toEqual({ plan: 26, region: 1 });
  });

  it('merges chunks: rows add up, examples stay three, unseen values add up', () => {
    const a = emptyDataQuality();
    const b = emptyDataQuality();
    for (const income of ['-1', '-2']) countFieldIssues(a, incomeIssue, { income });
    for (const income of ['-2', '-5', '-6']) countFieldIssues(b, incomeIssue, { income });
    countUnseenCategories(a, { plan: 'enterprise', region: 'north' });
    countUnseenCategories(b, { plan: 'enterprise', region: 'north' });
    const total = mergeDataQuality([a, b]);
    expect(total.fieldProblems.income).toEqual({
      rows: 5,
      message: incomeIssue[0]!.message,
      examples: ['-1', '-2', '-5'],
    });
    expect(total.unseenCategories).toEqual({ plan: { enterprise: 2 } });
  });

  it('names the changed field when 90% of the rows fail it, not when bad rows vary', () => {
    const quality = emptyDataQuality();
    for (let i = 0; i < 9; i++) countFieldIssues(quality, incomeIssue, { income: '52k' });
    expect(changedField(quality, 10)).toMatchObject({ field: 'income', rows: 9 });
    expect(changedField(quality, 11)).toBeUndefined();
    expect(describeFieldChange(changedField(quality, 10)!, 10)).toBe(
      'income: 9 of 10 rows fail the field (Too small: expected number to be >=0), e.g. "52k"; its type or unit likely changed upstream',
    );
  });
});

describe('finalizeEtl', () => {
  const plan = {
    inputKey: 'raw/x.csv',
    runDate: '2026-12-06',
    header: 'h',
    labeled: false,
    totalRows: 100,
    featurePrefix: 'features/run_date=2026-12-06/x/',
  };
  const chunk = (quality: EtlChunkResult['quality'], quarantined: number): EtlChunkResult => ({
    index: 0,
    rows: 100,
    valid: 100 - quarantined,
    quarantined,
    onlineWritten: 100 - quarantined,
    featureKey: 'k',
    quarantineKey: quarantined > 0 ? 'q' : null,
    quality,
    imputed: { support_tickets_90d: 0 },
  });

  it('reports a field every row failed as that field, with the quarantine location', () => {
    const quality = emptyDataQuality();
    for (let i = 0; i < 100; i++) countFieldIssues(quality, incomeIssue, { income: String(-i) });
    const fail = () => finalizeEtl(plan, [chunk(quality, 100)], { featuresBucket: 'features' });
    expect(fail).toThrow(FieldDomainChangeError);
    expect(fail).toThrow(/^income: 100 of 100 rows fail the field .*see s3:\/\/features\/quarantine\//);
  });

  it('keeps the bad-row share error when the bad rows fail different fields', () => {
    const quality = emptyDataQuality();
    for (let i = 0; i < 10; i++) countFieldIssues(quality, incomeIssue, { income: '-1' });
    expect(() => finalizeEtl(plan, [chunk(quality, 10)], { featuresBucket: 'features' })).toThrow(
      BadRowShareError,
    );
  });

  it('carries the unseen category counts in the report', () => {
    const quality = emptyDataQuality();
    countUnseenCategories(quality, { plan: 'enterprise', region: 'north' });
    const report = finalizeEtl(plan, [chunk(quality, 0)], { featuresBucket: 'features' });
    expect(report.quality.unseenCategories).toEqual({ plan: { enterprise: 1 } });
  });
});
