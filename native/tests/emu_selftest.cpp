// emu_selftest.cpp: the CUDA emulation (native/cuda/emu) against what CUDA specifies, since every
// CUDA test in CI trusts it: shuffles and votes, barriers (a missing one must change the result,
// whichever way the data flows), barriers that cannot complete, __trap, launch limits, atomics
// across blocks running at once, dynamic shared memory, device memory checks, and mma.m16n8k16
// against a plain matrix product, ldmatrix fragments (plain and .trans) and cp.async landing only
// at its wait_group, and cudaSetDevice and cudaStreamQuery (what native/dist/nccl.cu calls). Built
// with the emulated library (scripts/build-cuda-emu.mjs); prints "selftest: N passed, N failed" last.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../cuda/common.cuh"
#include "../cuda/ptx.cuh"

using mk_cuda::launch;

namespace {

int g_passed = 0, g_failed = 0;

void expect(bool ok, const std::string& what) {
  (ok ? g_passed : g_failed)++;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
}

template <class T>
T* device(size_t n) {
  T* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) std::abort();
  return p;
}

// ---- kernels ----------------------------------------------------------------------------------

__global__ void shuffles(int* out, int width) {
  const int lane = int(threadIdx.x % 32), v = 100 + int(threadIdx.x);
  out[threadIdx.x * 4 + 0] = __shfl_xor_sync(0xffffffffu, v, 5, width);
  out[threadIdx.x * 4 + 1] = __shfl_down_sync(0xffffffffu, v, 3, width);
  out[threadIdx.x * 4 + 2] = __shfl_up_sync(0xffffffffu, v, 2, width);
  out[threadIdx.x * 4 + 3] = __shfl_sync(0xffffffffu, v, lane + 7, width);
}

__global__ void votes(unsigned* out) {
  const int lane = int(threadIdx.x % 32);
  out[threadIdx.x * 3 + 0] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  out[threadIdx.x * 3 + 1] = unsigned(__any_sync(0xffffffffu, lane == 17));
  out[threadIdx.x * 3 + 2] = unsigned(__all_sync(0xffffffffu, lane < 31));
}

// Each thread writes its slot, then reads a neighbour's (+1 or −1): right only with the barrier.
__global__ void neighbours(int* out, int step, bool barrier, int salt) {
  __shared__ int s[256];
  s[threadIdx.x] = int(threadIdx.x) * 10 + int(blockIdx.x) * 10000 + salt;
  if (barrier) __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + blockDim.x + unsigned(step)) % blockDim.x];
}

// A lane returns, then the others shuffle with it: can never complete.
__global__ void shuffle_with_returned(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

// Half a warp at __syncthreads, the other half in a shuffle over the whole warp: can never complete.
__global__ void mixed_barriers(int* out) {
  if (threadIdx.x < 16) __syncthreads();
  else out[threadIdx.x] = __shfl_sync(0xffffffffu, int(threadIdx.x), 16);
}

// Threads that return early do not hold up __syncthreads (as on sm_70 and later).
__global__ void early_return(int* out) {
  __shared__ int s[64];
  if (threadIdx.x >= 40) return;
  s[threadIdx.x] = 1;
  __syncthreads();
  int sum = 0;
  for (int i = 0; i < 40; ++i) sum += s[i];
  out[threadIdx.x] = sum;
}

__global__ void traps(int* out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1;
}

__global__ void adds(float* sum) { atomicAdd(sum, 1.f); }

// Dynamic shared memory starts as NaN (0xFF bytes); the first thread reports it, then it is usable.
__global__ void dynamic(float* out, int n) {
  float* s = mk_cuda::dynamic_smem<float>();
  if (threadIdx.x == 0) out[0] = s[n - 1];
  __syncthreads();
  s[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[1 + threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void nothing() {}

// One m16n8k16 tile: A [16][16], B [16][8] (bf16 bits) in fragment order per lane, C [16][8] f32.
__global__ void mma_tile(float* c, const uint16_t* a, const uint16_t* b) {
  const int lane = int(threadIdx.x), g = lane / 4, t = lane % 4;
  auto pair = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | uint32_t(hi) << 16; };
  uint32_t af[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
    af[r] = pair(a[row * 16 + col], a[row * 16 + col + 1]);
  }
  const uint32_t b0 = pair(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]), b1 = pair(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
  float acc[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  mk_cuda::mma16816<__nv_bfloat16>(acc, af, b0, b1);
  c[g * 8 + 2 * t] = acc[0], c[g * 8 + 2 * t + 1] = acc[1], c[(g + 8) * 8 + 2 * t] = acc[2], c[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// ldmatrix: 32 rows of 8 b16 values in shared memory, value 1000 + 8·row + col; lane l gives the
// address of row perm(l) = (5l + 3) mod 32, so that a matrix's rows come from the addresses and
// not from the lane order. out [32 lanes][NM] the registers.
constexpr int ld_perm(int l) { return (5 * l + 3) % 32; }
template <int NM, bool Trans>
__global__ void ldmatrix_rows(uint32_t* out) {
  __shared__ __align__(16) uint16_t s[32 * 8];
  const int l = int(threadIdx.x);
  for (int c = 0; c < 8; ++c) s[l * 8 + c] = uint16_t(1000 + 8 * l + c);
  __syncwarp();
  uint32_t r[NM];
  mk_cuda::ldmatrix<NM, Trans>(r, &s[ld_perm(l) * 8]);
  for (int j = 0; j < NM; ++j) out[l * NM + j] = r[j];
}

// cp.async: per thread 12 floats of dynamic shared memory (NaN at the start). Group 0 copies 4
// floats, group 1 zero-fills 4, a third copy is never committed; out [threads][6] what the thread
// reads after each step.
__global__ void async_copies(float* out, const float* src) {
  float* mine = mk_cuda::dynamic_smem<float>() + threadIdx.x * 12;
  const float* from = src + threadIdx.x * 4;
  float* o = out + threadIdx.x * 6;
  mk_cuda::cp_async16(mine, from, true);
  mk_cuda::cp_async_commit();
  mk_cuda::cp_async16(mine + 4, from, false);
  mk_cuda::cp_async_commit();
  mk_cuda::cp_async16(mine + 8, from, true);
  __syncthreads();
  o[0] = mine[0];  // no wait yet: NaN, even after a barrier
  mk_cuda::cp_async_wait<1>();
  o[1] = mine[0];  // group 0 landed
  o[2] = mine[4];  // group 1 still pending: NaN
  mk_cuda::cp_async_wait<0>();
  o[3] = mine[4];  // zero-filled
  o[4] = mine[8];  // never committed: NaN
  mk_cuda::cp_async_commit();
  mk_cuda::cp_async_wait<0>();
  o[5] = mine[8];
}

// The registers ldmatrix_rows<NM, Trans> must give (PTX ISA fragment layout of ldmatrix).
std::vector<uint32_t> ldmatrix_expected(int nm, bool trans) {
  auto val = [](int j, int row, int col) { return uint32_t(1000 + 8 * ld_perm(8 * j + row) + col); };
  std::vector<uint32_t> e(32 * nm);
  for (int l = 0; l < 32; ++l)
    for (int j = 0; j < nm; ++j) {
      const int g = l / 4, t = l % 4;
      e[l * nm + j] = trans ? val(j, 2 * t, g) | val(j, 2 * t + 1, g) << 16 : val(j, g, 2 * t) | val(j, g, 2 * t + 1) << 16;
    }
  return e;
}

template <int NM, bool Trans>
void check_ldmatrix() {
  uint32_t* d = device<uint32_t>(32 * NM);
  const cudaError_t e = launch<ldmatrix_rows<NM, Trans>>(1, 32, 0, nullptr, d);
  std::vector<uint32_t> h(32 * NM);
  cudaMemcpy(h.data(), d, h.size() * 4, cudaMemcpyDeviceToHost);
  cudaFree(d);
  expect(e == cudaSuccess && h == ldmatrix_expected(NM, Trans),
         "ldmatrix.x" + std::to_string(NM) + (Trans ? ".trans" : "") + " gives each lane the PTX fragment of each matrix");
}

std::string error_text(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

}  // namespace

int main() {
  // Shuffles at widths 32, 16 and 8 (two warps), against the CUDA Programming Guide's rules.
  int* si = device<int>(64 * 4);
  for (int width : {32, 16, 8}) {
    const cudaError_t e = launch<shuffles>(1, 64, 0, nullptr, si, width);
    std::vector<int> h(64 * 4);
    cudaMemcpy(h.data(), si, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
    bool ok = e == cudaSuccess;
    for (int tid = 0; tid < 64; ++tid) {
      const int lane = tid % 32, base = tid - lane, seg = lane & ~(width - 1);
      auto val = [&](int l) { return 100 + base + l; };
      const int x = lane ^ 5, d = lane + 3, u = lane - 2;
      ok &= h[tid * 4 + 0] == (x < seg + width ? val(x) : val(lane));
      ok &= h[tid * 4 + 1] == (d < seg + width ? val(d) : val(lane));
      ok &= h[tid * 4 + 2] == (u >= seg ? val(u) : val(lane));
      ok &= h[tid * 4 + 3] == val(seg + (lane + 7) % width);
    }
    expect(ok, "shuffles (xor, down, up, indexed) at width " + std::to_string(width));
  }
  cudaFree(si);

  unsigned* vo = device<unsigned>(64 * 3);
  {
    const cudaError_t e = launch<votes>(1, 64, 0, nullptr, vo);
    std::vector<unsigned> h(64 * 3);
    cudaMemcpy(h.data(), vo, h.size() * sizeof(unsigned), cudaMemcpyDeviceToHost);
    unsigned every3 = 0;
    for (int l = 0; l < 32; l += 3) every3 |= 1u << l;
    bool ok = e == cudaSuccess;
    for (int t = 0; t < 64; ++t) ok &= h[t * 3] == every3 && h[t * 3 + 1] == 1 && h[t * 3 + 2] == 0;
    expect(ok, "__ballot_sync, __any_sync, __all_sync");
  }
  cudaFree(vo);

  // A missing barrier shows whichever way the data flows.
  // (Static shared memory keeps what the last block on its OS thread left: each launch writes other
  // values here, as kernels given other data do.)
  int* nb = device<int>(3 * 256);
  int salt = 0;
  for (int step : {1, -1})
    for (bool barrier : {true, false}) {
      launch<neighbours>(3, 256, 0, nullptr, nb, step, barrier, ++salt);
      std::vector<int> h(3 * 256);
      cudaMemcpy(h.data(), nb, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
      int right = 0;
      for (int i = 0; i < 3 * 256; ++i) right += h[i] == ((i % 256 + 256 + step) % 256) * 10 + i / 256 * 10000 + salt;
      expect(barrier ? right == 3 * 256 : right < 3 * 192, std::string("neighbour ") + (step > 0 ? "+1" : "-1") + (barrier ? " with" : " without") +
                                                               " __syncthreads: " + std::to_string(right) + " of 768 right");
    }
  cudaFree(nb);

  int* o = device<int>(64);
  {
    const cudaError_t e = launch<shuffle_with_returned>(1, 32, 0, nullptr, o);
    expect(e == cudaErrorLaunchFailure && std::strstr(cudaGetErrorString(e), "cannot complete") &&
               std::strstr(cudaGetErrorString(e), "shuffle_with_returned"),
           "a shuffle with a lane that returned fails the launch: " + error_text(e));
    const cudaError_t e2 = launch<mixed_barriers>(1, 32, 0, nullptr, o);
    expect(e2 == cudaErrorLaunchFailure, "half a warp at __syncthreads, half in a shuffle fails the launch: " + error_text(e2));
    const cudaError_t e3 = launch<traps>(2, 32, 0, nullptr, o);
    expect(e3 == cudaErrorLaunchFailure && std::strstr(cudaGetErrorString(e3), "__trap()"), "__trap() fails the launch: " + error_text(e3));
    expect(cudaGetLastError() == cudaErrorLaunchFailure && cudaGetLastError() == cudaSuccess, "cudaGetLastError returns the error once");
    const cudaError_t e4 = launch<early_return>(1, 64, 0, nullptr, o);
    std::vector<int> h(40);
    cudaMemcpy(h.data(), o, h.size() * sizeof(int), cudaMemcpyDeviceToHost);
    bool ok = e4 == cudaSuccess;
    for (int v : h) ok &= v == 40;
    expect(ok, "threads that returned do not hold up __syncthreads");
  }
  cudaFree(o);

  expect(launch<nothing>(1, 1025, 0, nullptr) == cudaErrorInvalidConfiguration, "a block of 1025 threads is refused");
  expect(launch<nothing>(dim3(1, 65536), 32, 0, nullptr) == cudaErrorInvalidConfiguration, "gridDim.y 65536 is refused");
  expect(launch<nothing>(1, 32, 49 * 1024, nullptr) == cudaErrorInvalidValue, "49 KiB of dynamic shared memory needs the attribute");
  cudaGetLastError();

  float* sum = device<float>(1);
  cudaMemset(sum, 0, sizeof(float));
  launch<adds>(4096, 64, 0, nullptr, sum);
  float hs = 0;
  cudaMemcpy(&hs, sum, sizeof hs, cudaMemcpyDeviceToHost);
  expect(hs == 4096.f * 64.f, "atomicAdd from 4096 blocks at once: " + std::to_string(hs));
  cudaFree(sum);

  float* dy = device<float>(1 + 128);
  {
    const int n = 16000;  // 62.5 KiB, over the default 48 KiB
    expect(cudaFuncSetAttribute(dynamic, cudaFuncAttributeMaxDynamicSharedMemorySize, n * 4) == cudaSuccess, "cudaFuncSetAttribute");
    const cudaError_t e = launch<dynamic>(1, 128, size_t(n) * 4, nullptr, dy, n);
    std::vector<float> h(129);
    cudaMemcpy(h.data(), dy, h.size() * sizeof(float), cudaMemcpyDeviceToHost);
    bool ok = e == cudaSuccess && std::isnan(h[0]);
    for (int t = 0; t < 128; ++t) ok &= h[1 + t] == float((t + 1) % 128);
    expect(ok, "dynamic shared memory past 48 KiB with the attribute; NaN until written");
  }
  cudaFree(dy);

  // Device memory: copies must stay inside allocations; a full device refuses.
  {
    float* d = device<float>(16);
    float h[32] = {};
    expect(cudaMemcpy(d, h, 16 * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess, "a copy inside an allocation");
    expect(cudaMemcpy(d, h, 17 * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "a copy past the allocation is refused");
    expect(cudaMemcpy(h, h + 16, 16 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "a host pointer as the device side is refused");
    expect(cudaFree(h) == cudaErrorInvalidDevicePointer, "freeing a host pointer is refused");
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    void* big = nullptr;
    expect(cudaMalloc(&big, free + 1) == cudaErrorMemoryAllocation && !big, "more than the free device memory is refused");
    cudaFree(d);
    cudaGetLastError();
  }

  // Devices and streams (native/dist/nccl.cu's calls): one device, 0; a stream query answers
  // cudaErrorNotReady then cudaSuccess, on each stream by itself, without recording an error.
  {
    expect(cudaSetDevice(0) == cudaSuccess, "cudaSetDevice(0)");
    expect(cudaSetDevice(1) == cudaErrorInvalidDevice && std::strstr(cudaGetErrorString(cudaErrorInvalidDevice), "one device"),
           "cudaSetDevice(1) is refused: " + std::string(cudaGetErrorString(cudaErrorInvalidDevice)));
    cudaGetLastError();
    cudaStream_t a = nullptr, b = nullptr;
    cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);
    cudaStreamCreate(&b);
    const cudaError_t a1 = cudaStreamQuery(a), b1 = cudaStreamQuery(b), a2 = cudaStreamQuery(a), a3 = cudaStreamQuery(a), a4 = cudaStreamQuery(a),
                      b2 = cudaStreamQuery(b);
    expect(a1 == cudaErrorNotReady && a2 == cudaSuccess && a3 == cudaErrorNotReady && a4 == cudaSuccess && b1 == cudaErrorNotReady &&
               b2 == cudaSuccess,
           "cudaStreamQuery: not ready, then done, per stream");
    int polls = 0;
    while (cudaStreamQuery(nullptr) == cudaErrorNotReady) ++polls;
    expect(polls == 1, "cudaStreamQuery on the default stream: done at the second poll");
    expect(cudaPeekAtLastError() == cudaSuccess, "cudaErrorNotReady is not recorded as the last error");
    expect(std::string(cudaGetErrorName(cudaErrorNotReady)) == "cudaErrorNotReady" && std::string(cudaGetErrorString(cudaErrorNotReady)) == "device not ready",
           "cudaErrorNotReady's name and text");
    cudaStreamDestroy(a), cudaStreamDestroy(b);
  }

  // mma.m16n8k16 (bf16): C = 0.5 + A·B against a plain product of the same bf16 values.
  {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    std::vector<uint16_t> a(256), b(128);
    std::vector<float> fa(256), fb(128);
    for (int i = 0; i < 256; ++i) fa[i] = __bfloat162float(__float2bfloat16_rn(nd(rng))), a[i] = __float2bfloat16_rn(fa[i]).bits;
    for (int i = 0; i < 128; ++i) fb[i] = __bfloat162float(__float2bfloat16_rn(nd(rng))), b[i] = __float2bfloat16_rn(fb[i]).bits;
    uint16_t *da = device<uint16_t>(256), *db = device<uint16_t>(128);
    float* dc = device<float>(128);
    cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b.data(), 256, cudaMemcpyHostToDevice);
    const cudaError_t e = launch<mma_tile>(1, 32, 0, nullptr, dc, da, db);
    std::vector<float> c(128);
    cudaMemcpy(c.data(), dc, 512, cudaMemcpyDeviceToHost);
    double worst = 0;
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 8; ++j) {
        double s = 0.5;
        for (int k = 0; k < 16; ++k) s += double(fa[i * 16 + k]) * fb[k * 8 + j];
        worst = std::max(worst, std::fabs(s - c[i * 8 + j]));
      }
    expect(e == cudaSuccess && worst < 1e-5, "mma.m16n8k16 bf16 fragments give 0.5 + A·B (worst error " + std::to_string(worst) + ")");
    cudaFree(da), cudaFree(db), cudaFree(dc);
  }

  // ldmatrix, every count with and without .trans against the layout, and two registers worked
  // out by hand: x4 lane 6 (g 1, t 2), matrix 2 is rows perm(16..23).
  check_ldmatrix<1, false>(), check_ldmatrix<2, false>(), check_ldmatrix<4, false>();
  check_ldmatrix<1, true>(), check_ldmatrix<2, true>(), check_ldmatrix<4, true>();
  {
    uint32_t* d = device<uint32_t>(128);
    std::vector<uint32_t> h(128), ht(128);
    launch<ldmatrix_rows<4, false>>(1, 32, 0, nullptr, d);
    cudaMemcpy(h.data(), d, 512, cudaMemcpyDeviceToHost);
    launch<ldmatrix_rows<4, true>>(1, 32, 0, nullptr, d);
    cudaMemcpy(ht.data(), d, 512, cudaMemcpyDeviceToHost);
    cudaFree(d);
    // Plain: row g = 1 of matrix 2 is storage row perm(17) = 24, cols 4, 5: 1196 | 1197 << 16.
    // Trans: rows 2t = 4, 5 of matrix 2 are storage rows perm(20) = 7, perm(21) = 12, col g = 1.
    expect(h[6 * 4 + 2] == (1196u | 1197u << 16) && ht[6 * 4 + 2] == (1057u | 1097u << 16), "ldmatrix.x4 lane 6, matrix 2, by hand");
  }

  // cp.async lands at the wait that retires its group, not before (not at a barrier either).
  {
    const int n = 64;
    std::vector<float> src(n * 4);
    for (int i = 0; i < n * 4; ++i) src[i] = float(i + 1);
    float *ds = device<float>(n * 4), *dout = device<float>(n * 6);
    cudaMemcpy(ds, src.data(), src.size() * 4, cudaMemcpyHostToDevice);
    const cudaError_t e = launch<async_copies>(1, n, n * 12 * sizeof(float), nullptr, dout, ds);
    std::vector<float> h(n * 6);
    cudaMemcpy(h.data(), dout, h.size() * 4, cudaMemcpyDeviceToHost);
    bool early = false, late = true;
    for (int t = 0; t < n; ++t) {
      const float* o = &h[t * 6];
      early |= !std::isnan(o[0]) || !std::isnan(o[2]) || !std::isnan(o[4]);
      late &= o[1] == src[t * 4] && o[3] == 0.f && o[5] == src[t * 4];
    }
    expect(e == cudaSuccess && !early, "cp.async does not land before the wait_group that retires its group (nor at a barrier, nor uncommitted)");
    expect(e == cudaSuccess && late, "cp.async lands at its wait_group; src-size 0 zero-fills");
    cudaFree(ds), cudaFree(dout);
  }

  std::printf("selftest: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
