// dist.bench.ts: one allReduce (sum) of an f32 arena on 2 ranks of this host, one thread each
// (mpirun … dist_allreduce.js --json: Open MPI, shared memory between the ranks), against
// torch.distributed's gloo all_reduce on 2 processes (bench/peers/dist_allreduce.py: TCP over
// loopback). Both sides: one warm-up call, then the median of reps calls, each after a barrier.
// GB/s is the algorithm bandwidth (bytes / seconds). Run: npm run bench -- dist
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { dist } from 'mamakit';
import { pythonPeer, Recorder, root } from './harness.js';

const cases = [
  { name: 'allReduce 1 MB, 2 ranks', mb: 1, reps: 50 },
  // the tiny preset's gradient arena: 2.6 M floats
  { name: 'allReduce 10.4 MB (tiny preset), 2 ranks', mb: 10.4, reps: 20 },
  { name: 'allReduce 100 MB, 2 ranks', mb: 100, reps: 10 },
];

const noMpi = spawnSync('mpirun', ['--version']).error
  ? 'mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)'
  : !dist.status().mpi.built ? `libmamakit_mpi.so is not built (${dist.status().mpi.detail})` : null;
if (noMpi) {
  console.log(`  skipped: ${noMpi}`);
  process.exit(0);
}

const rec = new Recorder(import.meta.url);
const script = join(root, 'dist', 'bench', 'dist_allreduce.js');
for (const c of cases) {
  const args = ['--oversubscribe', '--allow-run-as-root', '-np', '2', '-x', 'MAMAKIT_NUM_THREADS=1', process.execPath, script, String(c.mb), String(c.reps), '--json'];
  const r = spawnSync('mpirun', args, { cwd: root, encoding: 'utf8', timeout: 600_000, maxBuffer: 16 << 20 });
  const ours = r.status === 0 ? JSON.parse(r.stdout.trim().split('\n').pop()!) : null;
  if (!ours?.ok) throw new Error(`mpirun ${args.join(' ')}: ${r.status !== 0 ? `exit status ${r.status}: ${(r.stderr || r.stdout).trim()}` : 'wrong sum'}`);
  const peer = pythonPeer('dist_allreduce.py', [String(c.mb), String(c.reps)]);
  const note = `median of ${c.reps}; ours ${ours.detail} (shared memory), peer torch.distributed gloo (TCP loopback); 1 thread a rank`;
  rec.add(c.name, 'GB/s', ours.bytes, { seconds: ours.seconds }, typeof peer?.seconds === 'number' ? { name: 'torch gloo', seconds: peer.seconds } : null, undefined, undefined, note);
}
rec.save();
