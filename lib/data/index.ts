// data/index.ts: EMBED and RSNA tables, the structured report and its prompts, images, synthetic studies.
export { loadEmbed, METADATA_COLUMNS, CLINICAL_COLUMNS, type EmbedImage, type EmbedReport } from './embed.js';
export { caption, maskMeta, zeroShotPrompts, sentences, reasonOf, ethnicityOf, BIRADS_LETTERS, META_FIELDS, type StudyFields } from './report.js';
export { loadImage, decodeImage, transformImage, randomResizedCrop, gaussianBlur, decodeDicom, otsu, type ImageOptions, type DecodedImage } from './image.js';
export { generateStudies, generateRsna, dicomFile, RSNA_TRAIN_COLUMNS, type SynthOptions, type RsnaSynthOptions } from './synth.js';
export { loadRsna, RSNA_COLUMNS, type RsnaImage, type RsnaReport, type RsnaOptions } from './rsna.js';
export { CaptionTokenizer, trainBpe, SPECIAL_TOKENS, type EncodedCaption } from './tokenizer.js';
export { Loader, ImagePool, type Batch, type LoaderOptions } from './loader.js';
