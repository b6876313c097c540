/* autograd/index.c (embedding, index_select, gather): values, PyTorch
 * goldens (index.safetensors), gradcheck, thread-count independence of the
 * scatter-adds, and errors. */
#include "tests/util.h"

#include <stdlib.h>

#define IDX(...)                                                                                   \
    cf_from_ints((int32_t[]){__VA_ARGS__}, CF_SHAPE(sizeof((int32_t[]){__VA_ARGS__}) / 4))

/* ---- golden cases: must match cases() in tests/golden/gen_index.py ---- */

static cf_tensor *g_embedding_padded(cf_tensor *const *in) { return cf_embedding(in[0], in[1], 3); }
static cf_tensor *g_embedding_plain(cf_tensor *const *in) { return cf_embedding(in[0], in[1], -1); }
static cf_tensor *g_index_select_dim0(cf_tensor *const *in)
{
    return cf_index_select(in[0], 0, in[1]);
}
static cf_tensor *g_index_select_dim1(cf_tensor *const *in)
{
    return cf_index_select(in[0], 1, in[1]);
}
static cf_tensor *g_gather_dim0(cf_tensor *const *in) { return cf_gather(in[0], 0, in[1]); }
static cf_tensor *g_gather_dim1(cf_tensor *const *in) { return cf_gather(in[0], 1, in[1]); }
static cf_tensor *g_gather_dim1_t(cf_tensor *const *in)
{
    return cf_gather(cf_transpose(in[0], 0, 1), 1, in[1]);
}

static const golden_op GOLDEN[] = {
    {"embedding_padded", 2, g_embedding_padded},
    {"embedding_plain", 2, g_embedding_plain},
    {"index_select_dim0", 2, g_index_select_dim0},
    {"index_select_dim1_of_3d", 2, g_index_select_dim1},
    {"gather_dim0", 2, g_gather_dim0},
    {"gather_dim1", 2, g_gather_dim1},
    {"gather_dim1_transposed", 2, g_gather_dim1_t},
};

TEST_WITH(cases_match_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_op("index.safetensors", &GOLDEN[_i]);
}
END_TEST

/* The shapes of the thread-count tests below have fewer column tiles than 4,
 * so with 4 threads the scatter-add also splits the index range into parts. */

/* ---- embedding ---- */

TEST(embedding_picks_rows_of_the_weight)
{
    cf_tensor *w = cf_from_array((float[]){0, 1, 10, 11, 20, 21}, CF_SHAPE(3, 2));
    cf_tensor *y = cf_embedding(w, IDX(2, 0, 2), -1);
    ck_assert_int_eq(y->ndim, 2);
    assert_values(y, (float[]){20, 21, 0, 1, 20, 21}, 0, 0);
}
END_TEST

TEST(embedding_appends_D_to_the_index_shape)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(5, 4));
    cf_tensor *y =
        cf_embedding(w, cf_from_ints((int32_t[]){1, 2, 3, 4, 0, 1}, CF_SHAPE(2, 1, 3)), -1);
    ck_assert_int_eq(y->ndim, 4);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[2], 3);
    ck_assert_int_eq(y->shape[3], 4);
    cf_tensor *s = cf_embedding(w, cf_from_ints((int32_t[]){1}, 0, NULL), -1);
    ck_assert_int_eq(s->ndim, 1);
    ck_assert_int_eq(s->shape[0], 4);
}
END_TEST

TEST(embedding_reads_a_transposed_weight)
{
    /* wt is [3, 2] viewing a [2, 3] buffer. */
    cf_tensor *w = cf_from_array((float[]){0, 10, 20, 1, 11, 21}, CF_SHAPE(2, 3));
    cf_tensor *y = cf_embedding(cf_transpose(w, 0, 1), IDX(1, 2), -1);
    assert_values(y, (float[]){10, 11, 20, 21}, 0, 0);
}
END_TEST

TEST(embedding_gradient_sums_repeated_indices)
{
    cf_tensor *w = rand_leaf(1, -1, 1, CF_SHAPE(4, 2));
    cf_backward(cf_sum_all(cf_embedding(w, IDX(1, 3, 1, 1), -1)));
    assert_values(w->grad, (float[]){0, 0, 3, 3, 0, 0, 1, 1}, 0, 0);
}
END_TEST

TEST(embedding_padding_row_gets_no_gradient)
{
    cf_tensor *w = rand_leaf(1, -1, 1, CF_SHAPE(4, 2));
    cf_tensor *y = cf_embedding(w, IDX(0, 2, 0, 3), 0);
    /* The forward still reads the padding row. */
    ck_assert_float_eq(cf_get(y, CF_IDX(0, 1)), cf_get(w, CF_IDX(0, 1)));
    cf_backward(cf_sum_all(y));
    assert_values(w->grad, (float[]){0, 0, 0, 0, 1, 1, 1, 1}, 0, 0);
}
END_TEST

static void embedding_grad_run(float *out)
{
    enum { V = 37, D = 100, N = 20000 };
    cf_tensor *w = rand_leaf(2, -1, 1, CF_SHAPE(V, D));
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_tensor *u = cf_uniform(&g, 0, V, CF_SHAPE(N));
    int32_t *ix = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++)
        ix[i] = (int32_t)((float *)u->data)[i];
    cf_tensor *idx = cf_from_ints(ix, CF_SHAPE(N));
    free(ix);
    cf_tensor *y = cf_embedding(w, idx, 5);
    ck_assert_int_eq(cf_backward_with(y, cf_uniform(&g, -1, 1, CF_SHAPE(N, D))), CF_OK);
    cf_copy_to(w->grad, out);
}

TEST(embedding_gradient_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(embedding_grad_run, 37 * 100);
}
END_TEST

TEST(embedding_names_an_index_out_of_range)
{
    cf_tensor *w = cf_zeros(CF_SHAPE(5, 2));
    ck_assert_ptr_null(cf_embedding(w, IDX(1, 5, 0), -1));
    assert_error(CF_ERR_INDEX, "cf_embedding", "index 5", "[0, 5)", "[5, 2]", NULL);
    ck_assert_ptr_null(cf_embedding(w, IDX(1, -1), -1));
    assert_error(CF_ERR_INDEX, "cf_embedding", "index -1", "[0, 5)", NULL);
}
END_TEST

TEST(embedding_rejects_a_padding_idx_out_of_range)
{
    ck_assert_ptr_null(cf_embedding(cf_zeros(CF_SHAPE(5, 2)), IDX(1), 5));
    assert_error(CF_ERR_INDEX, "cf_embedding", "padding_idx 5", NULL);
}
END_TEST

TEST(embedding_rejects_float_indices_and_a_weight_not_2d)
{
    ck_assert_ptr_null(cf_embedding(cf_zeros(CF_SHAPE(5, 2)), cf_zeros(CF_SHAPE(2)), -1));
    assert_error(CF_ERR_DTYPE, "cf_embedding", "int32", "float32", NULL);
    ck_assert_ptr_null(cf_embedding(cf_zeros(CF_SHAPE(5)), IDX(1), -1));
    assert_error(CF_ERR_SHAPE, "cf_embedding", "[5]", NULL);
    ck_assert_ptr_null(cf_embedding(NULL, IDX(1), -1));
    assert_error(CF_ERR_ARG, "cf_embedding", NULL);
}
END_TEST

/* ---- index_select ---- */

TEST(index_select_picks_entries_along_a_dim)
{
    cf_tensor *a = cf_from_array((float[]){0, 1, 2, 10, 11, 12}, CF_SHAPE(2, 3));
    assert_values(cf_index_select(a, 1, IDX(2, 0, 2, 1)), (float[]){2, 0, 2, 1, 12, 10, 12, 11}, 0,
                  0);
    assert_values(cf_index_select(a, -2, IDX(1)), (float[]){10, 11, 12}, 0, 0);
}
END_TEST

TEST(index_select_gradient_sums_repeated_indices)
{
    cf_tensor *a = rand_leaf(1, -1, 1, CF_SHAPE(2, 3));
    cf_backward(cf_sum_all(cf_index_select(a, 1, IDX(2, 0, 2, 2))));
    assert_values(a->grad, (float[]){1, 0, 3, 1, 0, 3}, 0, 0);
}
END_TEST

static cf_tensor *index_select_fn(cf_tensor *const *in, void *ud)
{
    return cf_index_select(cf_transpose(in[0], 0, 2), *(int *)ud, in[1]);
}

TEST(index_select_passes_gradcheck_on_a_permuted_input)
{
    cf_tensor *in[2] = {rand_leaf(1, -1, 1, CF_SHAPE(3, 4, 5)), IDX(1, 0, 1, 2)};
    for (int dim = 0; dim < 3; dim++)
        assert_gradcheck(index_select_fn, &dim, 2, in, 1e-2f);
}
END_TEST

static void index_select_grad_run(float *out)
{
    cf_tensor *a = rand_leaf(4, -1, 1, CF_SHAPE(3, 50, 7));
    int32_t ix[3000];
    for (int i = 0; i < 3000; i++)
        ix[i] = (i * 7919) % 50;
    cf_tensor *y = cf_index_select(a, 1, cf_from_ints(ix, CF_SHAPE(3000)));
    cf_rng g;
    cf_rng_init(&g, 5);
    ck_assert_int_eq(cf_backward_with(y, cf_uniform(&g, -1, 1, CF_SHAPE(3, 3000, 7))), CF_OK);
    cf_copy_to(a->grad, out);
}

TEST(index_select_gradient_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(index_select_grad_run, 3 * 50 * 7);
}
END_TEST

TEST(index_select_names_an_index_out_of_range)
{
    ck_assert_ptr_null(cf_index_select(cf_zeros(CF_SHAPE(2, 3)), 1, IDX(0, 3)));
    assert_error(CF_ERR_INDEX, "cf_index_select", "index 3", "[0, 3)", "dim 1", "[2, 3]", NULL);
}
END_TEST

TEST(index_select_rejects_a_bad_index_or_dim)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_index_select(a, 0, cf_from_ints((int32_t[]){0, 1}, CF_SHAPE(1, 2))));
    assert_error(CF_ERR_SHAPE, "cf_index_select", "[1, 2]", NULL);
    ck_assert_ptr_null(cf_index_select(a, 2, IDX(0)));
    assert_error(CF_ERR_DIM, "cf_index_select", NULL);
    ck_assert_ptr_null(cf_index_select(a, 0, cf_zeros(CF_SHAPE(1))));
    assert_error(CF_ERR_DTYPE, "cf_index_select", "int32", NULL);
    ck_assert_ptr_null(cf_index_select(cf_scalar(1), 0, IDX(0)));
    assert_error(CF_ERR_DIM, "cf_index_select", "0-d", NULL);
}
END_TEST

/* ---- gather ---- */

TEST(gather_along_dim_0_picks_rows_per_column)
{
    cf_tensor *a = cf_from_array((float[]){0, 1, 10, 11, 20, 21}, CF_SHAPE(3, 2));
    cf_tensor *i = cf_from_ints((int32_t[]){2, 0, 1, 1}, CF_SHAPE(2, 2));
    assert_values(cf_gather(a, 0, i), (float[]){20, 1, 10, 11}, 0, 0);
}
END_TEST

TEST(gather_along_dim_1_picks_columns_per_row)
{
    cf_tensor *a = cf_from_array((float[]){0, 1, 2, 10, 11, 12}, CF_SHAPE(2, 3));
    cf_tensor *i = cf_from_ints((int32_t[]){2, 2, 0, 1}, CF_SHAPE(2, 2));
    assert_values(cf_gather(a, -1, i), (float[]){2, 2, 10, 11}, 0, 0);
}
END_TEST

TEST(gather_takes_an_index_smaller_than_the_input)
{
    cf_tensor *a = cf_from_array((float[]){0, 1, 2, 10, 11, 12}, CF_SHAPE(2, 3));
    cf_tensor *i = cf_from_ints((int32_t[]){1, 0, 1}, CF_SHAPE(1, 3));
    assert_values(cf_gather(a, 0, i), (float[]){10, 1, 12}, 0, 0);
}
END_TEST

TEST(gather_gradient_sums_repeated_indices)
{
    cf_tensor *a = rand_leaf(1, -1, 1, CF_SHAPE(2, 3));
    cf_tensor *i = cf_from_ints((int32_t[]){0, 0, 0, 2, 2, 1}, CF_SHAPE(2, 3));
    cf_backward(cf_sum_all(cf_gather(a, 1, i)));
    assert_values(a->grad, (float[]){3, 0, 0, 0, 1, 2}, 0, 0);
}
END_TEST

static void gather_grad_run(float *out)
{
    enum { R = 2000, C = 61 };
    cf_tensor *a = rand_leaf(6, -1, 1, CF_SHAPE(R, C));
    int32_t *ix = malloc(sizeof(int32_t) * R * C);
    for (int i = 0; i < R * C; i++)
        ix[i] = (i * 7919) % 7;
    cf_tensor *y = cf_gather(a, 0, cf_from_ints(ix, CF_SHAPE(R, C)));
    free(ix);
    cf_rng g;
    cf_rng_init(&g, 7);
    ck_assert_int_eq(cf_backward_with(y, cf_uniform(&g, -1, 1, CF_SHAPE(R, C))), CF_OK);
    cf_copy_to(a->grad, out);
}

TEST(gather_gradient_does_not_depend_on_the_thread_count)
{
    assert_thread_independent(gather_grad_run, 2000 * 61);
}
END_TEST

TEST(gather_names_an_index_out_of_range)
{
    cf_tensor *i = cf_from_ints((int32_t[]){0, 4}, CF_SHAPE(1, 2));
    ck_assert_ptr_null(cf_gather(cf_zeros(CF_SHAPE(2, 3)), 1, i));
    assert_error(CF_ERR_INDEX, "cf_gather", "index 4", "[0, 3)", "[2, 3]", NULL);
}
END_TEST

TEST(gather_rejects_an_index_that_does_not_fit)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_gather(a, 0, cf_from_ints((int32_t[]){0, 0, 0, 0}, CF_SHAPE(1, 4))));
    assert_error(CF_ERR_SHAPE, "cf_gather", "[1, 4]", "[2, 3]", NULL);
    ck_assert_ptr_null(cf_gather(a, 0, IDX(0)));
    assert_error(CF_ERR_SHAPE, "cf_gather", "[1]", "[2, 3]", NULL);
    ck_assert_ptr_null(cf_gather(a, 0, cf_zeros(CF_SHAPE(1, 1))));
    assert_error(CF_ERR_DTYPE, "cf_gather", NULL);
    ck_assert_ptr_null(cf_gather(a, 3, cf_from_ints((int32_t[]){0}, CF_SHAPE(1, 1))));
    assert_error(CF_ERR_DIM, "cf_gather", NULL);
}
END_TEST
