// batchnorm.cu: BatchNorm1d over x [R,C] (statistics per column), forward and backward, as
// native/cpu/batchnorm.cpp: batch mean and biased variance (two passes) when training, the running
// statistics moved by `momentum` toward the mean and the UNBIASED variance (the biased one for
// R = 1); the running statistics otherwise. A block owns 32 columns (one per lane, so every row's
// read is coalesced) and strides its 8 warps over the rows; partial sums meet in shared memory.
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int kCols = 32;  // columns per block: threadIdx.x
constexpr int kRowGroups = 8;  // rows in flight per block: threadIdx.y

unsigned tiles(int64_t C) { return unsigned(std::min<int64_t>((C + kCols - 1) / kCols, 65535)); }

// Σ over the kRowGroups partials of column tx, in a fixed order.
__device__ __forceinline__ float column_total(const float (&red)[kRowGroups][kCols], int tx) {
  float s = 0.f;
  for (int k = 0; k < kRowGroups; ++k) s += red[k][tx];
  return s;
}

// y, x [R,C]; mean, rstd [C] (f32, written); running_mean, running_var [C] (f32; updated when
// training, may be null then; read otherwise); w, b [C] or null. Grid-stride over column tiles.
template <class T>
__global__ void forward_kernel(T* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
                               float* __restrict__ running_mean, float* __restrict__ running_var, const T* __restrict__ x,
                               const T* __restrict__ w, const T* __restrict__ b, int64_t R, int64_t C, float eps,
                               float momentum, int training) {
  __shared__ float red[kRowGroups][kCols];
  __shared__ float s_mean[kCols], s_rstd[kCols];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  for (int64_t c0 = int64_t(blockIdx.x) * kCols; c0 < C; c0 += int64_t(gridDim.x) * kCols) {
    const int64_t c = c0 + tx;
    const bool in = c < C;
    if (training) {
      float s = 0.f;
      if (in)
        for (int64_t r = ty; r < R; r += kRowGroups) s += to_f32(x[r * C + c]);
      red[ty][tx] = s;
      __syncthreads();
      if (ty == 0) s_mean[tx] = column_total(red, tx) / float(R);
      __syncthreads();
      const float mu = s_mean[tx];
      float q = 0.f;
      if (in)
        for (int64_t r = ty; r < R; r += kRowGroups) {
          const float t = to_f32(x[r * C + c]) - mu;
          q += t * t;
        }
      red[ty][tx] = q;  // the first total was read before the barrier above
      __syncthreads();
      if (ty == 0 && in) {
        const float sq = column_total(red, tx), var = sq / float(R), rs = 1.f / sqrtf(var + eps);
        mean[c] = mu;
        rstd[c] = rs;
        s_rstd[tx] = rs;
        if (running_mean) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * mu;
        if (running_var) running_var[c] = (1.f - momentum) * running_var[c] + momentum * (R > 1 ? sq / float(R - 1) : var);
      }
    } else if (ty == 0 && in) {
      const float mu = running_mean[c], rs = 1.f / sqrtf(running_var[c] + eps);
      mean[c] = mu;
      rstd[c] = rs;
      s_mean[tx] = mu;
      s_rstd[tx] = rs;
    }
    __syncthreads();
    if (in) {
      const float mu = s_mean[tx], rs = s_rstd[tx];
      const float wc = w ? to_f32(w[c]) : 1.f, bc = b ? to_f32(b[c]) : 0.f;
      for (int64_t r = ty; r < R; r += kRowGroups) {
        float t = (to_f32(x[r * C + c]) - mu) * rs;
        if (w) t *= wc;
        if (b) t += bc;
        y[r * C + c] = from_f32<T>(t);
      }
    }
    __syncthreads();  // the next tile rewrites red, s_mean and s_rstd
  }
}

// dx, dy, x [R,C]; dw, db [C] (accumulated, may be null); mean, rstd [C] (f32); w [C] or null.
//   training: dx = w·rstd·(dy − Σdy/R − x̂·Σ(dy·x̂)/R);  evaluation: dx = w·rstd·dy
//   dw += Σ dy·x̂,  db += Σ dy   (one thread per column adds: no race)
template <class T>
__global__ void backward_kernel(T* __restrict__ dx, T* __restrict__ dw, T* __restrict__ db, const T* __restrict__ dy,
                                const T* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ rstd,
                                const T* __restrict__ w, int64_t R, int64_t C, int training) {
  __shared__ float red_dy[kRowGroups][kCols], red_dyx[kRowGroups][kCols];
  __shared__ float s_dy[kCols], s_dyx[kCols];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  for (int64_t c0 = int64_t(blockIdx.x) * kCols; c0 < C; c0 += int64_t(gridDim.x) * kCols) {
    const int64_t c = c0 + tx;
    const bool in = c < C;
    const float mu = in ? mean[c] : 0.f, rs = in ? rstd[c] : 0.f;
    float sdy = 0.f, sdyx = 0.f;
    if (in)
      for (int64_t r = ty; r < R; r += kRowGroups) {
        const float g = to_f32(dy[r * C + c]);
        sdy += g;
        sdyx += g * (to_f32(x[r * C + c]) - mu) * rs;
      }
    red_dy[ty][tx] = sdy;
    red_dyx[ty][tx] = sdyx;
    __syncthreads();
    if (ty == 0 && in) {
      const float tdy = column_total(red_dy, tx), tdyx = column_total(red_dyx, tx);
      s_dy[tx] = tdy;
      s_dyx[tx] = tdyx;
      if (dw) dw[c] = from_f32<T>(to_f32(dw[c]) + tdyx);
      if (db) db[c] = from_f32<T>(to_f32(db[c]) + tdy);
    }
    __syncthreads();
    if (in) {
      const float scale = (w ? to_f32(w[c]) : 1.f) * rs, tdy = s_dy[tx], tdyx = s_dyx[tx];
      for (int64_t r = ty; r < R; r += kRowGroups) {
        const float g = to_f32(dy[r * C + c]);
        float v;
        if (training) {
          const float xh = (to_f32(x[r * C + c]) - mu) * rs;
          v = scale * (g - tdy / float(R) - xh * tdyx / float(R));
        } else {
          v = scale * g;
        }
        dx[r * C + c] = from_f32<T>(v);
      }
    }
    __syncthreads();  // the next tile rewrites the partials and totals
  }
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, float* mean, float* rstd, float* rm, float* rv, const void* x, const void* w,
                    const void* b, int64_t R, int64_t C, float eps, float momentum, int training) {
  return launch<forward_kernel<T>>(tiles(C), dim3(kCols, kRowGroups), 0, s, static_cast<T*>(y), mean, rstd, rm, rv,
                                   static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), R, C, eps,
                                   momentum, training);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dx, void* dw, void* db, const void* dy, const void* x, const float* mean,
                     const float* rstd, const void* w, int64_t R, int64_t C, int training) {
  return launch<backward_kernel<T>>(tiles(C), dim3(kCols, kRowGroups), 0, s, static_cast<T*>(dx), static_cast<T*>(dw),
                                    static_cast<T*>(db), static_cast<const T*>(dy), static_cast<const T*>(x), mean, rstd,
                                    static_cast<const T*>(w), R, C, training);
}

mk_status cu_batchnorm_forward(mk_context* ctx, void* y, float* mean, float* rstd, float* running_mean,
                               float* running_var, const void* x, const void* w, const void* b, mk_dtype dtype, int64_t R,
                               int64_t C, float eps, float momentum, int training) {
  if (R <= 0 || C <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return forward<St>(ctx->stream, y, mean, rstd, running_mean, running_var, x, w, b, R, C, eps, momentum, training);
  });
  return check(e, "batchNorm");
}

mk_status cu_batchnorm_backward(mk_context* ctx, void* dx, void* dw, void* db, const void* dy, const void* x,
                                const float* mean, const float* rstd, const void* w, mk_dtype dtype, int64_t R, int64_t C,
                                int training) {
  if (R <= 0 || C <= 0) return MK_OK;
  const cudaError_t e = by_dtype(dtype, [&](auto st) {
    using St = decltype(st);
    return backward<St>(ctx->stream, dx, dw, db, dy, x, mean, rstd, w, R, C, training);
  });
  return check(e, "batchNormBackward");
}

}  // namespace

MK_CUDA_ENTRY(batchnorm_forward, cu_batchnorm_forward);
MK_CUDA_ENTRY(batchnorm_backward, cu_batchnorm_backward);

}  // namespace mk_cuda
