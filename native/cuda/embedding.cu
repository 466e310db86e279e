// embedding.cu: row lookup y[n,:] = table[ids[n],:] and its scatter-add backward
// dtable[ids[n],:] += dy[n,:] (native/cpu/embedding.cpp). The backward is deterministic without
// atomics: the host groups the (host) ids by value, and one thread per (distinct id, column) sums
// that id's rows in increasing n, the CPU's order, then rounds into dtable once.
#include <algorithm>
#include <new>
#include <utility>
#include <vector>

#include "common.cuh"

namespace mk_cuda {
namespace {

unsigned blocks(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65535)); }

// y [N,D] = table [V,D] rows at ids [N] (device int32). Grid-stride over N·D: consecutive threads
// read consecutive columns of one row.
template <class T>
__global__ void forward_kernel(T* __restrict__ y, const T* __restrict__ table, const int* __restrict__ ids, int64_t N,
                               int64_t D) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / D, d = i - n * D;
    y[i] = table[int64_t(ids[n]) * D + d];
  }
}

// dtable [V,D] += the rows of dy [N,D] grouped by id. csr (device int32) holds order [N] (the row
// indices sorted by id, increasing n within an id), start [U+1] (group u is order[start[u] ..
// start[u+1])) and uniq [U] (the id of group u). Grid-stride over U·D, one thread per element of
// dtable touched, so no two threads write the same element.
template <class T>
__global__ void backward_kernel(T* __restrict__ dtable, const T* __restrict__ dy, const int* __restrict__ csr, int64_t N,
                                int64_t U, int64_t D) {
  const int* order = csr;
  const int* start = csr + N;
  const int* uniq = start + U + 1;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < U * D; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t u = i / D, d = i - u * D;
    T* t = dtable + int64_t(uniq[u]) * D + d;
    float acc = to_f32(*t);
    for (int k = start[u]; k < start[u + 1]; ++k) acc += to_f32(dy[int64_t(order[k]) * D + d]);
    *t = from_f32<T>(acc);
  }
}

template <class T>
cudaError_t forward(cudaStream_t s, void* y, const void* table, const int* ids, int64_t N, int64_t D) {
  return launch<forward_kernel<T>>(blocks(N * D), 256, 0, s, static_cast<T*>(y), static_cast<const T*>(table), ids, N, D);
}

template <class T>
cudaError_t backward(cudaStream_t s, void* dtable, const void* dy, const int* csr, int64_t N, int64_t U, int64_t D) {
  return launch<backward_kernel<T>>(blocks(U * D), 256, 0, s, static_cast<T*>(dtable), static_cast<const T*>(dy), csr, N,
                                    U, D);
}

mk_status cu_embedding_forward(mk_context* ctx, void* y, const void* table, const int32_t* ids, mk_dtype dtype, int64_t N,
                               int64_t D) {
  if (N <= 0 || D <= 0) return MK_OK;
  return check(with_ints(ids, N, ctx->stream, [&](const int* dids) {
                 return by_dtype(dtype, [&](auto st) {
                   using St = decltype(st);
                   return forward<St>(ctx->stream, y, table, dids, N, D);
                 });
               }),
               "embedding");
}

mk_status cu_embedding_backward(mk_context* ctx, void* dtable, const void* dy, const int32_t* ids, mk_dtype dtype,
                                int64_t N, int64_t D) {
  if (N <= 0 || D <= 0) return MK_OK;
  // The grouping, on the host: [order (N) | start (U+1) | uniq (U)], staged in one copy.
  std::vector<int32_t> csr;
  int64_t U = 0;
  try {
    std::vector<std::pair<int32_t, int32_t>> by_id(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) by_id[size_t(n)] = {ids[n], int32_t(n)};
    std::sort(by_id.begin(), by_id.end());  // pairs are distinct: increasing n within an id
    csr.resize(size_t(2 * N + 1));
    std::vector<int32_t> uniq;
    for (int64_t k = 0; k < N; ++k) {
      csr[size_t(k)] = by_id[size_t(k)].second;
      if (k == 0 || by_id[size_t(k)].first != by_id[size_t(k - 1)].first) {
        csr[size_t(N + U)] = int32_t(k);
        uniq.push_back(by_id[size_t(k)].first);
        ++U;
      }
    }
    csr[size_t(N + U)] = int32_t(N);
    csr.resize(size_t(N + U + 1));
    csr.insert(csr.end(), uniq.begin(), uniq.end());
  } catch (const std::bad_alloc&) {
    return fail(MK_ERR_OOM, "embeddingBackward: out of host memory grouping the ids");
  }
  return check(with_ints(csr.data(), int64_t(csr.size()), ctx->stream, [&](const int* dcsr) {
                 return by_dtype(dtype, [&](auto st) {
                   using St = decltype(st);
                   return backward<St>(ctx->stream, dtable, dy, dcsr, N, U, D);
                 });
               }),
               "embeddingBackward");
}

}  // namespace

MK_CUDA_ENTRY(embedding_forward, cu_embedding_forward);
MK_CUDA_ENTRY(embedding_backward, cu_embedding_backward);

}  // namespace mk_cuda
