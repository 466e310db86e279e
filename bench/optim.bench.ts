// optim.bench.ts: one AdamW step over a flat arena in GB/s (p, g, m, v read; p, m, v written:
// 28 bytes a parameter) against torch.optim.AdamW on 2 threads and against the copy bandwidth
// measured right after each run (goal: ≥ 60 %). Run: npm run bench -- optim
import { kernels, Tensor } from 'mamakit';
import { compareRounds, Recorder } from './harness.js';
import { CopyRatio, randomTensor } from './membound.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: 'AdamW ViT-S, 5.5 M parameters', n: 5_500_000 },
  { name: 'AdamW 16 M parameters (448 MiB touched)', n: 16 * 1024 * 1024 },
];
const arenas = cases.map((c) => ({ p: randomTensor([c.n]), g: randomTensor([c.n]), m: Tensor.zeros([c.n]), v: Tensor.zeros([c.n]) }));
const vsCopy = new CopyRatio();
let step = 0;
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'adamw', arg: (c) => c },
  ours: (c) => {
    const a = arenas[cases.indexOf(c)];
    return vsCopy.measure(c.name, 28 * c.n, () => kernels.adamwStep(a.p, a.g, a.m, a.v, { lr: 1e-3, step: ++step, weightDecay: 0.1 }));
  },
});
cases.forEach((c, i) => rec.add(c.name, 'GB/s', 28 * c.n, best[i].ours, best[i].peer != null ? { name: 'torch', seconds: best[i].peer! } : null, vsCopy.get(c.name)));
rec.save();
