// dist_allreduce.ts: the time of one allReduce (sum) over an f32 arena, per rank count, with the
// copy of the same bytes (kernels.copy) on this machine as the yardstick. Run under mpirun:
//   mpirun -np 2 node dist/bench/dist_allreduce.js [MB=100] [reps=10]
//   MAMAKIT_DIST_TIMEOUT=0 mpirun …   (MPI's blocking MPI_Allreduce instead of the polled one)
//   … [MB] [reps] --json   (rank 0 prints only one JSON line: median seconds, check, MPI library)
// `npm run bench -- dist` (dist.bench.ts) runs it on 2 ranks against torch.distributed's gloo all_reduce.
// Algorithm bandwidth = bytes / time; bus bandwidth = 2(size − 1)/size of it (nccl-tests' convention:
// what each rank moves in a ring all-reduce).
import { dist, kernels, Tensor } from 'mamakit';

const json = process.argv.includes('--json');
const args = process.argv.slice(2).filter((a) => a !== '--json');
const mb = Number(args[0] ?? 100), reps = Number(args[1] ?? 10);
const n = Math.floor((mb * 1e6) / 4);
const c = dist.init();
const arena = Tensor.full([n], c.rank + 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function time(f: () => void): number[] {
  f();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    c.barrier();
    const t0 = process.hrtime.bigint();
    f();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return ts;
}

const reduce = time(() => c.allReduce(arena));
const copy = time(() => kernels.copy(arena).dispose());
const tr = median(reduce), tc = median(copy);
const sum = arena.toArray()[0], want = ((c.size * (c.size + 1)) / 2) * c.size ** reps;
if (c.rank === 0 && json) {
  console.log(JSON.stringify({ size: c.size, detail: c.detail, bytes: n * 4, reps, seconds: tr, copySeconds: tc, ok: sum === want }));
} else if (c.rank === 0) {
  const bytes = n * 4;
  console.log(`${c.size} rank(s) (${c.detail}, timeout ${process.env.MAMAKIT_DIST_TIMEOUT ?? 300} s), ${(bytes / 1e6).toFixed(0)} MB f32, median of ${reps}:`);
  if (c.size === 1) console.log(`  allReduce ${(tr * 1e3).toFixed(3)} ms (one rank: nothing to move)`);
  else console.log(`  allReduce ${(tr * 1e3).toFixed(1)} ms: ${(bytes / tr / 1e9).toFixed(2)} GB/s algorithm, ${((2 * (c.size - 1)) / c.size * bytes / tr / 1e9).toFixed(2)} GB/s bus`);
  console.log(`  copy      ${(tc * 1e3).toFixed(1)} ms: ${(bytes / tc / 1e9).toFixed(2)} GB/s (allReduce / copy time: ${(tr / tc).toFixed(2)})`);
  console.log(`  check: element 0 = ${sum} (expected ${want})`);
}
