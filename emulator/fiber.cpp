// Fibers: one stack per thread of a block, switched on one OS thread. On x86-64 a switch saves
// and restores only what the System V ABI makes callee-saved (rbx, rbp, r12-r15) plus rsp: the
// switch is an ordinary function call to the compiler, so every other register is already
// dead. glibc's swapcontext also saves the signal mask with a system call per switch, which
// cost most of the time in a prototype; it remains the portable fallback for other targets.
// (mxcsr and the x87 control word are callee-saved too, but no kernel changes them.)
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {

// 64 KiB per fiber: the kernels keep a few scalars and small arrays per thread; an overflow
// hits the guard page below and is reported as such.
static constexpr size_t STACK_BYTES = 64 * 1024;

#if defined(__x86_64__)

extern "C" void emu_context_switch(void** save_sp, void* load_sp);
extern "C" void emu_fiber_start();

// emu_context_switch pushes the callee-saved registers on the current stack, stores rsp in
// *save_sp, loads load_sp and pops the same registers from the other stack. A new fiber's stack
// is prepared (Fibers::start) as if it had been switched away from just before
// emu_fiber_start, with the entry function in r13.
asm(R"(
    .text
    .globl emu_context_switch
    .hidden emu_context_switch
    .type emu_context_switch, @function
emu_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_context_switch, .-emu_context_switch

    .globl emu_fiber_start
    .hidden emu_fiber_start
    .type emu_fiber_start, @function
emu_fiber_start:
    callq *%r13
    ud2
    .size emu_fiber_start, .-emu_fiber_start
)");

struct Fibers::Stack {
    char* base;  // lowest usable byte; the guard page is just below
    void* sp;    // saved rsp while the fiber is switched out
};

static thread_local void* scheduler_sp;
static thread_local void** running_sp;

void Fibers::resume(size_t i) {
    running_sp = &stacks_[i].sp;
    emu_context_switch(&scheduler_sp, stacks_[i].sp);
}

void Fibers::yield() { emu_context_switch(running_sp, scheduler_sp); }

#else

struct Fibers::Stack {
    char* base;
    ucontext_t ctx;
};

static thread_local ucontext_t scheduler_ctx;
static thread_local ucontext_t* running_ctx;

void Fibers::resume(size_t i) {
    running_ctx = &stacks_[i].ctx;
    swapcontext(&scheduler_ctx, running_ctx);
}

void Fibers::yield() { swapcontext(running_ctx, &scheduler_ctx); }

#endif

void Fibers::start(size_t n, void (*entry)()) {
    if (n > capacity_) {
        Stack* grown = static_cast<Stack*>(realloc(static_cast<void*>(stacks_), n * sizeof(Stack)));
        if (!grown) abort();
        stacks_ = grown;
        for (size_t i = capacity_; i < n; i++) stacks_[i].base = map_guarded(STACK_BYTES, true);
        capacity_ = n;
    }
    for (size_t i = 0; i < n; i++) {
#if defined(__x86_64__)
        // Seven words from a 16-byte aligned top minus 72: r15, r14, r13 = entry, r12, rbx, rbp,
        // return address = emu_fiber_start. After the `ret`, rsp = top − 16 is 16-byte aligned,
        // so emu_fiber_start's call enters `entry` with the ABI's alignment.
        char* top = stacks_[i].base + STACK_BYTES;
        uintptr_t* frame = reinterpret_cast<uintptr_t*>(top - 72);
        frame[0] = frame[1] = frame[3] = frame[4] = frame[5] = 0;
        frame[2] = reinterpret_cast<uintptr_t>(entry);
        frame[6] = reinterpret_cast<uintptr_t>(&emu_fiber_start);
        stacks_[i].sp = frame;
#else
        getcontext(&stacks_[i].ctx);
        stacks_[i].ctx.uc_stack.ss_sp = stacks_[i].base;
        stacks_[i].ctx.uc_stack.ss_size = STACK_BYTES;
        stacks_[i].ctx.uc_link = nullptr;
        makecontext(&stacks_[i].ctx, entry, 0);
#endif
    }
}

bool Fibers::is_stack_guard(uintptr_t p) const {
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    for (size_t i = 0; i < capacity_; i++) {
        uintptr_t base = reinterpret_cast<uintptr_t>(stacks_[i].base);
        if (p >= base - page && p < base) return true;
    }
    return false;
}

}  // namespace emu
