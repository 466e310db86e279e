// threadpool.cpp: see threadpool.h.
#include "threadpool.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MK_PAUSE() _mm_pause()
#else
#define MK_PAUSE() ((void)0)
#endif

namespace mk {
namespace {

int detect_threads() {
  if (const char* env = std::getenv("MAMAKIT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 1024) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? static_cast<int>(n) : 1;
}

thread_local bool t_in_pool = false;  // true on workers and on a caller inside parallel_for

class Pool {
 public:
  explicit Pool(int n) : size_(n) {
    for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { work(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return size_; }

  void run(int64_t n, void (*fn)(void*, int64_t, int), void* arg) {
    if (n <= 0) return;
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (n == 1 || size_ == 1 || t_in_pool || !busy.owns_lock()) {
      for (int64_t i = 0; i < n; ++i) fn(arg, i, 0);
      return;
    }
    fn_ = fn;
    arg_ = arg;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    t_in_pool = true;
    drain(0);
    t_in_pool = false;
    // Wait for the workers to leave this job before its fn/arg go out of scope.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin < 20000) {
        MK_PAUSE();
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
      }
    }
  }

 private:
  void drain(int thread) {
    for (;;) {
      int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= n_) break;
      fn_(arg_, i, thread);
    }
  }

  void work(int thread) {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      uint64_t g;
      int spin = 0;
      while ((g = generation_.load(std::memory_order_acquire)) == seen && spin < 200000) {
        MK_PAUSE();
        ++spin;
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_) return;
      drain(thread);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // one job at a time; a second caller runs serially
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  void (*fn_)(void*, int64_t, int) = nullptr;
  void* arg_ = nullptr;
  int64_t n_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  // Leaked on purpose: joining threads from a static destructor at process exit can hang
  // when Node tears down while a worker thread still holds the addon.
  static Pool* p = new Pool(detect_threads());
  return *p;
}

}  // namespace

void parallel_for(int64_t n, void (*fn)(void*, int64_t, int), void* arg) { pool().run(n, fn, arg); }

int threads() { return pool().size(); }

}  // namespace mk
