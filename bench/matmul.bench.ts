// matmul.bench.ts: f32 GEMM throughput against PyTorch (OpenBLAS, 2 threads) on the shapes
// that matter: a large square and the small ViT's forward and backward GEMMs.
// Run: npm run bench -- matmul
import { kernels, Tensor } from 'mamakit';
import { comparePaired, Recorder, timeLoop } from './harness.js';

const rec = new Recorder(import.meta.url);
// The small ViT (width 192, MLP 768, 8 images of 197 + 4 tokens = 1608 rows): two forward
// GEMMs and, for each, dX and dW; dW in both weight layouts, [in,out] (X^T·dY) and PyTorch's
// Linear [out,in] (dY^T·X), which the ViT uses.
const cases = [
  { name: '2048×2048×2048', M: 2048, N: 2048, K: 2048 },
  { name: 'ViT qkv fwd 1608×192 · 192×576', M: 1608, N: 576, K: 192 },
  { name: 'ViT qkv dX 1608×576 · (192×576)ᵀ', M: 1608, N: 192, K: 576, transB: true },
  { name: 'ViT qkv dW [in,out] (1608×192)ᵀ · 1608×576', M: 192, N: 576, K: 1608, transA: true },
  { name: 'ViT qkv dW [out,in] (1608×576)ᵀ · 1608×192', M: 576, N: 192, K: 1608, transA: true },
  { name: 'ViT proj fwd 1608×768 · 768×192', M: 1608, N: 192, K: 768 },
  { name: 'ViT proj dX 1608×192 · (768×192)ᵀ', M: 1608, N: 768, K: 192, transB: true },
  { name: 'ViT proj dW [in,out] (1608×768)ᵀ · 1608×192', M: 768, N: 192, K: 1608, transA: true },
  { name: 'ViT proj dW [out,in] (1608×192)ᵀ · 1608×768', M: 192, N: 768, K: 1608, transA: true },
];
const operands = cases.map((c) => ({
  a: Tensor.fromArray(new Float32Array(c.M * c.K).map(() => Math.random() - 0.5), c.transA ? [c.K, c.M] : [c.M, c.K]),
  b: Tensor.fromArray(new Float32Array(c.K * c.N).map(() => Math.random() - 0.5), c.transB ? [c.N, c.K] : [c.K, c.N]),
  out: Tensor.empty([c.M, c.N]),
}));
// Medians of 15 alternating pairs of ~0.3 s each (harness.ts comparePaired).
const paired = await comparePaired({
  cases,
  pairs: 15,
  peer: { op: 'matmul', arg: (c) => c },
  ours: (c, minTime) => {
    const { a, b, out } = operands[cases.indexOf(c)];
    return timeLoop(() => kernels.matmul(a, b, { out, transA: c.transA, transB: c.transB }), minTime);
  },
});
cases.forEach((c, i) => rec.addPaired(c.name, 'GFLOP/s', 2 * c.M * c.N * c.K, paired[i], 'torch'));
rec.save();
