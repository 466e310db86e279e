// matmul.bench.ts: f32 GEMM throughput against PyTorch (OpenBLAS, 2 threads) on the shapes
// that matter: a large square and the small ViT's forward and backward GEMMs.
// Run: npm run bench -- matmul
import { kernels, Tensor } from 'mamakit';
import { compareRounds, measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: '2048×2048×2048', M: 2048, N: 2048, K: 2048 },
  { name: 'ViT qkv fwd 1608×192 · 192×576', M: 1608, N: 576, K: 192 },
  { name: 'ViT proj fwd 1608×768 · 768×192', M: 1608, N: 192, K: 768 },
  { name: 'ViT qkv dX 1608×576 · (192×576)ᵀ', M: 1608, N: 192, K: 576, transB: true },
  { name: 'ViT qkv dW (1608×192)ᵀ · 1608×576', M: 192, N: 576, K: 1608, transA: true },
];
const operands = cases.map((c) => ({
  a: Tensor.fromArray(new Float32Array(c.M * c.K).map(() => Math.random() - 0.5), c.transA ? [c.K, c.M] : [c.M, c.K]),
  b: Tensor.fromArray(new Float32Array(c.K * c.N).map(() => Math.random() - 0.5), c.transB ? [c.N, c.K] : [c.K, c.N]),
  out: Tensor.empty([c.M, c.N]),
}));
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'matmul', arg: (c) => c },
  ours: (c) => {
    const { a, b, out } = operands[cases.indexOf(c)];
    return measure(c.name, () => kernels.matmul(a, b, { out, transA: c.transA, transB: c.transB }), { maxTime: 1 });
  },
});
cases.forEach((c, i) => rec.add(c.name, 'GFLOP/s', 2 * c.M * c.N * c.K, best[i].ours, best[i].peer != null ? { name: 'torch', seconds: best[i].peer! } : null));
rec.save();
