// attention.bench.ts: flash attention forward and forward + backward against PyTorch's
// softmax(QKᵀ)V with autograd on 2 threads (goal: ≥ 2× at B 2, L 1374, H 12, Dh 64), in
// GFLOP/s (forward 4·B·H·L²·Dh, backward 2.5× that; causal counts the same, as FlashAttention's
// papers do) and as a fraction of the GEMM rate measured in the same run.
// Run: npm run bench -- attention
import { kernels, Tensor } from 'mamakit';
import { compareRounds, measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: 'ViT fwd B2 L1374 H12 Dh64', B: 2, L: 1374, H: 12, Dh: 64, causal: false, bwd: false },
  { name: 'ViT fwd+bwd B2 L1374 H12 Dh64', B: 2, L: 1374, H: 12, Dh: 64, causal: false, bwd: true },
  { name: 'text causal fwd+bwd B8 L144 H20 Dh128', B: 8, L: 144, H: 20, Dh: 128, causal: true, bwd: true },
];
const flops = (c: (typeof cases)[number]) => (c.bwd ? 3.5 : 1) * 4 * c.B * c.H * c.L * c.L * c.Dh;
const rnd = (n: number) => new Float32Array(n).map(() => Math.random() * 2 - 1);
const data = cases.map((c) => {
  const shape = [c.B, c.L, c.H, c.Dh], n = c.B * c.L * c.H * c.Dh;
  const q = Tensor.fromArray(rnd(n), shape), k = Tensor.fromArray(rnd(n), shape), v = Tensor.fromArray(rnd(n), shape);
  return { q, k, v, g: Tensor.fromArray(rnd(n), shape) };
});
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'attention', arg: (c) => c },
  ours: (c) => {
    const d = data[cases.indexOf(c)];
    return measure(c.name, () => {
      const f = kernels.flashAttention(d.q, d.k, d.v, { causal: c.causal });
      if (c.bwd) {
        const r = kernels.flashAttentionBackward(d.q, d.k, d.v, f.out, f.lse, d.g, { causal: c.causal });
        r.dq.dispose(), r.dk.dispose(), r.dv.dispose();
      }
      f.out.dispose(), f.lse.dispose();
    }, { maxTime: 2 });
  },
});
// The yardstick: our GEMM on a large square, in the same process.
const a = Tensor.fromArray(rnd(2048 * 2048), [2048, 2048]), out = Tensor.empty([2048, 2048]);
const gemm = 2 * 2048 ** 3 / measure('gemm', () => kernels.matmul(a, a, { out }), { maxTime: 2 }).seconds / 1e9;
console.log(`  (GEMM 2048³ in this run: ${gemm.toFixed(0)} GFLOP/s)`);
cases.forEach((c, i) => {
  const ours = flops(c) / best[i].ours.seconds / 1e9;
  rec.add(c.name, 'GFLOP/s', flops(c), best[i].ours, best[i].peer != null ? { name: 'torch', seconds: best[i].peer! } : null, undefined, ours / gemm);
});
rec.save();
