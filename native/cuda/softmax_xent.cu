// softmax_xent.cu: softmax cross-entropy per row (native/cpu/softmax_xent.cpp), f32 arithmetic on
// any storage type. Forward: one group of threads per row (a warp for narrow rows, the whole block
// for wide ones) finds the max, then Σ exp(x − max), and writes lse and the loss. Backward:
// elementwise dlogits = scale·(exp(x − lse) − onehot), 0 on ignored rows (target < 0).
#include "common.cuh"

namespace mk_cuda {
namespace {

constexpr int kThreads = 256;
// Rows of at most this many classes take a warp each; wider rows a block each.
constexpr int64_t kWarpRowMax = 512;

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// Reduces v over the G threads of a row group (G = 32: the warp, by shuffles; G = kThreads: the
// block, by shuffles then shared memory read back by every thread in the same order). Every
// thread of the group must call it; all get the result. red [kThreads/32]: shared scratch.
template <int G, class Op>
__device__ float group_reduce(float v, Op op, float* red) {
  for (int k = 16; k >= 1; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k));
  if constexpr (G == 32) return v;
  else {
    const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < G / 32; ++w) v = op(v, red[w]);
    __syncthreads();  // red is reused by the next reduction
    return v;
  }
}

// loss, lse [R] (f32); logits [R,C]; targets [R] (device int32, < 0: ignored). Each group of G
// threads takes rows blockIdx.x·(kThreads/G) + group, striding by the grid.
template <class T, int G>
__global__ void forward_kernel(float* __restrict__ loss, float* __restrict__ lse, const T* __restrict__ logits,
                               const int* __restrict__ targets, int64_t R, int64_t C) {
  constexpr int kRows = kThreads / G;
  __shared__ float red[kThreads / 32];
  const int lane = int(threadIdx.x) % G, group = int(threadIdx.x) / G;
  for (int64_t r0 = int64_t(blockIdx.x) * kRows; r0 < R; r0 += int64_t(gridDim.x) * kRows) {
    const int64_t r = r0 + group;
    if (r >= R) continue;  // a whole group (a warp: G = 32 when kRows > 1) skips together
    const T* x = logits + r * C;
    float m = -INFINITY;
    for (int64_t c = lane; c < C; c += G) m = fmaxf(m, to_f32(x[c]));
    m = group_reduce<G>(m, Max(), red);
    float s = 0.f;
    for (int64_t c = lane; c < C; c += G) s += expf(to_f32(x[c]) - m);
    s = group_reduce<G>(s, Sum(), red);
    if (lane == 0) {
      const float l = m + logf(s);
      const int t = targets[r];
      lse[r] = l;
      loss[r] = t < 0 ? 0.f : l - to_f32(x[t]);
    }
  }
}

// dlogits, logits [R,C]; lse [R] (f32); targets [R] (device int32). Grid-stride over R·C.
template <class T>
__global__ void backward_kernel(T* __restrict__ dlogits, const T* __restrict__ logits, const float* __restrict__ lse,
                                const int* __restrict__ targets, float scale, int64_t R, int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < R * C; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / C, c = i - r * C;
    const int t = targets[r];
    float v = 0.f;
    if (t >= 0) {
      v = scale * expf(to_f32(logits[i]) - lse[r]);
      if (c == t) v -= scale;
    }
    dlogits[i] = from_f32<T>(v);
  }
}

template <class T>
cudaError_t forward(cudaStream_t s, float* loss, float* lse, const void* logits, const int* t, int64_t R, int64_t C) {
  const T* x = static_cast<const T*>(logits);
  if (C <= kWarpRowMax) return launch<forward_kernel<T, 32>>(blocks(R * 32), kThreads, 0, s, loss, lse, x, t, R, C);
  return launch<forward_kernel<T, kThreads>>(unsigned(std::min<int64_t>(R, 65535)), kThreads, 0, s, loss, lse, x, t, R, C);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dlogits, const void* logits, const float* lse, const int* t, float scale,
                     int64_t R, int64_t C) {
  return launch<backward_kernel<T>>(blocks(R * C), kThreads, 0, s, static_cast<T*>(dlogits), static_cast<const T*>(logits),
                                    lse, t, scale, R, C);
}

mk_status cu_softmax_xent_forward(mk_context* ctx, float* loss, float* lse, const void* logits, const int32_t* targets,
                                  mk_dtype dtype, int64_t R, int64_t C) {
  if (R <= 0 || C <= 0) return MK_OK;
  return check(with_ints(targets, R, ctx->stream, [&](const int* t) {
                 return by_dtype(dtype, [&](auto st) {
                   using St = decltype(st);
                   return forward<St>(ctx->stream, loss, lse, logits, t, R, C);
                 });
               }),
               "softmaxCrossEntropy");
}

mk_status cu_softmax_xent_backward(mk_context* ctx, void* dlogits, const void* logits, const float* lse,
                                   const int32_t* targets, float scale, mk_dtype dtype, int64_t R, int64_t C) {
  if (R <= 0 || C <= 0) return MK_OK;
  return check(with_ints(targets, R, ctx->stream, [&](const int* t) {
                 return by_dtype(dtype, [&](auto st) {
                   using St = decltype(st);
                   return backward<St>(ctx->stream, dlogits, logits, lse, t, scale, R, C);
                 });
               }),
               "softmaxCrossEntropyBackward");
}

}  // namespace

MK_CUDA_ENTRY(softmax_xent_forward, cu_softmax_xent_forward);
MK_CUDA_ENTRY(softmax_xent_backward, cu_softmax_xent_backward);

}  // namespace mk_cuda
