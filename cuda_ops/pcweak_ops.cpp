// pcweak point-cloud ops: CPU implementations (OpenMP, spatial hash grid) and the torch
// bindings. CUDA kernels live in pcweak_ops_cuda.cu behind plain C launchers; they are linked
// in only when the extension is built with -DPCWEAK_WITH_CUDA.
//
// Conventions (shared with pcweak/ops/reference.py, which the tests compare against):
//  * batches are concatenated; offset (B,) int64 holds cumulative point counts;
//  * squared distances are dx*dx + dy*dy + dz*dz evaluated in the input precision
//    (compiled with -ffp-contract=off so no FMA changes the rounding);
//  * neighbours are ordered by (dist2, index): ties go to the smaller index.
// ATen and torch's pybind casters only: <torch/extension.h> (the C++ frontend, autograd, the
// Python API) nearly doubles the build time of this file (docs/results.md) and none of it is used here.
#include <ATen/ATen.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {
// OpenMP's team size for a parallel region and a thread's number in it (1 and 0 without OpenMP).
inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
}  // namespace

#ifdef PCWEAK_WITH_CUDA
#include "pcweak_ops_cuda.h"
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

constexpr int kAxisBits = 21;
constexpr int64_t kAxisCells = int64_t(1) << kAxisBits;

inline int64_t pack(int64_t x, int64_t y, int64_t z) { return (x << (2 * kAxisBits)) | (y << kAxisBits) | z; }

// Open-addressing hash map int64 key -> int64 value (keys are >= 0; -1 marks empty).
struct HashMap {
  std::vector<int64_t> keys, vals;
  int64_t mask = 0;
  explicit HashMap(int64_t expected) {
    int64_t cap = 16;
    while (cap < 2 * expected + 1) cap <<= 1;
    keys.assign(cap, -1);
    vals.assign(cap, -1);
    mask = cap - 1;
  }
  static inline uint64_t mix(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
  }
  // returns the slot; inserted tells whether the key was new
  inline int64_t insert(int64_t key, int64_t val, bool* inserted) {
    int64_t s = int64_t(mix(uint64_t(key)) & uint64_t(mask));
    while (true) {
      if (keys[s] == key) { *inserted = false; return s; }
      if (keys[s] == -1) { keys[s] = key; vals[s] = val; *inserted = true; return s; }
      s = (s + 1) & mask;
    }
  }
  inline int64_t find(int64_t key) const {
    int64_t s = int64_t(mix(uint64_t(key)) & uint64_t(mask));
    while (true) {
      if (keys[s] == key) return vals[s];
      if (keys[s] == -1) return -1;
      s = (s + 1) & mask;
    }
  }
};

// Uniform grid over one batch's support points: points bucketed by cell with a counting sort.
template <typename scalar_t>
struct Grid {
  double origin[3];
  double cell;
  int64_t dims[3];
  std::vector<int64_t> order;       // support indices (global), grouped by cell
  std::vector<int64_t> cell_start;  // per occupied cell: [start, end) into order
  std::vector<int64_t> cell_end;
  HashMap map{1};

  Grid(const scalar_t* pts, int64_t begin, int64_t end, double cell_size) {
    const int64_t n = end - begin;
    double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    if (n > 0) {
      for (int a = 0; a < 3; ++a) lo[a] = hi[a] = double(pts[begin * 3 + a]);
      for (int64_t i = begin; i < end; ++i)
        for (int a = 0; a < 3; ++a) {
          double v = double(pts[i * 3 + a]);
          lo[a] = std::min(lo[a], v);
          hi[a] = std::max(hi[a], v);
        }
    }
    double ext = 0;
    for (int a = 0; a < 3; ++a) ext = std::max(ext, hi[a] - lo[a]);
    // keep the cell count per axis inside the key's range
    cell = std::max(cell_size, ext / double(kAxisCells - 4));
    if (!(cell > 0)) cell = 1.0;
    for (int a = 0; a < 3; ++a) {
      origin[a] = lo[a];
      dims[a] = int64_t(std::floor((hi[a] - lo[a]) / cell)) + 1;
    }
    map = HashMap(n + 1);
    std::vector<int64_t> cell_of(n);
    std::vector<int64_t> count;
    for (int64_t i = 0; i < n; ++i) {
      const scalar_t* p = pts + (begin + i) * 3;
      int64_t key = pack(coord(p[0], 0), coord(p[1], 1), coord(p[2], 2));
      bool inserted;
      int64_t s = map.insert(key, int64_t(count.size()), &inserted);
      if (inserted) count.push_back(0);
      int64_t c = map.vals[s];
      cell_of[i] = c;
      count[c]++;
    }
    cell_start.resize(count.size());
    cell_end.resize(count.size());
    int64_t acc = 0;
    for (size_t c = 0; c < count.size(); ++c) { cell_start[c] = acc; acc += count[c]; cell_end[c] = cell_start[c]; }
    order.resize(n);
    for (int64_t i = 0; i < n; ++i) order[cell_end[cell_of[i]]++] = begin + i;
  }
  inline int64_t coord(double v, int a) const { return int64_t(std::floor((v - origin[a]) / cell)); }
  inline int64_t lookup(int64_t x, int64_t y, int64_t z) const {
    if (x < 0 || y < 0 || z < 0 || x >= kAxisCells || y >= kAxisCells || z >= kAxisCells) return -1;
    return map.find(pack(x, y, z));
  }
};

template <typename scalar_t>
struct Cand {
  scalar_t d2;
  int64_t idx;
};
template <typename scalar_t>
inline bool less(const Cand<scalar_t>& a, const Cand<scalar_t>& b) { return a.d2 < b.d2 || (a.d2 == b.d2 && a.idx < b.idx); }

// Bounded max-heap keeping the k smallest candidates under (d2, idx) order.
template <typename scalar_t>
struct TopK {
  std::vector<Cand<scalar_t>> h;
  int64_t k;
  explicit TopK(int64_t k_) : k(k_) { h.reserve(k_); }
  static bool cmp(const Cand<scalar_t>& a, const Cand<scalar_t>& b) { return less(a, b); }
  inline void push(scalar_t d2, int64_t idx) {
    Cand<scalar_t> c{d2, idx};
    if (int64_t(h.size()) < k) { h.push_back(c); std::push_heap(h.begin(), h.end(), cmp); }
    else if (less(c, h.front())) { std::pop_heap(h.begin(), h.end(), cmp); h.back() = c; std::push_heap(h.begin(), h.end(), cmp); }
  }
  inline bool full() const { return int64_t(h.size()) == k; }
  inline scalar_t worst() const { return h.front().d2; }
};

template <typename scalar_t>
inline scalar_t dist2(const scalar_t* a, const scalar_t* b) {
  scalar_t dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return dx * dx + dy * dy + dz * dz;
}

void check_points(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2 && t.size(1) == 3, name, " must be (N,3), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name, " must be float32 or float64");
}

// Minimum squared distance from point f (in cell units) to cell (x,y,z), in cell units.
inline double cell_min_d2(const double* f, int64_t x, int64_t y, int64_t z) {
  const int64_t c[3] = {x, y, z};
  double s = 0;
  for (int a = 0; a < 3; ++a) {
    double d = 0;
    if (f[a] < double(c[a])) d = double(c[a]) - f[a];
    else if (f[a] > double(c[a] + 1)) d = f[a] - double(c[a] + 1);
    s += d * d;
  }
  return s;
}

template <typename scalar_t>
void neighbours_cpu(const at::Tensor& support, const at::Tensor& query, const at::Tensor& s_off,
                    const at::Tensor& q_off, int64_t k, double radius, bool use_radius,
                    at::Tensor& idx, at::Tensor& d2out) {
  const scalar_t* S = support.data_ptr<scalar_t>();
  const scalar_t* Q = query.data_ptr<scalar_t>();
  const int64_t* so = s_off.data_ptr<int64_t>();
  const int64_t* qo = q_off.data_ptr<int64_t>();
  int64_t* I = idx.data_ptr<int64_t>();
  scalar_t* D = d2out.data_ptr<scalar_t>();
  const int64_t B = s_off.size(0);
  const scalar_t r2 = scalar_t(radius * radius);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s0 = b ? so[b - 1] : 0, s1 = so[b];
    const int64_t q0 = b ? qo[b - 1] : 0, q1 = qo[b];
    if (q1 <= q0 || s1 <= s0 || k == 0) continue;
    double cell;
    if (use_radius) {
      // half-radius cells: the cells a radius-sphere touches cover ~3x less volume than 27 r-cells
      cell = std::max(radius * 1.0001 / 2.0, 1e-12);
    } else {
      double lo[3], hi[3];
      for (int a = 0; a < 3; ++a) lo[a] = hi[a] = double(S[s0 * 3 + a]);
      for (int64_t i = s0; i < s1; ++i)
        for (int a = 0; a < 3; ++a) { double v = S[i * 3 + a]; lo[a] = std::min(lo[a], v); hi[a] = std::max(hi[a], v); }
      double vol = 1.0, ext_max = 0;
      int flat = 0;
      for (int a = 0; a < 3; ++a) ext_max = std::max(ext_max, hi[a] - lo[a]);
      for (int a = 0; a < 3; ++a) {
        double e = hi[a] - lo[a];
        if (e < 1e-3 * ext_max) { flat++; e = 1.0; }
        vol *= e;
      }
      // about k/4 points per cell, for a volume or a surface (scans sample 2D surfaces)
      const double n = double(s1 - s0), per = std::max(1.0, double(std::min<int64_t>(k, s1 - s0)) / 4.0);
      cell = flat >= 1 ? std::sqrt(vol * per / n) : std::cbrt(vol * per / n);
      cell = std::max(cell, ext_max * 1e-6);
      if (!(cell > 0)) cell = 1.0;
    }
    Grid<scalar_t> g(S, s0, s1, cell);
    if (!use_radius) {
      // the bounding box overstates the volume of clustered data (rooms far apart, LiDAR):
      // shrink the cells until the occupied ones hold about the intended number of points
      const double target = std::max(1.0, double(std::min<int64_t>(k, s1 - s0)) / 4.0);
      for (int it = 0; it < 6; ++it) {
        const double per = double(s1 - s0) / double(std::max<size_t>(g.cell_start.size(), 1));
        if (per <= 3.0 * target) break;
        cell *= std::max(0.1, std::sqrt(target / per));  // surfaces: points per cell ~ cell^2
        g = Grid<scalar_t>(S, s0, s1, cell);
      }
    }
    const int64_t ns = s1 - s0;
    // support coordinates in cell order: scanning a cell reads contiguous memory
    std::vector<scalar_t> SP(ns * 3);
    for (int64_t j = 0; j < ns; ++j)
      for (int a = 0; a < 3; ++a) SP[j * 3 + a] = S[g.order[j] * 3 + a];
    const int64_t ncells = int64_t(g.cell_start.size());
    // queries grouped by cell: the neighbour-cell lookups are done once per group
    const int64_t nq = q1 - q0;
    std::vector<std::pair<int64_t, int64_t>> qk(nq);
#pragma omp parallel for
    for (int64_t i = 0; i < nq; ++i) {
      const scalar_t* q = Q + (q0 + i) * 3;
      int64_t c[3];
      for (int a = 0; a < 3; ++a) c[a] = int64_t(std::floor((double(q[a]) - g.origin[a]) / g.cell));
      // cells outside the key range get a key of their own (they are looked up by coordinates)
      bool in = true;
      for (int a = 0; a < 3; ++a) in = in && c[a] >= 0 && c[a] < kAxisCells;
      qk[i] = {in ? pack(c[0], c[1], c[2]) : -1 - i, q0 + i};
    }
    std::sort(qk.begin(), qk.end());
    std::vector<int64_t> gstart;
    for (int64_t i = 0; i < nq; ++i)
      if (i == 0 || qk[i].first != qk[i - 1].first) gstart.push_back(i);
    gstart.push_back(nq);
    const int64_t ngroups = int64_t(gstart.size()) - 1;
    const int64_t near = use_radius ? 2 : 1;  // Chebyshev reach of the cached neighbour block
#pragma omp parallel
    {
      TopK<scalar_t> top(k);
      std::vector<int64_t> nb_cell;     // occupied cells of the cached block
      std::vector<int64_t> nb_xyz;      // their integer coordinates
#pragma omp for schedule(dynamic, 16)
      for (int64_t gi = 0; gi < ngroups; ++gi) {
        const int64_t a0 = gstart[gi], a1 = gstart[gi + 1];
        int64_t c[3];
        {
          const scalar_t* q = Q + qk[a0].second * 3;
          for (int a = 0; a < 3; ++a) c[a] = int64_t(std::floor((double(q[a]) - g.origin[a]) / g.cell));
        }
        nb_cell.clear();
        nb_xyz.clear();
        // R = 0 first, then the shell R = 1 (then R = 2 for ball queries): kNN fills up early
        for (int64_t R = 0; R <= near; ++R)
          for (int64_t dx = -R; dx <= R; ++dx)
            for (int64_t dy = -R; dy <= R; ++dy)
              for (int64_t dz = -R; dz <= R; ++dz) {
                if (std::max(std::llabs(dx), std::max(std::llabs(dy), std::llabs(dz))) != R) continue;
                const int64_t cid = g.lookup(c[0] + dx, c[1] + dy, c[2] + dz);
                if (cid < 0) continue;
                nb_cell.push_back(cid);
                nb_xyz.push_back(c[0] + dx); nb_xyz.push_back(c[1] + dy); nb_xyz.push_back(c[2] + dz);
              }
        for (int64_t a = a0; a < a1; ++a) {
          const int64_t qi = qk[a].second;
          const scalar_t* q = Q + qi * 3;
          double f[3];
          for (int ax = 0; ax < 3; ++ax) f[ax] = (double(q[ax]) - g.origin[ax]) / g.cell;
          top.h.clear();
          // conservative culling: skip a cell only when its nearest point is clearly too far
          const double r_cells2 = use_radius ? (radius / g.cell) * (radius / g.cell) * (1.0 + 1e-6) + 1e-12 : 0.0;
          auto scan = [&](int64_t cid) {
            for (int64_t j = g.cell_start[cid]; j < g.cell_end[cid]; ++j) {
              const scalar_t d = dist2(q, SP.data() + j * 3);
              if (!use_radius || d <= r2) top.push(d, g.order[j]);
            }
          };
          auto worst_cells2 = [&]() { return double(top.worst()) / (g.cell * g.cell) * (1.0 + 1e-6) + 1e-12; };
          for (size_t t = 0; t < nb_cell.size(); ++t) {
            const double md = cell_min_d2(f, nb_xyz[3 * t], nb_xyz[3 * t + 1], nb_xyz[3 * t + 2]);
            if ((use_radius && md > r_cells2) || (top.full() && md > worst_cells2())) continue;
            scan(nb_cell[t]);
          }
          if (!use_radius) {
            // anything outside the cached block is at least this far (cells)
            auto outside = [&](int64_t R) {
              double lb = std::numeric_limits<double>::infinity();
              for (int ax = 0; ax < 3; ++ax) lb = std::min(lb, std::min(f[ax] - double(c[ax] - R), double(c[ax] + R + 1) - f[ax]));
              return lb * g.cell;
            };
            int64_t rmax = 0;
            for (int ax = 0; ax < 3; ++ax) rmax = std::max(rmax, std::max(c[ax], g.dims[ax] - 1 - c[ax]));
            bool brute = false;
            for (int64_t R = near; R <= rmax; ++R) {
              if (R > near) {
                const int64_t side = 2 * R + 1;
                if (R > 3 && side * side * side > 8 * ncells + 64) { brute = true; break; }  // sparse: scan all
                for (int64_t dx = -R; dx <= R; ++dx)
                  for (int64_t dy = -R; dy <= R; ++dy) {
                    const bool edge = (std::llabs(dx) == R || std::llabs(dy) == R);
                    for (int64_t dz = -R; dz <= R; dz += (edge ? 1 : 2 * R)) {
                      const int64_t cid = g.lookup(c[0] + dx, c[1] + dy, c[2] + dz);
                      if (cid >= 0 && !(top.full() && cell_min_d2(f, c[0] + dx, c[1] + dy, c[2] + dz) > worst_cells2())) scan(cid);
                    }
                  }
              }
              if (top.full()) {
                const double lb = outside(R);
                if (double(top.worst()) < lb * lb * (1.0 - 1e-9)) break;  // strictly closer than the rest
              }
            }
            if (brute) {
              top.h.clear();
              for (int64_t j = 0; j < ns; ++j) top.push(dist2(q, SP.data() + j * 3), g.order[j]);
            }
          }
          std::sort(top.h.begin(), top.h.end(), TopK<scalar_t>::cmp);
          for (size_t j = 0; j < top.h.size(); ++j) { I[qi * k + j] = top.h[j].idx; D[qi * k + j] = top.h[j].d2; }
        }
      }
    }
  }
}

std::vector<at::Tensor> neighbours(at::Tensor support, at::Tensor query, at::Tensor s_off,
                                      at::Tensor q_off, int64_t k, double radius, bool use_radius) {
  check_points(support, "support");
  check_points(query, "query");
  TORCH_CHECK(support.scalar_type() == query.scalar_type(), "support and query must share a dtype");
  TORCH_CHECK(s_off.size(0) == q_off.size(0), "support_offset and query_offset must have the same length");
  support = support.contiguous();
  query = query.contiguous();
  s_off = s_off.to(at::kLong).contiguous();
  q_off = q_off.to(at::kLong).contiguous();
  auto idx = at::full({query.size(0), k}, -1, query.options().dtype(at::kLong));
  auto d2 = at::full({query.size(0), k}, std::numeric_limits<double>::infinity(), query.options());
#ifdef PCWEAK_WITH_CUDA
  if (support.is_cuda()) {
    auto stream = c10::cuda::getCurrentCUDAStream();
    if (support.scalar_type() == at::kFloat)
      pcweak_cuda_neighbours_f32(support.data_ptr<float>(), query.data_ptr<float>(), s_off.data_ptr<int64_t>(),
                                 q_off.data_ptr<int64_t>(), s_off.size(0), query.size(0), k, float(radius * radius),
                                 use_radius, idx.data_ptr<int64_t>(), d2.data_ptr<float>(), stream);
    else
      pcweak_cuda_neighbours_f64(support.data_ptr<double>(), query.data_ptr<double>(), s_off.data_ptr<int64_t>(),
                                 q_off.data_ptr<int64_t>(), s_off.size(0), query.size(0), k, radius * radius,
                                 use_radius, idx.data_ptr<int64_t>(), d2.data_ptr<double>(), stream);
    return {idx, d2};
  }
#endif
  TORCH_CHECK(!support.is_cuda(), "pcweak ops were built without CUDA");
  AT_DISPATCH_FLOATING_TYPES(support.scalar_type(), "neighbours_cpu", [&] {
    neighbours_cpu<scalar_t>(support, query, s_off, q_off, k, radius, use_radius, idx, d2);
  });
  return {idx, d2};
}

// ---------------------------------------------------------------------------------- voxelize
// Returns grid (V,3) int32 relative to each batch's min corner, inverse (N,), counts (V,),
// voxel offset (B,). Voxels sorted by (batch, x, y, z).
// Stable LSD radix sort of 64-bit keys on their bits [lo_bit, hi_bit), carrying a payload
// where `val` is given: a 2-pass-per-digit parallel counting sort (per-thread histograms keep
// it stable and race-free); a digit every key shares is skipped (the order stays as it is).
void radix_sort(std::vector<uint64_t>& key, std::vector<int64_t>* val, int lo_bit, int hi_bit) {
  const int64_t n = int64_t(key.size());
  std::vector<uint64_t> k2(n);
  std::vector<int64_t> v2(val ? n : 0);
  const int digit = 11, nb = 1 << digit;
  const int nthreads = max_threads();
  std::vector<int64_t> hist(size_t(nthreads) * nb);
  for (int shift = lo_bit; shift < hi_bit; shift += digit) {
    std::fill(hist.begin(), hist.end(), 0);
    bool shared_digit = false;
#pragma omp parallel num_threads(nthreads)
    {
      const int t = thread_num();
      const int64_t lo = n * t / nthreads, hi = n * (t + 1) / nthreads;
      int64_t* h = hist.data() + size_t(t) * nb;
      for (int64_t i = lo; i < hi; ++i) h[(key[i] >> shift) & (nb - 1)]++;
#pragma omp barrier
#pragma omp single
      {
        int64_t acc = 0;
        for (int d = 0; d < nb; ++d) {
          int64_t total = 0;
          for (int tt = 0; tt < nthreads; ++tt) {
            int64_t c = hist[size_t(tt) * nb + d];
            hist[size_t(tt) * nb + d] = acc;
            acc += c;
            total += c;
          }
          if (total == n) shared_digit = true;
        }
      }  // the single's barrier: every thread sees shared_digit
      if (!shared_digit) {
        for (int64_t i = lo; i < hi; ++i) {
          const int64_t pos = h[(key[i] >> shift) & (nb - 1)]++;
          k2[pos] = key[i];
          if (val) v2[pos] = (*val)[i];
        }
      }
    }
    if (shared_digit) continue;
    key.swap(k2);
    if (val) val->swap(v2);
  }
}

// Voxels of each scene: grid (V,3) int32 relative to the scene's min corner, inverse (N,),
// counts (V,), voxel offset (B,). Voxels sorted by (scene, x, y, z), like torch.unique. A point's
// voxel is floor((p - lo) / voxel) in double precision, lo the scene's min corner (the reference's
// arithmetic); the largest such value along an axis is that of the scene's max corner, so one
// min/max pass sizes a mixed-radix key that each point's voxel is written into directly.
template <typename scalar_t>
std::vector<at::Tensor> voxelize_impl(const at::Tensor& coord, double voxel, const at::Tensor& offset) {
  const scalar_t* P = coord.data_ptr<scalar_t>();
  const int64_t* off = offset.data_ptr<int64_t>();
  const int64_t N = coord.size(0), B = offset.size(0);
  constexpr int64_t axis = int64_t(1) << 18;
  std::vector<double> lo(size_t(B) * 3, 0.0);
  int64_t dims[3] = {1, 1, 1};
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = b ? off[b - 1] : 0, e = off[b];
    if (e <= s) continue;
    double mn[3] = {double(P[s * 3]), double(P[s * 3 + 1]), double(P[s * 3 + 2])}, mx[3] = {mn[0], mn[1], mn[2]};
#pragma omp parallel for reduction(min : mn[:3]) reduction(max : mx[:3])
    for (int64_t i = s; i < e; ++i)
      for (int a = 0; a < 3; ++a) {
        const double x = double(P[i * 3 + a]);
        mn[a] = std::min(mn[a], x);
        mx[a] = std::max(mx[a], x);
      }
    for (int a = 0; a < 3; ++a) {
      const double top = std::floor((mx[a] - mn[a]) / voxel);
      TORCH_CHECK(top < double(axis), "voxelize: scene ", b, " spans more than 262144 voxels along an axis; use a larger voxel_size");
      lo[size_t(b) * 3 + a] = mn[a];
      dims[a] = std::max(dims[a], int64_t(top) + 1);
    }
  }
  const long double span = (long double)std::max<int64_t>(B, 1) * dims[0] * dims[1] * dims[2];
  TORCH_CHECK(span < 1.8e19L, "voxelize: too many voxels for a 64-bit key");
  int bits = 1;
  while (bits < 64 && (long double)(uint64_t(1) << bits) < span) ++bits;
  int pid_bits = 1;
  while (pid_bits < 63 && (int64_t(1) << pid_bits) < N) ++pid_bits;
  // key = ((b * DX + x) * DY + y) * DZ + z: ordered like (b, x, y, z), and only as wide as needed.
  // Where key and point index fit one 64-bit word together (any cloud under 2^34 points at a
  // 30-bit key), the word is sorted alone: half the memory traffic of (key, index) pairs.
  const bool packed = bits + pid_bits <= 64;
  const int shift = packed ? pid_bits : 0;
  const uint64_t pid_mask = packed ? (uint64_t(1) << pid_bits) - 1 : 0;
  std::vector<uint64_t> keys(N);
  std::vector<int64_t> pid(packed ? 0 : N);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = b ? off[b - 1] : 0, e = off[b];
    const double* l = lo.data() + size_t(b) * 3;
#pragma omp parallel for
    for (int64_t i = s; i < e; ++i) {
      uint64_t k = uint64_t(b);
      for (int a = 0; a < 3; ++a) k = k * uint64_t(dims[a]) + uint64_t(std::floor((double(P[i * 3 + a]) - l[a]) / voxel));
      if (packed) {
        keys[i] = (k << shift) | uint64_t(i);
      } else {
        keys[i] = k;
        pid[i] = i;
      }
    }
  }
  radix_sort(keys, packed ? nullptr : &pid, shift, shift + bits);
  auto new_voxel = [&](int64_t j) { return j == 0 || (keys[j] >> shift) != (keys[j - 1] >> shift); };
  // voxel ids: each thread counts the new voxels of its block of the sorted order, then numbers them
  const int nthreads = max_threads();
  std::vector<int64_t> before(size_t(nthreads) + 1, 0);
#pragma omp parallel num_threads(nthreads)
  {
    const int t = thread_num();
    const int64_t lo_j = N * t / nthreads, hi_j = N * (t + 1) / nthreads;
    int64_t c = 0;
    for (int64_t j = lo_j; j < hi_j; ++j) c += new_voxel(j);
    before[size_t(t) + 1] = c;
  }
  for (int t = 0; t < nthreads; ++t) before[size_t(t) + 1] += before[size_t(t)];
  const int64_t V = before[size_t(nthreads)];
  auto inverse = at::empty({N}, at::kLong);
  auto grid = at::empty({V, 3}, at::kInt);
  auto counts = at::empty({V}, at::kLong);
  auto voff = at::zeros({B}, at::kLong);
  int64_t* inv = inverse.data_ptr<int64_t>();
  int32_t* G = grid.data_ptr<int32_t>();
  int64_t* cnt = counts.data_ptr<int64_t>();
  int64_t* vo = voff.data_ptr<int64_t>();
  std::vector<int64_t> first(size_t(V) + 1, N);  // each voxel's first position in the sorted order
  std::vector<int64_t> scene_of(static_cast<size_t>(V));  // each voxel's scene
#pragma omp parallel num_threads(nthreads)
  {
    const int t = thread_num();
    const int64_t lo_j = N * t / nthreads, hi_j = N * (t + 1) / nthreads;
    int64_t v = before[size_t(t)] - 1;
    for (int64_t j = lo_j; j < hi_j; ++j) {
      if (new_voxel(j)) {
        first[size_t(++v)] = j;
        uint64_t k = keys[j] >> shift;  // decoded back into (b, x, y, z)
        for (int a = 2; a >= 0; --a) {
          G[v * 3 + a] = int32_t(k % uint64_t(dims[a]));
          k /= uint64_t(dims[a]);
        }
        scene_of[size_t(v)] = int64_t(k);
      }
      inv[packed ? int64_t(keys[j] & pid_mask) : pid[j]] = v;
    }
  }
  for (int64_t v = 0; v < V; ++v) {
    cnt[v] = first[size_t(v) + 1] - first[size_t(v)];
    vo[scene_of[size_t(v)]] += 1;
  }
  for (int64_t b = 1; b < B; ++b) vo[b] += vo[b - 1];
  return {grid, inverse, counts, voff};
}

std::vector<at::Tensor> voxelize_cpu(at::Tensor coord, double voxel, at::Tensor offset) {
  check_points(coord, "coord");
  TORCH_CHECK(!coord.is_cuda(), "voxelize_cpu expects CPU tensors");
  TORCH_CHECK(voxel > 0, "voxel_size must be > 0");
  coord = coord.contiguous();
  offset = offset.to(at::kLong).contiguous();
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(coord.scalar_type(), "voxelize_cpu", [&] { out = voxelize_impl<scalar_t>(coord, voxel, offset); });
  return out;
}

// ---------------------------------------------------------------------------------- scatter
// reduce: 0 sum, 1 mean, 2 max, 3 min. src (N,C), index (N,). Returns out (G,C), arg (G,C)
// (max/min: winning row, first one on ties, -1 for empty groups), count (G,).
template <typename scalar_t>
void scatter_cpu_impl(const at::Tensor& src, const at::Tensor& index, int64_t G, int reduce,
                      at::Tensor& out, at::Tensor& arg, at::Tensor& count) {
  const int64_t N = src.size(0), C = src.size(1);
  const scalar_t* S = src.data_ptr<scalar_t>();
  const int64_t* I = index.data_ptr<int64_t>();
  scalar_t* O = out.data_ptr<scalar_t>();
  int64_t* A = arg.data_ptr<int64_t>();
  int64_t* K = count.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) K[I[i]]++;
  const int nthreads = max_threads();
  // Partition the channels among threads (no write conflicts, deterministic); with fewer
  // channels than threads, partition the groups instead (each thread scans all rows).
  const bool by_channel = C >= nthreads;
  const int64_t parts = by_channel ? std::min<int64_t>(C, nthreads) : std::min<int64_t>(G, nthreads);
#pragma omp parallel for schedule(static, 1)
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t c0 = by_channel ? C * p / parts : 0, c1 = by_channel ? C * (p + 1) / parts : C;
    const int64_t g0 = by_channel ? 0 : G * p / parts, g1 = by_channel ? G : G * (p + 1) / parts;
    if (reduce <= 1) {
      for (int64_t i = 0; i < N; ++i) {
        const int64_t g = I[i];
        if (g < g0 || g >= g1) continue;
        const scalar_t* s = S + i * C;
        scalar_t* o = O + g * C;
        for (int64_t c = c0; c < c1; ++c) o[c] += s[c];
      }
      if (reduce == 1)
        for (int64_t g = g0; g < g1; ++g)
          if (K[g] > 1)
            for (int64_t c = c0; c < c1; ++c) O[g * C + c] /= scalar_t(K[g]);
    } else {
      const bool is_max = reduce == 2;
      for (int64_t i = 0; i < N; ++i) {
        const int64_t g = I[i];
        if (g < g0 || g >= g1) continue;
        const scalar_t* s = S + i * C;
        scalar_t* o = O + g * C;
        int64_t* a = A + g * C;
        for (int64_t c = c0; c < c1; ++c) {
          const scalar_t v = s[c];
          if (a[c] < 0 || (is_max ? v > o[c] : v < o[c])) { o[c] = v; a[c] = i; }
        }
      }
    }
  }
}

std::vector<at::Tensor> scatter_fwd(at::Tensor src, at::Tensor index, int64_t dim_size, int64_t reduce) {
  TORCH_CHECK(src.dim() == 2, "scatter: src must be (N,C)");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == src.size(0), "scatter: index must be (N,) matching src");
  src = src.contiguous();
  index = index.to(at::kLong).contiguous();
  auto out = at::zeros({dim_size, src.size(1)}, src.options());
  auto arg = at::full({dim_size, src.size(1)}, -1, src.options().dtype(at::kLong));
  auto count = at::zeros({dim_size}, src.options().dtype(at::kLong));
#ifdef PCWEAK_WITH_CUDA
  if (src.is_cuda()) {
    auto stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "scatter_cuda", [&] {
      if (std::is_same<scalar_t, float>::value)
        pcweak_cuda_scatter_f32((const float*)src.data_ptr(), index.data_ptr<int64_t>(), src.size(0), src.size(1), dim_size,
                                int(reduce), (float*)out.data_ptr(), arg.data_ptr<int64_t>(), count.data_ptr<int64_t>(), stream);
      else
        pcweak_cuda_scatter_f64((const double*)src.data_ptr(), index.data_ptr<int64_t>(), src.size(0), src.size(1), dim_size,
                                int(reduce), (double*)out.data_ptr(), arg.data_ptr<int64_t>(), count.data_ptr<int64_t>(), stream);
    });
    return {out, arg, count};
  }
#endif
  if (index.numel()) {
    TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < dim_size,
                "scatter: index values must lie in [0, dim_size)");
  }
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "scatter_cpu", [&] {
    scatter_cpu_impl<scalar_t>(src, index, dim_size, int(reduce), out, arg, count);
  });
  return {out, arg, count};
}

// Gradient of max/min w.r.t. src: grad_src[arg[g,c], c] = grad_out[g,c].
template <typename scalar_t>
void scatter_arg_bwd_impl(const scalar_t* go, const int64_t* A, int64_t G, int64_t C, scalar_t* gs) {
#pragma omp parallel for
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t r = A[g * C + c];
      if (r >= 0) gs[r * C + c] = go[g * C + c];  // each (row, c) wins at most one group
    }
}

at::Tensor scatter_arg_bwd(at::Tensor grad_out, at::Tensor arg, int64_t n) {
  grad_out = grad_out.contiguous();
  arg = arg.contiguous();
  auto grad = at::zeros({n, grad_out.size(1)}, grad_out.options());
#ifdef PCWEAK_WITH_CUDA
  if (grad_out.is_cuda()) {
    auto valid = arg.ge(0);
    auto rows = arg.clamp_min(0);
    grad.scatter_add_(0, rows, grad_out * valid.to(grad_out.scalar_type()));
    return grad;
  }
#endif
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "scatter_arg_bwd", [&] {
    scatter_arg_bwd_impl<scalar_t>(grad_out.data_ptr<scalar_t>(), arg.data_ptr<int64_t>(), grad_out.size(0),
                                   grad_out.size(1), grad.data_ptr<scalar_t>());
  });
  return grad;
}

// ---------------------------------------------------------------------------------- FPS
template <typename scalar_t>
void fps_cpu_impl(const scalar_t* P, const int64_t* off, const int64_t* new_off, int64_t B, int64_t* out) {
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = b ? off[b - 1] : 0, e = off[b];
    const int64_t o0 = b ? new_off[b - 1] : 0, o1 = new_off[b];
    const int64_t n = e - s, m = o1 - o0;
    if (m <= 0 || n <= 0) continue;
    std::vector<scalar_t> mind(n, std::numeric_limits<scalar_t>::infinity());
    int64_t cur = 0;
    out[o0] = s;
    for (int64_t t = 1; t < m; ++t) {
      const scalar_t* c = P + (s + cur) * 3;
      scalar_t best = -1;
      int64_t besti = 0;
#pragma omp parallel
      {
        scalar_t lb = -1;
        int64_t li = 0;
#pragma omp for nowait
        for (int64_t i = 0; i < n; ++i) {
          scalar_t d = dist2(P + (s + i) * 3, c);
          if (d < mind[i]) mind[i] = d;
          if (mind[i] > lb) { lb = mind[i]; li = i; }
        }
#pragma omp critical
        {
          if (lb > best || (lb == best && li < besti)) { best = lb; besti = li; }
        }
      }
      cur = besti;
      out[o0 + t] = s + cur;
    }
  }
}

at::Tensor fps(at::Tensor coord, at::Tensor offset, at::Tensor new_offset) {
  check_points(coord, "coord");
  coord = coord.contiguous();
  offset = offset.to(at::kLong).contiguous().cpu();
  new_offset = new_offset.to(at::kLong).contiguous().cpu();
  const int64_t B = offset.size(0);
  const int64_t M = B ? new_offset[B - 1].item<int64_t>() : 0;
#ifdef PCWEAK_WITH_CUDA
  if (coord.is_cuda()) {
    auto out = at::empty({M}, coord.options().dtype(at::kLong));
    auto off_d = offset.to(coord.device()), noff_d = new_offset.to(coord.device());
    auto tmp = at::full({coord.size(0)}, std::numeric_limits<float>::infinity(), coord.options().dtype(at::kFloat));
    auto stream = c10::cuda::getCurrentCUDAStream();
    auto c32 = coord.to(at::kFloat).contiguous();
    pcweak_cuda_fps_f32(c32.data_ptr<float>(), off_d.data_ptr<int64_t>(), noff_d.data_ptr<int64_t>(), B,
                        tmp.data_ptr<float>(), out.data_ptr<int64_t>(), stream);
    return out;
  }
#endif
  auto out = at::empty({M}, at::kLong);
  AT_DISPATCH_FLOATING_TYPES(coord.scalar_type(), "fps_cpu", [&] {
    fps_cpu_impl<scalar_t>(coord.data_ptr<scalar_t>(), offset.data_ptr<int64_t>(), new_offset.data_ptr<int64_t>(), B,
                           out.data_ptr<int64_t>());
  });
  return out;
}

// ---------------------------------------------------------------------------------- FH segmentation
// Felzenszwalb-Huttenlocher graph segmentation. Edges must come sorted by weight (ascending).
// Two components merge over an edge when its weight is at most min(Int(A) + c/|A|, Int(B) + c/|B|);
// then components smaller than min_size are merged along the remaining edges in weight order.
// Returns a component id per node, numbered by first occurrence (deterministic).
struct DisjointSet {
  std::vector<int64_t> parent, size;
  std::vector<double> thresh;
  DisjointSet(int64_t n, double c) : parent(n), size(n, 1), thresh(n, c) {
    for (int64_t i = 0; i < n; ++i) parent[i] = i;
  }
  int64_t find(int64_t x) {
    while (parent[x] != x) { parent[x] = parent[parent[x]]; x = parent[x]; }
    return x;
  }
  int64_t join(int64_t a, int64_t b) {  // the smaller index stays the root: deterministic
    if (size[a] < size[b] || (size[a] == size[b] && b < a)) std::swap(a, b);
    parent[b] = a;
    size[a] += size[b];
    return a;
  }
};

// (E,) int64 order of the float64 keys w, ascending and stable: numpy's argsort(kind="stable")
// to the index (-0.0 equals 0.0, NaNs last in their order), by the radix sort above on the
// keys' bits mapped to unsigned integers of the same order (about 10x numpy's merge sort on
// FH's edge weights, docs/results.md).
at::Tensor argsort_stable(at::Tensor w) {
  w = w.to(at::kDouble).contiguous();
  TORCH_CHECK(w.dim() == 1, "argsort_stable: expected a 1-D tensor");
  const int64_t n = w.size(0);
  const double* W = w.data_ptr<double>();
  std::vector<uint64_t> key(n);
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) {
    double x = W[i] + 0.0;  // -0.0 -> 0.0
    if (std::isnan(x)) x = std::numeric_limits<double>::quiet_NaN();  // one NaN, above +inf
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    key[i] = (b >> 63) ? ~b : (b | (uint64_t(1) << 63));
    idx[i] = i;
  }
  radix_sort(key, &idx, 0, 64);
  auto out = at::empty({n}, at::kLong);
  std::memcpy(out.data_ptr<int64_t>(), idx.data(), size_t(n) * sizeof(int64_t));
  return out;
}

at::Tensor fh_segment(at::Tensor u, at::Tensor v, at::Tensor w, int64_t n, double c, int64_t min_size) {
  u = u.to(at::kLong).contiguous();
  v = v.to(at::kLong).contiguous();
  w = w.to(at::kDouble).contiguous();
  const int64_t E = u.size(0);
  const int64_t* U = u.data_ptr<int64_t>();
  const int64_t* V = v.data_ptr<int64_t>();
  const double* W = w.data_ptr<double>();
  DisjointSet ds(n, c);
  for (int64_t e = 0; e < E; ++e) {
    int64_t a = ds.find(U[e]), b = ds.find(V[e]);
    if (a == b) continue;
    if (W[e] <= ds.thresh[a] && W[e] <= ds.thresh[b]) {
      int64_t r = ds.join(a, b);
      ds.thresh[r] = W[e] + c / double(ds.size[r]);
    }
  }
  for (int64_t e = 0; e < E; ++e) {
    int64_t a = ds.find(U[e]), b = ds.find(V[e]);
    if (a != b && (ds.size[a] < min_size || ds.size[b] < min_size)) ds.join(a, b);
  }
  auto out = at::empty({n}, at::kLong);
  int64_t* O = out.data_ptr<int64_t>();
  std::vector<int64_t> label(n, -1);
  int64_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = ds.find(i);
    if (label[r] < 0) label[r] = next++;
    O[i] = label[r];
  }
  return out;
}

// Greedy l0 (piecewise-constant) partition of a graph, coarse levels nested in fine ones.
// Energy: sum over groups of sum_i ||x_i - mean_g||^2 + lambda * (weight of the edges cut).
// Joining groups a and b raises the first term by w_a w_b / (w_a + w_b) ||m_a - m_b||^2 and
// lowers the second by lambda * c_ab (c_ab the summed edge weight between them), so the join
// pays when their ratio is at most lambda. Joins are made cheapest ratio first, up to each
// level's lambda; then groups smaller than that level's minimum size join the neighbour with
// the cheapest ratio, smallest group first.
// The heap holds one live entry per adjacent pair (an entry is live while its version is the
// pair's) that the current level may join; pairs dearer than its lambda wait in a list that
// joins the heap, dead entries dropped, when their level starts (so the heap, and each pop,
// stays the size of one level's work: x1.8 on 1M points, docs/results.md), and pairs dearer
// than the last level's lambda, which could never be joined, are left out. A
// join re-prices only the pairs of the group with fewer neighbours (their edge weights
// changed); the survivor's other pairs keep their entries, and an entry whose groups
// changed since it was priced is re-priced when it reaches the top. So a join costs the
// smaller neighbour list, not the larger (a wall absorbing thousands of fragments would
// otherwise re-price its whole border each time), and the order is exact except where a
// survivor's move brought an untouched neighbour closer. Ties go to the smaller (a, b): the
// result is deterministic and equal to pcweak/segment/l0_partition.py's Python version.
// x, when float64 and contiguous, is overwritten with the groups' means (no second copy of the
// features; the caller hands over scratch).
struct L0Entry {
  double cost;
  uint32_t version;
  int32_t a, b;
  uint32_t sa, sb;
  bool before(const L0Entry& o) const {  // the order entries leave the heap: cheapest, then (a, b)
    if (cost != o.cost) return cost < o.cost;
    if (a != o.a) return a < o.a;
    if (b != o.b) return b < o.b;
    return version < o.version;
  }
};

struct L0After {
  bool operator()(const L0Entry& x, const L0Entry& y) const { return y.before(x); }
};

// One group's neighbours: neighbour id -> (summed edge weight c, version of the pair's live
// heap entry). Open addressing with linear probing and tombstones, in place of a
// std::unordered_map (a node allocated per entry): the joins are mostly these lookups. Results
// do not depend on the iteration order (every choice made while iterating breaks ties by id).
// 16 bytes a slot: ids fit 32 bits (n < 2^31), and a version counts the pricings of one pair
// while both its groups live (the first, then at most two per join: one when a group joins
// either end, one when that stale entry reaches the top), so fewer than 2^32.
struct L0Link {
  int32_t key;  // -1 empty, -2 erased
  uint32_t version;
  double c;
};

class L0Links {
 public:
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  L0Link* find(int32_t k) {
    if (slots_.empty()) return nullptr;
    for (size_t i = slot(k);; i = (i + 1) & mask()) {
      if (slots_[i].key == k) return &slots_[i];
      if (slots_[i].key == -1) return nullptr;
    }
  }
  // the entry of k, made with c = 0 and version 0 when absent (may move other entries)
  L0Link& at(int32_t k) {
    if (L0Link* l = find(k)) return *l;
    if ((size_t(used_) + 1) * 4 > slots_.size() * 3) rehash();
    size_t i = slot(k);
    while (slots_[i].key >= 0) i = (i + 1) & mask();
    if (slots_[i].key == -1) ++used_;
    slots_[i] = {k, 0, 0.0};
    ++n_;
    return slots_[i];
  }
  void erase(int32_t k) {
    if (L0Link* l = find(k)) { l->key = -2; --n_; }
  }
  void reserve(size_t n) {  // room for n entries without a rehash (an empty table only)
    size_t cap = 8;
    while (cap * 3 < n * 4) cap *= 2;
    if (n_ == 0 && cap > slots_.size()) slots_.assign(cap, {-1, 0, 0.0});
  }
  void release() { std::vector<L0Link>().swap(slots_); n_ = used_ = 0; }
  template <typename F> void each(F f) const {
    for (const L0Link& l : slots_) if (l.key >= 0) f(l);
  }

 private:
  size_t mask() const { return slots_.size() - 1; }
  size_t slot(int32_t k) const {
    return size_t((uint64_t(k) * 0x9E3779B97F4A7C15ull) >> 32) & mask();
  }
  void rehash() {  // room for twice the live entries, tombstones dropped
    size_t cap = 8;
    while (cap * 3 < (size_t(n_) + 1) * 2 * 4) cap *= 2;
    std::vector<L0Link> old;
    old.swap(slots_);
    slots_.assign(cap, {-1, 0, 0.0});
    n_ = used_ = 0;
    for (const L0Link& l : old)
      if (l.key >= 0) { at(l.key) = l; }
  }
  std::vector<L0Link> slots_;
  uint32_t n_ = 0, used_ = 0;  // live entries; live + erased slots
};

at::Tensor l0_partition(at::Tensor u, at::Tensor v, at::Tensor c, at::Tensor x, at::Tensor lambdas,
                           at::Tensor min_sizes) {
  u = u.to(at::kLong).contiguous();
  v = v.to(at::kLong).contiguous();
  c = c.to(at::kDouble).contiguous();
  x = x.to(at::kDouble).contiguous();
  lambdas = lambdas.to(at::kDouble).contiguous();
  min_sizes = min_sizes.to(at::kLong).contiguous();
  TORCH_CHECK(x.dim() == 2, "l0_partition: x must be (N,D)");
  const int64_t n = x.size(0), D = x.size(1), E = u.size(0), L = lambdas.size(0);
  TORCH_CHECK(n < (int64_t(1) << 31), "l0_partition: at most 2^31 - 1 points, got ", n);
  TORCH_CHECK(v.size(0) == E && c.size(0) == E, "l0_partition: u, v, c must have one entry per edge");
  TORCH_CHECK(min_sizes.size(0) == L, "l0_partition: one minimum size per level");
  const int64_t* U = u.data_ptr<int64_t>();
  const int64_t* V = v.data_ptr<int64_t>();
  const double* C = c.data_ptr<double>();
  for (int64_t e = 0; e < E; ++e)
    TORCH_CHECK(U[e] >= 0 && U[e] < n && V[e] >= 0 && V[e] < n && C[e] > 0, "l0_partition: edge ", e, " has an end outside [0, ", n, ") or a weight <= 0");
  double* mean = x.data_ptr<double>();  // each group's mean, in x's rows (x is overwritten)
  std::vector<double> wt(n, 1.0);
  std::vector<int64_t> parent(n);
  for (int64_t i = 0; i < n; ++i) parent[i] = i;
  std::vector<uint32_t> stamp(n, 0);
  std::vector<L0Links> adj(n);
  {  // each table sized once for its edges (an upper bound on its neighbours)
    std::vector<uint32_t> degree(n, 0);
    for (int64_t e = 0; e < E; ++e)
      if (U[e] != V[e]) { ++degree[U[e]]; ++degree[V[e]]; }
    for (int64_t i = 0; i < n; ++i) adj[i].reserve(degree[i]);
  }
  for (int64_t e = 0; e < E; ++e) {
    if (U[e] == V[e]) continue;
    adj[U[e]].at(V[e]).c += C[e];
    adj[V[e]].at(U[e]).c += C[e];
  }
  auto ratio = [&](int64_t a, int64_t b, double cab) {
    const double* ma = &mean[a * D];
    const double* mb = &mean[b * D];
    double d2 = 0;
    for (int64_t k = 0; k < D; ++k) { const double t = ma[k] - mb[k]; d2 += t * t; }
    return wt[a] * wt[b] / (wt[a] + wt[b]) * d2 / cab;
  };
  std::vector<L0Entry> heap, later;  // heap (std::push_heap order): what this level may join
  const L0After after;
  const double max_lambda = L ? lambdas.data_ptr<double>()[L - 1] : 0.0;
  double level_lambda = L ? lambdas.data_ptr<double>()[0] : 0.0;
  bool heap_built = false;
  // An entry is dead once a group of its pair was absorbed or the pair was priced again; a
  // dead entry stays dead. A list that is full drops its dead entries before it grows, and
  // grows (doubles) only when more than half of it is live, so most of level 0's 6.3M
  // re-priced entries on 1M points (82,928 live at its end) never take room, each entry is
  // scanned O(1) times, and the order of the joins is unchanged (the live entries are the
  // same; the heap is remade over them).
  auto live = [&](const L0Entry& e) {
    if (parent[e.a] != e.a || parent[e.b] != e.b) return false;
    const L0Link* it = adj[e.a].find(e.b);
    return it != nullptr && it->version == e.version;
  };
  uint64_t joins = 0;  // joins so far: a list scanned since the last join has nothing to drop
  uint64_t heap_clean = 0, later_clean = 0;  // joins at the list's last scan
  auto make_room = [&](std::vector<L0Entry>& list, uint64_t& clean, bool is_heap) {
    if (list.size() < list.capacity() || clean == joins) return;
    clean = joins;
    list.erase(std::remove_if(list.begin(), list.end(), [&](const L0Entry& e) { return !live(e); }), list.end());
    if (is_heap && heap_built) std::make_heap(list.begin(), list.end(), after);
    if (list.size() * 2 > list.capacity()) list.reserve(list.capacity() * 2);
  };
  // a fresh live entry for the pair (a, b), given a's link to b and b's link to a
  auto enter = [&](int64_t a, int64_t b, L0Link& ab, L0Link& ba) {
    ab.version = ba.version = std::max(ab.version, ba.version) + 1;  // the pair's next pricing
    const int64_t lo = std::min(a, b), hi = std::max(a, b);
    const double cost = ratio(lo, hi, ab.c);
    if (cost > max_lambda) return;  // dearer entries could never be joined: leave them out
    const L0Entry e{cost, ab.version, int32_t(lo), int32_t(hi), stamp[lo], stamp[hi]};
    if (cost > level_lambda) {
      make_room(later, later_clean, false);
      later.push_back(e);
      return;
    }
    make_room(heap, heap_clean, true);
    heap.push_back(e);
    if (heap_built) std::push_heap(heap.begin(), heap.end(), after);
  };
  auto price = [&](int64_t a, int64_t b) { enter(a, b, adj[a].at(b), adj[b].at(a)); };
  std::vector<int64_t> nbrs;
  for (int64_t a = 0; a < n; ++a) {
    nbrs.clear();
    adj[a].each([&](const L0Link& l) { if (a < l.key) nbrs.push_back(l.key); });
    for (const int64_t b : nbrs) price(a, b);
  }
  std::make_heap(heap.begin(), heap.end(), after);
  heap_built = true;
  auto find = [&](int64_t i) {
    while (parent[i] != i) { parent[i] = parent[parent[i]]; i = parent[i]; }
    return i;
  };
  std::vector<std::pair<int64_t, double>> moved;
  auto join = [&](int64_t a, int64_t b) {  // the group with more neighbours survives (a on ties)
    if (adj[a].size() < adj[b].size()) std::swap(a, b);
    const double wa = wt[a], wb = wt[b];
    for (int64_t k = 0; k < D; ++k) mean[a * D + k] = (wa * mean[a * D + k] + wb * mean[b * D + k]) / (wa + wb);
    wt[a] = wa + wb;
    parent[b] = a;
    ++stamp[a];
    ++stamp[b];
    ++joins;
    adj[a].erase(b);
    moved.clear();
    adj[b].each([&](const L0Link& l) { if (l.key != a) moved.push_back({l.key, l.c}); });
    adj[b].release();
    for (const auto& m : moved) {
      auto& nb = adj[m.first];
      nb.erase(b);
      L0Link& to_a = nb.at(a);  // in m's table: stays put while a's table grows
      to_a.c += m.second;
      L0Link& to_m = adj[a].at(m.first);
      to_m.c += m.second;
      enter(a, m.first, to_m, to_a);
    }
    return a;
  };
  auto out = at::empty({L, n}, at::kLong);
  int64_t* O = out.data_ptr<int64_t>();
  const double* LAM = lambdas.data_ptr<double>();
  const int64_t* MS = min_sizes.data_ptr<int64_t>();
  std::vector<std::pair<double, int64_t>> small;
  for (int64_t l = 0; l < L; ++l) {
    if (l > 0) {  // this level's entries join the heap, dead ones dropped; dearer ones wait
      level_lambda = LAM[l];
      size_t keep = 0;
      for (const L0Entry& e : later) {
        if (!live(e)) continue;
        if (e.cost <= level_lambda) heap.push_back(e); else later[keep++] = e;
      }
      later.resize(keep);
      std::make_heap(heap.begin(), heap.end(), after);
    }
    while (!heap.empty() && heap.front().cost <= LAM[l]) {
      std::pop_heap(heap.begin(), heap.end(), after);
      const L0Entry e = heap.back();
      heap.pop_back();
      if (!live(e)) continue;
      if (stamp[e.a] != e.sa || stamp[e.b] != e.sb) { price(e.a, e.b); continue; }
      join(e.a, e.b);
    }
    small.clear();
    for (int64_t i = 0; i < n; ++i)
      if (parent[i] == i && wt[i] < double(MS[l])) small.push_back({wt[i], i});
    std::sort(small.begin(), small.end());
    for (const auto& p : small) {
      const int64_t a = find(p.second);
      if (wt[a] >= double(MS[l]) || adj[a].empty()) continue;
      int64_t best = -1;
      double bc = 0;
      adj[a].each([&](const L0Link& l) {
        const double r = ratio(a, l.key, l.c);
        if (best < 0 || r < bc || (r == bc && l.key < best)) { best = l.key; bc = r; }
      });
      join(a, best);
    }
    for (int64_t i = 0; i < n; ++i) O[l * n + i] = find(i);
  }
  return out;
}

// Row gather / scatter-add for spconv's CPU convolution (gather -> matmul -> scatter-add per
// kernel offset). out[i] = src[idx[i]] and out[idx[i]] += src[i] for i < len(idx). Rows are split
// among threads by i; within one kernel offset spconv's output indices are unique, so no two
// threads ever touch the same row of `out` and the scatter is exact and deterministic.
template <typename scalar_t, typename index_t>
void gather_rows_impl(scalar_t* out, const scalar_t* src, const index_t* idx, int64_t n, int64_t c) {
  const size_t row_bytes = sizeof(scalar_t) * static_cast<size_t>(c);
#pragma omp parallel for schedule(static) if (n * c > (1 << 16))
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * c, src + static_cast<int64_t>(idx[i]) * c, row_bytes);
}

template <typename scalar_t, typename index_t>
void scatter_add_rows_impl(scalar_t* out, const scalar_t* src, const index_t* idx, int64_t n, int64_t c) {
#pragma omp parallel for schedule(static) if (n * c > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    scalar_t* __restrict__ o = out + static_cast<int64_t>(idx[i]) * c;
    const scalar_t* __restrict__ s = src + i * c;
    for (int64_t j = 0; j < c; ++j) o[j] += s[j];
  }
}

// The caller (pcweak/models/spconv_compat.py) hands spconv's own tensorview buffers over as
// addresses: wrapping them as torch tensors cost about 20 us a call, and a training step of the
// demo model makes some 3000 calls, most of them copying a few hundred rows. It checks contiguity,
// shapes and dtypes. dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16.
// Returns 0 once the rows have moved; otherwise nothing moves and it returns the number of indices
// out of range (> 0), or -1 where the arguments cannot describe the buffers (a negative count,
// fewer rows than indices, an unknown dtype code). The caller raises: no C++ exception leaves this
// hot path (one thrown from the compiled ops crashed the process on a GPU machine's image,
// docs/results.md "GPU machine").
template <typename index_t>
int64_t count_out_of_range(const index_t* idx, int64_t n, int64_t limit) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += (idx[i] < 0) | (idx[i] >= limit);
  return bad;
}

template <bool scatter>
int64_t rows_op(int64_t out_addr, int64_t out_rows, int64_t src_addr, int64_t src_rows, int64_t idx_addr, int64_t n,
                bool idx64, int64_t c, int64_t dtype) {
  if (n < 0 || c < 0 || (scatter ? src_rows : out_rows) < n || dtype < 0 || dtype > 3) return -1;
  if (n == 0 || c == 0) return 0;
  const int64_t limit = scatter ? out_rows : src_rows;
  const int64_t bad = idx64 ? count_out_of_range(reinterpret_cast<const int64_t*>(idx_addr), n, limit)
                            : count_out_of_range(reinterpret_cast<const int32_t*>(idx_addr), n, limit);
  if (bad) return bad;
  auto run = [&](auto zero) {
    using scalar_t = decltype(zero);
    auto* out = reinterpret_cast<scalar_t*>(out_addr);
    auto* src = reinterpret_cast<const scalar_t*>(src_addr);
    if (idx64) {
      auto* idx = reinterpret_cast<const int64_t*>(idx_addr);
      if (scatter) scatter_add_rows_impl(out, src, idx, n, c); else gather_rows_impl(out, src, idx, n, c);
    } else {
      auto* idx = reinterpret_cast<const int32_t*>(idx_addr);
      if (scatter) scatter_add_rows_impl(out, src, idx, n, c); else gather_rows_impl(out, src, idx, n, c);
    }
  };
  switch (dtype) {
    case 0: run(float(0)); break;
    case 1: run(double(0)); break;
    case 2: run(at::Half(0)); break;
    default: run(at::BFloat16(0)); break;
  }
  return 0;
}

int64_t num_threads() { return max_threads(); }

bool with_cuda() {
#ifdef PCWEAK_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // The long single-call kernels touch no Python object: they drop the GIL, so that a caller's
  // other threads (another partition of the same cloud, say) run beside them.
  const auto release = pybind11::call_guard<pybind11::gil_scoped_release>();
  m.def("neighbours", &neighbours, "ball query / kNN (support, query, s_off, q_off, k, radius, use_radius)",
        release);
  m.def("voxelize", &voxelize_cpu, "voxelize (coord, voxel_size, offset) -> grid, inverse, counts, voxel_offset");
  m.def("scatter_fwd", &scatter_fwd, "scatter (src, index, dim_size, reduce) -> out, arg, count");
  m.def("scatter_arg_bwd", &scatter_arg_bwd, "max/min backward (grad_out, arg, n)");
  m.def("fps", &fps, "farthest point sampling (coord, offset, new_offset)");
  m.def("argsort_stable", &argsort_stable, "stable ascending order of float64 keys, as numpy's argsort(kind='stable')",
        release);
  m.def("fh_segment", &fh_segment, "Felzenszwalb-Huttenlocher segmentation (u, v, w sorted, n, c, min_size)",
        release);
  m.def("l0_partition", &l0_partition, "greedy l0 graph partition, nested levels (u, v, c, x, lambdas, min_sizes) -> (L, N) root ids; "
        "a float64 contiguous x is overwritten",
        release);
  m.def("gather_rows", &rows_op<false>, "out[i] = src[idx[i]], i < n  (out, out_rows, src, src_rows, idx, n, idx64, C, dtype) "
        "-> 0, or the count of indices out of range, or -1 for arguments that cannot describe the buffers");
  m.def("scatter_add_rows", &rows_op<true>, "out[idx[i]] += src[i], i < n, idx unique  (same arguments and result)");
  m.def("num_threads", &num_threads);
  m.def("with_cuda", &with_cuda);
}
