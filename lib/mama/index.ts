// mama/index.ts: the MaMA model, its presets, pre-training, evaluation and a trained run put to use.
export { Mama, mamaPresets, type MamaConfig, type MamaBatch, type TextPooling } from './model.js';
export { pretrain, runEval, readRunConfig, defaultConfig, precisionOf, type Precision, type TrainConfig, type RunResult, type StepInfo, type EvalHeadFlags } from './train.js';
export {
  balancedAccuracy, macroAuc, sensitivitySpecificity, linearProbe, zeroShot, zeroShotProbs, imageFeatures, evaluate, taskLabel, TASK_CLASSES,
  type Task, type ProbeOptions, type ZeroShotOptions, type EvalOptions, type Features, type ProbeProtocol, type HeadSettings,
} from './evaluate.js';
export { trainHead, randomSubset, balancedDraw, headLr, HEAD_DEFAULTS, type HeadOptions, type HeadResult, type Labelled } from './finetune.js';
export { loadRun, TASK_CLASS_NAMES, META_KEYS, type Run, type ImageMeta, type ImageInput, type ImageFeatures } from './predict.js';
export { svgPlot, writePlots, writeReport, readMetrics, rsnaSection, writeRsnaSection } from './runfolder.js';
export { evaluateRsna, runEvalRsna, cancerMetrics, type RsnaEvalOptions, type RsnaEvalResult } from './rsna_eval.js';
export { memoryPlan, mamaParamCounts, paramBytes, formatBytes, type MemoryPlan, type MemoryPlanOptions } from './memory.js';
