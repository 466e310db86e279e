// helpers/index.ts: what every test uses: a seeded RNG, float64 references, a closeness check
// that names the worst element, a central-difference gradient checker, and guards that
// report unavailable ISAs or devices as skipped (never as passed).
import { test as uvuTest, type Test } from 'uvu';
import { backends, buildInfo, cudaStatus, kernels, Tensor } from 'mamakit';
import { native } from '../../lib/native.js';

/** xoshiro128** seeded through splitmix32: deterministic across runs and machines. */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** uniform uint32 */
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }
  /** uniform in [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next(), v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  /** R rows of E standard normals, each scaled to unit length: [R, E] */
  unitRows(R: number, E: number): Float32Array {
    const x = this.randn(R * E);
    for (let r = 0; r < R; r++) {
      let q = 0;
      for (let e = 0; e < E; e++) q += x[r * E + e] ** 2;
      for (let e = 0; e < E; e++) x[r * E + e] /= Math.sqrt(q);
    }
    return x;
  }
  /** Float32Array of n standard normals (never all zeros) */
  randn(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export type Num = ArrayLike<number>;

/** float64 reference GEMM: C[M,N] = op(A)·op(B) (+bias) (+C0). */
export function matmulRef(
  a: Num, b: Num, M: number, N: number, K: number,
  opts: { transA?: boolean; transB?: boolean; bias?: Num | null; c0?: Num | null } = {},
): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = opts.transA ? a[k * M + i] : a[i * K + k];
        const bv = opts.transB ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      if (opts.bias) s += opts.bias[j];
      if (opts.c0) s += opts.c0[i * N + j];
      c[i * N + j] = s;
    }
  }
  return c;
}

export interface CloseOptions {
  atol?: number;
  rtol?: number;
  /** what is compared, for the message */
  what?: string;
}

/** Worst violation of |x − ref| ≤ atol + rtol·|ref|, or null when all pass (NaN fails). */
export function worstMismatch(actual: Num, expected: Num, opts: CloseOptions = {}) {
  const atol = opts.atol ?? 1e-5, rtol = opts.rtol ?? 1e-5;
  if (actual.length !== expected.length) {
    return { index: -1, actual: actual.length, expected: expected.length, excess: Infinity };
  }
  let worst: { index: number; actual: number; expected: number; excess: number } | null = null;
  for (let i = 0; i < actual.length; i++) {
    const x = actual[i], r = expected[i];
    const err = Math.abs(x - r), tol = atol + rtol * Math.abs(r);
    const excess = Number.isNaN(err) ? Infinity : err / tol;
    if (excess > 1 && (!worst || excess > worst.excess)) worst = { index: i, actual: x, expected: r, excess };
  }
  return worst;
}

export function assertClose(actual: Num, expected: Num, opts: CloseOptions = {}): void {
  const w = worstMismatch(actual, expected, opts);
  if (!w) return;
  const what = opts.what ?? 'values';
  if (w.index < 0) throw new Error(`${what}: length ${w.actual} but expected ${w.expected}`);
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const tol = (opts.atol ?? 1e-5) + (opts.rtol ?? 1e-5) * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) bad++;
  }
  throw new Error(
    `${what}: ${bad} of ${actual.length} elements out of tolerance (atol ${opts.atol ?? 1e-5}, rtol ${opts.rtol ?? 1e-5}); ` +
      `worst at [${w.index}]: got ${w.actual}, expected ${w.expected} (${w.excess.toFixed(1)}× the tolerance)`,
  );
}

/**
 * Asserts that two arrays hold the same values bit for bit (NaN matches NaN; −0 and 0 differ).
 * A failure names how many differ and the first of them; it never builds a diff, which for
 * uvu's assert.equal costs the square of the length.
 */
export function assertIdentical(actual: Num, expected: Num, what = 'values'): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length} but expected ${expected.length}`);
  let count = 0, first = -1;
  for (let i = 0; i < actual.length; i++)
    if (!Object.is(actual[i], expected[i])) {
      if (first < 0) first = i;
      count++;
    }
  if (count) throw new Error(`${what}: ${count} of ${actual.length} elements differ; first at [${first}]: got ${actual[first]}, expected ${expected[first]}`);
}

/** Largest |x| of an array (for scale-aware tolerances). */
export function maxAbs(xs: Num): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]));
  return m;
}

/**
 * Central differences of a scalar function f at x: (f(x+h·e_i) − f(x−h·e_i)) / 2h for the
 * given indices (all when omitted). x is restored afterwards.
 */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, h = 1e-3, indices?: number[]): Float64Array {
  const g = new Float64Array(x.length);
  for (const i of indices ?? x.keys()) {
    const xi = x[i];
    x[i] = xi + h;
    const fp = f(x);
    x[i] = xi - h;
    const fm = f(x);
    x[i] = xi;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** Compares an analytic gradient with central differences on (a sample of) the indices. */
export function checkGrad(
  f: (x: Float64Array) => number, x: Float64Array, analytic: Num,
  opts: CloseOptions & { h?: number; samples?: number; rng?: Rng } = {},
): void {
  let idx: number[] | undefined;
  if (opts.samples && opts.samples < x.length) {
    const rng = opts.rng ?? new Rng(1);
    idx = Array.from({ length: opts.samples }, () => rng.int(0, x.length - 1));
  }
  const num = numericGrad(f, x, opts.h ?? 1e-3, idx);
  const pick = idx ?? [...x.keys()];
  assertClose(pick.map((i) => analytic[i]), pick.map((i) => num[i]), { atol: opts.atol ?? 1e-3, rtol: opts.rtol ?? 1e-2, what: opts.what ?? 'gradient' });
}

export interface ParamGradOptions {
  /** difference step (default 1e-3) */
  h?: number;
  /** elementwise: |a − n| ≤ atol + rtol·|n| (defaults 2e-3, 5e-2) */
  atol?: number;
  rtol?: number;
  /** per tensor: ‖a − n‖ / ‖n‖ over the entries checked (default 2e-2) */
  relTol?: number;
  /** tensors up to this many entries are checked whole; larger ones at their 8 largest analytic entries and 56 drawn at random (default 512) */
  full?: number;
  /** names of tensors whose true gradient is 0 (an attention key bias: softmax is shift-invariant); their analytic gradient must be ≈ 0 */
  zero?: RegExp;
  rng?: Rng;
}

/**
 * Every parameter's gradient (after backward) against central differences of the whole model's
 * loss f: elementwise, and per tensor as ‖a − n‖ / ‖n‖, so that a gradient that is wrong
 * everywhere, or zero where the true one is small, fails even when each entry is within the
 * elementwise tolerance. Returns the number of entries checked.
 */
export function checkParamGrads(params: ReadonlyArray<readonly [string, { value: Tensor; grad: Tensor | null; shape: number[] }]>, f: () => number, o: ParamGradOptions = {}): number {
  const h = o.h ?? 1e-3, rng = o.rng ?? new Rng(5), full = o.full ?? 512;
  let checked = 0;
  for (const [name, p] of params) {
    if (!p.grad) continue;
    const value = p.value.toArray(), grad = p.grad.toArray();
    const idx = value.length <= full ? [...value.keys()]
      : [...new Set([...[...grad.keys()].sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a])).slice(0, 8), ...Array.from({ length: 56 }, () => rng.int(0, value.length - 1))])];
    const a: number[] = [], n: number[] = [];
    for (const i of idx) {
      const at = (d: number) => {
        const w = value.slice();
        w[i] += d;
        kernels.copy(Tensor.fromArray(w, p.shape), p.value);
        return f();
      };
      n.push((at(h) - at(-h)) / (2 * h));
      a.push(grad[i]);
      at(0);
    }
    kernels.copy(Tensor.fromArray(value, p.shape), p.value);
    checked += idx.length;
    const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    if (o.zero?.test(name)) {
      if (!(norm(a) <= 1e-5 * Math.sqrt(a.length) && norm(n) <= 1e-2 * Math.sqrt(n.length)))
        throw new Error(`${name}: the true gradient is 0, got ‖analytic‖ ${norm(a)}, ‖numeric‖ ${norm(n)}`);
      continue;
    }
    assertClose(a, n, { atol: o.atol ?? 2e-3, rtol: o.rtol ?? 5e-2, what: `${name} (entries ${idx.length > 8 ? `${idx.slice(0, 8)}…` : idx})` });
    const rel = norm(a.map((x, i) => x - n[i])) / norm(n);
    if (!(rel <= (o.relTol ?? 2e-2))) throw new Error(`${name}: ‖analytic − numeric‖ / ‖numeric‖ = ${rel.toExponential(2)} over ${idx.length} entries (‖numeric‖ ${norm(n).toExponential(2)})`);
  }
  return checked;
}

export const hasCuda = backends().includes('cuda');

/** CUDA against the CPU: f32 within 1e-5; 16-bit storage within one rounding of the dtype. */
export const cudaTol = (dtype: 'f32' | 'bf16' | 'f16', atol = 1e-5) => ({ atol, rtol: dtype === 'f32' ? 1e-5 : dtype === 'bf16' ? 2 ** -7 : 2 ** -10 });

/**
 * Registers a test that needs CUDA. Without a usable GPU it is registered as skipped (uvu
 * counts it under "Skipped") and the reason is printed, so it never reads as a pass.
 */
export function cudaTest(t: Test, name: string, fn: () => void | Promise<void>): void {
  if (hasCuda) {
    t(name, fn);
  } else {
    console.log(`  skip: ${name} (CUDA unavailable: ${cudaStatus().detail})`);
    t.skip(name, fn);
  }
}

/** The CPU instruction sets this machine can run, best first; the others are skipped visibly. */
export function runnableIsas(t: Test = uvuTest): Array<'avx512' | 'avx2' | 'scalar'> {
  const order = ['avx512', 'avx2', 'scalar'] as const;
  const best = order.indexOf(buildInfo().bestIsa);
  for (const isa of order.slice(0, best)) {
    console.log(`  skip: ${isa} case (this CPU's best is ${buildInfo().bestIsa})`);
    t.skip(`${isa} cases`, () => {});
  }
  return order.slice(best) as Array<'avx512' | 'avx2' | 'scalar'>;
}

/**
 * Registers `name` once per instruction set this CPU runs (others are skipped visibly), with
 * the CPU kernels switched to that ISA for the duration of the test.
 */
export function forEachIsa(t: Test, name: string, fn: (isa: string) => void | Promise<void>): void {
  for (const isa of runnableIsas(t)) {
    t(`${isa}: ${name}`, async () => {
      native.setIsa(isa);
      try {
        await fn(isa);
      } finally {
        native.setIsa(buildInfo().bestIsa);
      }
    });
  }
}

/** erf in float64: 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1)) (all terms positive: no cancellation). */
export function erf64(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  let term = a, sum = a;
  for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}

/** Σ a[i]·b[i] in float64 (the scalar loss ⟨y, g⟩ whose gradient a backward returns). */
export function dot64(a: Num, b: Num): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Asserts that fn throws an error of `type` whose message matches `re`. */
export function throwsNamed(fn: () => unknown, type: ErrorConstructor, re: RegExp): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof type) || !re.test((err as Error).message)) {
    const got = err instanceof Error ? `${err.constructor.name}: ${err.message}` : `no error`;
    throw new Error(`expected ${type.name} matching ${re}, got ${got}`);
  }
}

/** `--set` arguments of the small MaMA the CLI tests train (32-px images, width 32, one layer each). */
export const smallMama = [
  'model.vit.imageSize=32', 'model.vit.patch=8', 'model.vit.width=32', 'model.vit.depth=1', 'model.vit.heads=2', 'model.vit.registers=2',
  'model.text.width=32', 'model.text.depth=1', 'model.text.heads=2', 'model.embed=16', 'model.localHidden=32', 'model.simclrOut=16',
].flatMap((kv) => ['--set', kv]);
