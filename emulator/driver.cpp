// The CUDA driver API entry points our code reaches through cudarc, executed synchronously on
// the CPU: one device ("alphanet CPU emulator of the CUDA driver", sm_90), one primary context,
// streams and events as tags (every call has finished when it returns, so ordering holds
// trivially), device memory from memory.cpp, kernels from the registry run by executor.cpp.
// One mutex serializes every call: several test threads may drive the stand-in at once.
//
// Modules: cuModuleLoadData accepts the nvcc fatbins built alongside this library (recognized
// by their FNV-1a hash, which build.rs records with their kernel names in images.inc) and PTX
// text (NVRTC's output; its `.entry` names). Anything else is an error, and so is a kernel name
// with no host build: nothing falls back silently.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "runtime.h"

namespace emu {

// By name; a function-local static, so kernels registering from static initializers of other
// files never find it unconstructed.
static std::map<std::string, KernelInfo>& registry() {
    static std::map<std::string, KernelInfo> kernels;
    return kernels;
}

bool register_kernel(const KernelInfo& k) {
    if (!registry().emplace(k.name, k).second) {
        report("two kernels named %s", k.name);
        abort();
    }
    return true;
}

const KernelInfo* find_kernel(const char* name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : &it->second;
}

}  // namespace emu

namespace {

using emu::report;
using emu::Result;

// What build.rs knows about each fatbin it built: hash, kernel file, kernels (space-separated).
struct ImageEntry {
    uint64_t fnv1a;
    const char* module;
    const char* kernels;
};

#include "images.inc"

constexpr const char* DEVICE_NAME = "alphanet CPU emulator of the CUDA driver";
constexpr int DRIVER_VERSION = 13000;
constexpr int DEFAULT_SHARED = 48 * 1024;
constexpr int MAX_SHARED_OPTIN = 232448;
constexpr uint32_t FATBIN_MAGIC = 0xBA55ED50;

std::mutex api;
bool initialized = false;

struct Context {
    int retained = 0;
} primary;

thread_local Context* current = nullptr;

struct Stream {};
std::set<const Stream*> streams;

// CU_EVENT_DISABLE_TIMING
constexpr unsigned EVENT_DISABLE_TIMING = 0x2;

struct Event {
    unsigned flags;
    bool recorded = false;
    std::chrono::steady_clock::time_point at;
};
std::set<const Event*> events;

struct Function {
    const emu::KernelInfo* kernel;
    int max_dynamic_shared = DEFAULT_SHARED;
};

struct Module {
    std::string what;  // "kernels/x.cu (fatbin)" or "PTX", for messages
    std::vector<std::string> kernels;
    std::map<std::string, Function> functions;
};
std::set<const Module*> modules;
std::set<const Function*> functions;

uint64_t fnv1a(const unsigned char* p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

// Every `.entry NAME(` of a PTX text.
std::vector<std::string> ptx_entries(const char* ptx) {
    std::vector<std::string> names;
    for (const char* p = strstr(ptx, ".entry"); p; p = strstr(p + 6, ".entry")) {
        const char* s = p + 6;
        while (*s == ' ' || *s == '\t') s++;
        const char* e = s;
        while (*e && *e != '(' && *e != ' ' && *e != '\t' && *e != '\n') e++;
        names.emplace_back(s, e);
    }
    return names;
}

std::vector<std::string> split(const char* s) {
    std::vector<std::string> out;
    for (const char* p = s; *p;) {
        const char* e = strchr(p, ' ');
        if (!e) e = p + strlen(p);
        out.emplace_back(p, e);
        p = *e ? e + 1 : e;
    }
    return out;
}

// Calls that need an initialized driver and a context current on the calling thread, as on a
// GPU (cudarc binds its context before each call; a thread that forgot would fail there too).
Result need_context(const char* call) {
    if (!initialized) {
        report("%s before cuInit", call);
        return emu::ERROR_NOT_INITIALIZED;
    }
    if (!current) {
        report("%s with no context current on this thread (cuCtxSetCurrent)", call);
        return emu::ERROR_INVALID_CONTEXT;
    }
    return emu::SUCCESS;
}

Result need_stream(const char* call, const void* s) {
    if (s && !streams.count(static_cast<const Stream*>(s))) {
        report("%s: stream %p was not created by cuStreamCreate", call, s);
        return emu::ERROR_INVALID_HANDLE;
    }
    return emu::SUCCESS;
}

Result need_event(const char* call, const void* e) {
    if (!events.count(static_cast<const Event*>(e))) {
        report("%s: %p is not a live event", call, e);
        return emu::ERROR_INVALID_HANDLE;
    }
    return emu::SUCCESS;
}

#define TRY(expr)                                 \
    do {                                          \
        Result r_ = (expr);                       \
        if (r_ != emu::SUCCESS) return r_;        \
    } while (0)

// Driver calls made so far, by entry point (`__func__`: "cuMemAlloc_v2", …), counted under the
// lock; read by alphanet_emulator_calls.
std::map<std::string, unsigned long long> calls;

#define LOCKED                              \
    std::lock_guard<std::mutex> lock_(api); \
    calls[__func__]++

}  // namespace

typedef unsigned long long CUdeviceptr;

extern "C" {

// Lets the Rust side make sure that the library cudarc will load under the name libcuda.so is
// this one (src/cuda/emulator.rs).
__attribute__((visibility("default"))) extern const char alphanet_cuda_emulator[];
const char alphanet_cuda_emulator[] = "alphanet CUDA emulator 1";

#define API __attribute__((visibility("default"))) int

// The driver calls made so far by the process, one "name count\n" line per entry point, into
// `buf` (at most `cap` bytes, NUL-terminated when it fits). Returns the text's length, so a
// caller can size its buffer with a first call of cap 0. src/cuda/emulator.rs reads it to count
// the allocations and launches of a training step (tests/device.rs, `alphanet bench`).
__attribute__((visibility("default"))) size_t alphanet_emulator_calls(char* buf, size_t cap) {
    std::lock_guard<std::mutex> lock(api);
    std::string text;
    for (const auto& c : calls) text += c.first + " " + std::to_string(c.second) + "\n";
    if (cap > text.size()) memcpy(buf, text.c_str(), text.size() + 1);
    return text.size();
}

API cuInit(unsigned flags) {
    LOCKED;
    if (flags != 0) {
        report("cuInit(%u): flags must be 0", flags);
        return emu::ERROR_INVALID_VALUE;
    }
    if (!initialized) {
        const char* oc = getenv("ALPHANET_EMULATOR_ORDER_CHECK");
        if (oc && *oc && strcmp(oc, "0") != 0 && strcmp(oc, "1") != 0) {
            report("ALPHANET_EMULATOR_ORDER_CHECK=%s: expected 1 (on) or 0 (off)", oc);
            return emu::ERROR_INVALID_VALUE;
        }
        emu::order_check = oc && strcmp(oc, "1") == 0;
        emu::install_fault_handler();
        initialized = true;
    }
    return emu::SUCCESS;
}

API cuDriverGetVersion(int* version) {
    if (!version) return emu::ERROR_INVALID_VALUE;
    *version = DRIVER_VERSION;
    return emu::SUCCESS;
}

API cuDeviceGetCount(int* count) {
    LOCKED;
    if (!initialized) return emu::ERROR_NOT_INITIALIZED;
    *count = 1;
    return emu::SUCCESS;
}

API cuDeviceGet(int* device, int ordinal) {
    LOCKED;
    if (!initialized) return emu::ERROR_NOT_INITIALIZED;
    if (ordinal != 0) {
        report("cuDeviceGet(%d): the stand-in has one device, 0", ordinal);
        return emu::ERROR_INVALID_DEVICE;
    }
    *device = 0;
    return emu::SUCCESS;
}

API cuDeviceGetName(char* name, int len, int device) {
    if (device != 0) return emu::ERROR_INVALID_DEVICE;
    snprintf(name, static_cast<size_t>(len), "%s", DEVICE_NAME);
    return emu::SUCCESS;
}

API cuDeviceTotalMem_v2(size_t* bytes, int device) {
    if (device != 0) return emu::ERROR_INVALID_DEVICE;
    *bytes = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return emu::SUCCESS;
}

// Values of an H100 (sm_90) where they matter to a launch; the multiprocessor count is the
// host's core count. MEMORY_POOLS_SUPPORTED = 0 makes cudarc use cuMemAlloc/cuMemFree.
API cuDeviceGetAttribute(int* value, int attribute, int device) {
    if (device != 0) return emu::ERROR_INVALID_DEVICE;
    switch (attribute) {
        case 1: *value = 1024; break;                                        // MAX_THREADS_PER_BLOCK
        case 2: case 3: *value = 1024; break;                                // MAX_BLOCK_DIM_X, _Y
        case 4: *value = 64; break;                                          // MAX_BLOCK_DIM_Z
        case 5: *value = 2147483647; break;                                  // MAX_GRID_DIM_X
        case 6: case 7: *value = 65535; break;                               // MAX_GRID_DIM_Y, _Z
        case 8: *value = DEFAULT_SHARED; break;                              // MAX_SHARED_MEMORY_PER_BLOCK
        case 10: *value = 32; break;                                         // WARP_SIZE
        case 16: *value = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); break;  // MULTIPROCESSOR_COUNT
        case 75: *value = 9; break;                                          // COMPUTE_CAPABILITY_MAJOR
        case 76: *value = 0; break;                                          // COMPUTE_CAPABILITY_MINOR
        case 97: *value = MAX_SHARED_OPTIN; break;                           // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
        case 115: *value = 0; break;                                         // MEMORY_POOLS_SUPPORTED
        default:
            report("cuDeviceGetAttribute: attribute %d is not emulated", attribute);
            return emu::ERROR_INVALID_VALUE;
    }
    return emu::SUCCESS;
}

API cuDevicePrimaryCtxRetain(Context** ctx, int device) {
    LOCKED;
    if (!initialized) return emu::ERROR_NOT_INITIALIZED;
    if (device != 0) return emu::ERROR_INVALID_DEVICE;
    primary.retained++;
    *ctx = &primary;
    return emu::SUCCESS;
}

API cuDevicePrimaryCtxRelease_v2(int device) {
    LOCKED;
    if (device != 0) return emu::ERROR_INVALID_DEVICE;
    if (primary.retained == 0) {
        report("cuDevicePrimaryCtxRelease: the primary context is not retained");
        return emu::ERROR_INVALID_CONTEXT;
    }
    primary.retained--;
    return emu::SUCCESS;
}

API cuCtxGetCurrent(Context** ctx) {
    *ctx = current;
    return emu::SUCCESS;
}

API cuCtxSetCurrent(Context* ctx) {
    if (ctx && ctx != &primary) {
        report("cuCtxSetCurrent(%p): not the primary context", static_cast<void*>(ctx));
        return emu::ERROR_INVALID_CONTEXT;
    }
    current = ctx;
    return emu::SUCCESS;
}

API cuCtxSynchronize() {
    LOCKED;
    return need_context("cuCtxSynchronize");
}

API cuStreamSynchronize(void* stream) {
    LOCKED;
    TRY(need_context("cuStreamSynchronize"));
    return need_stream("cuStreamSynchronize", stream);
}

API cuStreamWaitEvent(void* stream, void* event, unsigned) {
    LOCKED;
    TRY(need_context("cuStreamWaitEvent"));
    TRY(need_stream("cuStreamWaitEvent", stream));
    return need_event("cuStreamWaitEvent", event);
}

// ---- memory -------------------------------------------------------------------------------

API cuMemAlloc_v2(CUdeviceptr* ptr, size_t bytes) {
    LOCKED;
    TRY(need_context("cuMemAlloc"));
    uintptr_t p = 0;
    TRY(emu::mem_alloc(&p, bytes));
    *ptr = p;
    return emu::SUCCESS;
}

API cuMemFree_v2(CUdeviceptr ptr) {
    LOCKED;
    TRY(need_context("cuMemFree"));
    return emu::mem_free(ptr);
}

API cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, void* stream) {
    LOCKED;
    TRY(need_context("cuMemcpyHtoDAsync"));
    TRY(need_stream("cuMemcpyHtoDAsync", stream));
    if (!emu::check_range("cuMemcpyHtoDAsync destination", dst, bytes)) return emu::ERROR_INVALID_VALUE;
    memcpy(reinterpret_cast<void*>(dst), src, bytes);
    return emu::SUCCESS;
}

API cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, void* stream) {
    LOCKED;
    TRY(need_context("cuMemcpyDtoHAsync"));
    TRY(need_stream("cuMemcpyDtoHAsync", stream));
    if (!emu::check_range("cuMemcpyDtoHAsync source", src, bytes)) return emu::ERROR_INVALID_VALUE;
    memcpy(dst, reinterpret_cast<const void*>(src), bytes);
    return emu::SUCCESS;
}

API cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, void* stream) {
    LOCKED;
    TRY(need_context("cuMemcpyDtoDAsync"));
    TRY(need_stream("cuMemcpyDtoDAsync", stream));
    if (!emu::check_range("cuMemcpyDtoDAsync destination", dst, bytes) ||
        !emu::check_range("cuMemcpyDtoDAsync source", src, bytes))
        return emu::ERROR_INVALID_VALUE;
    memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
    return emu::SUCCESS;
}

API cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t bytes, void* stream) {
    LOCKED;
    TRY(need_context("cuMemsetD8Async"));
    TRY(need_stream("cuMemsetD8Async", stream));
    if (!emu::check_range("cuMemsetD8Async destination", dst, bytes)) return emu::ERROR_INVALID_VALUE;
    memset(reinterpret_cast<void*>(dst), value, bytes);
    return emu::SUCCESS;
}

// ---- events -------------------------------------------------------------------------------

API cuEventCreate(Event** event, unsigned flags) {
    LOCKED;
    TRY(need_context("cuEventCreate"));
    *event = new Event{flags, false, {}};
    events.insert(*event);
    return emu::SUCCESS;
}

API cuEventDestroy_v2(Event* event) {
    LOCKED;
    TRY(need_event("cuEventDestroy", event));
    events.erase(event);
    delete event;
    return emu::SUCCESS;
}

// Work is finished when a call returns, so the time of recording is when the work before it
// ended.
API cuEventRecord(Event* event, void* stream) {
    LOCKED;
    TRY(need_context("cuEventRecord"));
    TRY(need_event("cuEventRecord", event));
    TRY(need_stream("cuEventRecord", stream));
    event->recorded = true;
    event->at = std::chrono::steady_clock::now();
    return emu::SUCCESS;
}

API cuEventSynchronize(Event* event) {
    LOCKED;
    return need_event("cuEventSynchronize", event);
}

API cuEventElapsedTime(float* ms, Event* start, Event* end) {
    LOCKED;
    TRY(need_event("cuEventElapsedTime", start));
    TRY(need_event("cuEventElapsedTime", end));
    if (!start->recorded || !end->recorded || (start->flags | end->flags) & EVENT_DISABLE_TIMING) {
        report("cuEventElapsedTime: both events must be recorded and created without DISABLE_TIMING");
        return emu::ERROR_INVALID_HANDLE;
    }
    *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
    return emu::SUCCESS;
}

// The name cudarc resolves for CUDA 13 (same arguments as the original).
API cuEventElapsedTime_v2(float* ms, Event* start, Event* end) {
    return cuEventElapsedTime(ms, start, end);
}

// ---- modules and launches -----------------------------------------------------------------

API cuModuleLoadData(Module** module, const void* image) {
    LOCKED;
    TRY(need_context("cuModuleLoadData"));
    const unsigned char* b = static_cast<const unsigned char*>(image);
    uint32_t magic;
    memcpy(&magic, b, 4);
    auto m = std::make_unique<Module>();
    if (magic == FATBIN_MAGIC) {
        // Header: u32 magic, u16 version, u16 header size, u64 size of what follows.
        uint16_t header;
        uint64_t body;
        memcpy(&header, b + 6, 2);
        memcpy(&body, b + 8, 8);
        const uint64_t h = fnv1a(b, header + body);
        const ImageEntry* found = nullptr;
        for (const ImageEntry& e : IMAGES) found = e.fnv1a == h ? &e : found;
        if (!found) {
            report("cuModuleLoadData: an nvcc fatbin (%lu bytes, FNV-1a %016lx) that this stand-in was not built "
                   "with; it runs the kernels/*.cu fatbins of its own build, or PTX",
                   static_cast<unsigned long>(header + body), static_cast<unsigned long>(h));
            return emu::ERROR_NO_BINARY_FOR_GPU;
        }
        m->what = std::string("kernels/") + found->module + ".cu (fatbin)";
        m->kernels = split(found->kernels);
    } else if (strchr("/. \t\r\n", b[0]) && b[0] && strstr(static_cast<const char*>(image), ".version") &&
               strstr(static_cast<const char*>(image), ".target")) {
        // PTX text (NUL-terminated, as cuModuleLoadData requires) starts with a comment, a
        // directive or white space; only then is it searched as a string.
        m->what = "PTX";
        m->kernels = ptx_entries(static_cast<const char*>(image));
    } else {
        report("cuModuleLoadData: the image is neither an nvcc fatbin nor PTX text (first bytes %02x %02x %02x %02x)",
               b[0], b[1], b[2], b[3]);
        return emu::ERROR_INVALID_IMAGE;
    }
    for (const std::string& k : m->kernels) {
        if (!emu::find_kernel(k.c_str())) {
            report("cuModuleLoadData: %s has kernel %s, which the stand-in has no host build of", m->what.c_str(),
                   k.c_str());
            return emu::ERROR_NO_BINARY_FOR_GPU;
        }
    }
    *module = m.release();
    modules.insert(*module);
    return emu::SUCCESS;
}

API cuModuleGetFunction(const Function** function, Module* module, const char* name) {
    LOCKED;
    TRY(need_context("cuModuleGetFunction"));
    if (!modules.count(module)) {
        report("cuModuleGetFunction(%s): %p is not a loaded module", name, static_cast<void*>(module));
        return emu::ERROR_INVALID_HANDLE;
    }
    bool listed = false;
    for (const std::string& k : module->kernels) listed |= k == name;
    if (!listed) {
        report("cuModuleGetFunction: %s has no kernel %s", module->what.c_str(), name);
        return emu::ERROR_NOT_FOUND;
    }
    auto it = module->functions.emplace(name, Function{emu::find_kernel(name)}).first;
    functions.insert(&it->second);
    *function = &it->second;
    return emu::SUCCESS;
}

API cuModuleUnload(Module* module) {
    LOCKED;
    if (!modules.count(module)) {
        report("cuModuleUnload: %p is not a loaded module", static_cast<void*>(module));
        return emu::ERROR_INVALID_HANDLE;
    }
    for (auto& f : module->functions) functions.erase(&f.second);
    modules.erase(module);
    delete module;
    return emu::SUCCESS;
}

API cuFuncSetAttribute(Function* function, int attribute, int value) {
    LOCKED;
    if (!functions.count(function)) return emu::ERROR_INVALID_HANDLE;
    constexpr int MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    if (attribute != MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        report("cuFuncSetAttribute: attribute %d is not emulated", attribute);
        return emu::ERROR_NOT_SUPPORTED;
    }
    if (value < 0 || value > MAX_SHARED_OPTIN) {
        report("cuFuncSetAttribute(%s, MAX_DYNAMIC_SHARED_SIZE_BYTES, %d): the device allows at most %d",
               function->kernel->name, value, MAX_SHARED_OPTIN);
        return emu::ERROR_INVALID_VALUE;
    }
    function->max_dynamic_shared = value;
    return emu::SUCCESS;
}

API cuLaunchKernel(const Function* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
    LOCKED;
    TRY(need_context("cuLaunchKernel"));
    TRY(need_stream("cuLaunchKernel", stream));
    if (!functions.count(function)) {
        report("cuLaunchKernel: %p is not a function of a loaded module", static_cast<const void*>(function));
        return emu::ERROR_INVALID_HANDLE;
    }
    const emu::KernelInfo& k = *function->kernel;
    const unsigned long long threads = 1ull * bx * by * bz;
    if (threads == 0 || threads > 1024 || bz > 64 || gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u ||
        gy > 65535 || gz > 65535) {
        report("cuLaunchKernel(%s): grid (%u,%u,%u) of blocks (%u,%u,%u) is outside the device's limits (at most "
               "1024 threads per block, block z <= 64, grid y and z <= 65535, none 0)",
               k.name, gx, gy, gz, bx, by, bz);
        return emu::ERROR_INVALID_VALUE;
    }
    if (static_cast<int>(shared) > function->max_dynamic_shared) {
        report("cuLaunchKernel(%s): %u bytes of dynamic shared memory, but the function allows %d (raise it with "
               "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES), as a GPU requires above 48 KiB)",
               k.name, shared, function->max_dynamic_shared);
        return emu::ERROR_INVALID_VALUE;
    }
    if (extra) {
        report("cuLaunchKernel(%s): arguments through `extra` are not emulated (use kernelParams)", k.name);
        return emu::ERROR_NOT_SUPPORTED;
    }
    if (k.n_params && !params) {
        report("cuLaunchKernel(%s): kernelParams is null but the kernel takes %zu arguments", k.name, k.n_params);
        return emu::ERROR_INVALID_VALUE;
    }
    return emu::launch(k, emu::LaunchConfig{dim3{gx, gy, gz}, dim3{bx, by, bz}, shared}, params);
}

// ---- errors -------------------------------------------------------------------------------

struct ErrorText {
    int code;
    const char* name;
    const char* text;
};

static const ErrorText ERRORS[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

API cuGetErrorString(int error, const char** text) {
    for (const ErrorText& e : ERRORS) {
        if (e.code == error) {
            *text = e.text;
            return emu::SUCCESS;
        }
    }
    *text = nullptr;
    return emu::ERROR_INVALID_VALUE;
}

API cuGetErrorName(int error, const char** name) {
    for (const ErrorText& e : ERRORS) {
        if (e.code == error) {
            *name = e.name;
            return emu::SUCCESS;
        }
    }
    *name = nullptr;
    return emu::ERROR_INVALID_VALUE;
}

}  // extern "C"
