// Exact Hamming radius search over packed 256-bit codes: every (query, row) pair of a batch within
// `radius` bits. NumPy twin: kernels.hamming.range_search_bruteforce (the order of hits differs; the host
// sorts them).
//
// Grid: x spans the rows (grid-stride, so any grid covers any list), y spans tiles of QUERY_TILE queries.
// A block loads its tile of queries into shared memory once and streams its share of the rows past it, so
// one query uses the whole chip and a 1,000-query batch reads the list once per tile. Hits are appended
// through one atomic counter; when there are more than `capacity`, the counter still counts them all and
// the host reruns with room for every one: results are never truncated.

#define QUERY_TILE 32
#define CODE_WORDS 4

extern "C" __global__ void hamming_range(
    const unsigned long long* __restrict__ codes,  // (n_codes, 4)
    long long n_codes,
    long long row_base,  // added to each reported row: the first row of this chunk in the whole list
    const unsigned long long* __restrict__ queries,  // (n_queries, 4)
    int n_queries,
    int query_base,  // added to each reported query: the first query of this group in the whole batch
    int radius,
    unsigned long long* count,  // (1,) hits found, also those beyond capacity
    long long* hit_row,  // (capacity,)
    long long* hit_meta,  // (capacity,) query << 16 | distance: one array to copy back instead of two
    unsigned long long capacity) {
    __shared__ unsigned long long tile[QUERY_TILE * CODE_WORDS];
    const int first_query = blockIdx.y * QUERY_TILE;
    const int tile_size = min(QUERY_TILE, n_queries - first_query);
    for (int i = threadIdx.x; i < tile_size * CODE_WORDS; i += blockDim.x) {
        tile[i] = queries[(long long)first_query * CODE_WORDS + i];
    }
    __syncthreads();
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x; row < n_codes; row += stride) {
        const unsigned long long* code = codes + row * CODE_WORDS;
        const unsigned long long c0 = code[0], c1 = code[1], c2 = code[2], c3 = code[3];
        for (int q = 0; q < tile_size; ++q) {
            const unsigned long long* query = tile + q * CODE_WORDS;
            const int distance =
                __popcll(c0 ^ query[0]) + __popcll(c1 ^ query[1]) + __popcll(c2 ^ query[2]) + __popcll(c3 ^ query[3]);
            if (distance <= radius) {
                const unsigned long long slot = atomicAdd(count, 1ULL);
                if (slot < capacity) {
                    hit_row[slot] = row_base + row;
                    hit_meta[slot] = ((long long)(query_base + first_query + q) << 16) | distance;
                }
            }
        }
    }
}
