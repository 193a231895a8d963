// cvgl-edge: the one host call the CPU-emulated kernel library adds to the C ABI.
//
// Kernel launches under HIP-CPU are asynchronous, like on a GPU; a caller that owns no
// stream object (ctypes in the tests, the plugin test's enqueue) waits for them here.
#include <hip/hip_runtime.h>

extern "C" __attribute__((visibility("default"))) int cvgl_emulation_synchronize(void) {
    return static_cast<int>(hipDeviceSynchronize());
}
