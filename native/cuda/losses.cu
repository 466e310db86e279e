// losses.cu: the contrastive losses of the CUDA backend (contracts in mamakit.h; the CPU
// versions are clip_loss.cpp, nt_xent.cpp, local_align_loss.cpp), f32 / bf16 / f16 inputs with
// f32 arithmetic. The batch × batch cross-entropies are tiny: their logits come to the host,
// where xent.h computes the loss and dL/dlogits in double, and the gradient goes back. The
// large parts run on the device: logits, scores with their arg-maxes (one block per caption ×
// image pair; the B·B·S·P scores are never stored), and the gradient products.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "../cpu/xent.h"
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int kMaxS = 64;  // sentences per caption the local-alignment kernel holds in registers

unsigned blocks(int64_t n, int t) { return unsigned((n + t - 1) / t); }

// out [R, C] = scale · a [R, E] · b [C, E]ᵀ (f32)
template <class T>
__global__ void logits_kernel(float* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b, int64_t R,
                              int64_t C, int64_t E, float scale) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * C) return;
  const int64_t r = i / C, c = i % C;
  float s = 0.f;
  for (int64_t e = 0; e < E; ++e) s += to_f32(a[r * E + e]) * to_f32(b[c * E + e]);
  out[i] = scale * s;
}

// out [R, E] (= or +=) scale · g · x, g [R, C] (or gᵀ with g stored [C, R] when tg), x [C, E].
template <class T, class X>
__global__ void gemm_kernel(T* __restrict__ out, const float* __restrict__ g, const X* __restrict__ x, int64_t R,
                            int64_t C, int64_t E, float scale, bool tg, bool acc) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= R * E) return;
  const int64_t r = i / E, e = i % E;
  float s = 0.f;
  for (int64_t c = 0; c < C; ++c) s += (tg ? g[c * R + r] : g[r * C + c]) * to_f32(x[c * E + e]);
  s *= scale;
  if (acc) s += to_f32(out[i]);
  out[i] = from_f32<T>(s);
}

cudaError_t download(cudaStream_t s, std::vector<float>& host, const float* dev, int64_t n) {
  host.resize(size_t(n));
  return to_host(host.data(), dev, size_t(n) * sizeof(float), s);
}

cudaError_t upload(cudaStream_t s, float* dev, const std::vector<float>& host) {
  return to_device(dev, host.data(), host.size() * sizeof(float), s);
}

// A device f32 workspace freed at scope exit.
struct Ws {
  float* p = nullptr;
  cudaStream_t s;
  Ws(cudaStream_t st, int64_t n, cudaError_t* e) : s(st) {
    *e = cudaMallocAsync(reinterpret_cast<void**>(&p), size_t(n > 0 ? n : 1) * sizeof(float), s);
  }
  ~Ws() {
    if (p) cudaFreeAsync(p, s);
  }
};

template <class T>
cudaError_t clip(cudaStream_t s, double* loss, double* dscale, void* dimg, void* dtxt, void* dimg_all, void* dtxt_all,
                 const void* img, const void* txt, const void* img_all, const void* txt_all, int64_t Bl, int64_t Bg,
                 int64_t E, int64_t offset, float logit_scale) {
  const float sc = std::exp(logit_scale);
  const int64_t n = Bl * Bg;
  cudaError_t e;
  Ws ws(s, 2 * n, &e);
  if (e != cudaSuccess) return e;
  const T *I = static_cast<const T*>(img), *Tt = static_cast<const T*>(txt);
  const T *IA = static_cast<const T*>(img_all), *TA = static_cast<const T*>(txt_all);
  std::vector<float> l, g(size_t(2 * n), 0.f);
  if ((e = launch<logits_kernel<T>>(blocks(n, 256), 256, 0, s, ws.p, I, TA, Bl, Bg, E, sc)) != cudaSuccess ||
      (e = launch<logits_kernel<T>>(blocks(n, 256), 256, 0, s, ws.p + n, Tt, IA, Bl, Bg, E, sc)) != cudaSuccess ||
      (e = download(s, l, ws.p, 2 * n)) != cudaSuccess)
    return e;
  std::vector<int64_t> label(static_cast<size_t>(Bl));
  for (int64_t r = 0; r < Bl; ++r) label[r] = offset + r;
  *loss = mk::xent_rows(l.data(), Bg, 1, label.data(), Bl, Bg, g.data(), 1.0) +
          mk::xent_rows(l.data() + n, Bg, 1, label.data(), Bl, Bg, g.data() + n, 1.0);
  double ds = 0;
  for (int64_t i = 0; i < 2 * n; ++i) ds += double(g[i]) * l[i];
  *dscale = ds;
  const unsigned bl = blocks(Bl * E, 256), bg = blocks(Bg * E, 256);
  if (img == img_all && txt == txt_all) {
    // One process: dI = s·(G1 + G2ᵀ)·T and dT = s·(G2 + G1ᵀ)·I, each rounded to T once (written
    // then accumulated, a 16-bit gradient would carry the rounding of both parts, each of which
    // can be far larger than their sum).
    std::vector<float> h(g.size());
    for (int64_t r = 0; r < Bl; ++r)
      for (int64_t c = 0; c < Bg; ++c) h[r * Bg + c] = g[r * Bg + c] + g[n + c * Bg + r], h[n + r * Bg + c] = g[n + r * Bg + c] + g[c * Bg + r];
    if ((e = upload(s, ws.p, h)) != cudaSuccess ||
        (e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dimg), ws.p, TA, Bl, Bg, E, sc, false, false)) != cudaSuccess)
      return e;
    return launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dtxt), ws.p + n, IA, Bl, Bg, E, sc, false, false);
  }
  if ((e = upload(s, ws.p, g)) != cudaSuccess) return e;
  if ((e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dimg), ws.p, TA, Bl, Bg, E, sc, false, false)) != cudaSuccess ||
      (e = launch<gemm_kernel<T, T>>(bl, 256, 0, s, static_cast<T*>(dtxt), ws.p + n, IA, Bl, Bg, E, sc, false, false)) != cudaSuccess ||
      (e = launch<gemm_kernel<T, T>>(bg, 256, 0, s, static_cast<T*>(dtxt_all), ws.p, I, Bg, Bl, E, sc, true, true)) != cudaSuccess)
    return e;
  return launch<gemm_kernel<T, T>>(bg, 256, 0, s, static_cast<T*>(dimg_all), ws.p + n, Tt, Bg, Bl, E, sc, true, true);
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

template <class T>
cudaError_t ntxent(cudaStream_t s, double* loss, void* dz0, void* dz1, const void* z0, const void* z1, int64_t B,
                   int64_t E, float t) {
  const int64_t n = 2 * B;
  cudaError_t e;
  Ws ws(s, 2 * n * E + n + n * n, &e);
  if (e != cudaSuccess) return e;
  float *z = ws.p, *dz = z + n * E, *norm = dz + n * E, *sim = norm + n;
  std::vector<float> l, g(size_t(n * n), 0.f);
  if ((e = launch<normalise_kernel<T>>(blocks(n, 128), 128, 0, s, z, norm, static_cast<const T*>(z0), static_cast<const T*>(z1), B, E)) !=
          cudaSuccess ||
      (e = launch<logits_kernel<float>>(blocks(n * n, 256), 256, 0, s, sim, z, z, n, n, E, 1.f / t)) != cudaSuccess ||
      (e = download(s, l, sim, n * n)) != cudaSuccess)
    return e;
  std::vector<int64_t> label(size_t(2 * n));
  for (int64_t a = 0; a < n; ++a) label[a] = (a + B) % n, label[n + a] = a;
  *loss = mk::xent_rows(l.data(), n, 1, label.data(), n, n, g.data(), 1.0, label.data() + n);
  for (int64_t a = 0; a < n; ++a)
    for (int64_t c = a; c < n; ++c) g[a * n + c] = g[c * n + a] = (g[a * n + c] + g[c * n + a]) / t;
  if ((e = upload(s, sim, g)) != cudaSuccess) return e;
  if ((e = launch<gemm_kernel<float, float>>(blocks(n * E, 256), 256, 0, s, dz, sim, z, n, n, E, 1.f, false, false)) != cudaSuccess)
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

template <class T>
cudaError_t local(cudaStream_t s, double* loss, double* dscale, void* dpatches, void* dsentences, void* dpatches_all,
                  void* dsentences_all, const void* patches, const void* sentences, const int32_t* counts,
                  const void* patches_all, const void* sentences_all, const int32_t* counts_all, int64_t Bl, int64_t Bg,
                  int64_t P, int64_t S, int64_t E, int64_t offset, float local_scale) {
  if (S > kMaxS) return cudaErrorNotSupported;
  const bool one = patches == patches_all && sentences == sentences_all;
  const float sc = std::exp(local_scale);
  const int64_t n = Bl * Bg, pairs = one ? 1 : 2;
  // Workspace: scores and gradients (8n), arg-maxes (as ints), counts, and f32 gradient rows.
  const int64_t args = pairs * n * (S + P), rows = Bl * (P + S) * E + (one ? 0 : Bg * (P + S) * E);
  cudaError_t e;
  Ws ws(s, 8 * n + args + Bl + Bg + rows, &e);
  if (e != cudaSuccess) return e;
  float *cva = ws.p, *cta = cva + n, *cvb = cta + n, *ctb = cvb + n, *g = ctb + n;  // g: gva, gta, gvb, gtb
  int* ia = reinterpret_cast<int*>(g + 4 * n);
  int *ava = ia, *ata = ava + n * S, *avb = one ? ava : ata + n * P, *atb = one ? ata : avb + n * S;
  int* cl = ia + args;
  int* cg = cl + Bl;
  float* fr = reinterpret_cast<float*>(cg + Bg);
  float *dpl = fr, *dsl = dpl + Bl * P * E, *dpa = dsl + Bl * S * E, *dsa = dpa + Bg * P * E;
  if ((e = to_device(cl, counts, size_t(Bl) * sizeof(int), s)) != cudaSuccess) return e;
  if ((e = to_device(cg, counts_all, size_t(Bg) * sizeof(int), s)) != cudaSuccess) return e;
  if ((e = cudaMemsetAsync(fr, 0, size_t(rows) * sizeof(float), s)) != cudaSuccess) return e;
  const T *PL = static_cast<const T*>(patches), *SL = static_cast<const T*>(sentences);
  const T *PA = static_cast<const T*>(patches_all), *SA = static_cast<const T*>(sentences_all);
  std::vector<float> c;
  if ((e = launch<scores_kernel<T>>(unsigned(n), 32, 0, s, cva, cta, ava, ata, SL, cl, PA, Bg, P, S, E)) != cudaSuccess ||
      (!one && (e = launch<scores_kernel<T>>(unsigned(n), 32, 0, s, cvb, ctb, avb, atb, SA, cg, PL, Bl, P, S, E)) != cudaSuccess) ||
      (e = download(s, c, cva, 4 * n)) != cudaSuccess)
    return e;
  if (one) std::copy(c.begin(), c.begin() + 2 * n, c.begin() + 2 * n);
  for (auto& x : c) x *= sc;
  std::vector<float> gh(size_t(4 * n), 0.f);
  std::vector<int64_t> label(static_cast<size_t>(Bl));
  for (int64_t r = 0; r < Bl; ++r) label[r] = offset + r;
  float *lv = c.data(), *lt = lv + n, *lvb = lt + n, *ltb = lvb + n;
  float *gva = gh.data(), *gta = gva + n, *gvb = gta + n, *gtb = gvb + n;
  *loss = mk::xent_rows(lv, Bg, 1, label.data(), Bl, Bg, gva, 1.0) + mk::xent_rows(lvb, 1, Bl, label.data(), Bl, Bg, gvb, 1.0) +
          mk::xent_rows(lt, Bg, 1, label.data(), Bl, Bg, gta, 1.0) + mk::xent_rows(ltb, 1, Bl, label.data(), Bl, Bg, gtb, 1.0);
  double ds = 0;
  for (int64_t i = 0; i < 4 * n; ++i) ds += double(gh[i]) * c[i];
  *dscale = ds;
  for (auto& x : gh) x *= sc;
  if (one)
    for (int64_t i = 0; i < n; ++i) gva[i] += gvb[i], gta[i] += gtb[i];
  if ((e = upload(s, g, gh)) != cudaSuccess) return e;
  if (one) {
    if ((e = launch<dsent_kernel<T>>(unsigned(Bl), 128, 0, s, dsl, g, g + n, ava, ata, cl, PL, Bl, P, S, E)) != cudaSuccess ||
        (e = launch<dpatch_kernel<T>>(unsigned(Bl), 128, 0, s, dpl, g, g + n, ava, ata, cl, SL, Bl, Bl, P, S, E)) != cudaSuccess)
      return e;
  } else if ((e = launch<dsent_kernel<T>>(unsigned(Bl), 128, 0, s, dsl, g, g + n, ava, ata, cl, PA, Bg, P, S, E)) != cudaSuccess ||
             (e = launch<dpatch_kernel<T>>(unsigned(Bg), 128, 0, s, dpa, g, g + n, ava, ata, cl, SL, Bl, Bg, P, S, E)) != cudaSuccess ||
             (e = launch<dsent_kernel<T>>(unsigned(Bg), 128, 0, s, dsa, g + 2 * n, g + 3 * n, avb, atb, cg, PL, Bl, P, S, E)) !=
                 cudaSuccess ||
             (e = launch<dpatch_kernel<T>>(unsigned(Bl), 128, 0, s, dpl, g + 2 * n, g + 3 * n, avb, atb, cg, SA, Bg, Bl, P, S, E)) !=
                 cudaSuccess ||
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

cudaError_t launch_clip_loss(cudaStream_t s, mk_dtype dtype, double* loss, double* dscale, void* dimg, void* dtxt,
                             void* dimg_all, void* dtxt_all, const void* img, const void* txt, const void* img_all,
                             const void* txt_all, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, float logit_scale) {
  switch (dtype) {
    case MK_BF16:
      return clip<__nv_bfloat16>(s, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all, txt_all, Bl, Bg, E,
                                 offset, logit_scale);
    case MK_F16:
      return clip<__half>(s, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all, txt_all, Bl, Bg, E, offset,
                          logit_scale);
    default:
      return clip<float>(s, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all, txt_all, Bl, Bg, E, offset,
                         logit_scale);
  }
}

cudaError_t launch_nt_xent(cudaStream_t s, mk_dtype dtype, double* loss, void* dz0, void* dz1, const void* z0,
                           const void* z1, int64_t B, int64_t E, float temperature) {
  switch (dtype) {
    case MK_BF16: return ntxent<__nv_bfloat16>(s, loss, dz0, dz1, z0, z1, B, E, temperature);
    case MK_F16: return ntxent<__half>(s, loss, dz0, dz1, z0, z1, B, E, temperature);
    default: return ntxent<float>(s, loss, dz0, dz1, z0, z1, B, E, temperature);
  }
}

cudaError_t launch_local_align(cudaStream_t s, mk_dtype dtype, double* loss, double* dscale, void* dpatches,
                               void* dsentences, void* dpatches_all, void* dsentences_all, const void* patches,
                               const void* sentences, const int32_t* counts, const void* patches_all,
                               const void* sentences_all, const int32_t* counts_all, int64_t Bl, int64_t Bg, int64_t P,
                               int64_t S, int64_t E, int64_t offset, float local_scale) {
  switch (dtype) {
    case MK_BF16:
      return local<__nv_bfloat16>(s, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all, patches, sentences,
                                  counts, patches_all, sentences_all, counts_all, Bl, Bg, P, S, E, offset, local_scale);
    case MK_F16:
      return local<__half>(s, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all, patches, sentences, counts,
                           patches_all, sentences_all, counts_all, Bl, Bg, P, S, E, offset, local_scale);
    default:
      return local<float>(s, loss, dscale, dpatches, dsentences, dpatches_all, dsentences_all, patches, sentences, counts,
                          patches_all, sentences_all, counts_all, Bl, Bg, P, S, E, offset, local_scale);
  }
}

namespace {

mk_status cu_clip_loss(mk_context* ctx, double* loss, double* dscale, void* dimg, void* dtxt, void* dimg_all,
                       void* dtxt_all, const void* img, const void* txt, const void* img_all, const void* txt_all,
                       mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t E, int64_t offset, float logit_scale) {
  return check(launch_clip_loss(ctx->stream, dtype, loss, dscale, dimg, dtxt, dimg_all, dtxt_all, img, txt, img_all,
                                txt_all, Bl, Bg, E, offset, logit_scale),
               "clipLoss");
}

mk_status cu_nt_xent(mk_context* ctx, double* loss, void* dz0, void* dz1, const void* z0, const void* z1, mk_dtype dtype,
                     int64_t B, int64_t E, float temperature) {
  return check(launch_nt_xent(ctx->stream, dtype, loss, dz0, dz1, z0, z1, B, E, temperature), "ntXent");
}

mk_status cu_local_align(mk_context* ctx, double* loss, double* dscale, void* dpatches, void* dsentences,
                         void* dpatches_all, void* dsentences_all, const void* patches, const void* sentences,
                         const int32_t* counts, const void* patches_all, const void* sentences_all,
                         const int32_t* counts_all, mk_dtype dtype, int64_t Bl, int64_t Bg, int64_t P, int64_t S,
                         int64_t E, int64_t offset, float local_scale) {
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
