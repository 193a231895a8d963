// Selective scan (Mamba semantics) on the CPU: forward and backward kernels.
//
// Plain C++ with a C ABI, on purpose: it includes no torch header, so the one-time
// JIT build takes about 2 s instead of the ~45 s a <torch/extension.h> module costs
// here, and Python calls it through ctypes on tensors' data pointers
// (cvgl_edge/ops/cpu_kernel.py). The caller passes contiguous tensors in one dtype:
//   u, dt, z, out:  (batch, dim, len)   dt = step sizes, bias and softplus already applied
//   At:             (nstate, dim)       A transposed, so a block of channels is contiguous
//   B, C:           (batch, nstate, len)
//   D:              (dim,)              D and z may be null
// Recurrence (state h starts at 0), t running forward or, with reverse, backward:
//   h_t = exp(dt_t*A) * h_{t-1} + dt_t*B_t*u_t;  y_t = sum_n C_t[n]*h_t[n] + D*u_t;
//   out_t = y_t * silu(z_t)
//
// Vectorisation: a block of W neighbouring channels is scanned together, one channel per
// SIMD lane (W = 64 bytes of scalars), so the inner loops are lane-wise and need no
// horizontal sums; the compiler vectorises them (-O3 -march=native; "omp simd" tells it
// the lanes are independent, which it cannot prove through so many pointers). Work items
// are (batch, channel-block) pairs split over OpenMP threads. Only OpenMP pragmas are
// used (no omp_* calls), so the file also builds, single-threaded, without OpenMP.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace {

// 2^k for k in [-126, 127], built from the exponent bits.
inline float pow2i(int32_t k) {
  const int32_t bits = (k + 127) << 23;
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

// exp(x) without libm calls, so loops calling it vectorise without -ffast-math.
// Range reduction x = k*ln2 + r, |r| <= ln2/2 (k = nearest integer to x/ln2), then a
// degree-7 Taylor polynomial (truncation error < 1e-8 relative, below float epsilon).
// Results below the normal range flush to 0, above it go to +inf; NaN propagates.
inline float exp_vec(float x) {
  const float lo = -87.33654f;  // log(FLT_MIN)
  const float hi = 88.72283f;   // log(FLT_MAX)
  float xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  xc = (xc == xc) ? xc : 0.0f;
  // Round to nearest by adding and removing 1.5*2^23 (std::floor blocks vectorisation).
  const float shifter = 12582912.0f;
  const float kf = (xc * 1.44269504088896341f + shifter) - shifter;
  float r = xc - kf * 0.693145751953125f;  // ln2, high part (exact product for |k| < 256)
  r = r - kf * 1.428606765330187e-06f;     // ln2, low part
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t k = static_cast<int32_t>(kf);  // in [-126, 128]
  const int32_t k1 = k >> 1;                    // split so both factors stay normal
  float out = p * pow2i(k1) * pow2i(k - k1);
  out = (x < lo) ? 0.0f : out;
  out = (x > hi) ? INFINITY : out;
  return (x == x) ? out : x;
}

inline float exp_lane(float x) { return exp_vec(x); }
inline double exp_lane(double x) { return std::exp(x); }  // double: gradcheck, not speed

template <typename T>
inline T sigmoid_lane(T x) {
  return T(1) / (T(1) + exp_lane(-x));
}

template <typename T>
constexpr int kLanes = 64 / static_cast<int>(sizeof(T));  // 16 floats, 8 doubles

template <typename T>
struct Problem {
  const T* u;
  const T* dt;
  const T* At;
  const T* B;
  const T* C;
  const T* D;
  const T* z;
  int64_t batch, dim, len, nstate;
  bool reverse;

  int64_t time_at(int64_t step) const { return reverse ? len - 1 - step : step; }
  int64_t blocks() const { return (dim + kLanes<T> - 1) / kLanes<T>; }
};

// Per-block copy of A (zero in lanes past the last channel) so inner loops never branch.
template <typename T>
void load_block_A(const Problem<T>& p, int64_t d0, int w, T* Ablk) {
  constexpr int W = kLanes<T>;
  for (int64_t n = 0; n < p.nstate; ++n)
    for (int j = 0; j < W; ++j) Ablk[n * W + j] = j < w ? p.At[n * p.dim + d0 + j] : T(0);
}

// Copy w channel rows (row stride L) into a lane-major (L, W) buffer, zero-padding the
// unused lanes: the step loops then read one contiguous W-vector per time step.
template <typename T>
void gather_rows(const T* src, int64_t L, int w, T* dst) {
  constexpr int W = kLanes<T>;
  if (w < W) std::fill(dst, dst + L * W, T(0));
  for (int j = 0; j < w; ++j)
    for (int64_t t = 0; t < L; ++t) dst[t * W + j] = src[j * L + t];
}

// Inverse of gather_rows for the w used lanes.
template <typename T>
void scatter_rows(const T* src, int64_t L, int w, T* dst) {
  constexpr int W = kLanes<T>;
  for (int j = 0; j < w; ++j)
    for (int64_t t = 0; t < L; ++t) dst[j * L + t] = src[t * W + j];
}

// Per-thread scratch, sized for one channel block.
template <typename T>
struct Scratch {
  std::vector<T> u, dt, z, g, y, du, ddt, dz;           // (L, W) lane-major rows
  std::vector<T> states, laneB, laneC;                  // (L, N, W)
  std::vector<T> h, lam, dA_acc, Ablk, Dv, zero;        // (N, W) and (W)
  Scratch(int64_t L, int64_t N, bool backward)
      : u(L * kLanes<T>), dt(L * kLanes<T>), z(L * kLanes<T>), y(L * kLanes<T>),
        h(N * kLanes<T>), Ablk(N * kLanes<T>), Dv(kLanes<T>) {
    if (backward) {
      const int64_t full = L * N * kLanes<T>, rows = L * kLanes<T>;
      g.resize(rows), du.resize(rows), ddt.resize(rows), dz.resize(rows);
      states.resize(full), laneB.resize(full), laneC.resize(full);
      lam.resize(N * kLanes<T>), dA_acc.resize(N * kLanes<T>), zero.assign(N * kLanes<T>, T(0));
    }
  }
};

// Load one block's inputs into the scratch buffers; returns the number of used lanes.
template <typename T>
int load_block(const Problem<T>& p, int64_t b, int64_t d0, Scratch<T>& sc) {
  constexpr int W = kLanes<T>;
  const int w = static_cast<int>(std::min<int64_t>(W, p.dim - d0));
  const int64_t row0 = (b * p.dim + d0) * p.len;
  load_block_A(p, d0, w, sc.Ablk.data());
  gather_rows(p.u + row0, p.len, w, sc.u.data());
  gather_rows(p.dt + row0, p.len, w, sc.dt.data());
  if (p.z) gather_rows(p.z + row0, p.len, w, sc.z.data());
  for (int j = 0; j < W; ++j) sc.Dv[j] = (p.D && j < w) ? p.D[d0 + j] : T(0);
  return w;
}

// Scan one block of channels; y (before gating) lands in sc.y, lane-major. NS > 0 fixes
// the state size at compile time (Mamba's N = 16): the state then lives in a local array
// the compiler can keep in registers.
template <typename T, int NS>
void scan_block_n(const Problem<T>& p, int64_t b, Scratch<T>& sc, T* states) {
  constexpr int W = kLanes<T>;
  const int64_t L = p.len, N = NS > 0 ? NS : p.nstate;
  const T* Bb = p.B + b * N * L;
  const T* Cb = p.C + b * N * L;
  alignas(64) T local[(NS > 0 ? NS : 1) * W];
  T* h = NS > 0 ? local : sc.h.data();
  std::fill(h, h + N * W, T(0));
  for (int64_t s = 0; s < L; ++s) {
    const int64_t t = p.time_at(s);
    const T* dt = &sc.dt[t * W];
    const T* uu = &sc.u[t * W];
    T dtu[W], y[W];
    #pragma omp simd
    for (int j = 0; j < W; ++j) {
      dtu[j] = dt[j] * uu[j];
      y[j] = T(0);
    }
    for (int64_t n = 0; n < N; ++n) {
      const T bn = Bb[n * L + t], cn = Cb[n * L + t];
      const T* An = &sc.Ablk[n * W];
      T* hn = h + n * W;
      #pragma omp simd
      for (int j = 0; j < W; ++j) {
        const T v = exp_lane(dt[j] * An[j]) * hn[j] + dtu[j] * bn;
        hn[j] = v;
        y[j] += cn * v;
      }
    }
    if (states) std::copy(h, h + N * W, states + s * N * W);
    T* yo = &sc.y[t * W];
    for (int j = 0; j < W; ++j) yo[j] = y[j] + sc.Dv[j] * uu[j];
  }
}

template <typename T>
void scan_block(const Problem<T>& p, int64_t b, Scratch<T>& sc, T* states) {
  if (p.nstate == 16)
    scan_block_n<T, 16>(p, b, sc, states);
  else
    scan_block_n<T, 0>(p, b, sc, states);
}

template <typename T>
void scan_forward(const Problem<T>& p, T* out, int nthreads) {
  constexpr int W = kLanes<T>;
  const int64_t nblocks = p.blocks(), items = p.batch * nblocks, L = p.len;
#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T> sc(L, p.nstate, false);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / nblocks, d0 = (item % nblocks) * W;
      const int w = load_block(p, b, d0, sc);
      scan_block(p, b, sc, static_cast<T*>(nullptr));
      if (p.z) {
        for (int64_t k = 0; k < L * W; ++k) sc.y[k] *= sc.z[k] * sigmoid_lane(sc.z[k]);
      }
      scatter_rows(sc.y.data(), L, w, out + (b * p.dim + d0) * L);
    }
  }
}

template <typename T>
struct Grads {
  const T* dout;  // (batch, dim, len)
  T* du;          // (batch, dim, len)
  T* ddt;         // (batch, dim, len)  gradient w.r.t. the step sizes dt
  T* dA;          // (dim, nstate)
  T* dB;          // (batch, nstate, len)
  T* dC;          // (batch, nstate, len)
  T* dD;          // (dim,) or null
  T* dz;          // (batch, dim, len) or null
};

// Backward of one block: recompute its states into a local (L, N, W) buffer, then run the
// adjoint recursion lam_s = exp(dt_{s+1} A) * lam_{s+1} + dy_s * C_s from the last step
// back. dB and dC are shared by all channels, so lane-wise contributions are added into
// laneB/laneC (L, N, W) and summed over lanes once per work item, not per step.
template <typename T, int NS>
void backward_block_n(const Problem<T>& p, const Grads<T>& g, int64_t b, int64_t d0,
                      Scratch<T>& sc, T* dA_rows, T* dD_rows) {
  constexpr int W = kLanes<T>;
  const int64_t L = p.len, N = NS > 0 ? NS : p.nstate;
  const int64_t row0 = (b * p.dim + d0) * L;
  const int w = load_block(p, b, d0, sc);
  gather_rows(g.dout + row0, L, w, sc.g.data());
  scan_block(p, b, sc, sc.states.data());

  // dy = dout * silu(z); dz = dout * y * silu'(z)   (all lanes at once)
  if (p.z) {
    for (int64_t k = 0; k < L * W; ++k) {
      const T zv = sc.z[k], sz = sigmoid_lane(zv);
      sc.dz[k] = sc.g[k] * sc.y[k] * sz * (T(1) + zv * (T(1) - sz));
      sc.g[k] *= zv * sz;
    }
  }

  const T* Bb = p.B + b * N * L;
  const T* Cb = p.C + b * N * L;
  alignas(64) T lam_local[(NS > 0 ? NS : 1) * W], dA_local[(NS > 0 ? NS : 1) * W];
  T* lam_all = NS > 0 ? lam_local : sc.lam.data();
  T* dA_all = NS > 0 ? dA_local : sc.dA_acc.data();
  std::fill(lam_all, lam_all + N * W, T(0));
  std::fill(dA_all, dA_all + N * W, T(0));
  T dD_acc[W] = {};
  for (int64_t s = L - 1; s >= 0; --s) {
    const int64_t t = p.time_at(s);
    const T* dt = &sc.dt[t * W];
    const T* uu = &sc.u[t * W];
    const T* dy = &sc.g[t * W];
    T dtu[W], ddt[W], lamB[W];
    #pragma omp simd
    for (int j = 0; j < W; ++j) {
      dtu[j] = dt[j] * uu[j];
      ddt[j] = T(0);
      lamB[j] = T(0);
      dD_acc[j] += dy[j] * uu[j];
    }
    for (int64_t n = 0; n < N; ++n) {
      const T bn = Bb[n * L + t], cn = Cb[n * L + t];
      const T* An = &sc.Ablk[n * W];
      const T* hcur = &sc.states[(s * N + n) * W];
      const T* hprev = s > 0 ? &sc.states[((s - 1) * N + n) * W] : &sc.zero[0];
      T* lam = lam_all + n * W;
      T* dAn = dA_all + n * W;
      T* lB = &sc.laneB[(t * N + n) * W];
      T* lC = &sc.laneC[(t * N + n) * W];
      #pragma omp simd
      for (int j = 0; j < W; ++j) {
        const T a = exp_lane(dt[j] * An[j]);
        const T l = lam[j] + dy[j] * cn;
        const T g1 = l * hprev[j] * a;  // gradient through the decay exp(dt*A)
        lC[j] += dy[j] * hcur[j];
        lB[j] += l * dtu[j];
        ddt[j] += g1 * An[j];
        dAn[j] += g1 * dt[j];
        lamB[j] += l * bn;
        lam[j] = l * a;
      }
    }
    T* ddt_out = &sc.ddt[t * W];
    T* du_out = &sc.du[t * W];
    #pragma omp simd
    for (int j = 0; j < W; ++j) {
      ddt_out[j] = ddt[j] + uu[j] * lamB[j];
      du_out[j] = dy[j] * sc.Dv[j] + dt[j] * lamB[j];
    }
  }
  scatter_rows(sc.ddt.data(), L, w, g.ddt + row0);
  scatter_rows(sc.du.data(), L, w, g.du + row0);
  if (p.z) scatter_rows(sc.dz.data(), L, w, g.dz + row0);
  for (int j = 0; j < w; ++j) {
    const int64_t d = d0 + j;
    for (int64_t n = 0; n < N; ++n) dA_rows[(b * p.dim + d) * N + n] = dA_all[n * W + j];
    dD_rows[b * p.dim + d] = dD_acc[j];
  }
}

template <typename T>
void backward_block(const Problem<T>& p, const Grads<T>& g, int64_t b, int64_t d0,
                    Scratch<T>& sc, T* dA_rows, T* dD_rows) {
  if (p.nstate == 16)
    backward_block_n<T, 16>(p, g, b, d0, sc, dA_rows, dD_rows);
  else
    backward_block_n<T, 0>(p, g, b, d0, sc, dA_rows, dD_rows);
}

// Backward: work items are (batch, group of channel blocks); each item accumulates its
// blocks' dB/dC lane-wise, then writes its lane sums into its own slot. Slots, and the
// per-(batch, channel) partials of dA and dD, are summed in a fixed order at the end, so
// results do not depend on thread timing.
template <typename T>
void scan_backward(const Problem<T>& p, const Grads<T>& g, int nthreads) {
  constexpr int W = kLanes<T>;
  const int64_t L = p.len, N = p.nstate, nblocks = p.blocks();
  const int64_t want = (2 * static_cast<int64_t>(nthreads) + p.batch - 1) / p.batch;
  const int64_t groups = std::max<int64_t>(1, std::min<int64_t>(nblocks, want));
  const int64_t per_group = (nblocks + groups - 1) / groups;
  const int64_t items = p.batch * groups, slot = N * L;
  std::vector<T> slotB(items * slot), slotC(items * slot);
  std::vector<T> dA_rows(p.batch * p.dim * N), dD_rows(p.batch * p.dim);

#pragma omp parallel num_threads(nthreads)
  {
    Scratch<T> sc(L, N, true);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item / groups, grp = item % groups;
      std::fill(sc.laneB.begin(), sc.laneB.end(), T(0));
      std::fill(sc.laneC.begin(), sc.laneC.end(), T(0));
      const int64_t first = grp * per_group, last = std::min(nblocks, first + per_group);
      for (int64_t blk = first; blk < last; ++blk)
        backward_block(p, g, b, blk * W, sc, dA_rows.data(), dD_rows.data());
      T* outB = &slotB[item * slot];
      T* outC = &slotC[item * slot];
      for (int64_t t = 0; t < L; ++t)
        for (int64_t n = 0; n < N; ++n) {
          const T* lb = &sc.laneB[(t * N + n) * W];
          const T* lc = &sc.laneC[(t * N + n) * W];
          T sb = T(0), scc = T(0);
          #pragma omp simd
          for (int j = 0; j < W; ++j) {
            sb += lb[j];
            scc += lc[j];
          }
          outB[n * L + t] = sb;
          outC[n * L + t] = scc;
        }
    }

#pragma omp for schedule(static)
    for (int64_t i = 0; i < p.batch * slot; ++i) {
      const int64_t b = i / slot, k = i % slot;
      T sb = T(0), scc = T(0);
      for (int64_t grp = 0; grp < groups; ++grp) {
        sb += slotB[(b * groups + grp) * slot + k];
        scc += slotC[(b * groups + grp) * slot + k];
      }
      g.dB[i] = sb;
      g.dC[i] = scc;
    }
#pragma omp for schedule(static)
    for (int64_t d = 0; d < p.dim; ++d) {
      T sD = T(0);
      for (int64_t n = 0; n < N; ++n) g.dA[d * N + n] = T(0);
      for (int64_t b = 0; b < p.batch; ++b) {
        for (int64_t n = 0; n < N; ++n) g.dA[d * N + n] += dA_rows[(b * p.dim + d) * N + n];
        sD += dD_rows[b * p.dim + d];
      }
      if (g.dD) g.dD[d] = sD;
    }
  }
}

inline int clamp_threads(int32_t nthreads) { return nthreads > 0 ? nthreads : 1; }

}  // namespace

// C ABI. Each function returns 0 on success, 1 if memory could not be allocated.
#define CVGL_SCAN_ENTRY_POINTS(T, SUFFIX)                                                   \
  extern "C" int cvgl_scan_fwd_##SUFFIX(const T* u, const T* dt, const T* At, const T* B,   \
                                        const T* C, const T* D, const T* z, T* out,         \
                                        int64_t batch, int64_t dim, int64_t len,            \
                                        int64_t nstate, int32_t reverse, int32_t nthreads) { \
    try {                                                                                   \
      const Problem<T> p{u, dt, At, B, C, D, z, batch, dim, len, nstate, reverse != 0};     \
      scan_forward(p, out, clamp_threads(nthreads));                                        \
    } catch (const std::bad_alloc&) {                                                       \
      return 1;                                                                             \
    }                                                                                       \
    return 0;                                                                               \
  }                                                                                         \
  extern "C" int cvgl_scan_bwd_##SUFFIX(                                                    \
      const T* u, const T* dt, const T* At, const T* B, const T* C, const T* D, const T* z, \
      const T* dout, T* du, T* ddt, T* dA, T* dB, T* dC, T* dD, T* dz, int64_t batch,       \
      int64_t dim, int64_t len, int64_t nstate, int32_t reverse, int32_t nthreads) {        \
    try {                                                                                   \
      const Problem<T> p{u, dt, At, B, C, D, z, batch, dim, len, nstate, reverse != 0};     \
      scan_backward(p, Grads<T>{dout, du, ddt, dA, dB, dC, dD, dz}, clamp_threads(nthreads)); \
    } catch (const std::bad_alloc&) {                                                       \
      return 1;                                                                             \
    }                                                                                       \
    return 0;                                                                               \
  }

CVGL_SCAN_ENTRY_POINTS(float, f32)
CVGL_SCAN_ENTRY_POINTS(double, f64)

extern "C" int cvgl_scan_abi_version() { return 2; }
