/* A vectorisable exponential (and tanh, the logistic function and erf built
 * on such arithmetic) for row kernels, and the attributes that give those
 * kernels an AVX2 clone. Internal. */
#ifndef CF_TENSOR_VEXP_H
#define CF_TENSOR_VEXP_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Where the toolchain can (x86-64 glibc, for ifunc; GCC 6+ or Clang 14+), a
 * row kernel gets an AVX2 clone chosen when the library loads: the library
 * is built for baseline x86-64, and on 8-float vectors the exp polynomial
 * runs about 1.7 times faster. Helpers are forced inline so that each clone
 * compiles them for its own ISA. Both clones do the same IEEE operations in
 * the same order (no FMA is enabled), so they give the same bits. */
#if defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && defined(__clang__) &&         \
    __clang_major__ >= 14
/* Clang never inlines a multiversioned function and refuses noinline on one. */
#define CF_ROW_KERNEL __attribute__((target_clones("avx2", "default"))) static
#elif defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && defined(__GNUC__) &&        \
    __GNUC__ >= 6
#define CF_ROW_KERNEL __attribute__((noinline, target_clones("avx2", "default"))) static
#else
#define CF_ROW_KERNEL static
#endif
/* The same where GCC alone clones: Clang refuses to multiversion a function
 * marked unused, and in a clone fails to vectorise `omp simd` loops. */
#if defined(__clang__)
#define CF_ROW_KERNEL_GCC static
#else
#define CF_ROW_KERNEL_GCC CF_ROW_KERNEL
#endif
#define CF_ALWAYS_INLINE static inline __attribute__((always_inline))

/* e^x for x <= 0 (scores minus their max or their log-sum-exp), within 1 ulp
 * of the exact value for every float in [-87.3, 0] (checked exhaustively),
 * in plain arithmetic so that the row loops vectorise where expf stays a
 * library call. Cephes' range reduction and polynomial: x = k ln2 +
 * f, |f| <= ln2 / 2, e^x = 2^k e^f. Below about -87.7, where e^x is
 * subnormal, k reaches -127 and 2^k is built as 0, so e^-inf is 0; NaN
 * propagates. */
CF_ALWAYS_INLINE float cf__exp_le0(float x)
{
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    /* x = max(x, -88) as a bitwise select: written as a ternary, GCC splits
     * the loop body on the constant branch and no longer vectorises it. */
    uint32_t xb, clamp = -(uint32_t)(x < -88.0f);
    memcpy(&xb, &x, sizeof xb);
    xb = (xb & ~clamp) | (0xC2B00000u & clamp); /* -88 */
    memcpy(&x, &xb, sizeof x);
    float kf = x * 1.44269504088896341f + shift;
    uint32_t kb;
    memcpy(&kb, &kf, sizeof kb); /* the low bits hold k + 2^22 */
    kf -= shift;
    float f = x - kf * 0.693359375f;
    f -= kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * f * f + f + 1.0f;
    uint32_t eb = (kb - 0x4B400000u + 127u) << 23; /* 2^k; 0 for k = -127 */
    float e;
    memcpy(&e, &eb, sizeof e);
    return p * e;
}

/* The largest of n floats (-inf for none); a NaN among them need not win:
 * callers that must see NaN look for it themselves. */
CF_ALWAYS_INLINE float cf__row_max(const float *x, int64_t n)
{
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    /* Clang starts each lane of a max reduction at -FLT_MAX, not -inf, so a
     * row of -inf comes out as -FLT_MAX: look again, rarely. */
    if (m == -FLT_MAX) {
        m = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            m = x[i] > m ? x[i] : m;
    }
    return m;
}

/* The sum of eight partial sums in a fixed tree, as the row kernels take
 * them (lane q summing the elements at q mod 8): an order set by the row's
 * length alone, so a sum does not depend on the thread count. */
CF_ALWAYS_INLINE float cf__lanes8_total(const float *acc)
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* tanh and the logistic function through cf__exp_le0, so that their loops
 * vectorise; e = e^(-2|x|) or e^(-|x|) is at most 1. Absolute error stays
 * below 1e-7 (measured over [-20, 20]). */
CF_ALWAYS_INLINE float cf__tanh(float x)
{
    float ax = fabsf(x), e = cf__exp_le0(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return copysignf(t, x);
}

CF_ALWAYS_INLINE float cf__sigmoid(float x)
{
    float e = cf__exp_le0(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}

/* erf(x) as x P(x^2) / Q(x^2), degrees 5 and 5, a rational fit over
 * [0, 3.925] (beyond it erf rounds to +-1 in float), so that GELU's loops
 * vectorise where erff stays a library call. Absolute error below 5e-7
 * (measured over [-6, 6] in steps of 6e-6); NaN propagates through the
 * clamp's comparisons. */
CF_ALWAYS_INLINE float cf__erf(float x)
{
    float a = x > 3.925f ? 3.925f : x;
    a = a < -3.925f ? -3.925f : a;
    float z = a * a;
    float p = 2.086867880e-6f;
    p = p * z + 2.864857379e-4f;
    p = p * z + 3.736114828e-3f;
    p = p * z + 5.266094208e-2f;
    p = p * z + 1.894179732e-1f;
    p = p * z + 1.128379107e+0f;
    float q = 3.855763862e-5f;
    q = q * z + 1.159699867e-3f;
    q = q * z + 1.490663923e-2f;
    q = q * z + 1.137402803e-1f;
    q = q * z + 5.011995435e-1f;
    q = q * z + 1.0f;
    return a * p / q;
}

#endif
