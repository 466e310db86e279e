// losses.cu: the contrastive losses of the CUDA backend (contracts in mamakit.h; the CPU
// versions are clip_loss.cpp, nt_xent.cpp, local_align_loss.cpp), f32 / bf16 / f16 inputs with
// f32 arithmetic. Nothing comes to the host: the logits, the batch × batch cross-entropies (one
// thread per row, in double, the same xent_row as the CPU: native/common/xent.h), their sum (one
// thread, rows in order, so the loss is the same bits every run), the scores with their
// arg-maxes (one block per caption × image pair; the B·B·S·P scores are never stored) and the
// gradient products. The learnable log-scale is read on the device.
#include <algorithm>
#include <cmath>

#include "../common/xent.h"
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int kMaxS = 64;  // sentences per caption the local-alignment kernel holds in registers

unsigned blocks(int64_t n, int t) { return unsigned((n + t - 1) / t); }

__device__ __forceinline__ float scale_of(const float* log_scale, float fixed) {
  return log_scale ? expf(*log_scale) : fixed;
}

// out [R, C] = a [R, E] · b [C, E]ᵀ (f32)
template <class T>
__global__ void logits_kernel(float* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b, int64_t R,
                              int64_t C, int64_t E) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * C) return;
  const int64_t r = i / C, c = i % C;
  float s = 0.f;
  for (int64_t e = 0; e < E; ++e) s += to_f32(a[r * E + e]) * to_f32(b[c * E + e]);
  out[i] = s;
}

// One cross-entropy block: rows r < R of x (row stride ld, column stride cs) against label
// (r + shift) mod C, read as s·x; grad alike. Each row's loss and dscale go to part[2r], part[2r+1].
struct Xent {
  const float* x;
  float* grad;
  int64_t ld, cs, R, C, shift;
  bool skip_self;
};

__global__ void xent_kernel(double* __restrict__ part, Xent j, const float* __restrict__ log_scale, float fixed) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= j.R) return;
  const mk::XentRow x = mk::xent_row(j.x + r * j.ld, j.cs, j.C, (r + j.shift) % j.C, j.skip_self ? r : -1,
                                     scale_of(log_scale, fixed), j.grad + r * j.ld, double(j.R));
  part[2 * r] = x.loss, part[2 * r + 1] = x.dscale;
}

cudaError_t xent(cudaStream_t s, double* part, const Xent& j, const float* log_scale, float fixed = 1.f) {
  return launch<xent_kernel>(blocks(j.R, 128), 128, 0, s, part, j, log_scale, fixed);
}

// *loss = Σ over `blocks` blocks of R rows each of (Σ_r loss)/R; *dscale = Σ dscale (may be
// null). One thread, in the order of xent_rows on the CPU.
__global__ void total_kernel(float* __restrict__ loss, float* __restrict__ dscale, const double* __restrict__ part,
                             int nblocks, int64_t R) {
  double l = 0, d = 0;
  for (int b = 0; b < nblocks; ++b) {
    double lb = 0;
    for (int64_t r = 0; r < R; ++r) lb += part[2 * (b * R + r)], d += part[2 * (b * R + r) + 1];
    l += lb / double(R);
  }
  *loss = float(l);
  if (dscale) *dscale = float(d);
}

// out [R, E] (= or +=) s · g · x, g [R, C] (or gᵀ with g stored [C, R] when tg), x [C, E],
// s = exp(*log_scale) (or `fixed` when log_scale is null).
template <class T, class X>
__global__ void gemm_kernel(T* __restrict__ out, const float* __restrict__ g, const X* __restrict__ x, int64_t R,
                            int64_t C, int64_t E, const float* __restrict__ log_scale, float fixed, bool tg, bool acc) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * E) return;
  const int64_t r = i / E, e = i % E;
  float s = 0.f;
  for (int64_t c = 0; c < C; ++c) s += (tg ? g[c * R + r] : g[r * C + c]) * to_f32(x[c * E + e]);
  s *= scale_of(log_scale, fixed);
  if (acc) s += to_f32(out[i]);
  out[i] = from_f32<T>(s);
}

// One process: h1 = g1 + g2ᵀ and h2 = g2 + g1ᵀ (g1, g2 [B, B]), so that each gradient is one
// product, rounded to its storage type once (written then accumulated, a 16-bit gradient would
// carry the rounding of both parts, each of which can be far larger than their sum).
__global__ void fold_kernel(float* __restrict__ h, const float* __restrict__ g, int64_t B) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, n = B * B;
  if (i >= n) return;
  const int64_t r = i / B, c = i % B;
  h[i] = g[i] + g[n + c * B + r];
  h[n + i] = g[n + i] + g[c * B + r];
}

// Device workspace freed at scope exit (stream-ordered).
struct Ws {
  void* p = nullptr;
  cudaStream_t s;
  Ws(cudaStream_t st, size_t bytes, cudaError_t* e) : s(st) { *e = cudaMallocAsync(&p, bytes > 0 ? bytes : 1, s); }
  ~Ws() {
    if (p) cudaFreeAsync(p, s);
  }
};

template <class T>
cudaError_t clip(cudaStream_t s, float* loss, float* dscale, void* dimg, void* dtxt, void* dimg_all, void* dtxt_all,
                 const void* img, const void* txt, const void* img_all, const void* txt_all, int64_t Bl, int64_t Bg,
                 int64_t E, int64_t offset, const float* ls) {
  const int64_t n = Bl * Bg;
  cudaError_t e;
  // logits [2n], their gradients [2n], the folded ones [2n], row results [2·2Bl doubles]
  Ws ws(s, size_t(6 * n) * sizeof(float) + size_t(4 * Bl) * sizeof(double), &e);
  if (e != cudaSuccess) return e;
  double* part = static_cast<double*>(ws.p);  // first: 8-byte aligned
  float *l = reinterpret_cast<float*>(part + 2 * 2 * Bl), *g = l + 2 * n, *h = g + 2 * n;
  const T *I = static_cast<const T*>(img), *Tt = static_cast<const T*>(txt);
  const T *IA = static_cast<const T*>(img_all), *TA = static_cast<const T*>(txt_all);
  if ((e = launch<logits_kernel<T>>(blocks(n, 256), 256, 0, s, l, I, TA, Bl, Bg, E)) != cudaSuccess ||
      (e = launch<logits_kernel<T>>(blocks(n, 256), 256, 0, s, l + n, Tt, IA, Bl, Bg, E)) != cudaSuccess ||
      (e = xent(s, part, {l, g, Bg, 1, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = xent(s, part + 2 * Bl, {l + n, g + n, Bg, 1, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = launch<total_kernel>(1, 1, 0, s, loss, dscale, part, 2, Bl)) != cudaSuccess)
    return e;
  const unsigned bl = blocks(Bl * E, 256), bg = blocks(Bg * E, 256);
  if (img == img_all && txt == txt_all) {
    if ((e = launch<fold_kernel>(blocks(n, 256), 256, 0, s, h, g, Bl)) != cudaSuccess ||
        (e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dimg), h, TA, Bl, Bg, E, ls, 1.f, false, false)) != cudaSuccess)
      return e;
    return launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dtxt), h + n, IA, Bl, Bg, E, ls, 1.f, false, false);
  }
  if ((e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dimg), g, TA, Bl, Bg, E, ls, 1.f, false, false)) != cudaSuccess ||
      (e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dtxt), g + n, IA, Bl, Bg, E, ls, 1.f, false, false)) != cudaSuccess ||
      (e = launch<gemm_kernel<T, T>>(bg, 256, 0, s, static_cast<T*>(dtxt_all), g, I, Bg, Bl, E, ls, 1.f, true, true)) != cudaSuccess)
    return e;
  return launch<gemm_kernel<T, T>>(bg, 256, 0, s, static_cast<T*>(dimg_all), g + n, Tt, Bg, Bl, E, ls, 1.f, true, true);
}

// z [2B, E] = rows of z0 then z1, normalised (f32); norm [2B].
template <class T>
__global__ void normalise_kernel(float* __restrict__ z, float* __restrict__ norm, const T* __restrict__ z0,
                                 const T* __restrict__ z1, int64_t B, int64_t E) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= 2 * B) return;
  const T* src = a < B ? z0 + a * E : z1 + (a - B) * E;
  float ss = 0.f;
  for (int64_t e = 0; e < E; ++e) ss += to_f32(src[e]) * to_f32(src[e]);
  const float nr = fmaxf(sqrtf(ss), 1e-12f);
  norm[a] = nr;
  for (int64_t e = 0; e < E; ++e) z[a * E + e] = to_f32(src[e]) / nr;
}

// Through z = x/‖x‖: dx = (dz − ⟨dz, z⟩ z) / ‖x‖, into dz0 / dz1.
template <class T>
__global__ void unnormalise_kernel(T* __restrict__ dz0, T* __restrict__ dz1, const float* __restrict__ dz,
                                   const float* __restrict__ z, const float* __restrict__ norm, int64_t B, int64_t E) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= 2 * B) return;
  float dot = 0.f;
  for (int64_t e = 0; e < E; ++e) dot += dz[a * E + e] * z[a * E + e];
  T* out = a < B ? dz0 + a * E : dz1 + (a - B) * E;
  for (int64_t e = 0; e < E; ++e) out[e] = from_f32<T>((dz[a * E + e] - dot * z[a * E + e]) / norm[a]);
}

// g [n, n] → (g + gᵀ)/τ: sim = z·zᵀ/τ uses z on both sides.
__global__ void symmetrise_kernel(float* __restrict__ out, const float* __restrict__ g, int64_t n, float inv_t) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * n) return;
  const int64_t a = i / n, c = i % n;
  out[i] = (g[i] + g[c * n + a]) * inv_t;
}

template <class T>
cudaError_t ntxent(cudaStream_t s, float* loss, void* dz0, void* dz1, const void* z0, const void* z1, int64_t B,
                   int64_t E, float t) {
  const int64_t n = 2 * B;
  const float inv_t = 1.f / t;
  cudaError_t e;
  Ws ws(s, size_t(2 * n * E + n + 2 * n * n) * sizeof(float) + size_t(2 * n) * sizeof(double), &e);
  if (e != cudaSuccess) return e;
  double* part = static_cast<double*>(ws.p);  // first: 8-byte aligned
  float *z = reinterpret_cast<float*>(part + 2 * n), *dz = z + n * E, *norm = dz + n * E, *sim = norm + n, *g = sim + n * n;
  // Anchor a's positive is the other view of its sample, a + B mod 2B; its own column is left out.
  if ((e = launch<normalise_kernel<T>>(blocks(n, 128), 128, 0, s, z, norm, static_cast<const T*>(z0), static_cast<const T*>(z1), B, E)) !=
          cudaSuccess ||
      (e = launch<logits_kernel<float>>(blocks(n * n, 256), 256, 0, s, sim, z, z, n, n, E)) != cudaSuccess ||
      (e = xent(s, part, {sim, g, n, 1, n, n, B, true}, nullptr, inv_t)) != cudaSuccess ||
      (e = launch<total_kernel>(1, 1, 0, s, loss, nullptr, part, 1, n)) != cudaSuccess ||
      (e = launch<symmetrise_kernel>(blocks(n * n, 256), 256, 0, s, sim, g, n, inv_t)) != cudaSuccess ||
      (e = launch<gemm_kernel<float, float>>(blocks(n * E, 256), 256, 0, s, dz, sim, z, n, n, E, nullptr, 1.f, false, false)) != cudaSuccess)
    return e;
  return launch<unnormalise_kernel<T>>(blocks(n, 128), 128, 0, s, static_cast<T*>(dz0), static_cast<T*>(dz1), dz, z, norm, B, E);
}

// One block per (caption m, image n): cV, cT and their arg-maxes (MAMA.md §3.4), the S×P scores
// made one patch column at a time.
template <class T>
__global__ void scores_kernel(float* __restrict__ cv, float* __restrict__ ct, int* __restrict__ argv,
                              int* __restrict__ argt, const T* __restrict__ sent, const int* __restrict__ counts,
                              const T* __restrict__ patches, int64_t Bi, int64_t P, int64_t S, int64_t E) {
  __shared__ float best_v[kMaxS][32];
  __shared__ int best_k[kMaxS][32];
  __shared__ float ct_part[32];
  const int64_t pair = blockIdx.x, m = pair / Bi, n = pair % Bi;
  const int cnt = counts[m];
  const int lane = threadIdx.x;  // blockDim.x == 32
  float mv[kMaxS];
  int mk_[kMaxS];
  for (int j = 0; j < cnt; ++j) mv[j] = -INFINITY, mk_[j] = 0;
  float ct_sum = 0.f;
  for (int64_t k = lane; k < P; k += 32) {
    float colmax = -INFINITY;
    int colarg = 0;
    for (int j = 0; j < cnt; ++j) {
      float c = 0.f;
      for (int64_t e = 0; e < E; ++e) c += to_f32(sent[(m * S + j) * E + e]) * to_f32(patches[(n * P + k) * E + e]);
      if (c > mv[j]) mv[j] = c, mk_[j] = int(k);
      if (c > colmax) colmax = c, colarg = j;
    }
    argt[pair * P + k] = colarg;
    ct_sum += colmax;
  }
  for (int j = 0; j < cnt; ++j) best_v[j][lane] = mv[j], best_k[j][lane] = mk_[j];
  ct_part[lane] = ct_sum;
  __syncthreads();
  if (lane == 0) {
    float sv = 0.f, st = 0.f;
    for (int j = 0; j < cnt; ++j) {
      float b = -INFINITY;
      int bk = 0;
      for (int x = 0; x < 32; ++x)
        if (best_v[j][x] > b || (best_v[j][x] == b && best_k[j][x] < bk)) b = best_v[j][x], bk = best_k[j][x];
      argv[pair * S + j] = bk;
      sv += b;
    }
    for (int j = cnt; j < S; ++j) argv[pair * S + j] = -1;
    for (int x = 0; x < 32; ++x) st += ct_part[x];
    cv[pair] = sv / float(cnt);
    ct[pair] = st / float(P);
  }
}

// dsent rows of caption m (block m, threads over e): one writer per element.
template <class T>
__global__ void dsent_kernel(float* __restrict__ dsent, const float* __restrict__ gv, const float* __restrict__ gt,
                             const int* __restrict__ argv, const int* __restrict__ argt, const int* __restrict__ counts,
                             const T* __restrict__ patches, int64_t Bi, int64_t P, int64_t S, int64_t E) {
  const int64_t m = blockIdx.x, cnt = counts[m];
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x)
    for (int64_t n = 0; n < Bi; ++n) {
      const int64_t pair = m * Bi + n;
      const float wv = gv[pair] / float(cnt), wt = gt[pair] / float(P);
      for (int64_t j = 0; j < cnt; ++j)
        dsent[(m * S + j) * E + e] += wv * to_f32(patches[(n * P + argv[pair * S + j]) * E + e]);
      for (int64_t k = 0; k < P; ++k) dsent[(m * S + argt[pair * P + k]) * E + e] += wt * to_f32(patches[(n * P + k) * E + e]);
    }
}

// dpatch rows of image n (block n, threads over e).
template <class T>
__global__ void dpatch_kernel(float* __restrict__ dpatch, const float* __restrict__ gv, const float* __restrict__ gt,
                              const int* __restrict__ argv, const int* __restrict__ argt, const int* __restrict__ counts,
                              const T* __restrict__ sent, int64_t Bc, int64_t Bi, int64_t P, int64_t S, int64_t E) {
  const int64_t n = blockIdx.x;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x)
    for (int64_t m = 0; m < Bc; ++m) {
      const int64_t pair = m * Bi + n, cnt = counts[m];
      const float wv = gv[pair] / float(cnt), wt = gt[pair] / float(P);
      for (int64_t j = 0; j < cnt; ++j)
        dpatch[(n * P + argv[pair * S + j]) * E + e] += wv * to_f32(sent[(m * S + j) * E + e]);
      for (int64_t k = 0; k < P; ++k) dpatch[(n * P + k) * E + e] += wt * to_f32(sent[(m * S + argt[pair * P + k]) * E + e]);
    }
}

template <class T>
__global__ void add_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t n, bool acc) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<T>(src[i] + (acc ? to_f32(dst[i]) : 0.f));
}

// g = (gva, gta, gvb, gtb) [4, n] *= s; one process: gva += gvb, gta += gtb (the same pairs).
__global__ void scale_fold_kernel(float* __restrict__ g, int64_t n, const float* __restrict__ log_scale, bool one) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float s = expf(*log_scale);
  const float va = g[i] * s, ta = g[n + i] * s, vb = g[2 * n + i] * s, tb = g[3 * n + i] * s;
  g[i] = one ? va + vb : va, g[n + i] = one ? ta + tb : ta, g[2 * n + i] = vb, g[3 * n + i] = tb;
}

template <class T>
cudaError_t local(cudaStream_t s, float* loss, float* dscale, void* dpatches, void* dsentences, void* dpatches_all,
                  void* dsentences_all, const void* patches, const void* sentences, const int32_t* counts,
                  const void* patches_all, const void* sentences_all, const int32_t* counts_all, int64_t Bl, int64_t Bg,
                  int64_t P, int64_t S, int64_t E, int64_t offset, const float* ls) {
  if (S > kMaxS) return cudaErrorNotSupported;
  const bool one = patches == patches_all && sentences == sentences_all;
  const int64_t n = Bl * Bg, pairs = one ? 1 : 2;
  // Workspace: per-row results (4 blocks of Bl rows, 2 doubles each), scores and their gradients (8n), arg-maxes, counts,
  // f32 gradient rows.
  const int64_t args = pairs * n * (S + P), rows = Bl * (P + S) * E + (one ? 0 : Bg * (P + S) * E);
  cudaError_t e;
  Ws ws(s, size_t(8 * n + rows) * sizeof(float) + size_t(8 * Bl) * sizeof(double) + size_t(args + Bl + Bg) * sizeof(int), &e);
  if (e != cudaSuccess) return e;
  double* part = static_cast<double*>(ws.p);  // first: 8-byte aligned
  float *cva = reinterpret_cast<float*>(part + 8 * Bl), *cta = cva + n, *cvb = cta + n, *ctb = cvb + n;
  float* g = ctb + n;  // gva, gta, gvb, gtb
  float *dpl = g + 4 * n, *dsl = dpl + Bl * P * E, *dpa = dsl + Bl * S * E, *dsa = dpa + Bg * P * E;
  int* ia = reinterpret_cast<int*>(dpl + rows);
  int *ava = ia, *ata = ava + n * S, *avb = one ? ava : ata + n * P, *atb = one ? ata : avb + n * S;
  int* cl = ia + args;
  int* cg = one ? cl : cl + Bl;
  if ((e = to_device(cl, counts, size_t(Bl) * sizeof(int), s)) != cudaSuccess) return e;
  if (!one && (e = to_device(cg, counts_all, size_t(Bg) * sizeof(int), s)) != cudaSuccess) return e;
  if ((e = cudaMemsetAsync(dpl, 0, size_t(rows) * sizeof(float), s)) != cudaSuccess) return e;
  const T *PL = static_cast<const T*>(patches), *SL = static_cast<const T*>(sentences);
  const T *PA = static_cast<const T*>(patches_all), *SA = static_cast<const T*>(sentences_all);
  if ((e = launch<scores_kernel<T>>(unsigned(n), 32, 0, s, cva, cta, ava, ata, SL, cl, PA, Bg, P, S, E)) != cudaSuccess ||
      (!one && (e = launch<scores_kernel<T>>(unsigned(n), 32, 0, s, cvb, ctb, avb, atb, SA, cg, PL, Bl, P, S, E)) != cudaSuccess))
    return e;
  // The ᵀ terms read b [Bg, Bl] column-wise (row r, a local image, is column r); one process: b = a.
  const float *xvb = one ? cva : cvb, *xtb = one ? cta : ctb;
  float *gva = g, *gta = g + n, *gvb = g + 2 * n, *gtb = g + 3 * n;
  if ((e = xent(s, part, {cva, gva, Bg, 1, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = xent(s, part + 2 * Bl, {xvb, gvb, 1, Bl, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = xent(s, part + 4 * Bl, {cta, gta, Bg, 1, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = xent(s, part + 6 * Bl, {xtb, gtb, 1, Bl, Bl, Bg, offset, false}, ls)) != cudaSuccess ||
      (e = launch<total_kernel>(1, 1, 0, s, loss, dscale, part, 4, Bl)) != cudaSuccess ||
      (e = launch<scale_fold_kernel>(blocks(n, 256), 256, 0, s, g, n, ls, one)) != cudaSuccess)
    return e;
  if (one) {
    if ((e = launch<dsent_kernel<T>>(unsigned(Bl), 128, 0, s, dsl, gva, gta, ava, ata, cl, PL, Bl, P, S, E)) != cudaSuccess ||
        (e = launch<dpatch_kernel<T>>(unsigned(Bl), 128, 0, s, dpl, gva, gta, ava, ata, cl, SL, Bl, Bl, P, S, E)) != cudaSuccess)
      return e;
  } else if ((e = launch<dsent_kernel<T>>(unsigned(Bl), 128, 0, s, dsl, gva, gta, ava, ata, cl, PA, Bg, P, S, E)) != cudaSuccess ||
             (e = launch<dpatch_kernel<T>>(unsigned(Bg), 128, 0, s, dpa, gva, gta, ava, ata, cl, SL, Bl, Bg, P, S, E)) != cudaSuccess ||
             (e = launch<dsent_kernel<T>>(unsigned(Bg), 128, 0, s, dsa, gvb, gtb, avb, atb, cg, PL, Bl, P, S, E)) != cudaSuccess ||
             (e = launch<dpatch_kernel<T>>(unsigned(Bl), 128, 0, s, dpl, gvb, gtb, avb, atb, cg, SA, Bg, Bl, P, S, E)) != cudaSuccess ||
             (e = launch<add_kernel<T>>(blocks(Bg * P * E, 256), 256, 0, s, static_cast<T*>(dpatches_all), dpa, Bg * P * E, true)) !=
                 cudaSuccess ||
             (e = launch<add_kernel<T>>(blocks(Bg * S * E, 256), 256, 0, s, static_cast<T*>(dsentences_all), dsa, Bg * S * E, true)) !=
                 cudaSuccess) {
    return e;
  }
  if ((e = launch<add_kernel<T>>(blocks(Bl * P * E, 256), 256, 0, s, static_cast<T*>(dpatches), dpl, Bl * P * E, false)) != cudaSuccess ||
      (e = launch<add_kernel<T>>(blocks(Bl * S * E, 256), 256, 0, s, static_cast<T*>(dsentences), dsl, Bl * S * E, false)) != cudaSuccess)
    return e;
  return cudaSuccess;
}

}  // namespace

cudaError_t launch_clip_loss(cudaStream_t s, mk_dtype dtype, float* loss, float* dscale, void* dimg, void* dtxt,
                             void* dimg_all, void* dtxt_all, const void* img, const void* txt, const void* img_all,
                             const void* txt_all, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, const float* logit_scale) {
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return clip<St>(s, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all, txt_all, Bl, Bg, E, offset, logit_scale);
  });
}

cudaError_t launch_nt_xent(cudaStream_t s, mk_dtype dtype, float* loss, void* dz0, void* dz1, const void* z0,
                           const void* z1, int64_t B, int64_t E, float temperature) {
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return ntxent<St>(s, loss, dz0, dz1, z0, z1, B, E, temperature);
  });
}

cudaError_t launch_local_align(cudaStream_t s, mk_dtype dtype, float* loss, float* dscale, void* dpatches,
                               void* dsentences, void* dpatches_all, void* dsentences_all, const void* patches,
                               const void* sentences, const int32_t* counts, const void* patches_all,
                               const void* sentences_all, const int32_t* counts_all, int64_t Bl, int64_t Bg, int64_t P,
                               int64_t S, int64_t E, int64_t offset, const float* local_scale) {
  return by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return local<St>(s, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all, patches, sentences, counts,
                     patches_all, sentences_all, counts_all, Bl, Bg, P, S, E, offset, local_scale);
  });
}

namespace {

mk_status cu_clip_loss(mk_context* ctx, float* loss, float* dscale, void* dimg, void* dtxt, void* dimg_all,
                       void* dtxt_all, const void* img, const void* txt, const void* img_all, const void* txt_all,
                       mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, const float* logit_scale) {
  return check(launch_clip_loss(ctx->stream, dtype, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all,
                                txt_all, Bl, Bg, E, offset, logit_scale),
               "clipLoss");
}

mk_status cu_nt_xent(mk_context* ctx, float* loss, void* dz0, void* dz1, const void* z0, const void* z1, mk_dtype dtype,
                     int64_t B, int64_t E, float temperature) {
  return check(launch_nt_xent(ctx->stream, dtype, loss, dz0, dz1, z0, z1, B, E, temperature), "ntXent");
}

mk_status cu_local_align(mk_context* ctx, float* loss, float* dscale, void* dpatches, void* dsentences,
                         void* dpatches_all, void* dsentences_all, const void* patches, const void* sentences,
                         const int32_t* counts, const void* patches_all, const void* sentences_all,
                         const int32_t* counts_all, mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t P, int64_t S,
                         int64_t E, int64_t offset, const float* local_scale) {
  if (S > 64) return fail(MK_ERR_UNSUPPORTED, "localAlignLoss on cuda holds at most 64 sentences per caption");
  return check(launch_local_align(ctx->stream, dtype, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all,
                                  patches, sentences, counts, patches_all, sentences_all, counts_all, Bl, Bg, P, S, E,
                                  offset, local_scale),
               "localAlignLoss");
}

}  // namespace

MK_CUDA_ENTRY(clip_loss, cu_clip_loss);
MK_CUDA_ENTRY(nt_xent, cu_nt_xent);
MK_CUDA_ENTRY(local_align, cu_local_align);

}  // namespace mk_cuda
