// metrics.test.ts: balanced accuracy and macro one-vs-rest AUC against the values scikit-learn
// 1.2 (Debian's python3-sklearn) printed for these fixed inputs:
//   balanced_accuracy_score(y, p); roc_auc_score(y, s / s.sum(1), multi_class='ovr', average='macro')
import { suite } from 'uvu';
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

test('a linear probe separates separable classes', () => {
  const x = Array.from({ length: 60 }, (_, i) => Float32Array.of(i % 3, (i * 7) % 5 === 0 ? 1 : 0, Math.sin(i)));
  const yy = x.map((v) => v[0]);
  const r = mama.linearProbe({ x, y: yy }, { x, y: yy }, 3, 1, 1);
  assert.ok(mama.balancedAccuracy(yy, r.pred, 3) > 0.95);
});

test.run();
