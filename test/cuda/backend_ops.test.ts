// backend_ops.test.ts: the cross-backend op test (native/tests/backend_ops): every kernel entry
// of the CUDA table against the CPU backend, in f32, bf16 and f16, on the CUDA library the tests
// use (a GPU's, or the emulated one). backend_ops_asan.test.ts runs it on the emulated library
// under AddressSanitizer, in a file of its own so that each run has the runner's time limit.
import { suite } from '../helpers/suite.js';
import { join } from 'node:path';
import { cudaTest } from '../helpers/index.js';
import { opTest, release } from './op_test.js';

const test = suite('backend_ops');

cudaTest(test, 'every CUDA kernel entry matches the CPU backend (f32, bf16, f16; odd shapes, tile edges)', () => {
  opTest(join(release, 'backend_ops'), process.env.MAMAKIT_CUDA_LIB ?? join(release, 'libmamakit_cuda.so'));
});

test.run();
