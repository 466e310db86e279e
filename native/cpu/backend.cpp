// backend.cpp: the CPU backend's mk_backend table (native/include/mamakit.h). Memory is host
// memory aligned to 64 bytes; only f32 is stored on the CPU.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <cstring>
#include <new>
#include <string>

#include "isa.h"
#include "mamakit.h"
#include "matmul.h"
#include "losses.h"
#include "patch_embed.h"
#include "ops.h"
#include "threadpool.h"

struct mk_context {
  std::string description;
};

namespace {

thread_local std::string t_error;

mk_status fail(mk_status s, const char* msg) {
  t_error = msg;
  return s;
}

mk_status cpu_create(mk_context** ctx) {
  try {
    auto* c = new mk_context();
    c->description = std::string("CPU, ") + mk::isa_name(mk::isa()) + ", " +
                     std::to_string(mk::threads()) + " threads";
    *ctx = c;
    return MK_OK;
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory");
  }
}

void cpu_destroy(mk_context* ctx) { delete ctx; }

const char* cpu_last_error(mk_context*) { return t_error.c_str(); }

const char* cpu_describe(mk_context* ctx) { return ctx->description.c_str(); }

// Small blocks (< 1 MiB): 64-byte aligned, carved from plain malloc with the raw pointer kept
// just below the aligned one. glibc's memalign splits chunks in a way that, with the small
// objects Node allocates between tensors, keeps freed blocks from being reused (RSS grew 4 KiB
// per create/dispose cycle); equal-sized malloc chunks are reused at once.
//
// Large blocks (≥ 1 MiB): rounded up to 2 MiB, backed by transparent huge pages, and kept in a
// cache of freed blocks (up to kCacheCap bytes) for the next request of the same size. A
// training step frees and re-allocates the same activation sizes every step; without the cache
// each one was a fresh mmap whose page faults and zeroing cost more than the kernel writing it
// (layerNorm on 64 MiB ran at 2.4 GB/s against a 14 GB/s copy).
constexpr size_t kLarge = size_t(1) << 20, kHuge = size_t(2) << 20, kCacheCap = size_t(1) << 30;

struct LargeBlocks {
  std::mutex mu;
  std::unordered_map<void*, size_t> live;                  // pointer -> rounded size
  std::unordered_multimap<size_t, void*> cached;           // rounded size -> free block
  size_t cached_bytes = 0;
};

// Bytes this backend holds from the OS (live tensors, cached blocks, malloc headers): the
// addon reports changes of it to V8 as external memory. Reporting each large allocation
// instead made V8 run a full mark-compact on every 64 MiB tensor (2–6 ms each), although the
// block came from the cache.
std::atomic<int64_t> g_footprint{0};
// Bytes in live tensors (the footprint less the cache of freed large blocks) and their peak.
std::atomic<int64_t> g_live{0}, g_peak{0};

void live_add(int64_t n) {
  const int64_t now = g_live.fetch_add(n) + n;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

LargeBlocks& large() {
  static LargeBlocks* l = new LargeBlocks();  // leaked: tensors may be finalized at exit
  return *l;
}

// Physical memory: a request beyond it is refused up front. Linux overcommits, so such an
// allocation would "succeed" and the process be killed when the pages are first written.
size_t physical_bytes() {
  static const size_t total = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? size_t(pages) * size_t(size) : SIZE_MAX;
  }();
  return total;
}

mk_status cpu_alloc(mk_context*, void** ptr, size_t bytes) {
  if (bytes > SIZE_MAX - kHuge) return fail(MK_ERR_OOM, "allocation size overflows");
  if (bytes > physical_bytes() / 10 * 9) {
    t_error = "out of host memory: " + std::to_string(bytes >> 20) + " MiB requested, the machine has " +
              std::to_string(physical_bytes() >> 20) + " MiB";
    return MK_ERR_OOM;
  }
  if (bytes >= kLarge) {
    const size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
    LargeBlocks& l = large();
    std::lock_guard<std::mutex> lock(l.mu);
    auto it = l.cached.find(size);
    void* p = nullptr;
    if (it != l.cached.end()) {
      p = it->second;
      l.cached.erase(it);
      l.cached_bytes -= size;
    } else {
      p = std::aligned_alloc(kHuge, size);
      if (!p) return fail(MK_ERR_OOM, "out of host memory");
      madvise(p, size, MADV_HUGEPAGE);
      g_footprint += int64_t(size);
    }
    l.live.emplace(p, size);
    live_add(int64_t(size));
    *ptr = p;
    return MK_OK;
  }
  void* raw = std::malloc(bytes + 64);
  if (!raw) return fail(MK_ERR_OOM, "out of host memory");
  // malloc returns 16-byte aligned memory, so at least 16 bytes sit below the aligned block:
  // the raw pointer and the size.
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + 64) & ~uintptr_t(63);
  reinterpret_cast<void**>(aligned)[-1] = raw;
  reinterpret_cast<size_t*>(aligned)[-2] = bytes + 64;
  g_footprint += int64_t(bytes + 64);
  live_add(int64_t(bytes + 64));
  *ptr = reinterpret_cast<void*>(aligned);
  return MK_OK;
}

void cpu_free(mk_context*, void* ptr) {
  if (!ptr) return;
  // Large blocks are 2 MiB aligned; a small block never is at offset 0 of its malloc chunk's
  // 2 MiB page, but check the table rather than rely on that.
  if ((reinterpret_cast<uintptr_t>(ptr) & (kHuge - 1)) == 0) {
    LargeBlocks& l = large();
    std::lock_guard<std::mutex> lock(l.mu);
    auto it = l.live.find(ptr);
    if (it != l.live.end()) {
      const size_t size = it->second;
      l.live.erase(it);
      g_live -= int64_t(size);
      if (l.cached_bytes + size <= kCacheCap) {
        l.cached.emplace(size, ptr);
        l.cached_bytes += size;
      } else {
        std::free(ptr);
        g_footprint -= int64_t(size);
      }
      return;
    }
  }
  g_footprint -= int64_t(static_cast<size_t*>(ptr)[-2]);
  g_live -= int64_t(static_cast<size_t*>(ptr)[-2]);
  std::free(static_cast<void**>(ptr)[-1]);
}

mk_status cpu_upload(mk_context*, void* dst, mk_dtype dtype, const float* src, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_download(mk_context*, float* dst, const void* src, mk_dtype dtype, size_t n) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "the CPU backend stores f32 only");
  std::memcpy(dst, src, n * sizeof(float));
  return MK_OK;
}

mk_status cpu_synchronize(mk_context*) { return MK_OK; }

mk_status cpu_noop(mk_context*) { return MK_OK; }

mk_status cpu_matmul(mk_context*, void* c, const void* a, const void* b, const void* bias,
                     mk_dtype dtype, int64_t M, int64_t N, int64_t K, int trans_a, int trans_b,
                     int accumulate) {
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, "matmul on the CPU takes f32 only");
  try {
    mk::matmul_f32(static_cast<float*>(c), static_cast<const float*>(a),
                   static_cast<const float*>(b), static_cast<const float*>(bias), M, N, K,
                   trans_a != 0, trans_b != 0, accumulate != 0);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for the GEMM packing buffers");
  }
  return MK_OK;
}

// The op wrappers: f32 only, then straight to the dispatched kernel (ops.h).
#define MK_F32_ONLY(op) \
  if (dtype != MK_F32) return fail(MK_ERR_UNSUPPORTED, op " on the CPU takes f32 only")
using F = float*;
using CF = const float*;

mk_status cpu_layernorm_forward(mk_context*, void* y, float* mean, float* rstd, const void* x, const void* w,
                                const void* b, mk_dtype dtype, int64_t R, int64_t D, float eps) {
  MK_F32_ONLY("layerNorm");
  mk::layernorm_forward(F(y), mean, rstd, CF(x), CF(w), CF(b), R, D, eps);
  return MK_OK;
}

mk_status cpu_layernorm_backward(mk_context*, void* dx, void* dw, void* db, const void* dy, const void* x,
                                 const float* mean, const float* rstd, const void* w, mk_dtype dtype, int64_t R,
                                 int64_t D) {
  MK_F32_ONLY("layerNormBackward");
  try {
    mk::layernorm_backward(F(dx), F(dw), F(db), CF(dy), CF(x), mean, rstd, CF(w), R, D);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for layerNormBackward's partial sums");
  }
  return MK_OK;
}

mk_status cpu_gelu_forward(mk_context*, void* y, const void* x, mk_dtype dtype, int64_t n, int tanh_approx) {
  MK_F32_ONLY("gelu");
  mk::gelu_forward(F(y), CF(x), n, tanh_approx);
  return MK_OK;
}

mk_status cpu_gelu_backward(mk_context*, void* dx, const void* dy, const void* x, mk_dtype dtype, int64_t n,
                            int tanh_approx) {
  MK_F32_ONLY("geluBackward");
  mk::gelu_backward(F(dx), CF(dy), CF(x), n, tanh_approx);
  return MK_OK;
}

mk_status cpu_softmax_xent_forward(mk_context*, float* loss, float* lse, const void* logits, const int32_t* targets,
                                   mk_dtype dtype, int64_t R, int64_t C) {
  MK_F32_ONLY("softmaxCrossEntropy");
  mk::softmax_xent_forward(loss, lse, CF(logits), targets, R, C);
  return MK_OK;
}

mk_status cpu_softmax_xent_backward(mk_context*, void* dlogits, const void* logits, const float* lse,
                                    const int32_t* targets, float scale, mk_dtype dtype, int64_t R, int64_t C) {
  MK_F32_ONLY("softmaxCrossEntropyBackward");
  mk::softmax_xent_backward(F(dlogits), CF(logits), lse, targets, scale, R, C);
  return MK_OK;
}

mk_status cpu_l2norm_forward(mk_context*, void* y, float* norm, const void* x, mk_dtype dtype, int64_t R, int64_t D,
                             float eps) {
  MK_F32_ONLY("l2Normalize");
  mk::l2norm_forward(F(y), norm, CF(x), R, D, eps);
  return MK_OK;
}

mk_status cpu_l2norm_backward(mk_context*, void* dx, const void* dy, const void* y, const float* norm, mk_dtype dtype,
                              int64_t R, int64_t D, float eps) {
  MK_F32_ONLY("l2NormalizeBackward");
  mk::l2norm_backward(F(dx), CF(dy), CF(y), norm, R, D, eps);
  return MK_OK;
}

mk_status cpu_residual_forward(mk_context*, void* out, const void* x, const void* h, const void* gamma, float alpha,
                               mk_dtype dtype, int64_t R, int64_t D) {
  MK_F32_ONLY("residual");
  mk::residual_forward(F(out), CF(x), CF(h), CF(gamma), alpha, R, D);
  return MK_OK;
}

mk_status cpu_residual_backward(mk_context*, void* dh, void* dgamma, const void* dy, const void* h, const void* gamma,
                                float alpha, mk_dtype dtype, int64_t R, int64_t D) {
  MK_F32_ONLY("residualBackward");
  try {
    mk::residual_backward(F(dh), F(dgamma), CF(dy), CF(h), CF(gamma), alpha, R, D);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for residualBackward's partial sums");
  }
  return MK_OK;
}

mk_status cpu_meanpool_forward(mk_context*, void* y, const void* x, mk_dtype dtype, int64_t B, int64_t L, int64_t D) {
  MK_F32_ONLY("meanPool");
  mk::meanpool_forward(F(y), CF(x), B, L, D);
  return MK_OK;
}

mk_status cpu_meanpool_backward(mk_context*, void* dx, const void* dy, mk_dtype dtype, int64_t B, int64_t L, int64_t D) {
  MK_F32_ONLY("meanPoolBackward");
  mk::meanpool_backward(F(dx), CF(dy), B, L, D);
  return MK_OK;
}

mk_status cpu_embedding_forward(mk_context*, void* y, const void* table, const int32_t* ids, mk_dtype dtype, int64_t N,
                                int64_t D) {
  MK_F32_ONLY("embedding");
  mk::embedding_forward(F(y), CF(table), ids, N, D);
  return MK_OK;
}

mk_status cpu_embedding_backward(mk_context*, void* dtable, const void* dy, const int32_t* ids, mk_dtype dtype,
                                 int64_t N, int64_t D) {
  MK_F32_ONLY("embeddingBackward");
  mk::embedding_backward(F(dtable), CF(dy), ids, N, D);
  return MK_OK;
}

mk_status cpu_batchnorm_forward(mk_context*, void* y, float* mean, float* rstd, float* running_mean, float* running_var,
                                const void* x, const void* w, const void* b, mk_dtype dtype, int64_t R, int64_t C,
                                float eps, float momentum, int training) {
  MK_F32_ONLY("batchNorm");
  mk::batchnorm_forward(F(y), mean, rstd, running_mean, running_var, CF(x), CF(w), CF(b), R, C, eps, momentum, training);
  return MK_OK;
}

mk_status cpu_batchnorm_backward(mk_context*, void* dx, void* dw, void* db, const void* dy, const void* x,
                                 const float* mean, const float* rstd, const void* w, mk_dtype dtype, int64_t R,
                                 int64_t C, int training) {
  MK_F32_ONLY("batchNormBackward");
  mk::batchnorm_backward(F(dx), F(dw), F(db), CF(dy), CF(x), mean, rstd, CF(w), R, C, training);
  return MK_OK;
}

mk_status cpu_dropout(mk_context*, void* y, const void* x, mk_dtype dtype, int64_t n, float p, uint64_t seed,
                      uint64_t offset) {
  MK_F32_ONLY("dropout");
  mk::dropout(F(y), CF(x), n, p, seed, offset);
  return MK_OK;
}

mk_status cpu_adamw(mk_context*, float* p, const float* g, float* m, float* v, int64_t n, float lr, float beta1,
                    float beta2, float eps, float wd, float bc1, float bc2, float grad_scale) {
  mk::adamw(p, g, m, v, n, lr, beta1, beta2, eps, wd, bc1, bc2, grad_scale);
  return MK_OK;
}

mk_status cpu_sgd(mk_context*, float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,
                  float grad_scale) {
  mk::sgd(p, g, buf, n, lr, momentum, wd, grad_scale);
  return MK_OK;
}

mk_status cpu_sumsq(mk_context*, double* out, const void* x, mk_dtype dtype, int64_t n) {
  MK_F32_ONLY("sumSquares");
  mk::sumsq(out, CF(x), n);
  return MK_OK;
}

mk_status cpu_copy(mk_context*, void* dst, const void* src, mk_dtype dtype, int64_t n) {
  MK_F32_ONLY("copy");
  mk::copy(F(dst), CF(src), n);
  return MK_OK;
}

mk_status cpu_patch_embed_forward(mk_context*, void* tokens, const void* images, const void* weight, const void* bias,
                                  const void* pos, mk_dtype dtype, int64_t B, int64_t C, int64_t H, int64_t W,
                                  int64_t p, int64_t D, int64_t T, int64_t offset) {
  MK_F32_ONLY("patchEmbed");
  try {
    mk::patch_embed_forward(F(tokens), CF(images), CF(weight), CF(bias), CF(pos), B, C, H, W, p, D, T, offset);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for patchEmbed's index and packing buffers");
  }
  return MK_OK;
}

mk_status cpu_patch_embed_backward(mk_context*, void* dweight, void* dbias, void* dpos, const void* dtokens,
                                   const void* images, mk_dtype dtype, int64_t B, int64_t C, int64_t H, int64_t W,
                                   int64_t p, int64_t D, int64_t T, int64_t offset) {
  MK_F32_ONLY("patchEmbedBackward");
  try {
    mk::patch_embed_backward(F(dweight), F(dbias), F(dpos), CF(dtokens), CF(images), B, C, H, W, p, D, T, offset);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for patchEmbedBackward's index and packing buffers");
  }
  return MK_OK;
}

mk_status cpu_pos_interp_forward(mk_context*, void* y, const void* x, mk_dtype dtype, int64_t H0, int64_t W0,
                                 int64_t H1, int64_t W1, int64_t D, float scale_h, float scale_w) {
  MK_F32_ONLY("interpolatePos");
  mk::pos_interp_forward(F(y), CF(x), H0, W0, H1, W1, D, scale_h, scale_w);
  return MK_OK;
}

mk_status cpu_pos_interp_backward(mk_context*, void* dx, const void* dy, mk_dtype dtype, int64_t H0, int64_t W0,
                                  int64_t H1, int64_t W1, int64_t D, float scale_h, float scale_w) {
  MK_F32_ONLY("interpolatePosBackward");
  mk::pos_interp_backward(F(dx), CF(dy), H0, W0, H1, W1, D, scale_h, scale_w);
  return MK_OK;
}

mk_status cpu_attention_forward(mk_context*, void* out, float* lse, const void* q, const void* k, const void* v,
                                const int32_t* kv_lens, mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H,
                                int64_t Dh, float scale, int causal) {
  MK_F32_ONLY("flashAttention");
  try {
    mk::attention_forward(F(out), lse, CF(q), CF(k), CF(v), kv_lens, B, Lq, Lk, H, Dh, scale, causal);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for flashAttention's tiles");
  }
  return MK_OK;
}

mk_status cpu_attention_backward(mk_context*, void* dq, void* dk, void* dv, const void* q, const void* k, const void* v,
                                 const void* out, const float* lse, const void* dout, const int32_t* kv_lens,
                                 mk_dtype dtype, int64_t B, int64_t Lq, int64_t Lk, int64_t H, int64_t Dh, float scale,
                                 int causal) {
  MK_F32_ONLY("flashAttentionBackward");
  try {
    mk::attention_backward(F(dq), F(dk), F(dv), CF(q), CF(k), CF(v), CF(out), lse, CF(dout), kv_lens, B, Lq, Lk, H, Dh,
                           scale, causal);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for flashAttentionBackward's tiles");
  }
  return MK_OK;
}

mk_status cpu_clip_loss(mk_context*, double* loss, double* dscale, void* dimg, void* dtxt, void* dimg_all, void* dtxt_all,
                        const void* img, const void* txt, const void* img_all, const void* txt_all, mk_dtype dtype,
                        int64_t Bl, int64_t Bg, int64_t E, int64_t offset, float logit_scale) {
  MK_F32_ONLY("clipLoss");
  try {
    mk::clip_loss(loss, dscale, F(dimg), F(dtxt), F(dimg_all), F(dtxt_all), CF(img), CF(txt), CF(img_all), CF(txt_all),
                  Bl, Bg, E, offset, logit_scale);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for clipLoss's logits");
  }
  return MK_OK;
}

mk_status cpu_nt_xent(mk_context*, double* loss, void* dz0, void* dz1, const void* z0, const void* z1, mk_dtype dtype,
                      int64_t B, int64_t E, float temperature) {
  MK_F32_ONLY("ntXent");
  try {
    mk::nt_xent(loss, F(dz0), F(dz1), CF(z0), CF(z1), B, E, temperature);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for ntXent's similarities");
  }
  return MK_OK;
}

mk_status cpu_local_align(mk_context*, double* loss, double* dscale, void* dpatches, void* dsentences, void* dpatches_all,
                          void* dsentences_all, const void* patches, const void* sentences, const int32_t* counts,
                          const void* patches_all, const void* sentences_all, const int32_t* counts_all, mk_dtype dtype,
                          int64_t Bl, int64_t Bg, int64_t P, int64_t S, int64_t E, int64_t offset, float local_scale) {
  MK_F32_ONLY("localAlignLoss");
  try {
    mk::local_align_loss(loss, dscale, F(dpatches), F(dsentences), F(dpatches_all), F(dsentences_all), CF(patches),
                         CF(sentences), counts, CF(patches_all), CF(sentences_all), counts_all, Bl, Bg, P, S, E, offset,
                         local_scale);
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "out of host memory for localAlignLoss's scores and arg-maxes");
  }
  return MK_OK;
}

mk_status cpu_relu_forward(mk_context*, void* y, const void* x, mk_dtype dtype, int64_t n) {
  MK_F32_ONLY("relu");
  mk::relu_forward(F(y), CF(x), n);
  return MK_OK;
}

mk_status cpu_relu_backward(mk_context*, void* dx, const void* dy, const void* x, mk_dtype dtype, int64_t n) {
  MK_F32_ONLY("reluBackward");
  mk::relu_backward(F(dx), CF(dy), CF(x), n);
  return MK_OK;
}

mk_status cpu_copy2d(mk_context*, void* dst, int64_t dst_stride, const void* src, int64_t src_stride, mk_dtype dtype,
                      int64_t rows, int64_t cols) {
  MK_F32_ONLY("copy2d");
  mk::copy2d(F(dst), dst_stride, CF(src), src_stride, rows, cols);
  return MK_OK;
}

const mk_backend kCpu = {
    .abi_version = MK_ABI_VERSION,
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .last_error = cpu_last_error,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .synchronize = cpu_synchronize,
    .noop = cpu_noop,
    .matmul = cpu_matmul,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .softmax_xent_forward = cpu_softmax_xent_forward,
    .softmax_xent_backward = cpu_softmax_xent_backward,
    .l2norm_forward = cpu_l2norm_forward,
    .l2norm_backward = cpu_l2norm_backward,
    .residual_forward = cpu_residual_forward,
    .residual_backward = cpu_residual_backward,
    .meanpool_forward = cpu_meanpool_forward,
    .meanpool_backward = cpu_meanpool_backward,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .dropout = cpu_dropout,
    .adamw = cpu_adamw,
    .sgd = cpu_sgd,
    .sumsq = cpu_sumsq,
    .copy = cpu_copy,
    .patch_embed_forward = cpu_patch_embed_forward,
    .patch_embed_backward = cpu_patch_embed_backward,
    .pos_interp_forward = cpu_pos_interp_forward,
    .pos_interp_backward = cpu_pos_interp_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .copy2d = cpu_copy2d,
    .clip_loss = cpu_clip_loss,
    .nt_xent = cpu_nt_xent,
    .local_align = cpu_local_align,
};

}  // namespace

extern "C" const mk_backend* mk_cpu_backend(void) { return &kCpu; }
extern "C" const char* mk_cpu_isa(void) { return mk::isa_name(mk::isa()); }
extern "C" int mk_cpu_threads(void) { return mk::threads(); }
extern "C" int64_t mk_cpu_footprint(void) { return g_footprint.load(std::memory_order_relaxed); }
extern "C" int64_t mk_cpu_live_bytes(void) { return g_live.load(std::memory_order_relaxed); }
extern "C" int64_t mk_cpu_peak_bytes(int reset) {
  const int64_t p = g_peak.load();
  if (reset) g_peak.store(g_live.load());
  return p;
}
