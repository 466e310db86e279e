// gathered.ts: one rank of test/dist/gathered.test.ts: the loss heads over every rank's seeded
// rows (ops.ntXentGathered, clipLossGathered, localAlignGathered) and the gradients of this
// rank's inputs, as JSON.  node dist/test/dist/programs/gathered.js OUT_DIR  (writes OUT_DIR/rank-R.json)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { autograd, dist, Tensor } from 'mamakit';
import { toBase64 } from '../inputs.js';
import { heads, rowsOf } from '../gathered_inputs.js';

const outDir = process.argv[2];
const c = dist.init({ timeout: 30 });
const out: Record<string, unknown> = {};
// Each head twice: finding the ranks' row counts itself, and given them (as pretrain gives them).
const rows = Array.from({ length: c.size }, (_, r) => rowsOf(r));
for (const [name, given] of [['', undefined], ['+rows', rows]] as const) {
  for (const h of heads) {
    const xs = h.inputs(c.rank).map((x) => new autograd.Var(Tensor.fromArray(x.data, x.shape), true));
    const loss = h.gathered(xs, h.counts(c.rank), c, given ? [...given] : undefined);
    const result = { loss: loss.value.toArray()[0] };
    autograd.backward(loss);
    out[h.name + name] = { ...result, grads: xs.map((x) => toBase64(x.grad!.toArray())) };
  }
}
writeFileSync(join(outDir, `rank-${c.rank}.json`), JSON.stringify(out));
