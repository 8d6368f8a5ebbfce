// Kernel execution: the blocks of a grid one after another on the calling OS thread, the threads
// of a block as fibers. A block runs in rounds: each round resumes every live fiber once, in
// thread order, and each runs until its next __syncthreads() or its end. So after round r every
// fiber has either passed r barriers and waits at barrier r + 1, or returned. When some wait and
// some returned, a thread skipped a barrier the others reached, which the CUDA programming model
// forbids (a GPU may hang or run on with stale shared memory): it is reported, not run on.
//
// Order check (ALPHANET_EMULATOR_ORDER_CHECK=1): the launch runs once with blocks and, within
// each round, threads in forward order, then again from the same memory in reverse order. A
// kernel free of races gives the same bits both ways; our kernels are deterministic by design,
// so any difference is a race between threads or blocks, or a missing barrier.
#include <string.h>
#include <unistd.h>

#include <cxxabi.h>

#include <memory>
#include <vector>

#include "runtime.h"

namespace emu {

thread_local const uint3* current_thread_idx;
thread_local uint3 current_block_idx;
thread_local dim3 current_block_dim;
thread_local dim3 current_grid_dim;

bool order_check = false;

// Opt-in maximum of dynamic shared memory per block (an H100's 227 KiB; driver.cpp reports it).
static constexpr size_t MAX_SHARED = 232448;

namespace {

enum class State { Ready, AtBarrier, Exited };

struct FiberState {
    uint3 idx;
    State state;
};

// The block running on this OS thread.
struct BlockRun {
    const KernelInfo* kernel;
    void* const* params;
    std::vector<FiberState> threads;
    size_t current;
};

thread_local BlockRun* running;
thread_local Fibers fibers;
// This OS thread's dynamic shared memory: MAX_SHARED bytes ending at a guard page; a launch with
// S bytes gets the last S of them, so its first byte past the end faults.
thread_local char* shared_region;
thread_local size_t shared_bytes;
// The static __shared__ arrays the kernels run on this OS thread have declared so far.
thread_local std::vector<std::pair<void*, size_t>> shared_arrays;

void fiber_main() {
    BlockRun* r = running;
    r->kernel->call(r->params);
    r->threads[r->current].state = State::Exited;
    Fibers::yield();
    abort();  // an exited fiber is never resumed
}

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> s(abi::__cxa_demangle(mangled, nullptr, nullptr, &status), free);
    return status == 0 ? std::string(s.get()) : std::string(mangled);
}

Result run_block(BlockRun& r, uint3 block, bool reverse) {
    current_block_idx = block;
    // Shared memory holds garbage at a block's start on a GPU: all-ones bytes (NaN floats) make a
    // read before any write visible in the results (and, under the order check, a read of a slot
    // another thread has not written yet, instead of the previous block's equal value).
    memset(shared_region + MAX_SHARED - shared_bytes, 0xFF, shared_bytes);
    for (auto& a : shared_arrays) memset(a.first, 0xFF, a.second);
    const size_t n = r.threads.size();
    fibers.start(n, fiber_main);
    for (auto& t : r.threads) t.state = State::Ready;
    for (unsigned barrier = 1;; barrier++) {
        for (size_t j = 0; j < n; j++) {
            size_t i = reverse ? n - 1 - j : j;
            if (r.threads[i].state != State::Ready) continue;
            r.current = i;
            current_thread_idx = &r.threads[i].idx;
            fibers.resume(i);
        }
        const FiberState *waiting = nullptr, *exited = nullptr;
        size_t n_waiting = 0;
        for (auto& t : r.threads) {
            if (t.state == State::AtBarrier) {
                n_waiting++;
                if (!waiting) waiting = &t;
            } else if (!exited) {
                exited = &t;
            }
        }
        if (!waiting) return SUCCESS;
        if (exited) {
            report("kernel %s, block (%u,%u,%u): __syncthreads() number %u is reached by %zu of the block's %zu "
                   "threads (e.g. thread (%u,%u,%u)), but thread (%u,%u,%u) and %zu others returned without "
                   "reaching it; every thread of a block must reach every __syncthreads()",
                   r.kernel->name, block.x, block.y, block.z, barrier, n_waiting, n, waiting->idx.x, waiting->idx.y,
                   waiting->idx.z, exited->idx.x, exited->idx.y, exited->idx.z, n - n_waiting - 1);
            return ERROR_LAUNCH_FAILED;
        }
        for (auto& t : r.threads) t.state = State::Ready;
    }
}

Result run_grid(const KernelInfo& k, const LaunchConfig& cfg, void* const* params, bool reverse) {
    const dim3 g = cfg.grid, b = cfg.block;
    BlockRun r{&k, params, {}, 0};
    r.threads.resize(static_cast<size_t>(b.x) * b.y * b.z);
    for (size_t i = 0; i < r.threads.size(); i++) {
        r.threads[i].idx = uint3{static_cast<unsigned>(i % b.x), static_cast<unsigned>(i / b.x % b.y),
                                 static_cast<unsigned>(i / (static_cast<size_t>(b.x) * b.y))};
    }
    current_block_dim = b;
    current_grid_dim = g;
    shared_bytes = cfg.shared_bytes;
    running = &r;
    Result result = SUCCESS;
    const size_t blocks = static_cast<size_t>(g.x) * g.y * g.z;
    for (size_t j = 0; j < blocks && result == SUCCESS; j++) {
        size_t i = reverse ? blocks - 1 - j : j;
        uint3 block{static_cast<unsigned>(i % g.x), static_cast<unsigned>(i / g.x % g.y),
                    static_cast<unsigned>(i / (static_cast<size_t>(g.x) * g.y))};
        result = run_block(r, block, reverse);
    }
    running = nullptr;
    return result;
}

// The bytes of the allocations a launch can reach, for the order check.
std::vector<std::vector<char>> snapshot(const std::vector<const Allocation*>& allocs) {
    std::vector<std::vector<char>> s;
    for (const Allocation* a : allocs) {
        const char* p = reinterpret_cast<const char*>(a->ptr);
        s.emplace_back(p, p + a->size);
    }
    return s;
}

void restore(const std::vector<const Allocation*>& allocs, const std::vector<std::vector<char>>& s) {
    for (size_t i = 0; i < allocs.size(); i++) memcpy(reinterpret_cast<void*>(allocs[i]->ptr), s[i].data(), s[i].size());
}

// Compares the forward run's result with memory after the reversed run; reports every
// allocation that differs, with the arguments pointing into it and its first differing word.
bool same_both_ways(const KernelInfo& k, void* const* params, const std::vector<const Allocation*>& allocs,
                    const std::vector<std::vector<char>>& forward) {
    bool same = true;
    for (size_t i = 0; i < allocs.size(); i++) {
        const Allocation& a = *allocs[i];
        const char* now = reinterpret_cast<const char*>(a.ptr);
        if (memcmp(now, forward[i].data(), a.size) == 0) continue;
        same = false;
        size_t words = a.size / 4, differ = 0, first = words;
        for (size_t w = 0; w < words; w++) {
            if (memcmp(now + 4 * w, forward[i].data() + 4 * w, 4) != 0) {
                differ++;
                if (first == words) first = w;
            }
        }
        std::string args;
        for (size_t p = 0; p < k.n_params; p++) {
            uintptr_t v;
            if (!k.params[p].is_pointer) continue;
            memcpy(&v, params[p], sizeof v);
            if (v && find_live(v) == &a) args += (args.empty() ? "" : ", ") + std::to_string(p);
        }
        float f = 0, r = 0;
        unsigned fb = 0, rb = 0;
        if (first < words) {
            memcpy(&f, forward[i].data() + 4 * first, 4);
            memcpy(&r, now + 4 * first, 4);
            memcpy(&fb, &f, 4);
            memcpy(&rb, &r, 4);
        }
        report("kernel %s: order check failed: the result depends on the order threads and blocks run in (a race "
               "between threads or blocks, or a missing __syncthreads): allocation #%lu (argument %s) differs in %zu "
               "of %zu 4-byte words, first at word %zu: forward %.9g (0x%08x), reversed %.9g (0x%08x)",
               k.name, static_cast<unsigned long>(a.id), args.c_str(), differ, words, first, f, fb, r, rb);
    }
    return same;
}

}  // namespace

void syncthreads() {
    running->threads[running->current].state = State::AtBarrier;
    Fibers::yield();
}

void* dynamic_shared() { return shared_region + MAX_SHARED - shared_bytes; }

void shared_array(void* p, size_t bytes) {
    for (auto& a : shared_arrays) {
        if (a.first == p) return;
    }
    shared_arrays.emplace_back(p, bytes);
}

bool describe_running_thread(char* buf, size_t n) {
    const BlockRun* r = running;
    if (!r) return false;
    const uint3 t = r->threads[r->current].idx, b = current_block_idx;
    snprintf(buf, n, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", r->kernel->name, b.x, b.y, b.z, t.x, t.y, t.z);
    return true;
}

std::string describe_executor_address(uintptr_t p) {
    const uintptr_t end = reinterpret_cast<uintptr_t>(shared_region) + MAX_SHARED;
    if (shared_region && p >= end && p < end + static_cast<uintptr_t>(sysconf(_SC_PAGESIZE))) {
        return std::to_string(p - end) + " bytes past the end of the launch's " + std::to_string(shared_bytes) +
               " bytes of dynamic shared memory";
    }
    if (fibers.is_stack_guard(p)) return "the guard page below a thread's 64 KiB stack (stack overflow)";
    return "";
}

Result launch(const KernelInfo& k, const LaunchConfig& cfg, void* const* params) {
    if (cfg.shared_bytes > MAX_SHARED) {
        report("kernel %s: %zu bytes of dynamic shared memory exceed the device's %zu", k.name, cfg.shared_bytes,
               MAX_SHARED);
        return ERROR_INVALID_VALUE;
    }
    // Kernels reach memory only through their pointer arguments: each must point into a live
    // allocation (or be null), aligned for what it points to.
    std::vector<const Allocation*> reachable;
    for (size_t i = 0; i < k.n_params; i++) {
        const ParamInfo& p = k.params[i];
        if (!p.is_pointer) continue;
        uintptr_t v;
        memcpy(&v, params[i], sizeof v);
        if (!v) continue;
        const Allocation* a = find_live(v);
        if (!a) {
            report("kernel %s: argument %zu (%s) = 0x%lx is not in any live device allocation (%s)", k.name, i,
                   demangle(p.type_name).c_str(), static_cast<unsigned long>(v), describe_address(v).c_str());
            return ERROR_INVALID_VALUE;
        }
        if (v % p.pointee_align) {
            report("kernel %s: argument %zu (%s) = 0x%lx is not aligned to %zu bytes", k.name, i,
                   demangle(p.type_name).c_str(), static_cast<unsigned long>(v), p.pointee_align);
            return ERROR_INVALID_VALUE;
        }
        bool seen = false;
        for (const Allocation* b : reachable) seen |= b == a;
        if (!seen) reachable.push_back(a);
    }
    if (!shared_region) shared_region = map_guarded(MAX_SHARED, false);
    ensure_signal_stack();
    Result r;
    if (!order_check) {
        r = run_grid(k, cfg, params, false);
    } else {
        const auto before = snapshot(reachable);
        r = run_grid(k, cfg, params, false);
        if (r == SUCCESS) {
            const auto forward = snapshot(reachable);
            restore(reachable, before);
            r = run_grid(k, cfg, params, true);
            if (r == SUCCESS && !same_both_ways(k, params, reachable, forward)) r = ERROR_LAUNCH_FAILED;
        }
    }
    for (const Allocation* a : reachable) {
        if (!canary_intact(*a, k.name)) r = ERROR_LAUNCH_FAILED;
    }
    return r;
}

}  // namespace emu
