import { describe, expect, it } from 'vitest';
import {
  builtInXgboostImage,
  ECR_IMAGE,
  runPrefixes,
  SPLIT,
  trainingJobName,
} from '#shared/training/sagemaker.ts';
import { channelOf, xgboostCsvRow } from '#shared/training/sagemaker-retrain.ts';

describe('the SageMaker engine’s naming and layout', () => {
  it('names a job after the stage, the time and a random part, within SageMaker’s 63 characters', () => {
    const name = trainingJobName('abcdefghijklmnop', new Date('2026-12-06T17:03:50.123Z'), 'deadbeef');
    expect(name).toBe('keel-abcdefghijklmnop-20261206170350-deadbeef');
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
  });

  it('keeps each kind of a run’s objects under its own prefix (what IAM holds the job to)', () => {
    expect(runPrefixes('keel-x-1')).toEqual({
      train: 'sagemaker/train/keel-x-1/',
      validation: 'sagemaker/validation/keel-x-1/',
      heldout: 'sagemaker/heldout/keel-x-1/',
      output: 'sagemaker/output/keel-x-1/',
      run: 'sagemaker/runs/keel-x-1/',
    });
  });

  it('knows the built-in XGBoost 3.0-5 image of the regions it lists, and no other', () => {
    const image = builtInXgboostImage('us-east-1');
    expect(image).toBe('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5');
    expect(ECR_IMAGE.test(image!)).toBe(true);
    expect(builtInXgboostImage('ap-east-1')).toBeUndefined();
  });
});

describe('channelOf', () => {
  it('splits customers by their id, the same way every time, in the configured shares', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `c-${String(i).padStart(6, '0')}`);
    const channels = ids.map(channelOf);
    expect(ids.map(channelOf)).toEqual(channels);
    const share = (c: string) => channels.filter((x) => x === c).length / ids.length;
    expect(share('heldout')).toBeCloseTo(SPLIT.heldOut, 1);
    expect(share('validation')).toBeCloseTo(SPLIT.validation, 1);
    expect(share('train')).toBeCloseTo(1 - SPLIT.heldOut - SPLIT.validation, 1);
  });
});

describe('xgboostCsvRow', () => {
  it('writes the label first and each float32 as text that parses back to it; missing is empty', () => {
    const features = Float32Array.of(0.1, 42, Number.NaN, 1 / 3);
    const row = xgboostCsvRow(1, features);
    expect(row).toBe('1,0.1,42,,0.33333334');
    const parsed = row.split(',').slice(1);
    expect(parsed.map((t) => (t === '' ? Number.NaN : Math.fround(Number(t))))).toEqual([...features]);
  });
});
