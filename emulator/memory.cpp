// Device memory of the stand-in: every allocation is its own mapping whose last byte is followed
// by a PROT_NONE page, so an access one element past the end faults at once, and the fault
// handler names the kernel, block and thread. The bytes between the front guard page and the
// start (the page's slack) hold a canary, checked after each launch that could reach them, which
// catches writes before the start. Freed allocations stay mapped PROT_NONE for a while, so a
// use after free faults too instead of reading whatever the address holds next.
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <deque>
#include <map>

#include "runtime.h"

namespace emu {

static constexpr unsigned char CANARY = 0xA5;
// Fresh allocations hold all-ones bytes (a NaN in every float lane, −1 in every int), as a GPU
// holds garbage: a kernel reading memory nobody wrote shows up in the results instead of
// reading the zeros a fresh mapping would give.
static constexpr unsigned char UNINITIALIZED = 0xFF;
// Freed allocations kept PROT_NONE before being unmapped (bounded: each is a kernel mapping).
static constexpr size_t QUARANTINE = 1024;

void report(const char* fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "alphanet CUDA emulator: %s\n", line);
}

static size_t page_size() {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return page;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Live allocations by the start of their mapping; freed ones, oldest first.
static std::map<uintptr_t, Allocation> live;
static std::deque<Allocation> freed;
static uint64_t next_id = 1;

Result mem_alloc(uintptr_t* out, size_t size) {
    if (size == 0) {
        report("cuMemAlloc of 0 bytes (a GPU refuses it too)");
        return ERROR_INVALID_VALUE;
    }
    const size_t page = page_size(), data = round_up(size, page), len = data + 2 * page;
    void* m = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        report("cuMemAlloc of %zu bytes: the host has no memory for it", size);
        return ERROR_OUT_OF_MEMORY;
    }
    char* map = static_cast<char*>(m);
    if (mprotect(map + page, data, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, len);
        report("cuMemAlloc of %zu bytes: mprotect failed", size);
        return ERROR_OUT_OF_MEMORY;
    }
    Allocation a{reinterpret_cast<uintptr_t>(map + page + data - size), size, map, len, next_id++};
    memset(map + page, CANARY, data - size);
    memset(reinterpret_cast<void*>(a.ptr), UNINITIALIZED, size);
    live.emplace(reinterpret_cast<uintptr_t>(map), a);
    *out = a.ptr;
    return SUCCESS;
}

// The live allocation whose mapping (guard pages included) holds p.
static const Allocation* mapping_of(uintptr_t p) {
    auto it = live.upper_bound(p);
    if (it == live.begin()) return nullptr;
    --it;
    const Allocation& a = it->second;
    return p < reinterpret_cast<uintptr_t>(a.map) + a.map_len ? &a : nullptr;
}

const Allocation* find_live(uintptr_t p) {
    const Allocation* a = mapping_of(p);
    return a && p >= a->ptr && p < a->ptr + a->size ? a : nullptr;
}

Result mem_free(uintptr_t p) {
    const Allocation* a = mapping_of(p);
    if (!a || a->ptr != p) {
        report("cuMemFree(0x%lx): not the start of a live allocation (%s)", static_cast<unsigned long>(p),
               describe_address(p).c_str());
        return ERROR_INVALID_VALUE;
    }
    Allocation gone = *a;
    live.erase(reinterpret_cast<uintptr_t>(gone.map));
    mprotect(gone.map, gone.map_len, PROT_NONE);
    freed.push_back(gone);
    if (freed.size() > QUARANTINE) {
        munmap(freed.front().map, freed.front().map_len);
        freed.pop_front();
    }
    return SUCCESS;
}

const Allocation* check_range(const char* what, uintptr_t p, size_t n) {
    const Allocation* a = find_live(p);
    if (a && n <= a->ptr + a->size - p) return a;
    if (a) {
        report("%s: [0x%lx, +%zu bytes) runs %zu bytes past the end of allocation #%lu (%zu bytes at 0x%lx)",
               what, static_cast<unsigned long>(p), n, static_cast<size_t>(p + n - (a->ptr + a->size)),
               static_cast<unsigned long>(a->id), a->size, static_cast<unsigned long>(a->ptr));
    } else {
        report("%s: 0x%lx is not in any live device allocation (%s)", what, static_cast<unsigned long>(p),
               describe_address(p).c_str());
    }
    return nullptr;
}

std::string describe_address(uintptr_t p) {
    char s[256];
    auto ul = [](uintptr_t x) { return static_cast<unsigned long>(x); };
    if (const Allocation* a = mapping_of(p)) {
        if (p >= a->ptr + a->size) {
            snprintf(s, sizeof s, "%lu bytes past the end of allocation #%lu (%zu bytes at 0x%lx)",
                     ul(p - (a->ptr + a->size)), ul(a->id), a->size, ul(a->ptr));
        } else if (p < a->ptr) {
            snprintf(s, sizeof s, "%lu bytes before the start of allocation #%lu (%zu bytes at 0x%lx)",
                     ul(a->ptr - p), ul(a->id), a->size, ul(a->ptr));
        } else {
            snprintf(s, sizeof s, "byte %lu of allocation #%lu (%zu bytes at 0x%lx)", ul(p - a->ptr), ul(a->id),
                     a->size, ul(a->ptr));
        }
        return s;
    }
    for (const Allocation& a : freed) {
        if (p >= reinterpret_cast<uintptr_t>(a.map) && p < reinterpret_cast<uintptr_t>(a.map) + a.map_len) {
            snprintf(s, sizeof s, "inside allocation #%lu (%zu bytes at 0x%lx), already freed", ul(a.id), a.size,
                     ul(a.ptr));
            return s;
        }
    }
    std::string other = describe_executor_address(p);
    return other.empty() ? "not device memory" : other;
}

bool canary_intact(const Allocation& a, const char* kernel) {
    const unsigned char* slack = reinterpret_cast<const unsigned char*>(a.map + page_size());
    size_t n = a.ptr - reinterpret_cast<uintptr_t>(slack);
    for (size_t k = 0; k < n; k++) {
        if (slack[k] != CANARY) {
            report("kernel %s wrote %zu bytes before the start of allocation #%lu (%zu bytes at 0x%lx)", kernel,
                   n - k, static_cast<unsigned long>(a.id), a.size, static_cast<unsigned long>(a.ptr));
            return false;
        }
    }
    return true;
}

char* map_guarded(size_t bytes, bool guard_below) {
    const size_t page = page_size(), data = round_up(bytes, page);
    void* m = mmap(nullptr, data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        report("cannot map %zu bytes for shared memory or a fiber stack", bytes);
        abort();
    }
    char* map = static_cast<char*>(m);
    char* guard = guard_below ? map : map + data;
    if (mprotect(guard, page, PROT_NONE) != 0) {
        report("cannot protect a guard page");
        abort();
    }
    return guard_below ? map + page : map + data - bytes;
}

// ---- faults -----------------------------------------------------------------------------------

static struct sigaction previous_segv, previous_bus;

// A fault outside any kernel is not ours: hand it to whoever handled it before (Rust's stack
// overflow reporter, or the default action, which kills the process when the access repeats).
static void pass_on(int sig, siginfo_t* info, void* uctx) {
    const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
    if (prev.sa_flags & SA_SIGINFO) {
        prev.sa_sigaction(sig, info, uctx);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL);
    }
}

static void on_fault(int sig, siginfo_t* info, void* uctx) {
    // Static buffers and one write(2): the handler may run on a small alternate signal stack.
    static char who[512], line[1024];
    if (!describe_running_thread(who, sizeof who)) {
        pass_on(sig, info, uctx);
        return;
    }
    const char* kind = "access";
#if defined(__x86_64__)
    // Bit 1 of the page-fault error code: the access was a write.
    kind = static_cast<ucontext_t*>(uctx)->uc_mcontext.gregs[REG_ERR] & 2 ? "write" : "read";
#endif
    uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
    int n = snprintf(line, sizeof line, "alphanet CUDA emulator: %s: invalid %s at 0x%lx: %s\n", who, kind,
                     static_cast<unsigned long>(addr), describe_address(addr).c_str());
    if (write(STDERR_FILENO, line, n < static_cast<int>(sizeof line) ? n : sizeof line - 1) < 0) abort();
    abort();
}

void ensure_signal_stack() {
    // The handler must not run on a fiber's stack, whose overflow may be what faulted: it needs an
    // alternate stack, and one roomier than the minimum threads usually get.
    static constexpr size_t BYTES = 64 * 1024;
    static thread_local bool done = false;
    if (done) return;
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && ((current.ss_flags & SS_DISABLE) || current.ss_size < BYTES)) {
        stack_t ours;
        ours.ss_sp = map_guarded(BYTES, true);
        ours.ss_size = BYTES;
        ours.ss_flags = 0;
        sigaltstack(&ours, nullptr);
    }
    done = true;
}

void install_fault_handler() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

}  // namespace emu
