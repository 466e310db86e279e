// backend_ops_asan.test.ts: the cross-backend op test on the emulated CUDA library built with
// AddressSanitizer, which reports out-of-bounds reads and writes of device and shared memory (the
// kernel, block and thread named) as compute-sanitizer would.
import { suite } from '../helpers/suite.js';
import { join } from 'node:path';
import { cudaStatus } from 'mamakit';
import { opTest, release } from './op_test.js';

const test = suite('backend_ops asan');

test(`the emulated library under AddressSanitizer${cudaStatus().detail.startsWith('emulated') ? '' : ' (besides the GPU)'}`, () => {
  opTest(join(release, 'backend_ops_asan'), join(release, 'libmamakit_cuda_emu_asan.so'));
});

test.run();
