// dies.ts: one rank of test/dist/dist.test.ts's failure cases; rank 1 fails after the ranks
// have met, rank 0 goes on into a sum that rank 1 never joins:
//   kill   rank 1 is killed (SIGKILL)
//   throw  rank 1 throws (an uncaught Error: exit code 1)
//   stuck  rank 1 sleeps longer than the timeout (2 s)
import { dist, Tensor } from 'mamakit';

const mode = process.argv[2];
const c = dist.init({ timeout: 2 });
c.barrier();
if (c.rank === 1) {
  if (mode === 'kill') process.kill(process.pid, 'SIGKILL');
  if (mode === 'throw') throw new Error('rank 1 could not read its shard');
  if (mode === 'stuck') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}
c.allReduce(Tensor.fromArray(Float32Array.of(1, 2, 3), [3]));
console.log(`rank ${c.rank}: the sum returned`);
