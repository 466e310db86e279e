// ntxent.ts: one rank of test/dist/ntxent.test.ts: NT-Xent over every rank's seeded pairs
// (ops.ntXentGathered) and the gradients of this rank's rows, as JSON.
// node dist/test/dist/programs/ntxent.js B E OUT_DIR  (writes OUT_DIR/rank-R.json)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { autograd, dist, Tensor } from 'mamakit';
import { rankInput, toBase64 } from '../inputs.js';

const [B, E] = process.argv.slice(2, 4).map(Number), outDir = process.argv[4];
const c = dist.init({ timeout: 30 });
const z = (what: string) => new autograd.Var(Tensor.fromArray(rankInput(what, c.rank, B * E), [B, E]), true);
const z0 = z('z0'), z1 = z('z1');
const loss = autograd.ops.ntXentGathered(z0, z1, 0.5, c);
const value = loss.value.toArray()[0];
autograd.backward(loss);
writeFileSync(join(outDir, `rank-${c.rank}.json`), JSON.stringify({ loss: value, dZ0: toBase64(z0.grad!.toArray()), dZ1: toBase64(z1.grad!.toArray()) }));
