// collectives.ts: one rank of test/dist/dist.test.ts's collectives case (under mpirun, or alone for
// the one-process fallback): every collective on seeded inputs, the results as JSON.
// node dist/test/dist/programs/collectives.js cpu|cuda OUT_DIR  (writes OUT_DIR/rank-R.json)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dist, Tensor, type Device } from 'mamakit';
import { bigSize, hash, range, rankInput, sizes, toBase64, worstSumError } from '../inputs.js';

const [device, outDir] = process.argv.slice(2) as [Device, string];
const c = dist.init({ timeout: 30 });
const t = (what: string, n: number, dtype: 'f32' | 'bf16' | 'f16' = 'f32', shape: number[] = [n]) =>
  Tensor.fromArray(rankInput(what, c.rank, n), shape, { device, dtype });

const out: Record<string, unknown> = { rank: c.rank, size: c.size, localRank: c.localRank, backend: c.backend };
out.sum = toBase64(c.allReduce(t('sum', sizes.sum, 'f32', [17, 59])).toArray());
out.mean = toBase64(c.allReduce(t('mean', sizes.mean), 'mean').toArray());
// The CPU stores f32 only.
if (device === 'cuda') {
  out.bf16 = toBase64(c.allReduce(t('bf16', sizes.bf16, 'bf16')).toArray());
  out.f16 = toBase64(c.allReduce(t('f16', sizes.f16, 'f16'), 'mean').toArray());
}
const big = c.allReduce(t('big', bigSize)).toArray();
out.big = { hash: hash(big), worst: worstSumError(big, 'big', c.size) };
out.arena = toBase64(c.allReduceRange(t('arena', sizes.arena), range.offset, range.length).toArray());
const g = c.allGather(t('gather', sizes.gather[0] * sizes.gather[1], 'f32', [...sizes.gather]));
out.gatherShape = g.shape;
out.gather = toBase64(g.toArray());
out.bcast = toBase64(c.broadcast(t('bcast', sizes.bcast), c.size - 1).toArray());
c.barrier();
// Which NCCL ran the CUDA tensors' collectives ("NCCL 2.10.0 (path)").
if (device === 'cuda') out.nccl = dist.status().nccl.detail;
writeFileSync(join(outDir, `rank-${c.rank}.json`), JSON.stringify(out));
