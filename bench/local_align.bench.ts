// local_align.bench.ts: MaMA's local alignment loss with its gradients against PyTorch computing
// the same loss by materialising every similarity (the authors' formulation) on 2 threads
// (goal: ≥ 4× at B 64, P 196, S 12, E 128), and the extra memory of each.
// Run: npm run bench -- local_align
import { kernels, Tensor } from 'mamakit';
import { compareRounds, measure, Recorder } from './harness.js';

const rec = new Recorder(import.meta.url);
const cases = [
  { name: 'fwd+bwd B64 P196 S12 E128', B: 64, P: 196, S: 12, E: 128 },
  { name: 'fwd+bwd B16 P196 S12 E128', B: 16, P: 196, S: 12, E: 128 },
];
const unit = (n: number, E: number) => {
  const x = new Float32Array(n * E).map(() => Math.random() * 2 - 1);
  for (let r = 0; r < n; r++) {
    let q = 0;
    for (let e = 0; e < E; e++) q += x[r * E + e] ** 2;
    for (let e = 0; e < E; e++) x[r * E + e] /= Math.sqrt(q);
  }
  return x;
};
const data = cases.map((c) => {
  const counts = Int32Array.from({ length: c.B }, (_, i) => 8 + (i % 5)); // 8–12 sentences, as captions have
  return { counts, patches: Tensor.fromArray(unit(c.B * c.P, c.E), [c.B, c.P, c.E]), sentences: Tensor.fromArray(unit(c.B * c.S, c.E), [c.B, c.S, c.E]) };
});
const best = compareRounds({
  cases,
  peer: { name: 'torch', op: 'local_align', arg: (c) => ({ ...c, counts: Array.from(data[cases.indexOf(c)].counts) }) },
  ours: (c) => {
    const d = data[cases.indexOf(c)];
    return measure(c.name, () => {
      const r = kernels.localAlignLoss(d.patches, d.sentences, d.counts, 2.0);
      r.dPatches.dispose(), r.dSentences.dispose();
    }, { maxTime: 2 });
  },
});
// Work: the B²·S·P·E multiply-adds of the scores (the gradients add B²·(S+P)·E).
cases.forEach((c, i) => {
  rec.add(c.name, 'GFLOP/s', 2 * c.B * c.B * c.S * c.P * c.E, best[i].ours, best[i].peer != null ? { name: 'torch', seconds: best[i].peer! } : null);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  // Ours: arg-max indices B²(S+P), scores 4B², transposed patches B·P·E, a S×P tile per thread.
  const ours = 4 * (c.B * c.B * (c.S + c.P) + 8 * c.B * c.B + c.B * c.P * c.E + 2 * c.S * c.P);
  // The peer's largest tensors: the similarities, their masked copy and their gradient.
  const peer = 3 * 4 * c.B * c.B * c.S * c.P;
  console.log(`  extra memory: mamakit ${mib(ours)} MiB, torch ≥ ${mib(peer)} MiB (similarities, masked copy, gradient)`);
});
rec.save();
