// safetensors.test.ts: our reader and writer on files the test makes: a round trip, a
// hand-made file with Hugging Face DINOv2 names and shapes (F32, F16, BF16) loaded into the
// ViT, a checkpoint that reproduces bit-identical outputs, and corrupt files refused by name.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autograd, io, nn, Tensor } from 'mamakit';
import { assertIdentical, Rng } from '../helpers/index.js';

const test = suite('safetensors');
const rng = new Rng(8);
const dir = mkdtempSync(join(tmpdir(), 'mamakit-st-'));
const cfg: nn.VitConfig = { imageSize: 8, patch: 4, channels: 1, width: 8, depth: 1, heads: 2, mlpRatio: 2, registers: 2, layerScale: 1e-5, eps: 1e-6 };

// A file as Python's safetensors writes it, from entries [name, dtype, shape, raw bytes].
function handMade(entries: Array<[string, string, number[], Uint8Array]>, headerPatch?: (h: Record<string, unknown>) => void): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, dtype, shape, raw] of entries) {
    header[name] = { dtype, shape, data_offsets: [off, off + raw.length] };
    off += raw.length;
  }
  headerPatch?.(header);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...entries.map((e) => Buffer.from(e[3]))]);
}
const f32 = (x: Float32Array) => new Uint8Array(x.buffer.slice(0));

test('round trip keeps names, shapes and values', () => {
  const a = rng.randn(6), b = rng.randn(5);
  const path = join(dir, 'rt.safetensors');
  io.writeSafetensors(path, [['a', { shape: [2, 3], data: a }], ['b.c', { shape: [5], data: b }]], { format: 'pt' });
  const r = io.readSafetensors(path);
  assert.equal(r.metadata, { format: 'pt' });
  assert.equal(r.tensors.get('a')!.shape, [2, 3]);
  assertIdentical(r.tensors.get('a')!.data, a);
  assertIdentical(r.tensors.get('b.c')!.data, b);
});

test('F16 and BF16 entries read as f32', () => {
  const h = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00]); // 1, -2, 0
  const bf = new Uint8Array([0x80, 0x3f, 0x40, 0x40]); // 1, 3
  const r = io.parseSafetensors(handMade([['h', 'F16', [3], h], ['b', 'BF16', [2], bf]]));
  assert.equal(Array.from(r.tensors.get('h')!.data), [1, -2, 0]);
  assert.equal(Array.from(r.tensors.get('b')!.data), [1, 3]);
});

test('a hand-made file with Hugging Face names and shapes loads into the ViT', () => {
  const vit = new nn.VisionTransformer(cfg);
  new nn.ParamArena(vit);
  const entries: Array<[string, string, number[], Uint8Array]> = [];
  const want = new Map<string, Float32Array>();
  for (const [name, p] of vit.namedParameters()) {
    const x = rng.randn(p.init.length);
    want.set(name, x);
    entries.push([name, 'F32', p.hfShape, f32(x)]);
  }
  entries.push(['embeddings.mask_token', 'F32', [1, 8], f32(rng.randn(8))]); // HF has it; we do not use it
  const path = join(dir, 'hf.safetensors');
  writeFileSync(path, handMade(entries));
  const loaded = nn.loadWeights(vit, path);
  assert.is(loaded.length, vit.namedParameters().length);
  assert.equal(vit.cls.shape, [1, 8]);
  assertIdentical(vit.pos.value.toArray(), want.get('embeddings.position_embeddings')!);
  assertIdentical(vit.patchW.value.toArray(), want.get('embeddings.patch_embeddings.projection.weight')!);
});

test('a saved checkpoint reloads to bit-identical outputs', () => {
  const a = new nn.VisionTransformer(cfg, 1), b = new nn.VisionTransformer(cfg, 2);
  new nn.ParamArena(a), new nn.ParamArena(b);
  const path = join(dir, 'ckpt.safetensors');
  nn.saveWeights(a, path);
  nn.loadWeights(b, path);
  const images = Tensor.fromArray(rng.randn(2 * 64), [2, 1, 8, 8]);
  const run = (m: nn.VisionTransformer) => autograd.noGrad(() => m.forward(images).normed.value.toArray());
  assertIdentical(run(b), run(a));
  // And the file carries Hugging Face's shapes.
  assert.equal(io.readSafetensors(path).tensors.get('embeddings.patch_embeddings.projection.weight')!.shape, [8, 1, 4, 4]);
});

test('corrupt files are refused with a named error', () => {
  const good = handMade([['w', 'F32', [2], f32(Float32Array.of(1, 2))]]);
  const bad = (buf: Uint8Array, re: RegExp) => assert.throws(() => io.parseSafetensors(buf, 'x.safetensors'), (e: Error) => e instanceof RangeError && re.test(e.message));
  bad(good.subarray(0, 5), /x.safetensors: the file has 5 bytes, less than the 8-byte header length/);
  bad(good.subarray(0, good.length - 3), /x.safetensors: w: data_offsets end 8 is past the 5 bytes of data \(truncated file\?\)/);
  const huge = Uint8Array.from(good);
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  bad(huge, /the header claims 1099511627776 bytes, more than/);
  const long = Uint8Array.from(good);
  new DataView(long.buffer).setBigUint64(0, 4000n, true);
  bad(long, /the header claims 4000 bytes but the file has/);
  bad(handMade([['w', 'I64', [1], new Uint8Array(8)]]), /w: dtype "I64" is not one of F32, F16, BF16/);
  bad(handMade([['w', 'F32', [3], f32(Float32Array.of(1, 2))]]), /w: 8 bytes of data for shape \[3\] of F32 \(12 expected\)/);
  bad(handMade([['w', 'F32', [-1], new Uint8Array(0)]]), /w: shape \[-1\] is not a list of non-negative integers/);
  bad(handMade([['a', 'F32', [2], f32(Float32Array.of(1, 2))], ['b', 'F32', [1], f32(Float32Array.of(3))]], (h) => {
    (h.b as { data_offsets: number[] }).data_offsets = [4, 8];
  }), /b overlaps a in the data/);
  const notJson = Uint8Array.from(good);
  notJson[9] = 0x7b; // corrupt the JSON
  notJson[10] = 0x7b;
  bad(notJson, /the header is not valid UTF-8 JSON/);
  const path = join(dir, 'short.safetensors');
  writeFileSync(path, readFileSync(join(dir, 'rt.safetensors')).subarray(0, 40));
  assert.throws(() => io.readSafetensors(path), (e: Error) => e.message.startsWith(path));
});

test.run();
