// Runs CUDA C kernels on the CPU, so that machines without a GPU (and CI) can check what they compute.
//
// The same .cu source that NVRTC compiles for the device is compiled here with g++, with this header
// force-included. A launch runs the blocks of the grid one after another, on one OS thread per CUDA thread
// of a block, so `__shared__` arrays are plain statics (one copy, reused by the next block), `__syncthreads`
// is a barrier, and atomics are std::atomic_ref. Under ThreadSanitizer a missing barrier is a data race, and
// under AddressSanitizer a shared array that is too small is an overflow.
//
// What this cannot show (keep kernels inside it): blocks never run at the same time, so grid-wide sync or
// spinning on another block's flag would hang; x86 orders memory more strongly than a GPU, so a missing
// __threadfence can pass; statics start zeroed where GPU shared memory holds garbage (kernels must not read
// shared memory before writing it); warp intrinsics are not provided (kernels here use none).
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

namespace cuda_emulation {
inline thread_local dim3 thread_index;
inline thread_local dim3 block_index;
inline thread_local std::barrier<>* block_barrier = nullptr;
inline dim3 block_dim;
inline dim3 grid_dim;

// Every block of `grid`, one after another; inside a block, one thread per CUDA thread. The same OS threads
// run every block (starting threads dominated the cost), meeting at a barrier between blocks so that no
// block starts while the one before still uses the shared arrays. A thread that returns early drops out of
// its block's barrier, as an exited CUDA thread no longer holds __syncthreads up.
inline void run(dim3 grid, dim3 block, const std::function<void()>& kernel) {
    block_dim = block;
    grid_dim = grid;
    const unsigned int threads_per_block = block.x * block.y * block.z;
    const unsigned long long blocks = 1ULL * grid.x * grid.y * grid.z;
    std::vector<std::unique_ptr<std::barrier<>>> block_barriers;
    block_barriers.reserve(blocks);
    for (unsigned long long b = 0; b < blocks; ++b) {
        block_barriers.push_back(std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(threads_per_block)));
    }
    std::barrier<> between_blocks(static_cast<std::ptrdiff_t>(threads_per_block));
    std::vector<std::thread> threads;
    threads.reserve(threads_per_block);
    for (unsigned int t = 0; t < threads_per_block; ++t) {
        threads.emplace_back([&, t] {
            thread_index = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            for (unsigned long long b = 0; b < blocks; ++b) {
                const unsigned int bx = static_cast<unsigned int>(b % grid.x);
                const unsigned int by = static_cast<unsigned int>((b / grid.x) % grid.y);
                const unsigned int bz = static_cast<unsigned int>(b / (1ULL * grid.x * grid.y));
                block_index = dim3{bx, by, bz};
                block_barrier = block_barriers[b].get();
                kernel();
                block_barrier->arrive_and_drop();
                between_blocks.arrive_and_wait();
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
}

// Calls `kernel` with the arguments CuPy's RawKernel would pass: args[i] points at the i-th value.
template <class... Params, std::size_t... I>
void call_unpacked(void (*kernel)(Params...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<Params>>*>(args[I])...);
}

template <class... Params>
void call(void (*kernel)(Params...), void** args) {
    call_unpacked(kernel, args, std::index_sequence_for<Params...>{});
}
}  // namespace cuda_emulation

#define threadIdx (::cuda_emulation::thread_index)
#define blockIdx (::cuda_emulation::block_index)
#define blockDim (::cuda_emulation::block_dim)
#define gridDim (::cuda_emulation::grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static

inline void __syncthreads() { cuda_emulation::block_barrier->arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
inline T atomicAdd(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_add(value);
}
template <class T>
inline T atomicOr(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_or(value);
}
template <class T>
inline T atomicMax(T* address, T value) {
    std::atomic_ref<T> ref(*address);
    T seen = ref.load();
    while (seen < value && !ref.compare_exchange_weak(seen, value)) {
    }
    return seen;
}

inline int __popcll(unsigned long long value) { return __builtin_popcountll(value); }
inline int __popc(unsigned int value) { return __builtin_popcount(value); }

using std::max;
using std::min;
