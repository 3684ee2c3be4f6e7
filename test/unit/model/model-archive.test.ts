import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { fileFromTarGz, ModelArchiveError } from '#shared/model/model-archive.ts';

const dir = mkdtempSync(join(tmpdir(), 'keel-archive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = new Uint8Array(readFileSync(new URL('../../fixtures/xgboost/churn.ubj', import.meta.url)));
const longName = `${'nested/'.repeat(20)}model-with-a-long-name.bin`;

/** A model.tar.gz as the system's tar writes it, in the given header format, with `./` member names. */
function archive(format: 'gnu' | 'pax' | 'ustar'): Uint8Array {
  const source = join(dir, format);
  mkdirSync(join(source, 'code'), { recursive: true });
  writeFileSync(join(source, 'xgboost-model'), model);
  writeFileSync(join(source, 'code', 'empty.txt'), '');
  if (format !== 'ustar') {
    mkdirSync(join(source, longName, '..'), { recursive: true });
    writeFileSync(join(source, longName), 'long');
  }
  const out = join(dir, `${format}.tar.gz`);
  execFileSync('tar', [`--format=${format}`, '-czf', out, '-C', source, '.']);
  return new Uint8Array(readFileSync(out));
}

describe('fileFromTarGz', () => {
  it.each(['gnu', 'pax', 'ustar'] as const)('reads a member of a %s tar.gz byte for byte', (format) => {
    const bytes = archive(format);
    expect(fileFromTarGz(bytes, 'xgboost-model')).toEqual(model);
    expect(fileFromTarGz(bytes, './xgboost-model')).toEqual(model);
    expect(fileFromTarGz(bytes, 'code/empty.txt')).toEqual(new Uint8Array(0));
    if (format !== 'ustar') expect(new TextDecoder().decode(fileFromTarGz(bytes, longName))).toBe('long');
  });

  it('names the missing member and lists the files it holds', () => {
    const bytes = archive('gnu');
    const error = (() => {
      try {
        fileFromTarGz(bytes, 'model.json');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ModelArchiveError);
    expect((error as Error).message).toMatch(/no file 'model\.json' \(it holds: .*xgboost-model/);
    // A directory is not a file.
    expect(() => fileFromTarGz(bytes, 'code')).toThrow(/no file 'code'/);
  });

  it('refuses what is not a tar.gz', () => {
    expect(() => fileFromTarGz(model, 'xgboost-model')).toThrow(/not a gzip archive/);
    expect(() => fileFromTarGz(gzipSync(new Uint8Array(1024).fill(7)), 'x')).toThrow(
      /bad header checksum at byte 0/,
    );
    expect(() => fileFromTarGz(gzipSync(new Uint8Array(1024)), 'x')).toThrow(/it holds no files/);
  });

  it('refuses a member cut short', () => {
    const tar = new Uint8Array(execFileSync('gzip', ['-dc'], { input: archive('ustar') }));
    expect(() => fileFromTarGz(gzipSync(tar.subarray(0, 2048)), 'xgboost-model')).toThrow(
      /the archive ends first/,
    );
  });
});
