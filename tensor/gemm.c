/* The one place that calls BLIS. Its typed API takes a row and a column
 * stride per operand, so transposed and permuted views go in without copies. */
#include "tensor/internal.h"

#include <blis.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BLIS 0.9 knows no AMD processor after Zen 3 and falls back to its
 * generic kernels on Zen 4 and 5: 32 GFLOP/s on one Zen 5 core, where its
 * AVX-512 kernels (the skx sub-configuration) reach 190. Unless the user
 * chose a sub-configuration, choose for AMD's family 19h (Zen 3 and 4) and
 * later, before BLIS reads BLIS_ARCH_TYPE at its first call (it never reads
 * it again): skx with AVX-512, else zen3 with AVX2 (what BLIS picks on
 * Zen 3 itself). Later versions of BLIS detect these processors. */
__attribute__((constructor)) static void blis_arch_for_cpu(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (getenv("BLIS_ARCH_TYPE") || strncmp(bli_info_get_version_str(), "0.", 2) != 0)
        return;
    unsigned eax, ebx, ecx, edx;
    __builtin_cpu_init();
    if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return;
    unsigned family = (eax >> 8) & 0xf;
    if (family == 0xf)
        family += (eax >> 20) & 0xff;
    if (family < 0x19)
        return;
    int arch;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        arch = BLIS_ARCH_SKX;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        arch = BLIS_ARCH_ZEN3;
    else
        return;
    char id[16];
    snprintf(id, sizeof id, "%d", arch);
    setenv("BLIS_ARCH_TYPE", id, 0);
#endif
}

/* BLIS rejects size-1 dims whose stride it cannot place; such a dim's stride
 * is never used, so give it the value a contiguous layout would have. */
static void fix_strides(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs)
{
    if (rows == 1 && cols == 1) {
        *rs = *cs = 1;
    } else if (rows == 1) {
        *rs = cols * *cs;
    } else if (cols == 1) {
        *cs = rows * *rs;
    }
}

/* A zero stride (a broadcast view) is not a matrix BLIS accepts: copy it. */
static const float *densify(const float *p, int64_t rows, int64_t cols, int64_t *rs, int64_t *cs,
                            float **tmp)
{
    if ((*rs != 0 || rows == 1) && (*cs != 0 || cols == 1))
        return p;
    float *d = cf_malloc(sizeof(float) * rows * cols);
    if (!d)
        return NULL;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            d[i * cols + j] = p[i * *rs + j * *cs];
    *rs = cols;
    *cs = 1;
    *tmp = d;
    return d;
}

/* ---- Products with a vector ----
 * y[j] (+)= sum over l of x[l] B[l, j], j < n, l < k, with B's strides ks
 * along l and ns along j. Each y[j] is summed in an order fixed by k alone
 * (eight interleaved partial sums, then a fixed tree), so the result does
 * not depend on the thread count or on how the columns are split. */

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

#define VM_COLS 256 /* columns per task */

/* Macros rather than functions: a 32-byte vector is no argument or return
 * value without AVX (the psABI). */
#define load8(p) (*(const v8u *)(p))
#define hsum8(v) (((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7]))

/* x . y over n contiguous floats. */
CF_CLONES static float dot(int64_t n, const float *x, const float *y)
{
    int64_t n8 = n & ~(int64_t)7;
    v8 s = {0};
    for (int64_t l = 0; l < n8; l += 8)
        s += load8(x + l) * load8(y + l);
    float r = hsum8(s);
    for (int64_t l = n8; l < n; l++)
        r += x[l] * y[l];
    return r;
}

/* Columns [j0, j1) when B's columns are contiguous (ks == 1): dot products,
 * four columns at a time sharing the loads of x (contiguous). */
CF_CLONES static void vm_dot(bool acc, int64_t j0, int64_t j1, int64_t k, const float *x,
                             const float *b, int64_t ns, float *y, int64_t incy)
{
    int64_t k8 = k & ~(int64_t)7, j = j0;
    for (; j + 4 <= j1; j += 4) {
        const float *b0 = b + j * ns, *b1 = b0 + ns, *b2 = b1 + ns, *b3 = b2 + ns;
        v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int64_t l = 0; l < k8; l += 8) {
            v8 xv = load8(x + l);
            s0 += xv * load8(b0 + l);
            s1 += xv * load8(b1 + l);
            s2 += xv * load8(b2 + l);
            s3 += xv * load8(b3 + l);
        }
        float r[4] = {hsum8(s0), hsum8(s1), hsum8(s2), hsum8(s3)};
        for (int64_t l = k8; l < k; l++) {
            r[0] += x[l] * b0[l];
            r[1] += x[l] * b1[l];
            r[2] += x[l] * b2[l];
            r[3] += x[l] * b3[l];
        }
        for (int q = 0; q < 4; q++)
            y[(j + q) * incy] = acc ? y[(j + q) * incy] + r[q] : r[q];
    }
    for (; j < j1; j++) {
        float r = dot(k, x, b + j * ns);
        y[j * incy] = acc ? y[j * incy] + r : r;
    }
}

/* Columns [j0, j1) when B's rows are contiguous (ns == 1): y += x[l] B[l, :]
 * row after row, over at most VM_COLS columns kept in t. */
CF_CLONES static void vm_axpy(bool acc, int64_t j0, int64_t j1, int64_t k, const float *x,
                              int64_t incx, const float *b, int64_t ks, float *y, int64_t incy)
{
    float t[VM_COLS] __attribute__((aligned(32)));
    int64_t n = j1 - j0, n8 = n & ~(int64_t)7;
    for (int64_t j = 0; j < n; j++)
        t[j] = 0;
    for (int64_t l = 0; l < k; l++) {
        const float *br = b + l * ks + j0;
        float xl = x[l * incx];
        v8 xv = {xl, xl, xl, xl, xl, xl, xl, xl};
        for (int64_t j = 0; j < n8; j += 8)
            *(v8 *)(t + j) += xv * load8(br + j);
        for (int64_t j = n8; j < n; j++)
            t[j] += xl * br[j];
    }
    for (int64_t j = 0; j < n; j++)
        y[(j0 + j) * incy] = acc ? y[(j0 + j) * incy] + t[j] : t[j];
}

static void vecmat(bool acc, int64_t n, int64_t k, const float *x, int64_t incx, const float *b,
                   int64_t ks, int64_t ns, float *y, int64_t incy)
{
    int64_t ntask = (n + VM_COLS - 1) / VM_COLS;
    int nt = cf__threads_for(n * k);
    if (nt > ntask)
        nt = (int)ntask;
    if (ks == 1 && incx != 1) {
        /* The dot products want x contiguous. */
        float *xc = cf_malloc(sizeof(float) * (size_t)k);
        if (!xc) {
            cf__error(CF_ERR_NOMEM, "matmul: out of memory copying a vector operand");
            return;
        }
        for (int64_t l = 0; l < k; l++)
            xc[l] = x[l * incx];
        vecmat(acc, n, k, xc, 1, b, ks, ns, y, incy);
        cf_free(xc);
        return;
    }
    /* if: a one-thread region still costs a team's start-up, which is the
     * whole product's time at a decoder step's sizes. */
#pragma omp parallel for if (nt > 1) num_threads(nt) schedule(static)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t j0 = t * VM_COLS, j1 = j0 + VM_COLS < n ? j0 + VM_COLS : n;
        if (ks == 1) {
            vm_dot(acc, j0, j1, k, x, b, ns, y, incy);
        } else if (ns == 1) {
            vm_axpy(acc, j0, j1, k, x, incx, b, ks, y, incy);
        } else {
            for (int64_t j = j0; j < j1; j++) {
                float r = 0;
                for (int64_t l = 0; l < k; l++)
                    r += x[l * incx] * b[l * ks + j * ns];
                y[j * incy] = acc ? y[j * incy] + r : r;
            }
        }
    }
}

/* C [m, n] (+)= a [m] b [n]^T: a product with k = 1, not worth BLIS's
 * packing. C's rows are split across threads; each element is one product
 * (and one sum), so the split cannot change it. */
CF_CLONES static void outer_rows(bool acc, int64_t i0, int64_t i1, int64_t n, const float *a,
                                 int64_t sa, const float *b, int64_t sb, float *c, int64_t rsc,
                                 int64_t csc)
{
    for (int64_t i = i0; i < i1; i++) {
        float x = a[i * sa], *ci = c + i * rsc;
        if (sb == 1 && csc == 1) {
            if (acc)
                for (int64_t j = 0; j < n; j++)
                    ci[j] += x * b[j];
            else
                for (int64_t j = 0; j < n; j++)
                    ci[j] = x * b[j];
        } else {
            for (int64_t j = 0; j < n; j++)
                ci[j * csc] = acc ? ci[j * csc] + x * b[j * sb] : x * b[j * sb];
        }
    }
}

/* At most nthreads threads, as the caller asked of cf__gemm. */
static void outer(bool acc, int64_t m, int64_t n, const float *a, int64_t sa, const float *b,
                  int64_t sb, float *c, int64_t rsc, int64_t csc, int nthreads)
{
    int nt = cf__threads_for(m * n);
    nt = nt < nthreads ? nt : nthreads;
    nt = nt < m ? nt : (int)m;
#pragma omp parallel for if (nt > 1) num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++)
        outer_rows(acc, m * t / nt, m * (t + 1) / nt, n, a, sa, b, sb, c, rsc, csc);
}

void cf__gemm(bool accumulate, int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
              int64_t csa, const float *b, int64_t rsb, int64_t csb, float *c, int64_t rsc,
              int64_t csc, int nthreads)
{
    if (m == 0 || n == 0)
        return;
    cf__count_flops((uint64_t)(2 * m * n * k));
    if (k == 0) {
        if (!accumulate)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    c[i * rsc + j * csc] = 0;
        return;
    }
    if (k == 1 && m > 1 && n > 1) {
        outer(accumulate, m, n, a, rsa, b, csb, c, rsc, csc, nthreads);
        return;
    }
    if (m == 1 || n == 1) {
        /* BLIS 0.9.0 reads past a vector operand when k is not a multiple of
         * 8 (flame/blis#821): products with a vector are done here, as a
         * row vector times a matrix (C = A b is C^T = b^T A^T). */
        if (m == 1)
            vecmat(accumulate, n, k, a, csa, b, rsb, csb, c, csc);
        else
            vecmat(accumulate, m, k, b, rsb, a, csa, rsa, c, rsc);
        return;
    }
    float *ta = NULL, *tb = NULL;
    a = densify(a, m, k, &rsa, &csa, &ta);
    b = densify(b, k, n, &rsb, &csb, &tb);
    if (!a || !b) {
        cf__error(CF_ERR_NOMEM, "matmul: out of memory copying a broadcast operand");
        cf_free(ta);
        cf_free(tb);
        return;
    }
    fix_strides(m, k, &rsa, &csa);
    fix_strides(k, n, &rsb, &csb);
    fix_strides(m, n, &rsc, &csc);
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(nthreads, &rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (float *)a, rsa, csa,
                 (float *)b, rsb, csb, &beta, c, rsc, csc, NULL, &rntm);
    cf_free(ta);
    cf_free(tb);
}
