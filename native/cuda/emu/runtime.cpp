// runtime.cpp: the emulated CUDA runtime (see emu.h and cuda_runtime.h here): fibers and the
// block scheduler with its barriers, the OS threads that run blocks, device memory, errors.
// MK_EMU_THREADS sets the OS threads (default: the CPUs, at most 4); MK_EMU_DEVICE_MEMORY the
// device memory in bytes (default 16 GiB), past which cudaMalloc fails as on a full GPU.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define MK_ASAN 1
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "the emulated CUDA backend switches fibers with x86-64 code (runtime.cpp)"
#endif

// mk_emu_switch(save, load): saves the callee-saved registers, MXCSR and the x87 control word
// on the current stack and its stack pointer in *save, then continues the context whose stack
// pointer is `load`. A new fiber's stack holds such a frame whose return address is
// mk_emu_fiber_start, which calls r13(r12).
extern "C" void mk_emu_switch(void** save, void* load);
extern "C" void mk_emu_fiber_start();
asm(R"(
  .pushsection .text
  .globl mk_emu_switch
  .hidden mk_emu_switch
  .type mk_emu_switch, @function
mk_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  fldcw (%rsp)
  ldmxcsr 8(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size mk_emu_switch, .-mk_emu_switch
  .globl mk_emu_fiber_start
  .hidden mk_emu_fiber_start
  .type mk_emu_fiber_start, @function
mk_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size mk_emu_fiber_start, .-mk_emu_fiber_start
  .popsection
)");

namespace mk_emu {

thread_local const Lane* t_lane = nullptr;
thread_local const Block* t_block = nullptr;

namespace {

#ifdef MK_ASAN
constexpr size_t kStackBytes = size_t(256) << 10;
#else
constexpr size_t kStackBytes = size_t(64) << 10;
#endif

std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// ---- errors ------------------------------------------------------------------------------

thread_local cudaError_t t_last = cudaSuccess;
thread_local cudaError_t t_detail_of = cudaSuccess;
thread_local std::string t_detail, t_text;

const char* base_text(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
  }
  return "unknown error";
}

// Records e (with what the emulator knows about it) as this thread's last error; returns e.
cudaError_t fail(cudaError_t e, std::string detail) {
  t_last = e;
  t_detail_of = e;
  t_detail = std::move(detail);
  return e;
}

// ---- fibers and the block scheduler -------------------------------------------------------

enum class St : uint8_t { Ready, AtBlock, AtWarp, Done };

struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;  // lowest address; its first page is a guard
  Lane lane{};
  St st = St::Done;
  unsigned mask = 0;    // the mask of the warp-level call it waits in
  unsigned parity = 0;  // which of the warp's two slot sets its next call uses
  // cp.async copies not performed yet, in issue order; groups[i] = how many of them the i-th
  // committed (and not yet retired) group ends after.
  struct Copy {
    void* dst;
    const void* src;
    unsigned bytes, src_bytes;
  };
  std::vector<Copy> copies;
  std::vector<size_t> groups;
#ifdef MK_ASAN
  void* fake = nullptr;
#endif
};

struct Warp {
  alignas(16) unsigned char slots[2][32][kSlotBytes];
  unsigned waiting = 0;   // lanes inside a warp-level call
  unsigned existing = 0;  // lanes that exist in this block
};

struct Worker {
  std::vector<Fiber> fibers;
  unsigned char* stacks = nullptr;
  size_t capacity = 0;
  std::vector<Warp> warps;
  std::vector<unsigned> order;  // the run order of a pass
  std::vector<unsigned> pace;   // per warp: out of 4 passes, how many it sits out (run_block)
  void* sched_sp = nullptr;
  Fiber* cur = nullptr;
  Block block{};
  unsigned n = 0, live = 0, at_block = 0;
  bool failed = false, dirty = false;
  std::string why;
  Body body = nullptr;
  void* ctx = nullptr;
  const char* kernel = "";
  unsigned cw = 0x037f, mxcsr = 0x1f80;
#ifdef MK_ASAN
  void* sched_fake = nullptr;
  const void* main_bottom = nullptr;
  size_t main_size = 0;
#endif
  ~Worker() {
    if (stacks) munmap(stacks, capacity * kStackBytes);
  }
};

thread_local Worker t_worker;

void ensure_fibers(Worker& w, unsigned n) {
  if (n > w.capacity) {
    if (w.stacks) munmap(w.stacks, w.capacity * kStackBytes);
    w.capacity = std::max<size_t>(n, 128);
    void* m = mmap(nullptr, w.capacity * kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "mamakit emulated CUDA: cannot map %zu fiber stacks\n", w.capacity);
      std::abort();
    }
    w.stacks = static_cast<unsigned char*>(m);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    w.fibers.assign(w.capacity, Fiber{});
    for (size_t i = 0; i < w.capacity; ++i) {
      w.fibers[i].stack = w.stacks + i * kStackBytes;
      mprotect(w.fibers[i].stack, page, PROT_NONE);  // an overflow faults instead of corrupting a neighbour
    }
  }
  unsigned cw = 0, mxcsr = 0;
  asm volatile("fnstcw %0" : "=m"(cw));
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  w.cw = cw & 0xffff, w.mxcsr = mxcsr;
}

void resume(Worker& w, Fiber& f) {
  w.cur = &f;
  t_lane = &f.lane;
#ifdef MK_ASAN
  __sanitizer_start_switch_fiber(&w.sched_fake, f.stack, kStackBytes);
#endif
  mk_emu_switch(&w.sched_sp, f.sp);
#ifdef MK_ASAN
  __sanitizer_finish_switch_fiber(w.sched_fake, nullptr, nullptr);
#endif
  w.cur = nullptr;
}

void yield(Worker& w, Fiber& f) {
#ifdef MK_ASAN
  __sanitizer_start_switch_fiber(&f.fake, w.main_bottom, w.main_size);
#endif
  mk_emu_switch(&f.sp, w.sched_sp);
#ifdef MK_ASAN
  __sanitizer_finish_switch_fiber(f.fake, &w.main_bottom, &w.main_size);
#endif
}

void release_block(Worker& w) {
  for (unsigned i = 0; i < w.n; ++i)
    if (w.fibers[i].st == St::AtBlock) w.fibers[i].st = St::Ready;
  w.at_block = 0;
}

// The fiber has returned from the kernel (or trapped): it is never resumed.
[[noreturn]] void leave(Worker& w, Fiber& f) {
  f.st = St::Done;
  --w.live;
  if (w.live && w.at_block == w.live) release_block(w);
#ifdef MK_ASAN
  __sanitizer_start_switch_fiber(nullptr, w.main_bottom, w.main_size);
#endif
  void* dead;
  mk_emu_switch(&dead, w.sched_sp);
  __builtin_unreachable();
}

void fiber_entry(Fiber* f) {
  Worker& w = t_worker;
#ifdef MK_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &w.main_bottom, &w.main_size);
#endif
  w.body(w.ctx);
  leave(w, *f);
}

// A frame that mk_emu_switch pops into fiber_entry(f), on top of f's stack.
void* fresh_frame(const Worker& w, Fiber& f) {
  auto* p = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(f.stack + kStackBytes) & ~uintptr_t(15));
  p[-1] = reinterpret_cast<uint64_t>(&mk_emu_fiber_start);  // return address
  p[-2] = 0;                                                // rbp
  p[-3] = 0;                                                // rbx
  p[-4] = reinterpret_cast<uint64_t>(&f);                   // r12: the argument
  p[-5] = reinterpret_cast<uint64_t>(&fiber_entry);         // r13: the function
  p[-6] = 0;                                                // r14
  p[-7] = 0;                                                // r15
  p[-8] = w.mxcsr;
  p[-9] = w.cw;
  return &p[-9];
}

const char* state_name(St s) {
  switch (s) {
    case St::Ready: return "running";
    case St::AtBlock: return "at __syncthreads()";
    case St::AtWarp: return "in a warp-level call";
    case St::Done: return "returned";
  }
  return "?";
}

// Why no thread of the block can go on: per warp, what its lanes are doing.
std::string deadlock_report(const Worker& w) {
  std::string r = "the threads of a block wait at barriers that cannot complete:";
  for (size_t wi = 0; wi < w.warps.size() && r.size() < 900; ++wi) {
    unsigned count[4] = {0, 0, 0, 0};
    for (unsigned l = 0; l < 32 && wi * 32 + l < w.n; ++l) count[int(w.fibers[wi * 32 + l].st)]++;
    r += format(" warp %zu:", wi);
    for (int s = 0; s < 4; ++s)
      if (count[s]) r += format(" %u %s", count[s], state_name(St(s)));
    r += ";";
  }
  return r;
}

void run_block(Worker& w, uint3 bidx, dim3 block, dim3 grid, unsigned char* dyn) {
  const unsigned n = block.x * block.y * block.z;
  ensure_fibers(w, n);
  w.n = n;
  w.live = n;
  w.at_block = 0;
  w.block = Block{bidx, block, grid, dyn};
  t_block = &w.block;
  w.warps.resize((n + 31) / 32);
  for (size_t i = 0; i < w.warps.size(); ++i) {
    w.warps[i].waiting = 0;
    const unsigned lanes = std::min<unsigned>(32, n - unsigned(i) * 32);
    w.warps[i].existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  }
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = w.fibers[i];
#ifdef MK_ASAN
    // A block that failed left frames behind; a clean run leaves only each fiber's entry frame,
    // which the next run writes again.
    __asan_unpoison_memory_region(f.stack + kStackBytes - (w.dirty ? kStackBytes - 4096 : 4096), w.dirty ? kStackBytes - 4096 : 4096);
#endif
    f.lane = Lane{{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)}, i, i / 32, i % 32};
    f.st = St::Ready;
    f.parity = 0;
    f.copies.clear();
    f.groups.clear();
    f.sp = fresh_frame(w, f);
  }
  w.dirty = false;
  // Each pass runs the ready threads in a shuffled order, seeded by the block and the pass (the
  // same every run): a read that a missing barrier leaves unordered meets its write too late
  // about half the time, whichever way the data flows.
  w.order.resize(n);
  for (unsigned i = 0; i < n; ++i) w.order[i] = i;
  uint64_t seed = (uint64_t(bidx.z) * 65536 + bidx.y) * 2147483648ull + bidx.x + 1;
  auto next = [&seed] { return seed = seed * 6364136223846793005ull + 1442695040888963407ull; };
  // Warps drift apart between barriers: each warp of the block gets a pace (it sits out a pass
  // with probability 0, 1/4, 1/2 or 3/4), so that between two __syncthreads one warp runs dozens
  // of warp-level calls (mma, ldmatrix, shuffles) ahead of another, as warps do on a GPU. Without
  // it, warp-level calls would keep warps in lockstep, and a warp that overwrites shared memory
  // another warp has yet to read (a barrier missing before a write) would go unseen.
  const size_t nw = w.warps.size();
  std::vector<unsigned>& pace = w.pace;
  pace.assign(nw, 0);
  if (nw > 1)
    for (size_t i = 0; i < nw; ++i) pace[i] = unsigned(next() >> 33) % 4;
  while (w.live && !w.failed) {
    for (unsigned i = n; i > 1; --i) std::swap(w.order[i - 1], w.order[unsigned((next() >> 33) % i)]);
    uint32_t sitting = 0;
    for (size_t i = 0; i < nw; ++i)
      if (pace[i] && unsigned(next() >> 33) % 4 < pace[i]) sitting |= 1u << i;
    bool ran = false;
    for (int attempt = 0; attempt < 2 && !ran; ++attempt, sitting = 0) {  // if every ready warp sat out, a pass with none out
      for (unsigned k = 0; k < n && !w.failed; ++k) {
        Fiber& f = w.fibers[w.order[k]];
        if (f.st != St::Ready || ((sitting >> f.lane.warp) & 1u)) continue;
        resume(w, f);
        ran = true;
      }
      if (!sitting) break;
    }
    if (!ran && w.live && !w.failed) w.failed = true, w.why = deadlock_report(w);
  }
  if (w.failed) w.dirty = true;
  t_lane = nullptr;
  t_block = nullptr;
}

// ---- OS threads -----------------------------------------------------------------------------

// Runs a job on every thread of the pool and on the caller, and returns when all are done.
class Pool {
 public:
  Pool() {
    unsigned n = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
    if (const char* e = std::getenv("MK_EMU_THREADS")) n = unsigned(std::max(1, std::atoi(e)));
    for (unsigned i = 1; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  size_t size() const { return threads_.size() + 1; }
  void run(const std::function<void()>& job) {
    {
      std::lock_guard<std::mutex> l(m_);
      job_ = &job;
      busy_ = unsigned(threads_.size());
      ++gen_;
    }
    cv_.notify_all();
    job();
    std::unique_lock<std::mutex> l(m_);
    done_.wait(l, [&] { return busy_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void()>* job;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stop_ || gen_ != seen; });
        if (stop_) return;
        seen = gen_;
        job = job_;
      }
      (*job)();
      std::lock_guard<std::mutex> l(m_);
      if (--busy_ == 0) done_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, done_;
  const std::function<void()>* job_ = nullptr;
  unsigned busy_ = 0;
  uint64_t gen_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

std::mutex g_launch;
std::mutex g_attr_m;
std::map<const void*, int> g_max_dyn;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
constexpr size_t kDefaultDynSmem = 48 << 10, kMaxDynSmem = 227 << 10;

// "mk_cuda::{anonymous}::matmul_kernel<float>" out of kernel_name<K>()'s __PRETTY_FUNCTION__.
std::string short_name(const char* pretty) {
  std::string s = pretty;
  const size_t at = s.find("K = ");
  if (at == std::string::npos) return s;
  s = s.substr(at + 4);
  if (!s.empty() && s.back() == ']') s.pop_back();
  for (const char* drop : {"mk_cuda::", "{anonymous}::"})
    for (size_t p; (p = s.find(drop)) != std::string::npos;) s.erase(p, std::strlen(drop));
  return s;
}

// ---- device memory --------------------------------------------------------------------------

std::mutex g_mem;
std::map<uintptr_t, size_t> g_allocs;  // address → bytes
size_t g_used = 0;

size_t memory_limit() {
  static const size_t limit = [] {
    const char* e = std::getenv("MK_EMU_DEVICE_MEMORY");
    const double v = e ? std::atof(e) : 0;
    return v > 0 ? size_t(v) : size_t(16) << 30;
  }();
  return limit;
}

// Is [p, p + bytes) inside one live allocation?
bool on_device(const void* p, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> l(g_mem);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}

cudaError_t check_range(const char* call, const char* what, const void* p, size_t bytes) {
  if (!bytes || on_device(p, bytes)) return cudaSuccess;
  return fail(cudaErrorInvalidValue, format("%s: the %s [%p, +%zu bytes) is not inside a device allocation", call, what, p, bytes));
}

cudaError_t check_copy(const char* call, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  cudaError_t e = cudaSuccess;
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice) e = check_range(call, "destination", dst, bytes);
  if (e == cudaSuccess && (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice))
    e = check_range(call, "source", src, bytes);
  if (e == cudaSuccess && kind > cudaMemcpyDefault) e = fail(cudaErrorInvalidMemcpyDirection, call);
  return e;
}

}  // namespace

// ---- the execution model (emu.h) ------------------------------------------------------------

void syncthreads() {
  Worker& w = t_worker;
  Fiber& f = *w.cur;
  f.st = St::AtBlock;
  if (++w.at_block == w.live) release_block(w);
  yield(w, f);
}

const unsigned char* warp_exchange(unsigned mask, const void* mine, size_t bytes) {
  Worker& w = t_worker;
  Fiber& f = *w.cur;
  Warp& wp = w.warps[f.lane.warp];
  const unsigned me = 1u << f.lane.lane;
  if (!(mask & me)) trap("a warp-level call whose mask leaves out the calling lane");
  if (mask & ~wp.existing) trap("a warp-level call whose mask names lanes this block does not have");
  const unsigned par = f.parity;
  f.parity ^= 1;
  if (bytes) std::memcpy(wp.slots[par][f.lane.lane], mine, bytes);
  f.st = St::AtWarp;
  f.mask = mask;
  wp.waiting |= me;
  if ((wp.waiting & mask) == mask) {
    for (unsigned l = 0; l < 32; ++l) {
      if (!((mask >> l) & 1u)) continue;
      const Fiber& o = w.fibers[f.lane.warp * 32 + l];
      if (o.mask != mask || o.parity != f.parity) trap("the lanes of a warp are in different warp-level calls");
    }
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l) & 1u) w.fibers[f.lane.warp * 32 + l].st = St::Ready;
    wp.waiting &= ~mask;
  }
  yield(w, f);
  return &wp.slots[par][0][0];
}

void cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
  if (bytes != 4 && bytes != 8 && bytes != 16) trap("cp.async: a copy of other than 4, 8 or 16 bytes");
  if (src_bytes > bytes) trap("cp.async: src-size past the copy size");
  if (reinterpret_cast<uintptr_t>(dst) % bytes || (src_bytes && reinterpret_cast<uintptr_t>(src) % bytes))
    trap("cp.async: an address not aligned to the copy size");
  t_worker.cur->copies.push_back({dst, src, bytes, src_bytes});
}

void cp_async_commit() {
  Fiber& f = *t_worker.cur;
  f.groups.push_back(f.copies.size());
}

void cp_async_wait(int n) {
  Fiber& f = *t_worker.cur;
  if (n < 0) trap("cp.async.wait_group with a negative count");
  if (f.groups.size() <= size_t(n)) return;
  const size_t retired = f.groups.size() - size_t(n), done = f.groups[retired - 1];
  for (size_t i = 0; i < done; ++i) {
    const Fiber::Copy& c = f.copies[i];
    if (c.src_bytes) std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, c.bytes - c.src_bytes);
  }
  f.copies.erase(f.copies.begin(), f.copies.begin() + std::ptrdiff_t(done));
  f.groups.erase(f.groups.begin(), f.groups.begin() + std::ptrdiff_t(retired));
  for (size_t& g : f.groups) g -= done;
}

void trap(const char* why) {
  Worker& w = t_worker;
  if (!w.cur) {
    std::fprintf(stderr, "mamakit emulated CUDA: %s outside a kernel\n", why);
    std::abort();
  }
  Fiber& f = *w.cur;
  if (!w.failed) {
    const Block& b = w.block;
    w.failed = true;
    w.why = format("%s (block (%u,%u,%u), thread (%u,%u,%u))", why, b.idx.x, b.idx.y, b.idx.z, f.lane.idx.x, f.lane.idx.y,
                   f.lane.idx.z);
  }
  leave(w, f);
}

cudaError_t set_max_dynamic_smem(const void* kernel, int bytes) {
  if (bytes < 0 || size_t(bytes) > kMaxDynSmem)
    return fail(cudaErrorInvalidValue, format("cudaFuncSetAttribute: %d bytes of dynamic shared memory (at most %zu)", bytes, kMaxDynSmem));
  std::lock_guard<std::mutex> l(g_attr_m);
  g_max_dyn[kernel] = bytes;
  return cudaSuccess;
}

cudaError_t run_grid(const void* kernel, const char* pretty, dim3 grid, dim3 block, size_t smem, Body body, void* ctx) {
  const std::string name = short_name(pretty);
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (!threads || threads > 1024 || block.z > 64 || !grid.x || !grid.y || !grid.z || grid.x > 0x7fffffffu || grid.y > 65535 ||
      grid.z > 65535)
    return fail(cudaErrorInvalidConfiguration, format("%s: grid (%u,%u,%u) of blocks (%u,%u,%u)", name.c_str(), grid.x, grid.y, grid.z,
                                                      block.x, block.y, block.z));
  size_t limit = kDefaultDynSmem;
  {
    std::lock_guard<std::mutex> l(g_attr_m);
    auto it = g_max_dyn.find(kernel);
    if (it != g_max_dyn.end()) limit = size_t(it->second);
  }
  if (smem > limit)
    return fail(cudaErrorInvalidValue, format("%s: %zu bytes of dynamic shared memory, %zu allowed (cudaFuncSetAttribute raises it)",
                                              name.c_str(), smem, limit));
  std::lock_guard<std::mutex> serial(g_launch);
  const uint64_t total = uint64_t(grid.x) * grid.y * grid.z;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex why_m;
  std::string why;
  const std::function<void()> work = [&] {
    Worker& w = t_worker;
    w.body = body;
    w.ctx = ctx;
    w.kernel = name.c_str();
    for (uint64_t b; !failed.load(std::memory_order_relaxed) && (b = next.fetch_add(1)) < total;) {
      // Dynamic shared memory: exactly the bytes launched (past them is out of bounds), 0xFF (NaN) at the start.
      auto* dyn = static_cast<unsigned char*>(smem ? std::malloc(smem) : nullptr);
      if (dyn) std::memset(dyn, 0xff, smem);
      const uint3 bidx{unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / (uint64_t(grid.x) * grid.y))};
      run_block(w, bidx, block, grid, dyn);
      std::free(dyn);
      if (w.failed) {
        std::lock_guard<std::mutex> l(why_m);
        if (!failed.exchange(true)) why = w.why;
        w.failed = false;
      }
    }
  };
  if (total == 1 || pool().size() == 1) work();
  else pool().run(work);
  if (failed) return fail(cudaErrorLaunchFailure, name + ": " + why);
  return cudaSuccess;
}

}  // namespace mk_emu

#ifdef MK_ASAN
// After AddressSanitizer's report: which kernel, block and thread made the access. (A callback
// registered at load: the library is opened with dlopen, after the runtime has bound its hooks.)
namespace {
void asan_report(const char*) {
  const mk_emu::Worker& w = mk_emu::t_worker;
  if (!w.cur) return;
  const mk_emu::Lane& l = w.cur->lane;
  std::fprintf(stderr, "mamakit emulated CUDA: the access above was made by kernel %s, block (%u,%u,%u), thread (%u,%u,%u)\n", w.kernel,
               w.block.idx.x, w.block.idx.y, w.block.idx.z, l.idx.x, l.idx.y, l.idx.z);
}
const bool asan_hooked = (__asan_set_error_report_callback(asan_report), true);
}  // namespace
#endif

// ---- the runtime API (cuda_runtime.h) ---------------------------------------------------------

using mk_emu::fail;

struct CUstream_st {
  int id;
  std::atomic<unsigned> queries{0};  // cudaStreamQuery's count, whose parity it answers by
};

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the emulator has one device, 0");
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "the emulator has one device, 0");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "emulated CUDA on the CPU (%zu threads, not a GPU)", mk_emu::pool().size());
  prop->totalGlobalMem = mk_emu::memory_limit();
  prop->sharedMemPerBlock = mk_emu::kDefaultDynSmem;
  prop->sharedMemPerBlockOptin = mk_emu::kMaxDynSmem;
  prop->major = 9, prop->minor = 0;
  prop->multiProcessorCount = 132;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "the emulator has one device, 0");
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(mk_emu::kDefaultDynSmem); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(mk_emu::kMaxDynSmem); break;
    default: return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: an attribute the emulator does not model");
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st{1};
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
// Not an error: cudaErrorNotReady is not recorded as the last error (as in CUDA).
cudaError_t cudaStreamQuery(cudaStream_t s) {
  static std::atomic<unsigned> legacy_queries{0};  // the default stream's (a null handle)
  const unsigned k = (s ? s->queries : legacy_queries).fetch_add(1, std::memory_order_relaxed);
  return k % 2 == 0 ? cudaErrorNotReady : cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue, "cudaMalloc: null result pointer");
  *p = nullptr;
  if (!bytes) return cudaSuccess;
  {
    std::lock_guard<std::mutex> l(mk_emu::g_mem);
    if (bytes > mk_emu::memory_limit() - mk_emu::g_used)
      return fail(cudaErrorMemoryAllocation, mk_emu::format("cudaMalloc: %zu bytes requested, %zu of %zu free", bytes,
                                                            mk_emu::memory_limit() - mk_emu::g_used, mk_emu::memory_limit()));
  }
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation, "cudaMalloc: the host is out of memory");
  std::memset(q, 0xff, bytes);
  std::lock_guard<std::mutex> l(mk_emu::g_mem);
  mk_emu::g_allocs[reinterpret_cast<uintptr_t>(q)] = bytes;
  mk_emu::g_used += bytes;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> l(mk_emu::g_mem);
    auto it = mk_emu::g_allocs.find(reinterpret_cast<uintptr_t>(p));
    if (it == mk_emu::g_allocs.end()) return fail(cudaErrorInvalidDevicePointer, mk_emu::format("cudaFree: %p is not a device allocation", p));
    mk_emu::g_used -= it->second;
    mk_emu::g_allocs.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  std::lock_guard<std::mutex> l(mk_emu::g_mem);
  *total = mk_emu::memory_limit();
  *free = *total - mk_emu::g_used;
  return cudaSuccess;
}

struct CUmemPoolHandle_st {
  int device;
};

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  static CUmemPoolHandle_st the_pool{0};
  if (device != 0) return fail(cudaErrorInvalidDevice, "the emulator has one device, 0");
  *pool = &the_pool;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void*) {
  if (!pool) return fail(cudaErrorInvalidValue, "cudaMemPoolSetAttribute: null pool");
  return attr == cudaMemPoolAttrReleaseThreshold ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaMemPoolSetAttribute: not settable");
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (!pool) return fail(cudaErrorInvalidValue, "cudaMemPoolGetAttribute: null pool");
  std::lock_guard<std::mutex> l(mk_emu::g_mem);
  switch (attr) {
    case cudaMemPoolAttrReservedMemCurrent:
    case cudaMemPoolAttrUsedMemCurrent: *static_cast<uint64_t*>(value) = mk_emu::g_used; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue, "cudaMemPoolGetAttribute: an attribute the emulator does not model");
  }
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t) {
  return pool ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaMemPoolTrimTo: null pool");
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = mk_emu::check_copy("cudaMemcpy", dst, src, bytes, kind)) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (cudaError_t e = mk_emu::check_copy("cudaMemcpyAsync", dst, src, bytes, kind)) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width past the pitch");
  if (!width || !height) return cudaSuccess;
  const size_t dspan = dpitch * (height - 1) + width, sspan = spitch * (height - 1) + width;
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice)
    if (cudaError_t e = mk_emu::check_range("cudaMemcpy2DAsync", "destination", dst, dspan)) return e;
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice)
    if (cudaError_t e = mk_emu::check_range("cudaMemcpy2DAsync", "source", src, sspan)) return e;
  for (size_t r = 0; r < height; ++r)
    std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (cudaError_t e = mk_emu::check_range("cudaMemset", "destination", p, bytes)) return e;
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

cudaError_t cudaGetLastError() {
  const cudaError_t e = mk_emu::t_last;
  mk_emu::t_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return mk_emu::t_last; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

// The runtime's text for e, and what the emulator knows of the last such error on this thread.
const char* cudaGetErrorString(cudaError_t e) {
  mk_emu::t_text = mk_emu::base_text(e);
  if (e != cudaSuccess && e == mk_emu::t_detail_of && !mk_emu::t_detail.empty()) mk_emu::t_text += ": " + mk_emu::t_detail;
  return mk_emu::t_text.c_str();
}
