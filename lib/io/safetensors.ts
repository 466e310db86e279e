// safetensors.ts: reader and writer of the safetensors format (8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}}, then the data), our own so that
// every field is checked before use: a truncated, oversized or inconsistent file is refused with
// an Error that names the file and the problem. Reads F32, F16, BF16 (as f32); writes F32.
// Writes are atomic: a temporary file, fsync, rename.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
const MAX_HEADER = 100 << 20;

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Parses a safetensors file already in memory; `what` names it in errors. */
export function parseSafetensors(buf: Uint8Array, what = 'safetensors'): { tensors: Map<string, StoredTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new RangeError(`${what}: ${msg}`);
  };
  if (buf.length < 8) fail(`the file has ${buf.length} bytes, less than the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) fail(`the header claims ${n} bytes, more than the ${MAX_HEADER} allowed`);
  if (n > BigInt(buf.length - 8)) fail(`the header claims ${n} bytes but the file has ${buf.length - 8} after the length`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + Number(n))));
  } catch (e) {
    fail(`the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');
  const start = 8 + Number(n), dataLen = buf.length - start;
  const tensors = new Map<string, StoredTensor>();
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) fail(`${name}: the entry is not an object`);
    const dtype = e.dtype;
    if (typeof dtype !== 'string' || !(dtype in SIZES)) fail(`${name}: dtype ${JSON.stringify(dtype)} is not one of F32, F16, BF16`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1])
      fail(`${name}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with begin ≤ end`);
    const [b, end] = offs as [number, number];
    const numel = (shape as number[]).reduce((a, d) => a * d, 1), size = SIZES[dtype as string];
    if (end > dataLen) fail(`${name}: data_offsets end ${end} is past the ${dataLen} bytes of data (truncated file?)`);
    if (end - b !== numel * size) fail(`${name}: ${end - b} bytes of data for shape ${JSON.stringify(shape)} of ${dtype} (${numel * size} expected)`);
    spans.push([b, end, name]);
    const raw = buf.subarray(start + b, start + end);
    const data = new Float32Array(numel);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (dtype === 'F32') for (let i = 0; i < numel; i++) data[i] = dv.getFloat32(4 * i, true);
    else if (dtype === 'F16') for (let i = 0; i < numel; i++) data[i] = f16(dv.getUint16(2 * i, true));
    else {
      const u = new Uint32Array(1), f = new Float32Array(u.buffer);
      for (let i = 0; i < numel; i++) {
        u[0] = dv.getUint16(2 * i, true) << 16;
        data[i] = f[0];
      }
    }
    tensors.set(name, { shape: shape as number[], data });
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++)
    if (spans[i][0] < spans[i - 1][1]) fail(`${spans[i][2]} overlaps ${spans[i - 1][2]} in the data`);
  return { tensors, metadata };
}

export function readSafetensors(path: string) {
  return parseSafetensors(readFileSync(path), path);
}

/** Writes F32 tensors (in the given order) atomically. */
export function writeSafetensors(path: string, tensors: Array<[string, StoredTensor]>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length) throw new RangeError(`writeSafetensors: ${name} has ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * numel] };
    off += 4 * numel;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, head);
    for (const [, t] of tensors) {
      const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('writeSafetensors: big-endian hosts are not supported');
      writeSync(fd, b);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
