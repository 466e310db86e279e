// errors.ts: one rank of test/dist/dist.test.ts's argument-error case: each bad call's error
// (class and message) as JSON; the ranks make the bad calls together, then check that they are
// still in step with a sum.
// node dist/test/dist/programs/errors.js OUT_DIR  (writes OUT_DIR/rank-R.json)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backends, dist, Tensor } from 'mamakit';
import { rankInput } from '../inputs.js';

const c = dist.init({ timeout: 30 });
const x = () => Tensor.fromArray(rankInput('errors', c.rank, 12), [3, 4]);
const errors: Record<string, string> = {};
const attempt = (name: string, f: () => unknown) => {
  try {
    f();
    errors[name] = 'no error';
  } catch (e) {
    errors[name] = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
};

attempt('op', () => c.allReduce(x(), 'max' as 'sum'));
attempt('disposed', () => {
  const d = x();
  d.dispose();
  c.allReduce(d);
});
attempt('not a tensor', () => c.allGather(new Float32Array(3) as unknown as Tensor));
attempt('length past the end', () => c.allReduceRange(x(), 5, 8));
attempt('negative offset', () => c.allReduceRange(x(), -1, 2));
attempt('root', () => c.broadcast(x(), c.size));
// Each rank legal on its own, but not the same call as the others':
attempt('sizes differ', () => c.allReduce(Tensor.fromArray(rankInput('n', c.rank, 10 + c.rank), [10 + c.rank])));
attempt('collectives differ', () => (c.rank ? c.broadcast(x(), 0) : c.allReduce(x())));
attempt('roots differ', () => c.broadcast(x(), c.rank));
// CUDA tensors go through NCCL; the emulated CUDA library (CI) opens none but the stand-in that
// MAMAKIT_NCCL_LIB names (dist.test.ts runs this without it, and with libraries it must refuse).
if (backends().includes('cuda')) {
  const y = (device: 'cpu' | 'cuda', dtype: 'f32' | 'bf16') => Tensor.fromArray(rankInput('d', c.rank, 8), [8], { device, dtype });
  attempt('devices differ', () => c.allReduce(y(c.rank ? 'cuda' : 'cpu', 'f32')));
  attempt('dtypes differ', () => c.allReduce(y('cuda', c.rank ? 'bf16' : 'f32')));
  attempt('cuda', () => c.allReduce(y('cuda', 'f32')));
}
const inStep = c.allReduce(Tensor.fromArray(Float32Array.of(c.rank + 1), [1])).toArray()[0];
writeFileSync(join(process.argv[2], `rank-${c.rank}.json`), JSON.stringify({ rank: c.rank, size: c.size, errors, inStep }));
