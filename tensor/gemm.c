/* The one place that calls BLIS. Its typed API takes a row and a column
 * stride per operand, so transposed and permuted views go in without copies. */
#include "tensor/internal.h"

#include <blis.h>
#include <stdlib.h>
#include <string.h>

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
    if (m == 1 || n == 1) {
        /* BLIS 0.9.0 reads past a vector operand when k is not a multiple of
         * 8 (flame/blis#821): products with a vector are done here. */
        int nt = cf__threads_for(m * n * k);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t o = 0; o < m * n; o++) {
            int64_t i = o / n, j = o % n;
            const float *ar = a + i * rsa, *bc = b + j * csb;
            float acc = 0;
            for (int64_t l = 0; l < k; l++)
                acc += ar[l * csa] * bc[l * rsb];
            float *cv = c + i * rsc + j * csc;
            *cv = accumulate ? *cv + acc : acc;
        }
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
