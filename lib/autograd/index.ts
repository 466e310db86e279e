// autograd/index.ts: the tape (Var, backward, noGrad) and the differentiable ops.
export { Var, backward, noGrad, gradEnabled, clearTape, tapeLength, addInto, checkpoint } from './tape.js';
export * as ops from './ops.js';
