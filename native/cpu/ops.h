// ops.h: the CPU kernels other than matmul, each written once against V (simd.h) and compiled
// per ISA into mk::scalar, mk::avx2 and mk::avx512; dispatch.cpp defines mk::NAME, which calls
// the version isa() chose. Shapes as in mamakit.h; R rows, D (or C) columns, n elements.
#pragma once
#include <cstdint>

#define MK_CPU_OPS(X)                                                                                     \
  X(layernorm_forward, (float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,  \
                        int64_t R, int64_t D, float eps),                                                  \
    (y, mean, rstd, x, w, b, R, D, eps))                                                                   \
  X(layernorm_backward, (float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean, \
                         const float* rstd, const float* w, int64_t R, int64_t D),                         \
    (dx, dw, db, dy, x, mean, rstd, w, R, D))                                                              \
  X(gelu_forward, (float* y, const float* x, int64_t n, int tanh_approx), (y, x, n, tanh_approx))          \
  X(gelu_backward, (float* dx, const float* dy, const float* x, int64_t n, int tanh_approx),               \
    (dx, dy, x, n, tanh_approx))                                                                           \
  X(softmax_xent_forward, (float* loss, float* lse, const float* logits, const int32_t* targets, int64_t R,  \
                           int64_t C),                                                                     \
    (loss, lse, logits, targets, R, C))                                                                    \
  X(softmax_xent_backward, (float* dlogits, const float* logits, const float* lse, const int32_t* targets,  \
                            float scale, int64_t R, int64_t C),                                            \
    (dlogits, logits, lse, targets, scale, R, C))                                                          \
  X(l2norm_forward, (float* y, float* norm, const float* x, int64_t R, int64_t D, float eps),               \
    (y, norm, x, R, D, eps))                                                                               \
  X(l2norm_backward, (float* dx, const float* dy, const float* y, const float* norm, int64_t R, int64_t D,  \
                      float eps),                                                                          \
    (dx, dy, y, norm, R, D, eps))                                                                          \
  X(residual_forward, (float* out, const float* x, const float* h, const float* gamma, float alpha,        \
                       int64_t R, int64_t D),                                                              \
    (out, x, h, gamma, alpha, R, D))                                                                       \
  X(residual_backward, (float* dh, float* dgamma, const float* dy, const float* h, const float* gamma,      \
                        float alpha, int64_t R, int64_t D),                                                \
    (dh, dgamma, dy, h, gamma, alpha, R, D))                                                               \
  X(meanpool_forward, (float* y, const float* x, int64_t B, int64_t L, int64_t D), (y, x, B, L, D))        \
  X(meanpool_backward, (float* dx, const float* dy, int64_t B, int64_t L, int64_t D), (dx, dy, B, L, D))   \
  X(embedding_forward, (float* y, const float* table, const int32_t* ids, int64_t N, int64_t D),           \
    (y, table, ids, N, D))                                                                                 \
  X(embedding_backward, (float* dtable, const float* dy, const int32_t* ids, int64_t N, int64_t D),        \
    (dtable, dy, ids, N, D))                                                                               \
  X(batchnorm_forward, (float* y, float* mean, float* rstd, float* running_mean, float* running_var,        \
                        const float* x, const float* w, const float* b, int64_t R, int64_t C, float eps,     \
                        float momentum, int training),                                                     \
    (y, mean, rstd, running_mean, running_var, x, w, b, R, C, eps, momentum, training))                    \
  X(batchnorm_backward, (float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean, \
                         const float* rstd, const float* w, int64_t R, int64_t C, int training),           \
    (dx, dw, db, dy, x, mean, rstd, w, R, C, training))                                                    \
  X(dropout, (float* y, const float* x, int64_t n, float p, uint64_t seed, uint64_t offset),               \
    (y, x, n, p, seed, offset))                                                                            \
  X(adamw, (float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1, float beta2,    \
            float eps, float wd, float bc1, float bc2, float grad_scale),                                  \
    (p, g, m, v, n, lr, beta1, beta2, eps, wd, bc1, bc2, grad_scale))                                      \
  X(sgd, (float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,              \
          float grad_scale),                                                                               \
    (p, g, buf, n, lr, momentum, wd, grad_scale))                                                          \
  X(sumsq, (double* out, const float* x, int64_t n), (out, x, n))                                           \
  X(copy, (float* dst, const float* src, int64_t n), (dst, src, n))                                         \
  X(pos_interp_forward, (float* y, const float* x, int64_t H0, int64_t W0, int64_t H1, int64_t W1, int64_t D, \
                         float scale_h, float scale_w),                                                    \
    (y, x, H0, W0, H1, W1, D, scale_h, scale_w))                                                           \
  X(pos_interp_backward, (float* dx, const float* dy, int64_t H0, int64_t W0, int64_t H1, int64_t W1,       \
                          int64_t D, float scale_h, float scale_w),                                        \
    (dx, dy, H0, W0, H1, W1, D, scale_h, scale_w))                                                         \
  X(attention_forward, (float* out, float* lse, const float* q, const float* k, const float* v,              \
                        const int32_t* kv_lens, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh,     \
                        float scale, int causal, float dropout_p, uint64_t dropout_seed,                     \
                        uint64_t dropout_offset),                                                          \
    (out, lse, q, k, v, kv_lens, B, Lq, Lk, H, Dh, scale, causal, dropout_p, dropout_seed, dropout_offset))   \
  X(attention_backward, (float* dq, float* dk, float* dv, const float* q, const float* k, const float* v,    \
                         const float* out, const float* lse, const float* dout, const int32_t* kv_lens,     \
                         int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, float scale, int causal,  \
                         float dropout_p, uint64_t dropout_seed, uint64_t dropout_offset),                  \
    (dq, dk, dv, q, k, v, out, lse, dout, kv_lens, B, Lq, Lk, H, Dh, scale, causal, dropout_p, dropout_seed,  \
     dropout_offset))                                                                                      \
  X(local_align_scores, (float* cv, float* ct, int32_t* argv, int32_t* argt, const float* sent,              \
                         const int32_t* counts, int64_t Bc, const float* patches, int64_t Bi, int64_t P,      \
                         int64_t S, int64_t E),                                                             \
    (cv, ct, argv, argt, sent, counts, Bc, patches, Bi, P, S, E))                                           \
  X(local_align_grads, (float* dsent, float* dpatch, const float* gv, const float* gt, const int32_t* argv,  \
                        const int32_t* argt, const float* sent, const int32_t* counts, int64_t Bc,            \
                        const float* patches, int64_t Bi, int64_t P, int64_t S, int64_t E),                  \
    (dsent, dpatch, gv, gt, argv, argt, sent, counts, Bc, patches, Bi, P, S, E))                           \
  X(relu_forward, (float* y, const float* x, int64_t n), (y, x, n))                                           \
  X(relu_backward, (float* dx, const float* dy, const float* x, int64_t n), (dx, dy, x, n))                    \
  X(copy2d, (float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols), \
    (dst, dst_stride, src, src_stride, rows, cols))                                                            \
  X(fill, (float* x, int64_t n, float value), (x, n, value))                                                   \
  X(axpy, (float* y, const float* x, int64_t n, float alpha), (y, x, n, alpha))                                \
  X(scale, (float* x, int64_t n, float alpha, const float* by), (x, n, alpha, by))

#define MK_DECLARE_OP(name, params, args) void name params;

namespace mk {
namespace scalar { MK_CPU_OPS(MK_DECLARE_OP) }
namespace avx2 { MK_CPU_OPS(MK_DECLARE_OP) }
namespace avx512 { MK_CPU_OPS(MK_DECLARE_OP) }
MK_CPU_OPS(MK_DECLARE_OP)
}  // namespace mk
