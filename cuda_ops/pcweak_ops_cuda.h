// Plain C launchers of the CUDA kernels (no torch types), called by pcweak_ops.cpp when the
// extension is built with CUDA. Pointers are device pointers; offsets are cumulative counts.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>

void pcweak_cuda_neighbours_f32(const float* support, const float* query, const int64_t* s_off, const int64_t* q_off,
                                int64_t B, int64_t nq, int64_t k, float r2, bool use_radius, int64_t* idx, float* d2,
                                cudaStream_t stream);
void pcweak_cuda_neighbours_f64(const double* support, const double* query, const int64_t* s_off, const int64_t* q_off,
                                int64_t B, int64_t nq, int64_t k, double r2, bool use_radius, int64_t* idx, double* d2,
                                cudaStream_t stream);
void pcweak_cuda_scatter_f32(const float* src, const int64_t* index, int64_t n, int64_t c, int64_t g, int reduce,
                             float* out, int64_t* arg, int64_t* count, cudaStream_t stream);
void pcweak_cuda_scatter_f64(const double* src, const int64_t* index, int64_t n, int64_t c, int64_t g, int reduce,
                             double* out, int64_t* arg, int64_t* count, cudaStream_t stream);
void pcweak_cuda_fps_f32(const float* coord, const int64_t* off, const int64_t* new_off, int64_t B, float* tmp,
                         int64_t* out, cudaStream_t stream);
