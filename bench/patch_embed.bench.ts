// patch_embed.bench.ts: the fused patch embedding, forward and forward + backward, against
// PyTorch's Conv2d (kernel = stride = p) + flatten + position add with autograd on 2 threads
// (goal: ≥ 2× at 16×1×518×518, p 14, D 768). GFLOP/s counts the GEMMs: 2·M·D·C·p² forward,
// as much again for dWeight. Run: npm run bench -- patch_embed
import { kernels, Tensor } from 'mamakit';
import { compareRounds, measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: 'fwd 16×1×518×518 p14 D768', B: 16, C: 1, H: 518, W: 518, p: 14, D: 768, bwd: false },
  { name: 'fwd+bwd 16×1×518×518 p14 D768', B: 16, C: 1, H: 518, W: 518, p: 14, D: 768, bwd: true },
  { name: 'fwd+bwd 8×3×224×224 p16 D768', B: 8, C: 3, H: 224, W: 224, p: 16, D: 768, bwd: true },
  { name: 'fwd+bwd 8×1×224×224 p16 D192 (small ViT)', B: 8, C: 1, H: 224, W: 224, p: 16, D: 192, bwd: true },
];
const rnd = (n: number, s = 1) => new Float32Array(n).map(() => (Math.random() - 0.5) * s);
const np = (c: (typeof cases)[number]) => (c.H / c.p) * (c.W / c.p);
const flops = (c: (typeof cases)[number]) => (c.bwd ? 2 : 1) * 2 * c.B * np(c) * c.D * c.C * c.p * c.p;
const data = cases.map((c) => {
  const kp = c.C * c.p * c.p, T = np(c) + 5; // CLS and 4 registers first, as DINOv2 lays them out
  return {
    images: Tensor.fromArray(rnd(c.B * c.C * c.H * c.W), [c.B, c.C, c.H, c.W]),
    weight: Tensor.fromArray(rnd(c.D * kp, 0.1), [c.D, kp]),
    bias: Tensor.fromArray(rnd(c.D), [c.D]),
    pos: Tensor.fromArray(rnd(np(c) * c.D), [np(c), c.D]),
    out: Tensor.empty([c.B, T, c.D]),
    dTokens: Tensor.fromArray(rnd(c.B * T * c.D), [c.B, T, c.D]),
    dWeight: Tensor.zeros([c.D, kp]), dBias: Tensor.zeros([c.D]), dPos: Tensor.zeros([np(c), c.D]),
  };
});
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'patch_embed', arg: (c) => c },
  ours: (c) => {
    const d = data[cases.indexOf(c)];
    return measure(c.name, () => {
      kernels.patchEmbed(d.images, d.weight, d.bias, d.pos, { patch: c.p, out: d.out });
      if (c.bwd) kernels.patchEmbedBackward(d.images, d.dTokens, { patch: c.p, dWeight: d.dWeight, dBias: d.dBias, dPos: d.dPos });
    }, { maxTime: 2 });
  },
});
cases.forEach((c, i) => rec.add(c.name, 'GFLOP/s', flops(c), best[i].ours, best[i].peer != null ? { name: 'torch', seconds: best[i].peer! } : null));
rec.save();
