// layernorm.bench.ts: layerNorm forward and backward in GB/s (x and y, or dy, x and dx, each
// read or written once), against PyTorch's F.layer_norm (+ autograd) and against the copy
// bandwidth measured right after each run (goal: ≥ 60 %). Run: npm run bench -- layernorm
import { kernels, Tensor } from 'mamakit';
import { compareRounds, Recorder } from './harness.js';
import { CopyRatio, randomTensor } from './membound.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: 'fwd ViT-S tokens 1608×192', R: 1608, D: 192, bwd: false },
  { name: 'fwd 16384×1024 (64 MiB)', R: 16384, D: 1024, bwd: false },
  { name: 'bwd ViT-S tokens 1608×192', R: 1608, D: 192, bwd: true },
  { name: 'bwd 16384×1024 (64 MiB)', R: 16384, D: 1024, bwd: true },
];
const bytes = (c: (typeof cases)[number]) => (c.bwd ? 12 : 8) * c.R * c.D;
const data = cases.map((c) => {
  const x = randomTensor([c.R, c.D]), w = randomTensor([c.D]), b = randomTensor([c.D]);
  const f = kernels.layerNorm(x, w, b);
  return { x, w, b, f, dy: randomTensor([c.R, c.D]), dw: Tensor.zeros([c.D]), db: Tensor.zeros([c.D]) };
});
const vsCopy = new CopyRatio();
const run = (c: (typeof cases)[number]) => {
  const d = data[cases.indexOf(c)];
  return c.bwd
    ? () => kernels.layerNormBackward(d.dy, d.x, d.f.mean, d.f.rstd, d.w, { dWeight: d.dw, dBias: d.db }).dispose()
    : () => {
        const r = kernels.layerNorm(d.x, d.w, d.b);
        r.y.dispose();
        r.mean.dispose();
        r.rstd.dispose();
      };
};
const fwd = compareRounds({
  cases: cases.filter((c) => !c.bwd),
  peer: { name: 'torch', op: 'layernorm', arg: (c) => c },
  ours: (c) => vsCopy.measure(c.name, bytes(c), run(c)),
});
const bwd = compareRounds({
  cases: cases.filter((c) => c.bwd),
  peer: { name: 'torch', op: 'layernorm_bwd', arg: (c) => c },
  ours: (c) => vsCopy.measure(c.name, bytes(c), run(c)),
});
[...fwd, ...bwd].forEach((b, i) => {
  const c = cases[i];
  rec.add(c.name, 'GB/s', bytes(c), b.ours, b.peer != null ? { name: 'torch', seconds: b.peer } : null, vsCopy.get(c.name));
});
rec.save();
