// dist.test.ts: the communicator (lib/dist) with 2 ranks under mpirun (Open MPI), each rank a
// program of test/dist/programs: every collective against float64 sums of the ranks' seeded
// inputs, argument errors named on every rank, a failed rank ending the other with a message that
// names it, and the one-process fallback. Without mpirun or libmamakit_mpi.so the MPI cases are
// skipped (visibly). NCCL (native/dist/nccl.cu) for CUDA tensors: on a GPU with libnccl.so.2, the
// real thing; without a GPU, our NCCL backend compiled into the emulated CUDA library runs against
// the stand-in NCCL over MPI (native/tests/nccl_mpi_standin.cpp, build/Release/libnccl_standin.so,
// named by MAMAKIT_NCCL_LIB): that tests our side (loading, the id sent over MPI, set-up, the
// dtype and op mapping, stream polling, async errors, abort and destroy), not NCCL.
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backends, cudaStatus, dist, Tensor } from 'mamakit';
import { assertIdentical, Rng, throwsNamed } from '../helpers/index.js';
import { native } from '../../lib/native.js';
import { bigSize, fromBase64, range, rankInput, sizes } from './inputs.js';
import { needs as needsOn, noMpi, noStandin, onRanks, ranksEnv, standin } from './mpirun.js';

const test = suite('dist');
const programs = join(dirname(fileURLToPath(import.meta.url)), 'programs');

interface Run {
  status: number | null;
  out: string;
  /** the ranks' result files, by rank */
  results: Array<Record<string, unknown>>;
}

/** Runs programs/NAME.js on np ranks under mpirun (np null: one plain process), with a 60 s bound; env: the ranks'. */
function run(np: number | null, name: string, args: string[], o: { results?: boolean; env?: NodeJS.ProcessEnv } = {}): Run {
  const dir = mkdtempSync(join(tmpdir(), 'mamakit-dist-'));
  try {
    const r = onRanks(np, [join(programs, `${name}.js`), ...args, ...(o.results ? [dir] : [])], 60_000, o.env), out = r.out;
    if (r.error) throw new Error(`${r.cmd}: ${r.error.message} (a hang: it should end within the 60 s it was given)\n${out}`);
    const results = [];
    if (o.results) {
      if (r.status !== 0) throw new Error(`${r.cmd} exited with ${r.status ?? r.signal}:\n${out}`);
      for (let rank = 0; rank < (np ?? 1); rank++) results.push(JSON.parse(readFileSync(join(dir, `rank-${rank}.json`), 'utf8')));
    }
    return { status: r.status, out, results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const status = dist.status();
const gpu = backends().includes('cuda') && !cudaStatus().emulated;
const noNccl = !gpu ? `no GPU (CUDA: ${cudaStatus().detail})` : !status.nccl.available ? `NCCL unavailable: ${status.nccl.detail}` : noMpi;

const needs = (why: string | null, name: string, fn: () => void) => needsOn(test, why, name, fn);

const f32 = (x: ArrayLike<number>) => Float32Array.from(x);
const rounded = (x: Float32Array, dtype: 'bf16' | 'f16') => Tensor.fromArray(x, [x.length], { dtype, device: 'cuda' }).toArray();
const got = (r: Record<string, unknown>, key: string) => fromBase64(r[key] as string);

/** |got − ref| within `rel` of |ref| plus `abs` of Σ|inputs| (the f32 additions' rounding), per element. */
function assertSum(what: string, actual: Float32Array, inputs: Float32Array[], scale: number, rel: number) {
  const size = inputs.length;
  for (let i = 0; i < actual.length; i++) {
    let ref = 0, mag = 0;
    for (const x of inputs) (ref += x[i]), (mag += Math.abs(x[i]));
    ref *= scale;
    const tol = rel * Math.abs(ref) + size * 2 ** -24 * mag * scale;
    if (!(Math.abs(actual[i] - ref) <= tol)) assert.unreachable(`${what}: [${i}] = ${actual[i]}, the float64 reference is ${ref} (tolerance ${tol.toExponential(2)})`);
  }
}

/** Checks programs/collectives.js's results from every rank against the ranks' inputs. */
function checkCollectives(results: Array<Record<string, unknown>>, size: number, cuda = false) {
  const inputs = (what: string, n: number) => Array.from({ length: size }, (_, r) => rankInput(what, r, n));
  results.forEach((r, rank) => {
    assert.is(r.rank, rank);
    assert.is(r.size, size);
    for (const key of ['sum', 'mean', 'bf16', 'f16', 'gather', 'bcast'])
      assert.is(r[key], results[0][key], `rank ${rank}'s ${key} differs from rank 0's`);
    const big = r.big as { hash: string; worst: number };
    assert.is(big.hash, (results[0].big as { hash: string }).hash, `rank ${rank}'s sum of ${bigSize} differs from rank 0's`);
    assert.ok(big.worst <= 1, `rank ${rank}: the sum of ${bigSize} (f32) is ${big.worst.toFixed(2)}× its rounding bound from the float64 reference`);
    assert.is('bf16' in r, cuda, `rank ${rank}: the 16-bit cases run on CUDA only`);
    const arena = got(r, 'arena'), own = rankInput('arena', rank, sizes.arena);
    assertIdentical(arena.subarray(0, range.offset), own.subarray(0, range.offset), `rank ${rank}: the arena before the range`);
    assertIdentical(arena.subarray(range.offset + range.length), own.subarray(range.offset + range.length), `rank ${rank}: the arena after the range`);
    assertSum(`rank ${rank}: the arena's range`, arena.subarray(range.offset, range.offset + range.length),
      inputs('arena', sizes.arena).map((x) => x.subarray(range.offset, range.offset + range.length)), 1, 0);
  });
  const r = results[0];
  assertSum('sum (f32)', got(r, 'sum'), inputs('sum', sizes.sum), 1, 0);
  assertSum('mean (f32)', got(r, 'mean'), inputs('mean', sizes.mean), 1 / size, 2 ** -24);
  if (cuda) {
    // The sums rounded to the type: a relative error up to its unit roundoff, 2^-8 for bf16 (8
    // significant bits), 2^-11 for f16 (11): e.g. the tie −0.4697265625 rounds to −0.46875, 2.08e-3 off.
    assertSum('sum (bf16)', got(r, 'bf16'), inputs('bf16', sizes.bf16).map((x) => rounded(x, 'bf16')), 1, 2 ** -8 * 1.001);
    assertSum('mean (f16)', got(r, 'f16'), inputs('f16', sizes.f16).map((x) => rounded(x, 'f16')), 1 / size, 2 ** -11 * 1.001);
  }
  const [R, C] = sizes.gather;
  assert.equal(r.gatherShape, [size * R, C]);
  const cat = new Float32Array(size * R * C);
  inputs('gather', R * C).forEach((x, rank) => cat.set(x, rank * R * C));
  assertIdentical(got(r, 'gather'), cat, 'allGather');
  assertIdentical(got(r, 'bcast'), rankInput('bcast', size - 1, sizes.bcast), 'broadcast from the last rank');
}

needs(noMpi, '2 ranks: allReduce (sum, mean, a range), allGather, broadcast, barrier against float64 references', () => {
  const r = run(2, 'collectives', ['cpu'], { results: true });
  r.results.forEach((x, rank) => (assert.is(x.backend, 'mpi'), assert.is(x.localRank, rank)));
  checkCollectives(r.results, 2);
});

needs(noMpi, '2 ranks: bad arguments are named errors, calls that differ across ranks the same RangeError on both, and the ranks stay in step', () => {
  // Without a GPU, the emulated library with no NCCL named (with a GPU, the environment as it is).
  const r = run(2, 'errors', [], { results: true, env: gpu ? process.env : ranksEnv(null) });
  for (const [rank, { errors, inStep }] of r.results.entries() as IterableIterator<[number, { errors: Record<string, string>; inStep: number }]>) {
    const is = (name: string, re: RegExp) => assert.match(errors[name], re, `rank ${rank}, ${name}: ${errors[name]}`);
    is('op', /^TypeError: allReduce: op must be 'sum' or 'mean', got 'max'$/);
    is('disposed', /^TypeError: allReduce: t .*disposed/);
    is('not a tensor', /^TypeError: allGather: t must be a Tensor, got a Float32Array/);
    is('length past the end', /^RangeError: allReduce: length must be an integer in \[0, 7\], got 8$/);
    is('negative offset', /^RangeError: allReduce: offset must be an integer in \[0, 12\], got -1$/);
    is('root', /^RangeError: broadcast: root must be an integer in \[0, 1\], got 2$/);
    is('sizes differ', /^RangeError: allReduce: the ranks called different collectives: rank 0 allReduce \(sum\) of 10 f32 elements on cpu, rank 1 allReduce \(sum\) of 11 f32 elements on cpu$/);
    is('collectives differ', new RegExp(`^RangeError: ${rank ? 'broadcast' : 'allReduce'}: the ranks called different collectives: rank 0 allReduce \\(sum\\) of 12 f32 elements on cpu, rank 1 broadcast from rank 0 of 12 f32 elements on cpu$`));
    is('roots differ', /^RangeError: broadcast: the ranks called different collectives: rank 0 broadcast from rank 0 of 12 f32 elements on cpu, rank 1 broadcast from rank 1 of 12 f32 elements on cpu$/);
    if (backends().includes('cuda')) {
      is('devices differ', /^RangeError: allReduce: the ranks called different collectives: rank 0 allReduce \(sum\) of 8 f32 elements on cpu, rank 1 allReduce \(sum\) of 8 f32 elements on cuda$/);
      is('dtypes differ', /^RangeError: allReduce: the ranks called different collectives: rank 0 allReduce \(sum\) of 8 f32 elements on cuda, rank 1 allReduce \(sum\) of 8 bf16 elements on cuda$/);
      if (!gpu) is('cuda', new RegExp(`^Error: allReduce \\(rank ${rank} of 2\\): CUDA tensors need NCCL: the emulated CUDA library opens no NCCL but a stand-in that MAMAKIT_NCCL_LIB names `));
    }
    assert.is(inStep, 3, `rank ${rank}: the sum of (rank + 1) after the errors`);
  }
});

needs(noMpi, 'a rank killed mid-run ends the other, with a message naming it', () => {
  const r = run(2, 'dies', ['kill']);
  assert.ok(r.status !== 0, r.out);
  assert.not.match(r.out, /the sum returned/);
  assert.match(r.out, /process rank 1 .*exited on signal 9/s, r.out);
});

needs(noMpi, 'a rank that throws ends every rank, with its message and rank', () => {
  const r = run(2, 'dies', ['throw']);
  assert.ok(r.status !== 0, r.out);
  assert.not.match(r.out, /the sum returned/);
  assert.match(r.out, /Error: rank 1 could not read its shard/);
  assert.match(r.out, /mamakit: rank 1 of 2 exited with code 1; ending every rank/);
});

needs(noMpi, 'a stuck rank: the other times out, names it and ends every rank', () => {
  const r = run(2, 'dies', ['stuck']);
  assert.ok(r.status !== 0, r.out);
  assert.not.match(r.out, /the sum returned/);
  assert.match(r.out, /mamakit: rank 0 of 2 ends every rank: allReduce \(rank 0 of 2\): MPI: MPI_Iallgather: not every rank joined within 2 s .*; not heard from rank 1/, r.out);
});

test('one process without mpirun: size 1, collectives are identities (allGather a copy), arguments still checked', () => {
  const r = run(null, 'collectives', ['cpu'], { results: true });
  assert.is(r.results[0].backend, 'single');
  checkCollectives(r.results, 1);
  const c = dist.init();
  assert.is(c.size, 1);
  assert.is(dist.init(), c, 'init returns the one communicator');
  const devices = backends();
  for (const device of devices) {
    const x = Tensor.fromArray(f32([1.5, -2, 3.25]), [3], { device });
    assert.is(c.allReduce(x, 'mean'), x);
    const g = c.allGather(x);
    assert.is.not(g, x);
    assert.equal([g.device, g.shape], [device, [3]]);
    assertIdentical(g.toArray(), f32([1.5, -2, 3.25]), `allGather on ${device}`);
    c.barrier();
    throwsNamed(() => c.broadcast(x, 1), RangeError, /broadcast: root must be an integer in \[0, 0\], got 1/);
  }
});

test('one process: 5 000 random argument lists into the dist bindings throw TypeError or RangeError naming the op, or run', () => {
  dist.init();
  const rng = new Rng(21);
  const disposed = Tensor.fromArray(f32([1, 2]), [2]);
  disposed.dispose();
  const junk = [undefined, null, 0, -1, 1, 2, NaN, Infinity, 1.5, 2 ** 60, 'sum', 'mean', 'max', '', true, {}, [], new Float32Array(3), disposed.native];
  const draw = () => (rng.next() < 0.4 ? Tensor.fromArray(rng.randn(6), rng.pick([[6], [2, 3], [1, 6]])).native : rng.pick(junk));
  const ops = { distAllReduce: 'allReduce', distAllGather: 'allGather', distBroadcast: 'broadcast', distBarrier: 'barrier' } as const;
  const surface = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  let threw = 0;
  for (let i = 0; i < 5000; i++) {
    const name = rng.pick(Object.keys(ops)) as keyof typeof ops;
    try {
      surface[name](...Array.from({ length: rng.int(0, 5) }, draw));
    } catch (e) {
      threw++;
      assert.ok(e instanceof TypeError || e instanceof RangeError, `${name}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
      assert.ok((e as Error).message.startsWith(`${ops[name]}: `), `${name}: the message does not name the op: ${(e as Error).message}`);
    }
  }
  assert.ok(threw > 2000, `only ${threw} calls threw`);
});

needs(noNccl, 'NCCL: the collectives on CUDA tensors, one rank per GPU', () => {
  const gpus = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).stdout?.split('\n').filter((l) => l.startsWith('GPU')).length || 1;
  const np = Math.min(2, gpus);
  checkCollectives(run(np, 'collectives', ['cuda'], { results: true }).results, np, true);
});

/** Lines the stand-in NCCL wrote (each a call it refused, or a communicator left live at exit). */
const standinLines = (out: string) => out.split('\n').filter((l) => l.includes('mamakit NCCL stand-in:'));

needs(noStandin, 'NCCL backend on the emulated CUDA library, 2 ranks, against the stand-in NCCL over MPI: f32, bf16, f16, sum and mean, a range, allGather, broadcast against float64 references', () => {
  const r = run(2, 'collectives', ['cuda'], { results: true, env: ranksEnv(standin) });
  for (const x of r.results) assert.is(x.nccl, `NCCL 2.10.0 (${standin})`, 'the stand-in ran the collectives');
  checkCollectives(r.results, 2, true);
  assert.equal(standinLines(r.out), [], 'the stand-in refused no call, and every communicator was destroyed');
});

needs(noStandin, 'NCCL backend on the emulated CUDA library: an async error (a peer failed) while waiting aborts the communicator and ends every rank', () => {
  const r = run(2, 'collectives', ['cuda'], { env: ranksEnv(standin, { MAMAKIT_NCCL_STANDIN_ASYNC_ERROR: '1' }) });
  assert.ok(r.status !== 0, r.out);
  const ended = r.out.match(/mamakit: rank ([01]) of 2 ends every rank: allReduce \(rank \1 of 2\): NCCL: ncclAllReduce: remote process exited or there was a network error \(a peer failed or the network broke\)/);
  assert.ok(ended, r.out);
  assert.match(r.out, new RegExp(`mamakit NCCL stand-in note: rank ${ended![1]} aborted its communicator`), r.out);
  assert.equal(standinLines(r.out), [], 'nothing was refused: nothing was called on the communicator after its abort');
});

needs(noStandin, 'NCCL backend on the emulated CUDA library: a library without the NCCL calls, or NCCL before 2.10, is refused on every rank with the reason', () => {
  const cases: Array<[NodeJS.ProcessEnv, string]> = [
    [ranksEnv(join(dirname(standin), 'libmamakit_mpi.so')), '.*libmamakit_mpi\\.so lacks ncclGetVersion, ncclGetUniqueId, .*ncclGetErrorString \\(NCCL ≥ 2\\.10 is needed\\)'],
    [ranksEnv(standin, { MAMAKIT_NCCL_STANDIN_VERSION: '20907' }), '.*libnccl_standin\\.so is NCCL version code 20907; ≥ 2\\.10 \\(ncclAvg, ncclBfloat16\\) is needed'],
  ];
  for (const [env, why] of cases) {
    const r = run(2, 'errors', [], { results: true, env });
    for (const [rank, { errors, inStep }] of r.results.entries() as IterableIterator<[number, { errors: Record<string, string>; inStep: number }]>) {
      assert.match(errors.cuda, new RegExp(`^Error: allReduce \\(rank ${rank} of 2\\): CUDA tensors need NCCL: ${why}$`), errors.cuda);
      assert.is(inStep, 3, `rank ${rank}: the sum of (rank + 1) after the errors`);
    }
  }
});

test.run();
