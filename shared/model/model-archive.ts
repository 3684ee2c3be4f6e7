/**
 * Reads one file out of a gzipped tar archive: SageMaker packs a training job's output as model.tar.gz
 * (the built-in XGBoost algorithm: one member, `xgboost-model`). Handles ustar names (with prefix),
 * pax `path` records and GNU long names.
 */
import { gunzipSync } from 'node:zlib';
import { KeelError } from '#shared/errors.ts';

/** The archive is not a readable tar.gz, or lacks the member asked for. */
export class ModelArchiveError extends KeelError {
  readonly code = 'ValidationError';
}

const BLOCK = 512;
const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/** The content of member `name` (a leading `./` is ignored on both sides). */
export function fileFromTarGz(bytes: Uint8Array, name: string): Uint8Array {
  let tar: Uint8Array;
  try {
    tar = gunzipSync(bytes);
  } catch (cause) {
    throw new ModelArchiveError(`not a gzip archive: ${(cause as Error).message}`, { cause });
  }
  const wanted = normalize(name);
  const seen: string[] = [];
  let longName: string | undefined;
  let offset = 0;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) break;
    checkChecksum(header, offset);
    const size = readSize(header, offset);
    const type = String.fromCharCode(header[156]!);
    const dataStart = offset + BLOCK;
    if (dataStart + size > tar.length) {
      throw new ModelArchiveError(
        `tar member at byte ${offset} claims ${size} bytes, the archive ends first`,
      );
    }
    const data = tar.subarray(dataStart, dataStart + size);
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (type === 'L') {
      longName = cString(data, 0, size);
      continue;
    }
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type === 'g') continue;
    const prefix = cString(header, 345, 155);
    const path = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
    longName = undefined;
    // Regular files only ('0', or NUL from old tars).
    if (type !== '0' && type !== '\0') continue;
    const member = normalize(path);
    // A copy as a plain Uint8Array (gunzip gives a Buffer, whose slice() would share the archive).
    if (member === wanted) return new Uint8Array(data);
    seen.push(member);
  }
  throw new ModelArchiveError(
    `the archive has no file '${wanted}'${seen.length > 0 ? ` (it holds: ${seen.join(', ')})` : ' (it holds no files)'}`,
  );
}

function normalize(path: string): string {
  return path.replace(/^(\.\/)+/, '');
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  const field = bytes.subarray(start, start + length);
  const end = field.indexOf(0);
  return utf8.decode(end === -1 ? field : field.subarray(0, end));
}

function readSize(header: Uint8Array, offset: number): number {
  // Base-256 (GNU) for sizes beyond the 11 octal digits: the high bit of the first byte is set.
  if ((header[124]! & 0x80) !== 0) {
    let size = header[124]! & 0x7f;
    for (let i = 125; i < 136; i++) size = size * 256 + header[i]!;
    return size;
  }
  const text = latin1
    .decode(header.subarray(124, 136))
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]+$/.test(text)) throw new ModelArchiveError(`tar header at byte ${offset} has size '${text}'`);
  return Number.parseInt(text, 8);
}

function checkChecksum(header: Uint8Array, offset: number): void {
  const stored = Number.parseInt(latin1.decode(header.subarray(148, 156)).replace(/[\0 ]+/g, ''), 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (stored !== sum) throw new ModelArchiveError(`not a tar archive: bad header checksum at byte ${offset}`);
}

/** The `path` record of a pax extended header ("<length> path=<value>\n" records). */
function paxPath(data: Uint8Array): string | undefined {
  const text = utf8.decode(data);
  for (const match of text.matchAll(/^\d+ path=(.*)$/gm)) return match[1];
  return undefined;
}
