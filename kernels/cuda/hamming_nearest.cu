// The K nearest rows of each query, exactly, in two passes over the list (NumPy twin:
// kernels.hamming.nearest_bruteforce; the host code is kernels.gpu_nearest).
//
// 1. hamming_histogram counts, per query, the rows at each distance 0..256. From it the host reads each
//    query's cut-off: the smallest distance D with at least K rows within D, and how many rows that is.
// 2. hamming_within writes every row within its query's cut-off into that query's own slice of the output,
//    whose size the histogram gave exactly; the host keeps the K with the smallest (distance, row).
// Ties at the cut-off are therefore settled by row number, as the reference settles them: the same query
// against the same list version names the same entries on every run, on the GPU as in the reference.
//
// Both kernels use hamming_range's grid: x spans the rows (grid-stride), y spans tiles of QUERY_TILE queries
// held in shared memory.

#define QUERY_TILE 32
#define CODE_WORDS 4
#define DISTANCES 257

// This block's tile of queries into shared memory; returns how many it holds. Every thread calls it, and
// the caller's __syncthreads publishes the tile.
__device__ __forceinline__ int load_query_tile(
    unsigned long long* tile, const unsigned long long* __restrict__ queries, int n_queries) {
    const int first_query = blockIdx.y * QUERY_TILE;
    const int tile_size = min(QUERY_TILE, n_queries - first_query);
    for (int i = threadIdx.x; i < tile_size * CODE_WORDS; i += blockDim.x) {
        tile[i] = queries[(long long)first_query * CODE_WORDS + i];
    }
    return tile_size;
}

__device__ __forceinline__ int distance_to(
    const unsigned long long* query, unsigned long long c0, unsigned long long c1, unsigned long long c2,
    unsigned long long c3) {
    return __popcll(c0 ^ query[0]) + __popcll(c1 ^ query[1]) + __popcll(c2 ^ query[2]) + __popcll(c3 ^ query[3]);
}

extern "C" __global__ void hamming_histogram(
    const unsigned long long* __restrict__ codes,  // (n_codes, 4)
    long long n_codes,
    const unsigned long long* __restrict__ queries,  // (n_queries, 4)
    int n_queries,
    unsigned int* histogram) {  // (n_queries, DISTANCES), added to: zero it before the first chunk
    __shared__ unsigned long long tile[QUERY_TILE * CODE_WORDS];
    __shared__ unsigned int counts[QUERY_TILE * DISTANCES];
    const int first_query = blockIdx.y * QUERY_TILE;
    const int tile_size = load_query_tile(tile, queries, n_queries);
    // Shared memory is not zeroed on the device: every bin is cleared before any thread counts.
    for (int i = threadIdx.x; i < QUERY_TILE * DISTANCES; i += blockDim.x) {
        counts[i] = 0u;
    }
    __syncthreads();
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x; row < n_codes; row += stride) {
        const unsigned long long* code = codes + row * CODE_WORDS;
        const unsigned long long c0 = code[0], c1 = code[1], c2 = code[2], c3 = code[3];
        for (int q = 0; q < tile_size; ++q) {
            const int distance = distance_to(tile + q * CODE_WORDS, c0, c1, c2, c3);
            atomicAdd(&counts[q * DISTANCES + distance], 1u);
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < tile_size * DISTANCES; i += blockDim.x) {
        if (counts[i] != 0u) {
            atomicAdd(&histogram[(long long)first_query * DISTANCES + i], counts[i]);
        }
    }
}

extern "C" __global__ void hamming_within(
    const unsigned long long* __restrict__ codes,  // (n_codes, 4)
    long long n_codes,
    long long row_base,  // added to each reported row: the first row of this chunk in the whole list
    const unsigned long long* __restrict__ queries,  // (n_queries, 4)
    int n_queries,
    const int* __restrict__ cutoff,  // (n_queries,) the largest distance each query keeps
    unsigned long long* cursor,  // (n_queries,) the next free slot of each query's slice; starts at its start
    const unsigned long long* __restrict__ end,  // (n_queries,) one past each query's slice
    long long* hit_row,  // (total,)
    short* hit_distance) {  // (total,)
    __shared__ unsigned long long tile[QUERY_TILE * CODE_WORDS];
    const int first_query = blockIdx.y * QUERY_TILE;
    const int tile_size = load_query_tile(tile, queries, n_queries);
    __syncthreads();
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x; row < n_codes; row += stride) {
        const unsigned long long* code = codes + row * CODE_WORDS;
        const unsigned long long c0 = code[0], c1 = code[1], c2 = code[2], c3 = code[3];
        for (int q = 0; q < tile_size; ++q) {
            const int distance = distance_to(tile + q * CODE_WORDS, c0, c1, c2, c3);
            const int owner = first_query + q;
            if (distance <= cutoff[owner]) {
                const unsigned long long slot = atomicAdd(&cursor[owner], 1ULL);
                // The histogram sized the slice exactly; a slot past it means the two passes disagree, which
                // the host detects from the cursor (never by writing into the next query's slice).
                if (slot < end[owner]) {
                    hit_row[slot] = row_base + row;
                    hit_distance[slot] = (short)distance;
                }
            }
        }
    }
}
