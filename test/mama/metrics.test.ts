// metrics.test.ts: balanced accuracy and macro one-vs-rest AUC against the values scikit-learn
// 1.2 (Debian's python3-sklearn) printed for these fixed inputs:
//   balanced_accuracy_score(y, p); roc_auc_score(y, s / s.sum(1), multi_class='ovr', average='macro')
import { suite } from '../helpers/suite.js';
import * as assert from 'uvu/assert';
import { mama } from 'mamakit';

const test = suite('metrics');
const y = [0, 1, 2, 3, 0, 1, 2, 3, 1, 1, 0, 2, 3, 3, 2, 0];
const p = [0, 1, 1, 3, 0, 2, 2, 3, 1, 0, 0, 2, 2, 3, 2, 1];
const s = [[0.8488, 0.7152, 0.6028, 0.5449], [0.4237, 0.9459, 0.4376, 0.8918], [0.9637, 0.3834, 1.0917, 0.5289], [0.568, 0.9256, 0.071, 0.568],
  [0.3202, 0.8326, 0.7782, 0.87], [0.9786, 1.0992, 0.4615, 0.7805], [0.1183, 0.6399, 0.4434, 0.9447], [0.5218, 0.4147, 0.2646, 1.0742],
  [0.4562, 0.8684, 0.0188, 0.6176], [0.6121, 0.9169, 0.9437, 0.6818], [0.6595, 0.437, 0.6976, 0.0602], [0.6668, 0.6706, 0.5104, 0.1289],
  [0.3154, 0.3637, 0.5702, 0.7386], [0.9884, 0.102, 0.2089, 0.4613], [0.6531, 0.2533, 0.7663, 0.2444], [0.459, 0.1104, 0.6563, 0.1382]];

test('balanced accuracy and macro AUC (with a tie) match scikit-learn', () => {
  assert.ok(Math.abs(mama.balancedAccuracy(y, p, 4) - 0.6875) < 1e-12);
  const probs = s.map((r) => r.map((v) => v / r.reduce((a, b) => a + b, 0)));
  assert.ok(Math.abs(mama.macroAuc(y, probs, 4) - 0.7447916666666667) < 1e-12, `${mama.macroAuc(y, probs, 4)}`);
});

// torch 1.13, float64: Linear(3, 3) zero-initialised, SGD(lr 0.1, momentum 0.9, weight_decay 1e-3),
// CosineAnnealingLR(T_max 50), 50 full-batch steps of mean cross-entropy on these 12 rows, then
// softmax(lin(T)).
const PX = [[-1.0, 0.375, -0.375], [-0.625, 0.75, 0.0], [-0.25, -1.0, 0.375], [0.125, -0.625, 0.75], [0.5, -0.25, -1.0], [0.875, 0.125, -0.625],
  [-0.875, 0.5, -0.25], [-0.5, 0.875, 0.125], [-0.125, -0.875, 0.5], [0.25, -0.5, 0.875], [0.625, -0.125, -0.875], [1.0, 0.25, -0.5]];
const PT = [[0.5, -0.25, 1.0], [-1.0, 0.75, 0.0]];
const TORCH_PROBS = [[0.4055751497700833, 0.05697583824133878, 0.5374490119885779], [0.5867199860685429, 0.3879589326741373, 0.025321081257319834]];

test('the linear probe is PyTorch SGD with momentum, weight decay and cosine (full batch)', () => {
  const x = PX.map((r) => Float32Array.from(r)), y = PX.map((_, i) => i % 3);
  const r = mama.linearProbe({ x, y }, { x: PT.map((t) => Float32Array.from(t)) }, 3, { steps: 50, lr: 0.1, sampler: 'full' });
  r.probs.forEach((p, i) => p.forEach((v, c) => assert.ok(Math.abs(v - TORCH_PROBS[i][c]) < 1e-6, `prob[${i}][${c}] ${v} vs ${TORCH_PROBS[i][c]}`)));
});

test('class-balanced sampling: a rare separable class is still recalled; seeded; fraction keeps every class', () => {
  let s = 3;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  // 400 rows of class 0, 8 of class 1; class 1 sits apart along feature 0.
  const y = Array.from({ length: 408 }, (_, i) => (i < 400 ? 0 : 1));
  const x = y.map((c) => Float32Array.of(c ? 1.5 + rand() : rand() - 0.5, rand() - 0.5));
  const o = { steps: 400, lr: 0.05, seed: 7 };
  const r = mama.linearProbe({ x, y }, { x }, 2, o);
  assert.ok(mama.balancedAccuracy(y, r.pred, 2) > 0.95, `bACC ${mama.balancedAccuracy(y, r.pred, 2)}`);
  assert.equal(mama.linearProbe({ x, y }, { x }, 2, o).probs, r.probs, 'same seed, same probe');
  // 1 % keeps 4 of class 0 and (at least) 1 of class 1: still above chance on this easy split.
  const few = mama.linearProbe({ x, y }, { x }, 2, { ...o, fraction: 0.01 });
  assert.ok(mama.balancedAccuracy(y, few.pred, 2) > 0.8);
  assert.throws(() => mama.linearProbe({ x, y }, { x }, 2, { fraction: 0 }), /fraction must be in \(0, 1\]/);
  assert.throws(() => mama.linearProbe({ x, y: y.map((v) => v + 1) }, { x }, 2), /label 2 of row 400 is not in \[0, 2\)/);
});

test.run();
