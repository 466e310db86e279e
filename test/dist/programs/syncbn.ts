// syncbn.ts: one rank of test/dist/syncbn.test.ts: ops.syncBatchNorm in training over every rank's
// seeded rows, `calls` times (forward, then backward with the seeded dy): y and the gradients of
// each call and the running statistics after them, as JSON.
//   node dist/test/dist/programs/syncbn.js OUT_DIR  (writes OUT_DIR/rank-R.json)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { autograd, dist, Tensor } from 'mamakit';
import { toBase64 } from '../inputs.js';
import * as I from '../syncbn_inputs.js';

const outDir = process.argv[2];
const c = dist.init({ timeout: 30 });
const R = I.rows(c.rank), running: [Tensor, Tensor] = [Tensor.full([I.C], 0), Tensor.full([I.C], 1)];
const out: Record<string, unknown> = {};
for (let k = 0; k < I.calls; k++) {
  const x = new autograd.Var(Tensor.fromArray(I.x(c.rank, k), [R, I.C]), true);
  const w = new autograd.Var(Tensor.fromArray(I.weight(), [I.C]), true), b = new autograd.Var(Tensor.fromArray(I.bias(), [I.C]), true);
  const y = autograd.ops.syncBatchNorm(x, w, b, { running, training: true, momentum: I.momentum, eps: I.eps, comm: c });
  const got = y.value.toArray();
  autograd.backward(y, Tensor.fromArray(I.dy(c.rank, k), [R, I.C]));
  out[`call${k}`] = { y: toBase64(got), dx: toBase64(x.grad!.toArray()), dw: toBase64(w.grad!.toArray()), db: toBase64(b.grad!.toArray()) };
}
out.running = running.map((t) => toBase64(t.toArray()));
writeFileSync(join(outDir, `rank-${c.rank}.json`), JSON.stringify(out));
