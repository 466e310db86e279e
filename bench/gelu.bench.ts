// gelu.bench.ts: GELU (erf form, and GPT-2's tanh form) forward and backward in GB/s against
// PyTorch's F.gelu (+ autograd) and against the copy bandwidth measured right after each run
// (goal: ≥ 60 %). Run: npm run bench -- gelu
import { kernels } from 'mamakit';
import { compareRounds, Recorder } from './harness.js';
import { CopyRatio, randomTensor } from './membound.js';

const rec = new Recorder(import.meta.url);
type Case = { name: string; R: number; D: number; bwd: boolean; approximate: 'none' | 'tanh' };
const cases: Case[] = [];
for (const approximate of ['none', 'tanh'] as const) {
  cases.push({ name: `fwd ${approximate} ViT-S MLP 1608×768`, R: 1608, D: 768, bwd: false, approximate });
  cases.push({ name: `fwd ${approximate} 16M (64 MiB)`, R: 16384, D: 1024, bwd: false, approximate });
}
for (const approximate of ['none', 'tanh'] as const) {
  cases.push({ name: `bwd ${approximate} ViT-S MLP 1608×768`, R: 1608, D: 768, bwd: true, approximate });
  cases.push({ name: `bwd ${approximate} 16M (64 MiB)`, R: 16384, D: 1024, bwd: true, approximate });
}
const bytes = (c: Case) => (c.bwd ? 12 : 8) * c.R * c.D;
const data = new Map<string, ReturnType<typeof randomTensor>[]>();
const tensors = (c: Case) => {
  const key = `${c.R}×${c.D}`;
  if (!data.has(key)) data.set(key, [randomTensor([c.R, c.D]), randomTensor([c.R, c.D])]);
  return data.get(key)!;
};
const vsCopy = new CopyRatio();
const ours = (c: Case) => {
  const [x, dy] = tensors(c);
  const fn = c.bwd ? () => kernels.geluBackward(dy, x, { approximate: c.approximate }).dispose() : () => kernels.gelu(x, { approximate: c.approximate }).dispose();
  return vsCopy.measure(c.name, bytes(c), fn);
};
const fwd = compareRounds({ cases: cases.filter((c) => !c.bwd), peer: { name: 'torch', op: 'gelu', arg: (c) => c }, ours });
const bwd = compareRounds({ cases: cases.filter((c) => c.bwd), peer: { name: 'torch', op: 'gelu_bwd', arg: (c) => c }, ours });
[...fwd, ...bwd].forEach((b, i) => {
  const c = cases[i];
  rec.add(c.name, 'GB/s', bytes(c), b.ours, b.peer != null ? { name: 'torch', seconds: b.peer } : null, vsCopy.get(c.name));
});
rec.save();
