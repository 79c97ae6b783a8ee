// Fused element-wise work of one time step of the recurrent cells, forwards and backwards, and the
// sampler's draw of one point per row.
//
// The fast path (fast.py) does each step's matrix multiplies with PyTorch; what remains of a step
// (layer norms, gate activations, the cell update, recurrent dropout, the hyper network's scaling,
// and their gradients) is some forty element-wise operations, each a pass over memory and a
// dispatch. Here each is one or two passes per row, the rows split over PyTorch's OpenMP threads
// (see for_rows). Arrays are row-major; `ld_*` is a row stride in elements.
// The maths is written out once per cell, next to the PyTorch steps it replaces (fast.py), and the
// tests hold the two to each other in float64 and float32.
//
// Built by kernels.py with the system's C++ compiler; no PyTorch headers, plain C entry points.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

// e^x in float without a library call, so that loops over it vectorise: x = k ln2 + r with
// |r| <= ln2 / 2, e^r by its Taylor series to r^7 (remainder < 6e-9, under float's rounding), 2^k
// by building the exponent bits. NaN stays NaN (every comparison with it is false).
inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // ln 2 in two parts: r stays exact
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// tanh in float and its slope 1 − tanh²: for |x| < 0.4 the odd series to x^11 (next term under
// 1 ulp) and 1 − t²; else, with e = e^(−2|x|) <= 0.45, (1 − e)/(1 + e) and 4e/(1 + e)², both free
// of cancellation (1 − t² from a rounded t near ±1 would lose most of its digits).
inline float tanh_slope_f(float x, float& slope) {
  const float a = std::fabs(x);
  const float e = exp_f(-2.0f * a), q = 1.0f + e;
  const float x2 = x * x;
  float s = -1382.0f / 155925.0f;
  s = s * x2 + 62.0f / 2835.0f;
  s = s * x2 - 17.0f / 315.0f;
  s = s * x2 + 2.0f / 15.0f;
  s = s * x2 - 1.0f / 3.0f;
  const float small = a + a * x2 * s;
  const bool near_zero = a < 0.4f;
  slope = near_zero ? 1.0f - small * small : 4.0f * e / (q * q);
  return std::copysign(near_zero ? small : (1.0f - e) / q, x);
}

template <typename T> struct Math;
template <> struct Math<float> {
  static float exp(float x) { return exp_f(x); }
  static float tanh_slope(float x, float& slope) { return tanh_slope_f(x, slope); }
};
template <> struct Math<double> {  // double is for the tests: the library functions, exact to the last bit
  static double exp(double x) { return std::exp(x); }
  static double tanh_slope(double x, double& slope) {
    const double t = std::tanh(x), e = std::exp(-2.0 * std::fabs(x)), q = 1.0 + e;
    slope = std::fabs(x) < 0.4 ? 1.0 - t * t : 4.0 * e / (q * q);
    return t;
  }
};

// σ(x) and its slope σ(1 − σ) = e σ² with e = e^(−x), again from e rather than from a rounded σ
template <typename T> inline T sigmoid_slope(T x, T& slope) {
  const T e = Math<T>::exp(-x), s = T(1) / (T(1) + e);
  slope = e * s * s;
  return s;
}
template <typename T> inline T sigmoid(T x) { return T(1) / (T(1) + Math<T>::exp(-x)); }
template <typename T> inline T tanh_slope(T x, T& slope) { return Math<T>::tanh_slope(x, slope); }
template <typename T> inline T tanh_(T x) {
  T unused;
  return Math<T>::tanh_slope(x, unused);
}

// mean and 1/sqrt(var + eps) of x[0..n): the biased variance, as the reference's layer norm
template <typename T> inline void moments(const T* x, int64_t n, T eps, T& mean, T& rstd) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += x[j];
  const T m = s / T(n);
  T v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < n; ++j) v += (x[j] - m) * (x[j] - m);
  mean = m;
  rstd = T(1) / std::sqrt(v / T(n) + eps);
}

// Runs body(r0, r1, part) over [0, rows) split into `threads` contiguous parts, on PyTorch's own
// OpenMP threads (the library links the same libgomp, which the loader shares): those threads
// wait for the next multiply meanwhile, so no thread is started or woken from sleep per call.
// Built without OpenMP, or with threads = 1, the calling thread does it all.
template <typename F> void for_rows(int64_t rows, int64_t threads, const F& body) {
#ifdef _OPENMP
  if (threads > 1 && rows > 1) {
#pragma omp parallel num_threads(static_cast<int>(std::min(threads, rows)))
    {
      const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
      const int64_t r0 = rows * part / parts, r1 = rows * (part + 1) / parts;
      body(r0, r1, part);
    }
    return;
  }
#endif
  (void)threads;
  body(int64_t(0), rows, int64_t(0));
}

// ---- LSTM (magenta's LSTMCell; the forget bias is already in the pre-activations) ----------------
//
// A missing mask reads as ones and a missing extra ∂h as zeros, so that the inner loops have no
// branches; each inner loop is one vectorised pass along a row.

// a [rows, 4n]: pre-activations in, σ(i), tanh(j), σ(f), σ(o) out.
// c' = c σ(f) + σ(i) tanh(j) m;  h' = tanh(c') σ(o)   (m: the recurrent-dropout mask, or 1)
template <typename T>
void lstm_forward_rows(int64_t r0, int64_t r1, int64_t n, T* a, const T* c, const T* mask, T* c_next, T* tc,
                       T* h_next) {
  const std::vector<T> ones(mask ? 0 : n, T(1));
  for (int64_t r = r0; r < r1; ++r) {
    T* ar = a + r * 4 * n;
    const T* cr = c + r * n;
    const T* mr = mask ? mask + r * n : ones.data();
    T *cn = c_next + r * n, *tr = tc + r * n, *hr = h_next + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T i = sigmoid(ar[j]), g = tanh_(ar[n + j]), f = sigmoid(ar[2 * n + j]), o = sigmoid(ar[3 * n + j]);
      ar[j] = i, ar[n + j] = g, ar[2 * n + j] = f, ar[3 * n + j] = o;
      const T cj = cr[j] * f + i * g * mr[j];
      const T t = tanh_(cj);
      cn[j] = cj, tr[j] = t, hr[j] = t * o;
    }
  }
}

// ∂h = dh (+ dh_extra), ∂c (in: from step t+1, out: to step t−1) and the activations `a` in; `a`
// out: the gradients of the gate pre-activations.
template <typename T>
void lstm_backward_rows(int64_t r0, int64_t r1, int64_t n, const T* dh, const T* dh_extra, int64_t ld_extra, T* dc,
                        T* a, const T* c, const T* tc, const T* mask) {
  const std::vector<T> ones(mask ? 0 : n, T(1)), zeros(dh_extra ? 0 : n, T(0));
  for (int64_t r = r0; r < r1; ++r) {
    T* ar = a + r * 4 * n;
    const T* mr = mask ? mask + r * n : ones.data();
    const T* xr = dh_extra ? dh_extra + r * ld_extra : zeros.data();
    const T *hr = dh + r * n, *cr = c + r * n, *tr = tc + r * n;
    T* dcr = dc + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T i = ar[j], g = ar[n + j], f = ar[2 * n + j], o = ar[3 * n + j];
      const T m = mr[j], t = tr[j];
      const T h_grad = hr[j] + xr[j];
      const T d = dcr[j] + h_grad * o * (T(1) - t * t);  // ∂c' += ∂h σ(o) (1 − tanh² c')
      ar[j] = d * g * m * (i - i * i);                    // ∂i: σ' = σ − σ²
      ar[n + j] = d * i * m * (T(1) - g * g);             // ∂j: tanh' = 1 − tanh²
      ar[2 * n + j] = d * cr[j] * (f - f * f);            // ∂f
      ar[3 * n + j] = h_grad * t * (o - o * o);           // ∂o
      dcr[j] = d * f;                                     // ∂c = ∂c' σ(f)
    }
  }
}

// ---- LayerNorm-LSTM (magenta's LayerNormLSTMCell; also both cells of the HyperLSTM) ---------------

// s [rows, 4n] (row stride ld_s): raw pre-activations. Per gate block k: ŝ_k = LN(s_k), kept in
// `normed` with its 1/std in rstd [rows, 4]; a_k = ŝ_k γ_k + β_k;
// c' = c σ(a_f + 1) + σ(a_i) tanh(a_j) m;  h' = tanh(LN(c') γc + βc) σ(a_o), LN(c')'s mean and 1/std
// kept in c_mean, c_rstd [rows].
template <typename T>
void ln_forward_rows(int64_t r0, int64_t r1, int64_t n, const T* s, int64_t ld_s, const T* gamma, const T* beta,
                     const T* gamma_c, const T* beta_c, const T* c, const T* mask, T eps, T forget_bias, T* normed,
                     T* rstd, T* c_next, T* c_mean, T* c_rstd, T* h_next) {
  const std::vector<T> ones(mask ? 0 : n, T(1));
  for (int64_t r = r0; r < r1; ++r) {
    const T* sr = s + r * ld_s;
    T* y = normed + r * 4 * n;
    for (int64_t k = 0; k < 4; ++k) {
      T mean, rs;
      moments(sr + k * n, n, eps, mean, rs);
      rstd[r * 4 + k] = rs;
      const T* sk = sr + k * n;
      T* yk = y + k * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) yk[j] = (sk[j] - mean) * rs;
    }
    const T* cr = c + r * n;
    const T* mr = mask ? mask + r * n : ones.data();
    T* cn = c_next + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T i = sigmoid(y[j] * gamma[j] + beta[j]);
      const T g = tanh_(y[n + j] * gamma[n + j] + beta[n + j]);
      const T f = sigmoid(y[2 * n + j] * gamma[2 * n + j] + beta[2 * n + j] + forget_bias);
      cn[j] = cr[j] * f + i * g * mr[j];
    }
    T mean_c, rs_c;
    moments(cn, n, eps, mean_c, rs_c);
    c_mean[r] = mean_c, c_rstd[r] = rs_c;
    T* hr = h_next + r * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const T o = sigmoid(y[3 * n + j] * gamma[3 * n + j] + beta[3 * n + j]);
      hr[j] = tanh_((cn[j] - mean_c) * rs_c * gamma_c[j] + beta_c[j]) * o;
    }
  }
}

// Backward of ln_forward for one step: ∂h = dh (+ dh_extra), ∂c (in: from step t+1; out: to step
// t−1, may alias) → ds [rows, 4n] (row stride ld_ds). The γ, β, γc, βc gradients are added into
// acc [10n] (layout: γ 4n, β 4n, γc n, βc n).
template <typename T>
void ln_backward_rows(int64_t r0, int64_t r1, int64_t n, const T* dh, const T* dh_extra,
                      int64_t ld_extra, T* dc, const T* normed, const T* rstd, const T* c, const T* c_next,
                      const T* c_mean, const T* c_rstd, const T* gamma, const T* beta, const T* gamma_c,
                      const T* beta_c, const T* mask, T forget_bias, T* ds, int64_t ld_ds, T* acc) {
  const std::vector<T> ones(mask ? 0 : n, T(1)), zeros(dh_extra ? 0 : n, T(0));
  std::vector<T> scratch(6 * n);
  T* dcn = scratch.data();  // ∂LN(c')
  T* dho = dcn + n;         // ∂a_o = ∂h tanh(u) σ'(a_o)
  T* dn = dho + n;          // ∂ŝ [4n]
  T* d_gamma = acc;
  T* d_beta = d_gamma + 4 * n;
  T* d_gamma_c = d_beta + 4 * n;
  T* d_beta_c = d_gamma_c + n;
  for (int64_t r = r0; r < r1; ++r) {
    const T* y = normed + r * 4 * n;
    const T* xr = dh_extra ? dh_extra + r * ld_extra : zeros.data();
    const T* mr = mask ? mask + r * n : ones.data();
    const T *hr = dh + r * n, *cr = c + r * n, *cnr = c_next + r * n;
    T* dcr = dc + r * n;
    const T mean_c = c_mean[r], rs_c = c_rstd[r];
    T s1 = 0, s2 = 0;
    // through h' = tanh(u) σ(a_o), u = LN(c') γc + βc
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t j = 0; j < n; ++j) {
      const T cn = (cnr[j] - mean_c) * rs_c;
      T u_slope, o_slope;
      const T u = tanh_slope(cn * gamma_c[j] + beta_c[j], u_slope);
      const T o = sigmoid_slope(y[3 * n + j] * gamma[3 * n + j] + beta[3 * n + j], o_slope);
      const T h_grad = hr[j] + xr[j];
      const T du = h_grad * o * u_slope;
      d_gamma_c[j] += du * cn;
      d_beta_c[j] += du;
      const T d = du * gamma_c[j];
      dcn[j] = d, dho[j] = h_grad * u * o_slope;
      s1 += d;
      s2 += d * cn;
    }
    const T m1 = s1 / T(n), m2 = s2 / T(n);
    T a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
    for (int64_t j = 0; j < n; ++j) {
      const T cn = (cnr[j] - mean_c) * rs_c;
      // ∂c' = ∂c'(from t+1) + LN backward: rstd (∂x̂ − mean ∂x̂ − x̂ mean(∂x̂ x̂))
      const T d = dcr[j] + (dcn[j] - m1 - cn * m2) * rs_c;
      T i_slope, g_slope, f_slope;
      const T i = sigmoid_slope(y[j] * gamma[j] + beta[j], i_slope);
      const T g = tanh_slope(y[n + j] * gamma[n + j] + beta[n + j], g_slope);
      const T f = sigmoid_slope(y[2 * n + j] * gamma[2 * n + j] + beta[2 * n + j] + forget_bias, f_slope);
      const T m = mr[j];
      const T di = d * g * m * i_slope, dg = d * i * m * g_slope, df = d * cr[j] * f_slope, dq = dho[j];
      d_gamma[j] += di * y[j], d_gamma[n + j] += dg * y[n + j];
      d_gamma[2 * n + j] += df * y[2 * n + j], d_gamma[3 * n + j] += dq * y[3 * n + j];
      d_beta[j] += di, d_beta[n + j] += dg, d_beta[2 * n + j] += df, d_beta[3 * n + j] += dq;
      const T n0 = di * gamma[j], n1 = dg * gamma[n + j], n2 = df * gamma[2 * n + j], n3 = dq * gamma[3 * n + j];
      dn[j] = n0, dn[n + j] = n1, dn[2 * n + j] = n2, dn[3 * n + j] = n3;
      a0 += n0, a1 += n1, a2 += n2, a3 += n3;
      b0 += n0 * y[j], b1 += n1 * y[n + j], b2 += n2 * y[2 * n + j], b3 += n3 * y[3 * n + j];
      dcr[j] = d * f;  // ∂c = ∂c' σ(a_f + 1)
    }
    const T sa[4] = {a0, a1, a2, a3}, sb[4] = {b0, b1, b2, b3};
    T* out = ds + r * ld_ds;
    for (int64_t k = 0; k < 4; ++k) {
      const T ma = sa[k] / T(n), mb = sb[k] / T(n), rs = rstd[r * 4 + k];
      const T *dk = dn + k * n, *yk = y + k * n;
      T* ok = out + k * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) ok[j] = (dk[j] - ma - yk[j] * mb) * rs;
    }
  }
}

// ---- HyperLSTM's gate pre-activations from its hyper network ---------------------------------

// ab [12, rows, n]: α_x (blocks 0-3), α_h (4-7), β (8-11). For gate k:
// s_k = α_x,k (x W_xh)_k + α_h,k (h W_hh)_k + β_k + b_k, written to s [rows, 4n].
template <typename T>
void hyper_gates_forward_rows(int64_t r0, int64_t r1, int64_t rows, int64_t n, const T* ab, const T* bias,
                              const T* xw, int64_t ld_xw, const T* hw, int64_t ld_hw, T* s) {
  const int64_t block = rows * n;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = 0; k < 4; ++k) {
      const T *ax = ab + k * block + r * n, *ah = ax + 4 * block, *b = ax + 8 * block;
      const T *x = xw + r * ld_xw + k * n, *h = hw + r * ld_hw + k * n, *bk = bias + k * n;
      T* out = s + r * 4 * n + k * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) out[j] = ax[j] * x[j] + ah[j] * h[j] + b[j] + bk[j];
    }
}

// Backward of hyper_gates_forward: from ∂s [rows, 4n], d_ab [12, rows, n] (∂α_x, ∂α_h, ∂β), ∂(x W_xh)
// into d_xw, ∂(h W_hh) into d_hw and also over hw (spent), and ∂b added into d_bias [4n].
template <typename T>
void hyper_gates_backward_rows(int64_t r0, int64_t r1, int64_t rows, int64_t n, const T* ds,
                               const T* ab, const T* xw, int64_t ld_xw, T* hw, int64_t ld_hw, T* d_ab, T* d_xw,
                               int64_t ld_dxw, T* d_hw, int64_t ld_dhw, T* d_bias) {
  const int64_t block = rows * n;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t at = k * block + r * n;
      const T *d = ds + r * 4 * n + k * n, *x = xw + r * ld_xw + k * n, *ax = ab + at, *ah = ab + at + 4 * block;
      T *h = hw + r * ld_hw + k * n, *dax = d_ab + at, *dah = dax + 4 * block, *db = dax + 8 * block;
      T *dx = d_xw + r * ld_dxw + k * n, *dhh = d_hw + r * ld_dhw + k * n, *dbias = d_bias + k * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const T dj = d[j], p = h[j], dp = dj * ah[j];
        dax[j] = dj * x[j], dah[j] = dj * p, db[j] = dj;
        dx[j] = dj * ax[j];
        dhh[j] = dp, h[j] = dp;
        dbias[j] += dj;
      }
    }
}


// Entry points: the rows split over threads; accumulators hold one block per thread part.
template <typename T>
void lstm_forward(int64_t rows, int64_t n, T* a, const T* c, const T* mask, T* c_next, T* tc, T* h_next,
                  int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    lstm_forward_rows(r0, r1, n, a, c, mask, c_next, tc, h_next);
  });
}

template <typename T>
void lstm_backward(int64_t rows, int64_t n, const T* dh, const T* dh_extra, int64_t ld_extra, T* dc, T* a,
                   const T* c, const T* tc, const T* mask, int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    lstm_backward_rows(r0, r1, n, dh, dh_extra, ld_extra, dc, a, c, tc, mask);
  });
}

template <typename T>
void ln_forward(int64_t rows, int64_t n, const T* s, int64_t ld_s, const T* gamma, const T* beta, const T* gamma_c,
                const T* beta_c, const T* c, const T* mask, T eps, T forget_bias, T* normed, T* rstd, T* c_next,
                T* c_mean, T* c_rstd, T* h_next, int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    ln_forward_rows(r0, r1, n, s, ld_s, gamma, beta, gamma_c, beta_c, c, mask, eps, forget_bias, normed, rstd, c_next,
                    c_mean, c_rstd, h_next);
  });
}

template <typename T>  // acc [threads, 10n]
void ln_backward(int64_t rows, int64_t n, const T* dh, const T* dh_extra, int64_t ld_extra, T* dc, const T* normed,
                 const T* rstd, const T* c, const T* c_next, const T* c_mean, const T* c_rstd, const T* gamma,
                 const T* beta, const T* gamma_c, const T* beta_c, const T* mask, T forget_bias, T* ds, int64_t ld_ds,
                 T* acc, int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t part) {
    ln_backward_rows(r0, r1, n, dh, dh_extra, ld_extra, dc, normed, rstd, c, c_next, c_mean, c_rstd, gamma, beta,
                     gamma_c, beta_c, mask, forget_bias, ds, ld_ds, acc + part * 10 * n);
  });
}

template <typename T>
void hyper_gates_forward(int64_t rows, int64_t n, const T* ab, const T* bias, const T* xw, int64_t ld_xw, const T* hw,
                         int64_t ld_hw, T* s, int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    hyper_gates_forward_rows(r0, r1, rows, n, ab, bias, xw, ld_xw, hw, ld_hw, s);
  });
}

template <typename T>  // d_bias [threads, 4n]
void hyper_gates_backward(int64_t rows, int64_t n, const T* ds, const T* ab, const T* xw, int64_t ld_xw, T* hw,
                          int64_t ld_hw, T* d_ab, T* d_xw, int64_t ld_dxw, T* d_hw, int64_t ld_dhw, T* d_bias,
                          int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t part) {
    hyper_gates_backward_rows(r0, r1, rows, n, ds, ab, xw, ld_xw, hw, ld_hw, d_ab, d_xw, ld_dxw, d_hw, ld_dhw,
                              d_bias + part * 4 * n);
  });
}

// ---- sampling: one point per row from the decoder's raw output (generate.draw_points) ------------
//
// y [rows, 3 + 6M]: the pen logits, then M each of π logits, μx, μy, log σx, log σy and ρ before its
// tanh (mixture.py's layout). Per row: the component k = F⁻¹(u0) of softmax(π / τ) (the number of
// cumulative probabilities below u0, at most M − 1), the pen state the same way at u1 with the end of
// sketch barred where `first` is set, the argmax of each where `greedy`; then
// (dx, dy) = (μx + σx τ e0, μy + σy τ (ρ e0 + √(1 − ρ²) e1)) for component k (τ → 0 when greedy).
// The maths of mixture.draw, the reference the tests hold this to; library exp and tanh, not the
// training loops' polynomials: a few dozen per row, and the draw should be the reference's.
template <typename T>  // p: room for m values (the probabilities, as scratch)
int64_t pick(const T* logits, int64_t m, int64_t allowed, T tau, bool greedy, T u, T* p) {
  int64_t best = 0;
  for (int64_t j = 1; j < allowed; ++j) best = logits[j] > logits[best] ? j : best;  // first maximum
  if (greedy) return best;
  const T top = logits[best] / tau;
  T total = 0;
  for (int64_t j = 0; j < allowed; ++j) total += p[j] = std::exp(logits[j] / tau - top);
  T cdf = 0;
  int64_t below = 0;
  for (int64_t j = 0; j < m; ++j) {  // a barred entry adds nothing to the cdf, as torch's −inf does
    cdf += j < allowed ? p[j] / total : T(0);
    below += cdf < u;
  }
  return std::min(below, m - 1);
}

template <typename T>
void draw_points_rows(int64_t r0, int64_t r1, int64_t m, const T* y, int64_t ld_y, const T* tau,
                      const uint8_t* greedy, const uint8_t* first, const T* u, int64_t ld_u, const T* e,
                      int64_t ld_e, T* x, int64_t* pen) {
  std::vector<T> p(std::max<int64_t>(m, 3));
  for (int64_t r = r0; r < r1; ++r) {
    const T* yr = y + r * ld_y;
    const bool g = greedy[r] != 0 || tau[r] == T(0);
    const T t = g ? T(1) : tau[r];
    const int64_t k = pick(yr + 3, m, m, t, g, u[r], p.data());                        // j ~ Π(τ)
    const int64_t q = pick(yr, 3, first != nullptr && first[r] ? 2 : 3, t, g, u[ld_u + r], p.data());  // pen ~ q(τ)
    const T spread = g ? T(0) : tau[r];
    const T s1 = std::exp(yr[3 + 3 * m + k]) * spread, s2 = std::exp(yr[3 + 4 * m + k]) * spread;
    const T rho = std::tanh(yr[3 + 5 * m + k]);
    const T e0 = e[r], e1 = e[ld_e + r];
    T* xr = x + r * 5;
    xr[0] = yr[3 + m + k] + s1 * e0;
    xr[1] = yr[3 + 2 * m + k] + s2 * (rho * e0 + std::sqrt(T(1) - rho * rho) * e1);  // N(μ, Σ τ²)
    xr[2] = xr[3] = xr[4] = T(0);
    xr[2 + q] = T(1);  // the next input: (dx, dy, p1, p2, p3)
    pen[r] = q;
  }
}

template <typename T>
void draw_points(int64_t rows, int64_t m, const T* y, int64_t ld_y, const T* tau, const uint8_t* greedy,
                 const uint8_t* first, const T* u, int64_t ld_u, const T* e, int64_t ld_e, T* x, int64_t* pen,
                 int64_t threads) {
  for_rows(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    draw_points_rows(r0, r1, m, y, ld_y, tau, greedy, first, u, ld_u, e, ld_e, x, pen);
  });
}

}  // namespace

// ---- C entry points: <name>_f32 and <name>_f64 ---------------------------------------------------

#define SK_EXPORT extern "C" __attribute__((visibility("default")))
#define SK_BOTH(NAME, PARAMS, ARGS)                                                     \
  SK_EXPORT void NAME##_f32 PARAMS(float) { NAME<float> ARGS; }                         \
  SK_EXPORT void NAME##_f64 PARAMS(double) { NAME<double> ARGS; }

#define LSTM_FWD_PARAMS(T) \
  (int64_t rows, int64_t n, T* a, const T* c, const T* mask, T* c_next, T* tc, T* h_next, int64_t threads)
#define LSTM_BWD_PARAMS(T)                                                                                  \
  (int64_t rows, int64_t n, const T* dh, const T* dh_extra, int64_t ld_extra, T* dc, T* a, const T* c, const T* tc, \
   const T* mask, int64_t threads)
#define LN_FWD_PARAMS(T)                                                                                      \
  (int64_t rows, int64_t n, const T* s, int64_t ld_s, const T* gamma, const T* beta, const T* gamma_c,         \
   const T* beta_c, const T* c, const T* mask, double eps, double forget_bias, T* normed, T* rstd, T* c_next, \
   T* c_mean, T* c_rstd, T* h_next, int64_t threads)
#define LN_BWD_PARAMS(T)                                                                                           \
  (int64_t rows, int64_t n, const T* dh, const T* dh_extra, int64_t ld_extra, T* dc, const T* normed, const T* rstd, \
   const T* c, const T* c_next, const T* c_mean, const T* c_rstd, const T* gamma, const T* beta, const T* gamma_c,   \
   const T* beta_c, const T* mask, double forget_bias, T* ds, int64_t ld_ds, T* acc, int64_t threads)
#define HYPER_FWD_PARAMS(T)                                                                                   \
  (int64_t rows, int64_t n, const T* ab, const T* bias, const T* xw, int64_t ld_xw, const T* hw, int64_t ld_hw, \
   T* s, int64_t threads)
#define DRAW_PARAMS(T)                                                                                     \
  (int64_t rows, int64_t m, const T* y, int64_t ld_y, const T* tau, const uint8_t* greedy, const uint8_t* first, \
   const T* u, int64_t ld_u, const T* e, int64_t ld_e, T* x, int64_t* pen, int64_t threads)
#define HYPER_BWD_PARAMS(T)                                                                                       \
  (int64_t rows, int64_t n, const T* ds, const T* ab, const T* xw, int64_t ld_xw, T* hw, int64_t ld_hw, T* d_ab, \
   T* d_xw, int64_t ld_dxw, T* d_hw, int64_t ld_dhw, T* d_bias, int64_t threads)

SK_BOTH(lstm_forward, LSTM_FWD_PARAMS, (rows, n, a, c, mask, c_next, tc, h_next, threads))
SK_BOTH(lstm_backward, LSTM_BWD_PARAMS, (rows, n, dh, dh_extra, ld_extra, dc, a, c, tc, mask, threads))
SK_BOTH(ln_forward, LN_FWD_PARAMS,
        (rows, n, s, ld_s, gamma, beta, gamma_c, beta_c, c, mask, eps, forget_bias, normed, rstd, c_next, c_mean,
         c_rstd, h_next, threads))
SK_BOTH(ln_backward, LN_BWD_PARAMS,
        (rows, n, dh, dh_extra, ld_extra, dc, normed, rstd, c, c_next, c_mean, c_rstd, gamma, beta, gamma_c, beta_c,
         mask, forget_bias, ds, ld_ds, acc, threads))
SK_BOTH(hyper_gates_forward, HYPER_FWD_PARAMS, (rows, n, ab, bias, xw, ld_xw, hw, ld_hw, s, threads))
SK_BOTH(hyper_gates_backward, HYPER_BWD_PARAMS,
        (rows, n, ds, ab, xw, ld_xw, hw, ld_hw, d_ab, d_xw, ld_dxw, d_hw, ld_dhw, d_bias, threads))
SK_BOTH(draw_points, DRAW_PARAMS, (rows, m, y, ld_y, tau, greedy, first, u, ld_u, e, ld_e, x, pen, threads))
