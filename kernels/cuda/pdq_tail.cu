// The end of the PDQ pipeline for a batch, after the 64 x 64 buffers and their 16 x 16 DCTs exist on the
// device. NumPy twins: hashing.pdq.quality, and hashing.pdq.bits_from_dct followed by
// hashing.pdq_hash.pack_bits. Compiled with --fmad=false: the quality terms must round as NumPy's do.

#define BUFFER_SIDE 64
#define HASH_SIDE 16
#define HASH_BITS 256
#define HASH_BYTES 32

// One block of 256 threads per 16 x 16 DCT: the lower median by rank (the coefficient with exactly 127
// smaller ones, ties broken by position: no sort of the 256 values), each coefficient's bit against it,
// and the 32 bytes in the reference's print order (row 15 first, column 15 first, high bit first).
extern "C" __global__ void pdq_bits(const double* __restrict__ dct, int n, unsigned char* __restrict__ packed) {
    __shared__ double values[HASH_BITS];
    __shared__ double median[1];
    __shared__ unsigned char bits[HASH_BITS];
    const int matrix = blockIdx.x;
    const int t = threadIdx.x;
    if (matrix >= n) {
        return;
    }
    const double own = dct[(long long)matrix * HASH_BITS + t];
    values[t] = own;
    __syncthreads();
    int rank = 0;
    for (int k = 0; k < HASH_BITS; ++k) {
        const double other = values[k];
        rank += (other < own) || (other == own && k < t);
    }
    if (rank == 127) {
        median[0] = own;
    }
    __syncthreads();
    bits[t] = own > median[0] ? 1 : 0;
    __syncthreads();
    if (t < HASH_BYTES) {
        // Byte t holds reversed flat positions 8t .. 8t + 7: flat position p is bit (255 - p).
        unsigned char byte = 0;
        for (int m = 0; m < 8; ++m) {
            byte = (unsigned char)((byte << 1) | bits[HASH_BITS - 1 - (8 * t + m)]);
        }
        packed[(long long)matrix * HASH_BYTES + t] = byte;
    }
}

// One block of 256 threads per 64 x 64 buffer: the sum over neighbour pairs (down and across) of
// |trunc((u - v) * 100 / 255)|, then min(sum / 90, 100). Every term is a whole number, so the sum is exact
// in any order.
extern "C" __global__ void pdq_quality(const double* __restrict__ buffers, int n, int* __restrict__ quality) {
    __shared__ double partial[256];
    const int image = blockIdx.x;
    const int t = threadIdx.x;
    if (image >= n) {
        return;
    }
    const double* buffer = buffers + (long long)image * BUFFER_SIDE * BUFFER_SIDE;
    double sum = 0.0;
    for (int cell = t; cell < BUFFER_SIDE * BUFFER_SIDE; cell += blockDim.x) {
        const int row = cell / BUFFER_SIDE;
        const int col = cell % BUFFER_SIDE;
        const double here = buffer[cell];
        if (row + 1 < BUFFER_SIDE) {
            sum += fabs(trunc((here - buffer[cell + BUFFER_SIDE]) * 100.0 / 255.0));
        }
        if (col + 1 < BUFFER_SIDE) {
            sum += fabs(trunc((here - buffer[cell + 1]) * 100.0 / 255.0));
        }
    }
    partial[t] = sum;
    __syncthreads();
    for (int width = blockDim.x / 2; width > 0; width /= 2) {
        if (t < width) {
            partial[t] += partial[t + width];
        }
        __syncthreads();
    }
    if (t == 0) {
        const long long total = (long long)partial[0];
        quality[image] = (int)min(total / 90, 100LL);
    }
}
