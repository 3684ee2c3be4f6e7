/**
 * A Universal Binary JSON (UBJSON, draft 12) decoder: what XGBoost's `save_model` writes for a file
 * without a `.json` extension (the default from XGBoost 2.1). Big-endian numbers, typed markers, and the
 * optimized containers (`$` element type, `#` count) XGBoost uses for its per-node arrays.
 */
import { KeelError } from '#shared/errors.ts';

/** The bytes are not well-formed UBJSON; the message gives the byte offset. */
export class UbjsonError extends KeelError {
  readonly code = 'ValidationError';
}

export type UbjsonValue = null | boolean | number | string | UbjsonValue[] | { [key: string]: UbjsonValue };

export function decodeUbjson(bytes: Uint8Array): UbjsonValue {
  const reader = new Reader(bytes);
  const value = reader.value(reader.marker());
  if (reader.offset !== bytes.length) reader.fail(`${bytes.length - reader.offset} trailing bytes`);
  return value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Reader {
  offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string): never {
    throw new UbjsonError(`invalid UBJSON at byte ${this.offset}: ${message}`);
  }

  private take(n: number): number {
    if (this.offset + n > this.bytes.length) this.fail(`needs ${n} more bytes, the input ends`);
    const at = this.offset;
    this.offset += n;
    return at;
  }

  /** The next type marker, skipping no-op markers. */
  marker(): string {
    let m: string;
    do m = String.fromCharCode(this.bytes[this.take(1)]!);
    while (m === 'N');
    return m;
  }

  value(marker: string): UbjsonValue {
    switch (marker) {
      case 'Z':
        return null;
      case 'T':
        return true;
      case 'F':
        return false;
      case 'i':
        return this.view.getInt8(this.take(1));
      case 'U':
        return this.view.getUint8(this.take(1));
      case 'I':
        return this.view.getInt16(this.take(2));
      case 'l':
        return this.view.getInt32(this.take(4));
      case 'L': {
        const big = this.view.getBigInt64(this.take(8));
        if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
          this.fail(`int64 ${big} is beyond a double's exact integers`);
        return Number(big);
      }
      case 'd':
        return this.view.getFloat32(this.take(4));
      case 'D':
        return this.view.getFloat64(this.take(8));
      case 'C':
        return String.fromCharCode(this.bytes[this.take(1)]!);
      case 'S':
        return this.string();
      case 'H': {
        const text = this.string();
        const n = Number(text);
        if (text.trim() === '' || Number.isNaN(n))
          this.fail(`high-precision number '${text}' is not a number`);
        return n;
      }
      case '[':
        return this.array();
      case '{':
        return this.object();
      default:
        this.offset -= 1;
        return this.fail(`unknown type marker '${marker}' (0x${marker.charCodeAt(0).toString(16)})`);
    }
  }

  private count(): number {
    const n = this.value(this.marker());
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) this.fail(`invalid length ${String(n)}`);
    return n;
  }

  private string(): string {
    const n = this.count();
    const at = this.take(n);
    try {
      return utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      return this.fail('string is not UTF-8');
    }
  }

  /** After `[` or `{`: the optional `$type` and `#count`; without a count the container ends at its closer. */
  private header(): { type: string | undefined; count: number | undefined } {
    let type: string | undefined;
    let count: number | undefined;
    if (this.bytes[this.offset] === 0x24 /* $ */) {
      this.offset += 1;
      type = String.fromCharCode(this.bytes[this.take(1)]!);
      if (this.bytes[this.offset] !== 0x23 /* # */) this.fail("a '$' type must be followed by a '#' count");
    }
    if (this.bytes[this.offset] === 0x23 /* # */) {
      this.offset += 1;
      count = this.count();
    }
    return { type, count };
  }

  private array(): UbjsonValue[] {
    const { type, count } = this.header();
    const out: UbjsonValue[] = [];
    if (count !== undefined) {
      // Each element is at least one byte (bar the valueless types): refuse counts the input cannot hold.
      if (type === undefined || !'ZTFN'.includes(type)) {
        if (count > this.bytes.length - this.offset) this.fail(`count ${count} exceeds the remaining input`);
      }
      for (let i = 0; i < count; i++) out.push(this.value(type ?? this.marker()));
      return out;
    }
    for (let m = this.marker(); m !== ']'; m = this.marker()) out.push(this.value(m));
    return out;
  }

  private object(): { [key: string]: UbjsonValue } {
    const { type, count } = this.header();
    const out: { [key: string]: UbjsonValue } = {};
    const entry = () => {
      const key = this.string();
      const value = this.value(type ?? this.marker());
      // Own data property even for a key such as "__proto__".
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    };
    if (count !== undefined) {
      if (count > this.bytes.length - this.offset) this.fail(`count ${count} exceeds the remaining input`);
      for (let i = 0; i < count; i++) entry();
      return out;
    }
    for (;;) {
      // Keys carry no 'S' marker; a no-op marker may still precede one.
      while (this.bytes[this.offset] === 0x4e /* N */) this.offset += 1;
      if (this.offset >= this.bytes.length) this.fail("the object has no closing '}'");
      if (this.bytes[this.offset] === 0x7d /* } */) break;
      entry();
    }
    this.offset += 1;
    return out;
  }
}
