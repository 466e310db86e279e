// fuzz.test.ts: 10 000 calls with one wrong argument each (wrong kind, rank, shape, dtype,
// device, a disposed tensor, NaN where a number goes) straight into the addon; every one must
// throw a TypeError or RangeError (Error for an unavailable device) and none may crash.
import { suite } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { native, type NativeTensor } from '../lib/native.js';
import { hasCuda, Rng } from './helpers/index.js';

const test = suite('fuzz');
const rng = new Rng(99);

const T = (shape: number[]) => new native.NativeTensor(rng.randn(shape.reduce((a, b) => a * b, 1)), shape, 'cpu', 'f32');
const disposed = (() => {
  const t = T([3, 3]);
  t.dispose();
  return t;
})();

const junk: unknown[] = [
  undefined, null, 0, -1, NaN, Infinity, 1.5, 'cpu', '', true, {}, [], [1, 2], () => 1, Symbol('x'), 10n,
  new Float64Array(4), new Int32Array(4), new Uint8Array(4), new Float32Array(0), disposed, { shape: [2, 2] },
  Object.create(native.NativeTensor.prototype), // looks like a tensor to instanceof, wraps nothing
];
const isTensor = (x: unknown): x is NativeTensor => x instanceof Object && Object.getPrototypeOf(x) === native.NativeTensor.prototype && x !== junk[junk.length - 1];

type Call = () => unknown;

function matmulCall(): Call {
  const M = rng.int(1, 6), N = rng.int(1, 6), K = rng.int(1, 6);
  const args: unknown[] = [T([M, K]), T([K, N]), T([N]), T([M, N]), false, false, false];
  const which = rng.int(0, 9);
  switch (which) {
    case 0: case 1: args[which] = rng.pick(junk.filter((j) => j !== undefined && j !== null)); break;
    case 2: args[2] = rng.pick([T([N + 1]), T([N, 1]), T([1]), ...junk.filter((j) => j !== null && j !== undefined)]); if (isTensor(args[2]) && !args[2].disposed && args[2].shape[0] === N && args[2].shape.length === 1) args[2] = T([N + 2]); break;
    case 3: args[3] = rng.pick([T([M + 1, N]), T([M, N + 1]), T([M * N]), args[0], disposed, 7, 'out']); if (args[3] === args[0] && M === M && K === N) args[3] = T([M + 1, N]); break;
    case 4: case 5: case 6: args[which] = rng.pick([0, 1, 'true', NaN, {}, null]); break;
    case 7: args[1] = T([K + 1, N]); break; // K mismatch
    case 8: args[0] = rng.pick([T([M]), T([M, K, 1]), T([1, 1, 1, 1])]); break;
    case 9: args.push(rng.pick(['f64', 1, {}, 'bf16', 'f16'])); break; // outDtype: not a dtype, or 16-bit from f32 operands
  }
  return () => native.matmul(...(args as Parameters<typeof native.matmul>));
}

function tensorCall(): Call {
  const shape = [rng.int(1, 4), rng.int(1, 4)];
  const n = shape[0] * shape[1];
  const args: unknown[] = [rng.randn(n), shape, 'cpu', 'f32'];
  switch (rng.int(0, 5)) {
    case 0: args[0] = rng.pick([new Float32Array(n + 1), new Float64Array(n), 'data', 3, {}, [1, 2, 3]]); break;
    case 1: args[1] = rng.pick([[NaN], [0], [-1], [1.5], ['2'], 'shape', null, [2 ** 31], [1, 1, 1, 1, 1, 1, 1, 1, 1], [2 ** 30, 2 ** 30]]); break;
    case 2: args[2] = rng.pick(['gpu', '', 1, null, hasCuda ? 'tpu' : 'cuda']); break;
    case 3: args[3] = rng.pick(['f64', 'int8', 1, null, ...(hasCuda ? [] : ['bf16', 'f16'])]); break;
    case 4: args.push(rng.pick(['x', {}, [], true])); args[0] = null; break; // fill must be a number
    case 5: return () => (native.NativeTensor as unknown as (...a: unknown[]) => unknown)(...args); // called without new
  }
  return () => new native.NativeTensor(...(args as ConstructorParameters<typeof native.NativeTensor>));
}

function otherCall(): Call {
  switch (rng.int(0, 3)) {
    case 0: return () => disposed.toArray();
    case 1: return () => native.noopTensor(rng.pick(junk) as NativeTensor);
    case 2: return () => native.setIsa(rng.pick([NaN, 'avx1024', 3, null, undefined]) as never);
    default: return () => native.matmul(T([2, 2]), T([2, 2]), null, null, false, false, true, null); // accumulate without out
  }
}

test('10 000 wrong calls all throw named errors', () => {
  let n = 0;
  for (let i = 0; i < 10_000; i++) {
    const r = rng.next();
    const call = r < 0.6 ? matmulCall() : r < 0.9 ? tensorCall() : otherCall();
    let threw: unknown = null;
    try {
      call();
    } catch (e) {
      threw = e;
    }
    assert.ok(threw instanceof Error, `call ${i} did not throw`);
    const e = threw as Error;
    assert.ok(e instanceof TypeError || e instanceof RangeError || /not available|not supported/.test(e.message), `call ${i}: ${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.length > 10, `call ${i}: message too short: ${e.message}`);
    n++;
  }
  assert.is(n, 10_000);
});

// Every kernel binding, called with arguments drawn from a pool of tensors of random shapes,
// index arrays with values in and out of range, numbers (NaN, ±∞, negatives), booleans and
// junk: a call may succeed when the draw happens to be valid, but it must never crash, and a
// failure must be a named TypeError or RangeError.
const bindings = [
  'matmul', 'layerNorm', 'layerNormBackward', 'gelu', 'geluBackward', 'softmaxCrossEntropy', 'softmaxCrossEntropyBackward',
  'l2Normalize', 'l2NormalizeBackward', 'residual', 'residualBackward', 'meanPool', 'meanPoolBackward', 'embedding',
  'embeddingBackward', 'batchNorm', 'batchNormBackward', 'dropout', 'adamw', 'sgd', 'sumSquares', 'copy',
  'copy2d', 'relu', 'reluBackward', 'patchEmbed', 'patchEmbedBackward', 'interpolatePos', 'interpolatePosBackward', 'flashAttention', 'flashAttentionBackward', 'clipLoss', 'ntXent', 'localAlignLoss',
] as const;

function draw(): unknown {
  const r = rng.next();
  if (r < 0.45) {
    const rank = rng.int(1, 4); // rank 4: images for patchEmbed
    return T(Array.from({ length: rank }, () => rng.pick([1, 2, 3, 4, 5, 8])));
  }
  if (r < 0.6) return Int32Array.from({ length: rng.int(0, 6) }, () => rng.int(-2, 9));
  if (r < 0.8) return rng.pick([0, 1, 2, 3, 0.5, 1e-5, -1, NaN, Infinity, -Infinity, 2 ** 60]);
  if (r < 0.9) return rng.pick([true, false]);
  return rng.pick(junk);
}

test('every binding survives 20 000 random argument lists', () => {
  const surface = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  let threw = 0, ran = 0;
  for (let i = 0; i < 20_000; i++) {
    const name = rng.pick(bindings);
    const args = Array.from({ length: rng.int(0, 14) }, draw);
    try {
      surface[name](...args);
      ran++;
    } catch (e) {
      threw++;
      assert.ok(e instanceof TypeError || e instanceof RangeError || (e instanceof Error && /not supported|not available/.test(e.message)),
        `${name}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      assert.ok((e as Error).message.startsWith(name) || /^Tensor|^toArray/.test((e as Error).message), `${name}: message does not name the op: ${(e as Error).message}`);
    }
  }
  assert.ok(threw > 10_000, `only ${threw} calls threw`);
  assert.ok(ran > 0, `no random argument list was ever valid (${ran})`); // valid draws run the kernels too
});

test.run();
