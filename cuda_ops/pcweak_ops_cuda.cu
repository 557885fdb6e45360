// CUDA kernels of pcweak's point ops. Semantics match the CPU code in pcweak_ops.cpp and the
// torch reference: neighbours ordered by (dist2, index), -1 padding, first row wins ties in
// scatter max/min, FPS starts at each scene's first point and breaks ties by lower index.
#include "pcweak_ops_cuda.h"

#include <cfloat>
#include <cmath>

namespace {

constexpr int kThreads = 256;

// Exact rounding (no FMA contraction), matching the CPU build's -ffp-contract=off.
__device__ __forceinline__ float rn_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double rn_mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float rn_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double rn_add(double a, double b) { return __dadd_rn(a, b); }

__device__ __forceinline__ int64_t find_batch(const int64_t* off, int64_t B, int64_t i) {
  int64_t lo = 0, hi = B - 1;  // first b with off[b] > i
  while (lo < hi) {
    int64_t mid = (lo + hi) / 2;
    if (off[mid] > i) hi = mid; else lo = mid + 1;
  }
  return lo;
}

// One thread per query: scan the query's scene and keep a sorted list of the k best in the
// output row (insertion sort in global memory; rows are private to the thread).
template <typename T>
__global__ void neighbours_kernel(const T* __restrict__ S, const T* __restrict__ Q, const int64_t* __restrict__ so,
                                  const int64_t* __restrict__ qo, int64_t B, int64_t nq, int64_t k, T r2,
                                  bool use_radius, int64_t* __restrict__ idx, T* __restrict__ d2) {
  const int64_t qi = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (qi >= nq) return;
  const int64_t b = find_batch(qo, B, qi);
  const int64_t s0 = b ? so[b - 1] : 0, s1 = so[b];
  const T qx = Q[qi * 3], qy = Q[qi * 3 + 1], qz = Q[qi * 3 + 2];
  int64_t* I = idx + qi * k;
  T* D = d2 + qi * k;
  int64_t filled = 0;
  for (int64_t si = s0; si < s1; ++si) {
    const T dx = qx - S[si * 3], dy = qy - S[si * 3 + 1], dz = qz - S[si * 3 + 2];
    const T d = rn_add(rn_add(rn_mul(dx, dx), rn_mul(dy, dy)), rn_mul(dz, dz));
    if (use_radius && !(d <= r2)) continue;
    if (filled == k && !(d < D[k - 1])) continue;  // ties keep the smaller (earlier) index
    int64_t pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && D[pos - 1] > d) { D[pos] = D[pos - 1]; I[pos] = I[pos - 1]; --pos; }
    D[pos] = d;
    I[pos] = si;
  }
}


template <typename T>
__device__ __forceinline__ bool better(T v, T cur, bool is_max) { return is_max ? v > cur : v < cur; }

template <typename T>
__global__ void scatter_sum_kernel(const T* __restrict__ src, const int64_t* __restrict__ index, int64_t n, int64_t c,
                                   T* __restrict__ out, int64_t* __restrict__ count) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * c) return;
  const int64_t i = t / c, ch = t % c;
  const int64_t g = index[i];
  atomicAdd(out + g * c + ch, src[t]);
  if (ch == 0) atomicAdd(reinterpret_cast<unsigned long long*>(count + g), 1ULL);
}

template <typename T>
__global__ void scatter_div_kernel(T* __restrict__ out, const int64_t* __restrict__ count, int64_t g, int64_t c) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= g * c) return;
  const int64_t k = count[t / c];
  if (k > 1) out[t] = out[t] / T(k);
}

// Pass 1 of max/min: for every (group, channel) the winning value, as the smallest row index
// whose value beats every other row (ties: smallest row). Done with a 64-bit atomicMin on the
// row index after the value is settled in pass 0 by compare-and-swap on the value's bits.
__device__ __forceinline__ void atomic_best(float* addr, float v, bool is_max) {
  int* ai = reinterpret_cast<int*>(addr);
  int old = *ai, assumed;
  do {
    assumed = old;
    float cur = __int_as_float(assumed);
    if (!(better(v, cur, is_max) || isnan(cur))) return;
    old = atomicCAS(ai, assumed, __float_as_int(v));
  } while (assumed != old);
}
__device__ __forceinline__ void atomic_best(double* addr, double v, bool is_max) {
  unsigned long long* ai = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *ai, assumed;
  do {
    assumed = old;
    double cur = __longlong_as_double((long long)assumed);
    if (!(better(v, cur, is_max) || isnan(cur))) return;
    old = atomicCAS(ai, assumed, (unsigned long long)__double_as_longlong(v));
  } while (assumed != old);
}

template <typename T>
__global__ void scatter_best_kernel(const T* __restrict__ src, const int64_t* __restrict__ index, int64_t n, int64_t c,
                                    bool is_max, T* __restrict__ out, int64_t* __restrict__ count) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * c) return;
  const int64_t i = t / c, ch = t % c;
  const int64_t g = index[i];
  atomic_best(out + g * c + ch, src[t], is_max);
  if (ch == 0) atomicAdd(reinterpret_cast<unsigned long long*>(count + g), 1ULL);
}

template <typename T>
__global__ void scatter_arg_kernel(const T* __restrict__ src, const int64_t* __restrict__ index, int64_t n, int64_t c,
                                   const T* __restrict__ out, int64_t* __restrict__ arg) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= n * c) return;
  const int64_t i = t / c, ch = t % c;
  const int64_t g = index[i];
  if (src[t] == out[g * c + ch])
    atomicMin(reinterpret_cast<unsigned long long*>(arg + g * c + ch), (unsigned long long)i);
}

template <typename T>
__global__ void scatter_fill_kernel(T* __restrict__ out, int64_t* __restrict__ arg, int64_t total, T init) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= total) return;
  out[t] = init;
  arg[t] = INT64_MAX;
}

template <typename T>
__global__ void scatter_finish_kernel(T* __restrict__ out, int64_t* __restrict__ arg, const int64_t* __restrict__ count,
                                      int64_t g, int64_t c) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= g * c) return;
  if (count[t / c] == 0) { out[t] = T(0); arg[t] = -1; }
}

// One block per scene; each thread owns a strided share of the points.
__global__ void fps_kernel(const float* __restrict__ P, const int64_t* __restrict__ off, const int64_t* __restrict__ noff,
                           float* __restrict__ mind, int64_t* __restrict__ out) {
  const int64_t b = blockIdx.x;
  const int64_t s = b ? off[b - 1] : 0, e = off[b];
  const int64_t o0 = b ? noff[b - 1] : 0, o1 = noff[b];
  const int64_t n = e - s, m = o1 - o0;
  if (m <= 0 || n <= 0) return;
  __shared__ float best_v[kThreads];
  __shared__ int64_t best_i[kThreads];
  __shared__ int64_t cur;
  if (threadIdx.x == 0) { cur = 0; out[o0] = s; }
  __syncthreads();
  for (int64_t t = 1; t < m; ++t) {
    const float cx = P[(s + cur) * 3], cy = P[(s + cur) * 3 + 1], cz = P[(s + cur) * 3 + 2];
    float bv = -1.f;
    int64_t bi = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float dx = P[(s + i) * 3] - cx, dy = P[(s + i) * 3 + 1] - cy, dz = P[(s + i) * 3 + 2] - cz;
      const float d = __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
      float md = mind[s + i];
      if (d < md) { md = d; mind[s + i] = d; }
      if (md > bv) { bv = md; bi = i; }
    }
    best_v[threadIdx.x] = bv;
    best_i[threadIdx.x] = bi;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) {
        const float ov = best_v[threadIdx.x + w];
        const int64_t oi = best_i[threadIdx.x + w];
        if (ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
          best_v[threadIdx.x] = ov;
          best_i[threadIdx.x] = oi;
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) { cur = best_i[0]; out[o0 + t] = s + cur; }
    __syncthreads();
  }
}

inline unsigned blocks(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

template <typename T>
void neighbours_launch(const T* S, const T* Q, const int64_t* so, const int64_t* qo, int64_t B, int64_t nq, int64_t k,
                       T r2, bool use_radius, int64_t* idx, T* d2, cudaStream_t stream) {
  if (nq == 0 || k == 0 || B == 0) return;
  neighbours_kernel<T><<<blocks(nq), kThreads, 0, stream>>>(S, Q, so, qo, B, nq, k, r2, use_radius, idx, d2);
}

template <typename T>
void scatter_launch(const T* src, const int64_t* index, int64_t n, int64_t c, int64_t g, int reduce, T* out, int64_t* arg,
                    int64_t* count, cudaStream_t stream) {
  if (g == 0) return;
  if (reduce <= 1) {
    if (n) scatter_sum_kernel<T><<<blocks(n * c), kThreads, 0, stream>>>(src, index, n, c, out, count);
    if (reduce == 1) scatter_div_kernel<T><<<blocks(g * c), kThreads, 0, stream>>>(out, count, g, c);
    return;
  }
  const bool is_max = reduce == 2;
  const T init = is_max ? -INFINITY : INFINITY;
  scatter_fill_kernel<T><<<blocks(g * c), kThreads, 0, stream>>>(out, arg, g * c, init);
  if (n) {
    scatter_best_kernel<T><<<blocks(n * c), kThreads, 0, stream>>>(src, index, n, c, is_max, out, count);
    scatter_arg_kernel<T><<<blocks(n * c), kThreads, 0, stream>>>(src, index, n, c, out, arg);
  }
  scatter_finish_kernel<T><<<blocks(g * c), kThreads, 0, stream>>>(out, arg, count, g, c);
}

}  // namespace

void pcweak_cuda_neighbours_f32(const float* S, const float* Q, const int64_t* so, const int64_t* qo, int64_t B, int64_t nq,
                                int64_t k, float r2, bool use_radius, int64_t* idx, float* d2, cudaStream_t stream) {
  neighbours_launch<float>(S, Q, so, qo, B, nq, k, r2, use_radius, idx, d2, stream);
}
void pcweak_cuda_neighbours_f64(const double* S, const double* Q, const int64_t* so, const int64_t* qo, int64_t B,
                                int64_t nq, int64_t k, double r2, bool use_radius, int64_t* idx, double* d2,
                                cudaStream_t stream) {
  neighbours_launch<double>(S, Q, so, qo, B, nq, k, r2, use_radius, idx, d2, stream);
}
void pcweak_cuda_scatter_f32(const float* src, const int64_t* index, int64_t n, int64_t c, int64_t g, int reduce, float* out,
                             int64_t* arg, int64_t* count, cudaStream_t stream) {
  scatter_launch<float>(src, index, n, c, g, reduce, out, arg, count, stream);
}
void pcweak_cuda_scatter_f64(const double* src, const int64_t* index, int64_t n, int64_t c, int64_t g, int reduce,
                             double* out, int64_t* arg, int64_t* count, cudaStream_t stream) {
  scatter_launch<double>(src, index, n, c, g, reduce, out, arg, count, stream);
}
void pcweak_cuda_fps_f32(const float* coord, const int64_t* off, const int64_t* noff, int64_t B, float* tmp, int64_t* out,
                         cudaStream_t stream) {
  if (B == 0) return;
  fps_kernel<<<unsigned(B), kThreads, 0, stream>>>(coord, off, noff, tmp, out);
}
