/* mamakit.h: the one C ABI that every mamakit backend (CPU, CUDA) implements.
 *
 * Plain C, no Node or CUDA types. A backend is a table of function pointers (mk_backend);
 * the Node-API addon validates every argument, then calls through the table of the tensor's
 * device. A NULL entry means "this backend does not support that op" and surfaces to the
 * caller as an Error that says so.
 *
 * Conventions, stated once here:
 *  - All arrays are row-major and contiguous. Shapes are given in the comment beside each
 *    pointer with the fixed alphabet (B batch, M/N/K GEMM dims, D width, ...).
 *  - Signature order: context, outputs, then inputs, then dimensions and options.
 *  - Pointers are host pointers for the CPU backend and device pointers for CUDA.
 *  - The element type of every tensor argument is the `dtype` argument of the call; scalar
 *    options are float/double on the host. Accumulation is always in f32 or wider.
 *  - Backward entries write activation gradients and ACCUMULATE (+=) into parameter
 *    gradients. What a backward needs from its forward (layer-norm mean/rstd, attention
 *    lse, ...) is an explicit output of the forward.
 *  - Kernels keep no state between calls. Entries do not re-validate shapes that the addon
 *    has checked; they do check what only they can (allocation failures, device errors)
 *    and report it through the status and mk_backend.last_error.
 */
#ifndef MAMAKIT_H
#define MAMAKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MK_ABI_VERSION 5

typedef enum mk_status {
  MK_OK = 0,
  MK_ERR_INVALID = 1,     /* an argument the addon should have refused */
  MK_ERR_OOM = 2,         /* host or device allocation failed */
  MK_ERR_UNSUPPORTED = 3, /* dtype or option this backend does not implement */
  MK_ERR_DEVICE = 4       /* a CUDA runtime or launch error; last_error has the text */
} mk_status;

typedef enum mk_dtype { MK_F32 = 0, MK_BF16 = 1, MK_F16 = 2 } mk_dtype;

/* Opaque per-backend state: the CPU thread pool, or the CUDA device and stream. */
typedef struct mk_context mk_context;

typedef struct mk_backend {
  uint32_t abi_version; /* MK_ABI_VERSION the backend was built against */
  const char* name;     /* "cpu" or "cuda" */

  /* --- lifetime and memory --------------------------------------------------------- */
  mk_status (*create)(mk_context** ctx);
  void (*destroy)(mk_context* ctx);
  /* Text of the last failure on this thread; never NULL. */
  const char* (*last_error)(mk_context* ctx);
  /* Human-readable description of the device ("NVIDIA H200, sm_90, 139 GiB"). */
  const char* (*describe)(mk_context* ctx);
  /* bytes >= 1; the CPU backend aligns to 64 bytes. */
  mk_status (*alloc)(mk_context* ctx, void** ptr, size_t bytes);
  void (*free)(mk_context* ctx, void* ptr);
  /* dst [n] in `dtype` on the device  <-  src [n] f32 on the host (rounded to nearest even). */
  mk_status (*upload)(mk_context* ctx, void* dst, mk_dtype dtype, const float* src, size_t n);
  /* dst [n] f32 on the host  <-  src [n] in `dtype` on the device. */
  mk_status (*download)(mk_context* ctx, float* dst, const void* src, mk_dtype dtype, size_t n);
  mk_status (*synchronize)(mk_context* ctx);
  /* A call that does nothing: measures the fixed cost of crossing the ABI. */
  mk_status (*noop)(mk_context* ctx);
  /* Memory of this backend's allocations: bytes live now, their peak since the last reset (reset
   * != 0 restarts it from now), and the bytes held from the system (a cache of freed blocks
   * included). */
  mk_status (*memory)(mk_context* ctx, int64_t* live, int64_t* peak, int64_t* held, int reset);
  /* Host↔device traffic since the context was created: copies to the device, copies to the
   * host, and waits for the device (stream synchronisations). The CPU backend counts none. */
  mk_status (*traffic)(mk_context* ctx, uint64_t* to_device, uint64_t* to_host, uint64_t* syncs);

  /* --- kernels ---------------------------------------------------------------------- */
  /* C = op(A)·op(B) (+ bias) (+ C when accumulate != 0), accumulated in f32
   *   c    [M,N] in c_dtype
   *   a    [M,K], or [K,M] when trans_a; in dtype
   *   b    [K,N], or [N,K] when trans_b; in dtype
   *   bias [N] or NULL, added to every row; in dtype
   * M, N, K >= 1. With accumulate the previous contents of c (in c_dtype) are added; without, c
   * is overwritten and may hold anything (NaN) on entry. c_dtype is dtype, or MK_F32 with
   * 16-bit operands (bf16 activations writing f32 weight gradients); any other pair, and on the
   * CPU anything but f32, is MK_ERR_UNSUPPORTED with a message that names it. */
  mk_status (*matmul)(mk_context* ctx, void* c, const void* a, const void* b, const void* bias,
                      mk_dtype dtype, mk_dtype c_dtype, int64_t M, int64_t N, int64_t K, int trans_a,
                      int trans_b, int accumulate);

  /* Index arrays (targets, ids) are HOST int32 pointers on every backend; the CUDA backend
   * stages them. Saved statistics (mean, rstd, lse, norm) are f32 whatever `dtype` is. */

  /* LayerNorm over the last dim. y [R,D]; mean, rstd [R] (saved for backward);
   * x [R,D]; w, b [D] or NULL. rstd = 1/sqrt(biased var + eps). */
  mk_status (*layernorm_forward)(mk_context* ctx, void* y, float* mean, float* rstd, const void* x,
                                 const void* w, const void* b, mk_dtype dtype, int64_t R, int64_t D,
                                 float eps);
  /* dx [R,D] (written); dw, db [D] (accumulated, may be NULL); dy, x [R,D]; mean, rstd [R];
   * w [D] or NULL. */
  mk_status (*layernorm_backward)(mk_context* ctx, void* dx, void* dw, void* db, const void* dy,
                                  const void* x, const float* mean, const float* rstd,
                                  const void* w, mk_dtype dtype, int64_t R, int64_t D);
  /* GELU, y/x [n]; tanh_approx selects 0.5x(1+tanh(√(2/π)(x+0.044715x³))) over the erf form. */
  mk_status (*gelu_forward)(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n,
                            int tanh_approx);
  mk_status (*gelu_backward)(mk_context* ctx, void* dx, const void* dy, const void* x,
                             mk_dtype dtype, int64_t n, int tanh_approx);
  /* Softmax cross-entropy per row. loss, lse [R]; logits [R,C]; targets [R] host int32 in
   * [0,C) or < 0 for an ignored row (loss 0, gradient 0). */
  mk_status (*softmax_xent_forward)(mk_context* ctx, float* loss, float* lse, const void* logits,
                                    const int32_t* targets, mk_dtype dtype, int64_t R, int64_t C);
  /* dlogits [R,C] = scale·(softmax(logits) − onehot(target)), written. */
  mk_status (*softmax_xent_backward)(mk_context* ctx, void* dlogits, const void* logits,
                                     const float* lse, const int32_t* targets, float scale,
                                     mk_dtype dtype, int64_t R, int64_t C);
  /* Row L2 normalisation, y = x / max(‖x‖, eps). y, x [R,D]; norm [R] = max(‖x‖, eps). */
  mk_status (*l2norm_forward)(mk_context* ctx, void* y, float* norm, const void* x, mk_dtype dtype,
                              int64_t R, int64_t D, float eps);
  mk_status (*l2norm_backward)(mk_context* ctx, void* dx, const void* dy, const void* y,
                               const float* norm, mk_dtype dtype, int64_t R, int64_t D, float eps);
  /* out [R,D] = x + s ⊙ h, s = gamma [D] (LayerScale) or the scalar alpha when gamma is NULL. */
  mk_status (*residual_forward)(mk_context* ctx, void* out, const void* x, const void* h,
                                const void* gamma, float alpha, mk_dtype dtype, int64_t R,
                                int64_t D);
  /* dh [R,D] = s ⊙ dy (written); dgamma [D] += Σ_rows h ⊙ dy (NULL: not wanted). */
  mk_status (*residual_backward)(mk_context* ctx, void* dh, void* dgamma, const void* dy,
                                 const void* h, const void* gamma, float alpha, mk_dtype dtype,
                                 int64_t R, int64_t D);
  /* y [B,D] = mean over L of x [B,L,D]; backward dx [B,L,D] = dy [B,D] / L. */
  mk_status (*meanpool_forward)(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t B,
                                int64_t L, int64_t D);
  mk_status (*meanpool_backward)(mk_context* ctx, void* dx, const void* dy, mk_dtype dtype,
                                 int64_t B, int64_t L, int64_t D);
  /* y [N,D] = table [V,D] rows at ids [N] (host int32, each in [0,V)); backward
   * dtable [V,D] += scatter of dy [N,D]. */
  mk_status (*embedding_forward)(mk_context* ctx, void* y, const void* table, const int32_t* ids,
                                 mk_dtype dtype, int64_t N, int64_t D);
  mk_status (*embedding_backward)(mk_context* ctx, void* dtable, const void* dy,
                                  const int32_t* ids, mk_dtype dtype, int64_t N, int64_t D);
  /* BatchNorm1d over x [R,C]. mean, rstd [C] written (batch statistics when training, the
   * running ones otherwise); running_mean, running_var [C] updated when training (may be
   * NULL then), read otherwise; w, b [C] or NULL. */
  mk_status (*batchnorm_forward)(mk_context* ctx, void* y, float* mean, float* rstd,
                                 float* running_mean, float* running_var, const void* x,
                                 const void* w, const void* b, mk_dtype dtype, int64_t R,
                                 int64_t C, float eps, float momentum, int training);
  /* dx [R,C] written; dw, db [C] accumulated (may be NULL). */
  mk_status (*batchnorm_backward)(mk_context* ctx, void* dx, void* dw, void* db, const void* dy,
                                  const void* x, const float* mean, const float* rstd,
                                  const void* w, mk_dtype dtype, int64_t R, int64_t C,
                                  int training);
  /* Inverted dropout, y [n] = x·keep/(1−p), keep from (seed, offset + i) alone; the backward
   * is the same call on dy with the same seed and offset. 0 ≤ p < 1. */
  mk_status (*dropout)(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n, float p,
                       uint64_t seed, uint64_t offset);
  /* Optimizer steps over a flat f32 range [n] (see native/cpu/adamw.cpp, sgd.cpp). */
  mk_status (*adamw)(mk_context* ctx, float* p, const float* g, float* m, float* v, int64_t n,
                     float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2,
                     float grad_scale);
  mk_status (*sgd)(mk_context* ctx, float* p, const float* g, float* buf, int64_t n, float lr,
                   float momentum, float wd, float grad_scale);
  /* *out = Σ x² over x [n], accumulated in double (host pointer out). */
  mk_status (*sumsq)(mk_context* ctx, double* out, const void* x, mk_dtype dtype, int64_t n);
  /* dst [n] = src [n], same backend and dtype. */
  mk_status (*copy)(mk_context* ctx, void* dst, const void* src, mk_dtype dtype, int64_t n);

  /* Patch embedding: a Conv2d with kernel = stride = p, flattened in raster order, plus bias
   * and position embedding. Np = (H/p)·(W/p), Kp = C·p·p; H and W multiples of p.
   *   tokens [B,T,D]: rows offset .. offset+Np of each image written, the others untouched
   *                   (T >= offset + Np: CLS and register tokens may come first)
   *   images [B,C,H,W]; weight [D,Kp] (channel, row, column: a flattened Conv2d kernel);
   *   bias [D] or NULL; pos [Np,D] or NULL
   *   tokens[b, offset+n, :] = weight · patch(b, n) + bias + pos[n] */
  mk_status (*patch_embed_forward)(mk_context* ctx, void* tokens, const void* images, const void* weight,
                                   const void* bias, const void* pos, mk_dtype dtype, int64_t B, int64_t C,
                                   int64_t H, int64_t W, int64_t p, int64_t D, int64_t T, int64_t offset);
  /* dweight [D,Kp], dbias [D], dpos [Np,D] accumulated (each may be NULL); dtokens [B,T,D]
   * (rows offset .. offset+Np of each image read); images as in the forward. No image gradient. */
  mk_status (*patch_embed_backward)(mk_context* ctx, void* dweight, void* dbias, void* dpos,
                                    const void* dtokens, const void* images, mk_dtype dtype, int64_t B,
                                    int64_t C, int64_t H, int64_t W, int64_t p, int64_t D, int64_t T,
                                    int64_t offset);
  /* Bicubic resampling of a grid of embeddings (PyTorch's interpolate, mode "bicubic",
   * align_corners false, a = -0.75): y [H1·W1, D] from x [H0·W0, D]; output row i reads source
   * coordinate (i + 0.5)·scale_h - 0.5 (columns alike), neighbours clamped to the grid.
   * scale = H0/H1 for a target size, 1/scale_factor for a scale factor. Backward: dx [H0·W0, D]
   * written from dy [H1·W1, D]. */
  mk_status (*pos_interp_forward)(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t H0,
                                  int64_t W0, int64_t H1, int64_t W1, int64_t D, float scale_h, float scale_w);
  mk_status (*pos_interp_backward)(mk_context* ctx, void* dx, const void* dy, mk_dtype dtype, int64_t H0,
                                   int64_t W0, int64_t H1, int64_t W1, int64_t D, float scale_h,
                                   float scale_w);
  /* Flash attention (softmax(scale·q·kᵀ)·v without the Lq×Lk matrix).
   *   out, q [B,Lq,H,Dh]; k, v [B,Lk,H,Dh]; lse [B,H,Lq] f32: natural-log log-sum-exp of each
   *   query's scaled, masked logits (saved for the backward; never dropped)
   *   kv_lens: host int32 [B], each in [1, Lk]: keys at or past kv_lens[b] are masked; or NULL
   *   causal: query i sees keys j <= i (Lq == Lk)
   *   dropout_p in [0, 1): dropout of the probabilities (Hugging Face's attn_pdrop),
   *   out = (P ⊙ Z/(1 − p))·v with P the softmax and Z[b,h,i,j] kept by the dropout mask of
   *   native/common/dropout_mask.h at counter dropout_offset + ((b·H + h)·Lq + i)·Lk + j under
   *   dropout_seed (the dropout entry's mask over a [B,H,Lq,Lk] tensor). p = 0 is no dropout:
   *   the same results, bit for bit, as the kernels without it. */
  mk_status (*attention_forward)(mk_context* ctx, void* out, float* lse, const void* q, const void* k, const void* v,
                                 const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                 int64_t Dh, float scale, int causal, float dropout_p, uint64_t dropout_seed,
                                 uint64_t dropout_offset);
  /* dq [B,Lq,H,Dh], dk, dv [B,Lk,H,Dh] written (masked keys get exactly 0); the rest as the
   * forward, dout like out, the same dropout arguments (the mask is drawn again). */
  mk_status (*attention_backward)(mk_context* ctx, void* dq, void* dk, void* dv, const void* q, const void* k,
                                  const void* v, const void* out, const float* lse, const void* dout,
                                  const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk,
                                  int64_t H, int64_t Dh, float scale, int causal, float dropout_p,
                                  uint64_t dropout_seed, uint64_t dropout_offset);

  /* y [n] = max(x, 0); backward dx [n] = dy where x > 0, else 0. */
  mk_status (*relu_forward)(mk_context* ctx, void* y, const void* x, mk_dtype dtype, int64_t n);
  mk_status (*relu_backward)(mk_context* ctx, void* dx, const void* dy, const void* x, mk_dtype dtype, int64_t n);
  /* dst[r·dst_stride + c] = src[r·src_stride + c] for r < rows, c < cols (pointers at the
   * block's first element; the blocks do not overlap). */
  mk_status (*copy2d)(mk_context* ctx, void* dst, int64_t dst_stride, const void* src, int64_t src_stride,
                      mk_dtype dtype, int64_t rows, int64_t cols);

  /* Contrastive losses (MAMA.md §3): each writes the loss and the gradients for an upstream
   * gradient of 1. loss, dscale and the learnable log-scale are f32 [1] in the backend's memory
   * (on a GPU nothing comes back to the host; the log-scale is read there, not range-checked:
   * a non-finite one gives a non-finite loss). Blocks of Bl local rows against Bg gathered ones, the local
   * rows at `offset` of the gathered (one process: Bl = Bg, offset 0, the *_all inputs the local
   * ones and the *_all gradients the local gradients).
   *
   * Symmetric InfoNCE: CE(s·img·txt_allᵀ) + CE(s·txt·img_allᵀ), s = exp(logit_scale), each a
   * mean over the Bl rows, labels offset + row. img, txt, dimg, dtxt [Bl,E]; img_all, txt_all,
   * dimg_all, dtxt_all [Bg,E]. dimg, dtxt are written first, then dimg_all, dtxt_all are added
   * to (so they may alias). *dscale = dloss/dlogit_scale. */
  mk_status (*clip_loss)(mk_context* ctx, float* loss, float* dscale, void* dimg, void* dtxt, void* dimg_all,
                         void* dtxt_all, const void* img, const void* txt, const void* img_all, const void* txt_all,
                         mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, const float* logit_scale);
  /* NT-Xent (SimCLR) over the 2B anchors of z0, z1 [B,E] (normalised inside, eps 1e-12), logits
   * z·zᵀ/temperature without the anchor itself, positive the other view; mean over anchors.
   * dz0, dz1 [B,E] written. */
  mk_status (*nt_xent)(mk_context* ctx, float* loss, void* dz0, void* dz1, const void* z0, const void* z1,
                       mk_dtype dtype, int64_t B, int64_t E, float temperature);
  /* Symmetric local alignment: patches [Bl,P,E], sentences [Bl,S,E] (L2-normalised), counts
   * host int32 [Bl] in [1,S] (sentence rows at or past the count are ignored entirely);
   * *_all [Bg,...] the gathered ones. loss = CE(s_l·cV) + CE(s_l·cVᵀ) + CE(s_l·cT) + CE(s_l·cTᵀ)
   * (MAMA.md §3.4), s_l = exp(local_scale). dpatches, dsentences written; dpatches_all,
   * dsentences_all accumulated (ignored for one process). Extra memory O(Bl·Bg·(S+P)). */
  mk_status (*local_align)(mk_context* ctx, float* loss, float* dscale, void* dpatches, void* dsentences,
                           void* dpatches_all, void* dsentences_all, const void* patches, const void* sentences,
                           const int32_t* counts, const void* patches_all, const void* sentences_all,
                           const int32_t* counts_all, mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t P, int64_t S,
                           int64_t E, int64_t offset, const float* local_scale);

  /* Elementwise over x, y [n] in `dtype` (f32 arithmetic; 16-bit results rounded to nearest even):
   * fill: x = value;  axpy: y += alpha·x;  scale: x *= alpha·(*by), by an f32 [1] in the
   * backend's memory (an upstream gradient left on the device), or x *= alpha when by is null.
   * axpy's x may be stored in another dtype than y (x_dtype): a 16-bit gradient added into an
   * f32 one (mixed precision), in f32 arithmetic. */
  mk_status (*fill)(mk_context* ctx, void* x, mk_dtype dtype, int64_t n, float value);
  mk_status (*axpy)(mk_context* ctx, void* y, mk_dtype y_dtype, const void* x, mk_dtype x_dtype, int64_t n,
                    float alpha);
  mk_status (*scale)(mk_context* ctx, void* x, mk_dtype dtype, int64_t n, float alpha, const float* by);
  /* dst [n] in dst_dtype = src [n] in src_dtype (to 16 bits: rounded to nearest even). */
  mk_status (*cast)(mk_context* ctx, void* dst, mk_dtype dst_dtype, const void* src, mk_dtype src_dtype, int64_t n);
} mk_backend;

/* Every kernel entry of mk_backend, in the order of the struct (tools that walk the table, such
 * as native/tests/backend_ops, use it; its main.cpp checks it against the struct's size). */
#define MK_BACKEND_KERNELS(X)                                                                         \
  X(matmul) X(layernorm_forward) X(layernorm_backward) X(gelu_forward) X(gelu_backward)              \
  X(softmax_xent_forward) X(softmax_xent_backward) X(l2norm_forward) X(l2norm_backward)             \
  X(residual_forward) X(residual_backward) X(meanpool_forward) X(meanpool_backward)                 \
  X(embedding_forward) X(embedding_backward) X(batchnorm_forward) X(batchnorm_backward) X(dropout)  \
  X(adamw) X(sgd) X(sumsq) X(copy) X(patch_embed_forward) X(patch_embed_backward)                   \
  X(pos_interp_forward) X(pos_interp_backward) X(attention_forward) X(attention_backward)           \
  X(relu_forward) X(relu_backward) X(copy2d) X(clip_loss) X(nt_xent) X(local_align) X(fill) X(axpy)         \
  X(scale) X(cast)

/* The CPU backend, linked into the addon. */
const mk_backend* mk_cpu_backend(void);

/* Instruction set the CPU kernels use now ("avx512", "avx2" or "scalar"), and the best this CPU
 * runs (chosen at load by cpuid). */
const char* mk_cpu_isa(void);
const char* mk_cpu_best_isa(void);
/* Lowers (or restores) the instruction set the CPU kernels use: 0 on success, -1 for a name
 * that is none of the three, -2 for one this CPU cannot run. */
int mk_cpu_set_isa(const char* name);
/* Worker threads in the CPU pool (the calling thread included). */
int mk_cpu_threads(void);
/* Bytes the CPU backend holds from the OS: live blocks plus its cache of freed large ones. */
int64_t mk_cpu_footprint(void);
/* Bytes in live CPU tensors, and their peak since the last reset (reset != 0 restarts it from now). */
int64_t mk_cpu_live_bytes(void);
int64_t mk_cpu_peak_bytes(int reset);

/* The CUDA backend lives in libmamakit_cuda.so, opened with dlopen by the addon only when
 * the file is present. It exports these two symbols:
 *   int mk_cuda_probe(char* why, size_t why_len);
 *       number of usable devices (>= 1), or 0 with the reason written to `why`
 *       ("no driver: ...", "no device: ...").
 *   const mk_backend* mk_cuda_backend(void);
 */
typedef int (*mk_cuda_probe_fn)(char* why, size_t why_len);
typedef const mk_backend* (*mk_cuda_backend_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MAMAKIT_H */
