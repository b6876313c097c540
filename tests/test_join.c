/* autograd/join.c (cat, stack, split, chunk): values, PyTorch goldens
 * (the cat_ and stack_ cases of index.safetensors, from gen_index.py),
 * gradcheck, and errors. */
#include "tests/util.h"

#define IDX(...)                                                                                   \
    cf_from_ints((int32_t[]){__VA_ARGS__}, CF_SHAPE(sizeof((int32_t[]){__VA_ARGS__}) / 4))

/* ---- golden cases: must match cases() in tests/golden/gen_index.py ---- */

static cf_tensor *g_cat_dim0(cf_tensor *const *in) { return cf_cat(2, in, 0); }
static cf_tensor *g_cat_dim1(cf_tensor *const *in) { return cf_cat(3, in, 1); }
static cf_tensor *g_cat_last_t(cf_tensor *const *in)
{
    return cf_cat(2, (cf_tensor *[]){in[0], cf_transpose(in[1], 0, 1)}, -1);
}
static cf_tensor *g_stack_dim1(cf_tensor *const *in) { return cf_stack(3, in, 1); }
static cf_tensor *g_stack_last(cf_tensor *const *in) { return cf_stack(2, in, -1); }

static const golden_op GOLDEN[] = {
    {"cat_dim0", 2, g_cat_dim0},
    {"cat_dim1", 3, g_cat_dim1},
    {"cat_last_transposed", 2, g_cat_last_t},
    {"stack_dim1", 3, g_stack_dim1},
    {"stack_last", 2, g_stack_last},
};

TEST_WITH(cases_match_pytorch_and_finite_differences, .loop = COUNT(GOLDEN))
{
    assert_golden_op("index.safetensors", &GOLDEN[_i]);
}
END_TEST

/* ---- cat ---- */

TEST(cat_joins_along_dim_0)
{
    cf_tensor *a = cf_from_array((float[]){1, 2}, CF_SHAPE(1, 2));
    cf_tensor *b = cf_from_array((float[]){3, 4, 5, 6}, CF_SHAPE(2, 2));
    assert_values(cf_cat(2, (cf_tensor *[]){a, b}, 0), (float[]){1, 2, 3, 4, 5, 6}, 0, 0);
}
END_TEST

TEST(cat_joins_along_the_last_dim)
{
    cf_tensor *a = cf_from_array((float[]){1, 2}, CF_SHAPE(2, 1));
    cf_tensor *b = cf_from_array((float[]){3, 4, 5, 6}, CF_SHAPE(2, 2));
    cf_tensor *y = cf_cat(2, (cf_tensor *[]){a, b}, -1);
    assert_values(y, (float[]){1, 3, 4, 2, 5, 6}, 0, 0);
}
END_TEST

TEST(cat_copies_int_tensors)
{
    cf_tensor *y = cf_cat(2, (cf_tensor *[]){IDX(1, 2), IDX(3)}, 0);
    ck_assert_int_eq(y->dtype, CF_I32);
    assert_values(y, (float[]){1, 2, 3}, 0, 0);
}
END_TEST

TEST(cat_of_more_inputs_than_a_node_holds_routes_every_gradient)
{
    enum { N = 40 };
    cf_tensor *ts[N];
    int64_t len = 0;
    for (int i = 0; i < N; i++) {
        ts[i] = rand_leaf(i, -1, 1, CF_SHAPE(2, 1 + i % 3));
        len += 1 + i % 3;
    }
    cf_tensor *y = cf_cat(N, ts, 1);
    ck_assert_int_eq(y->shape[1], len);
    /* Weight each column by its position, so every input sees its own slice. */
    cf_tensor *pos = cf_arange(0, (float)len, 1);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(y, pos))), CF_OK);
    int64_t off = 0;
    for (int i = 0; i < N; i++) {
        int64_t w = ts[i]->shape[1];
        for (int64_t r = 0; r < 2; r++)
            for (int64_t c = 0; c < w; c++) {
                ck_assert_float_eq(cf_get(y, CF_IDX(r, off + c)), cf_get(ts[i], CF_IDX(r, c)));
                ck_assert_float_eq(cf_get(ts[i]->grad, CF_IDX(r, c)), (float)(off + c));
            }
        off += w;
    }
}
END_TEST

TEST(cat_of_a_tensor_with_itself_accumulates_both_slices)
{
    cf_tensor *a = rand_leaf(1, -1, 1, CF_SHAPE(2));
    cf_tensor *y = cf_cat(2, (cf_tensor *[]){a, a}, 0);
    cf_backward(cf_sum_all(cf_mul(y, cf_from_array((float[]){1, 2, 10, 20}, CF_SHAPE(4)))));
    assert_values(a->grad, (float[]){11, 22}, 0, 0);
}
END_TEST

TEST(cat_names_the_mismatching_shapes)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2, 3)), *b = cf_zeros(CF_SHAPE(3, 2));
    ck_assert_ptr_null(cf_cat(2, (cf_tensor *[]){a, b}, 0));
    assert_error(CF_ERR_SHAPE, "cf_cat", "tensor 1", "[3, 2]", "[2, 3]", NULL);
    ck_assert_ptr_null(cf_cat(2, (cf_tensor *[]){a, cf_zeros(CF_SHAPE(2, 3, 1))}, 0));
    assert_error(CF_ERR_SHAPE, "cf_cat", "[2, 3, 1]", "[2, 3]", NULL);
}
END_TEST

TEST(cat_rejects_bad_arguments)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2));
    ck_assert_ptr_null(cf_cat(0, (cf_tensor *[]){a}, 0));
    assert_error(CF_ERR_ARG, "cf_cat", NULL);
    ck_assert_ptr_null(cf_cat(2, (cf_tensor *[]){a, NULL}, 0));
    assert_error(CF_ERR_ARG, "cf_cat", NULL);
    ck_assert_ptr_null(cf_cat(2, (cf_tensor *[]){a, IDX(1)}, 0));
    assert_error(CF_ERR_DTYPE, "cf_cat", "int32", "float32", NULL);
    ck_assert_ptr_null(cf_cat(1, (cf_tensor *[]){a}, 1));
    assert_error(CF_ERR_DIM, "cf_cat", NULL);
    ck_assert_ptr_null(cf_cat(1, (cf_tensor *[]){cf_scalar(1)}, 0));
    assert_error(CF_ERR_DIM, "cf_cat", "0-d", NULL);
}
END_TEST

/* ---- stack ---- */

TEST(stack_adds_a_new_dim)
{
    cf_tensor *a = cf_from_array((float[]){1, 2}, CF_SHAPE(2));
    cf_tensor *b = cf_from_array((float[]){3, 4}, CF_SHAPE(2));
    cf_tensor *y0 = cf_stack(2, (cf_tensor *[]){a, b}, 0);
    ck_assert_int_eq(y0->shape[0], 2);
    assert_values(y0, (float[]){1, 2, 3, 4}, 0, 0);
    assert_values(cf_stack(2, (cf_tensor *[]){a, b}, -1), (float[]){1, 3, 2, 4}, 0, 0);
}
END_TEST

TEST(stack_of_more_inputs_than_a_node_holds_routes_every_gradient)
{
    enum { N = 13 };
    cf_tensor *ts[N];
    for (int i = 0; i < N; i++)
        ts[i] = rand_leaf(i, -1, 1, CF_SHAPE(3));
    cf_tensor *y = cf_stack(N, ts, 1); /* [3, N] */
    cf_tensor *pos = cf_arange(0, N, 1);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(y, pos))), CF_OK);
    for (int i = 0; i < N; i++)
        for (int64_t r = 0; r < 3; r++) {
            ck_assert_float_eq(cf_get(y, CF_IDX(r, i)), cf_get(ts[i], CF_IDX(r)));
            ck_assert_float_eq(cf_get(ts[i]->grad, CF_IDX(r)), (float)i);
        }
}
END_TEST

TEST(stack_names_the_mismatching_shapes)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2, 3)), *b = cf_zeros(CF_SHAPE(3, 2));
    ck_assert_ptr_null(cf_stack(2, (cf_tensor *[]){a, b}, 0));
    assert_error(CF_ERR_SHAPE, "cf_stack", "tensor 1", "[3, 2]", "[2, 3]", NULL);
    ck_assert_ptr_null(cf_stack(1, (cf_tensor *[]){a}, 3));
    assert_error(CF_ERR_DIM, "cf_stack", NULL);
    ck_assert_ptr_null(cf_stack(0, NULL, 0));
    assert_error(CF_ERR_ARG, "cf_stack", NULL);
}
END_TEST

/* ---- split and chunk ---- */

static void assert_sizes(cf_tensor **parts, int n, int dim, const int64_t *want)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(parts[i]->shape[dim] == want[i], "part %d has size %lld, want %lld", i,
                      (long long)parts[i]->shape[dim], (long long)want[i]);
}

TEST(split_makes_views_of_size_with_a_smaller_last)
{
    cf_tensor *a = cf_arange(0, 10, 1);
    cf_tensor *a2 = cf_view(a, CF_SHAPE(2, 5));
    cf_tensor *p[4];
    ck_assert_int_eq(cf_split(a2, 2, 1, p, 4), 3);
    assert_sizes(p, 3, 1, (int64_t[]){2, 2, 1});
    ck_assert_ptr_eq(p[1]->data, (float *)a->data + 2);
    assert_values(p[2], (float[]){4, 9}, 0, 0);
    ck_assert_int_eq(cf_split(a2, 5, -1, p, 4), 1);
    ck_assert_int_eq(cf_split(a2, 7, 1, p, 4), 1);
    assert_sizes(p, 1, 1, (int64_t[]){5});
}
END_TEST

TEST(split_counts_all_parts_but_writes_at_most_max_out)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(7));
    cf_tensor *p[2] = {NULL, NULL};
    ck_assert_int_eq(cf_split(a, 2, 0, p, 1), 4);
    ck_assert_ptr_nonnull(p[0]);
    ck_assert_ptr_null(p[1]);
    ck_assert_int_eq(cf_split(a, 2, 0, NULL, 0), 4);
}
END_TEST

TEST(split_of_an_empty_dim_gives_one_empty_view)
{
    cf_tensor *p[2];
    ck_assert_int_eq(cf_split(cf_zeros(CF_SHAPE(3, 0)), 2, 1, p, 2), 1);
    ck_assert_int_eq(p[0]->shape[1], 0);
    ck_assert_int_eq(cf_split(cf_zeros(CF_SHAPE(0)), 0, 0, p, 2), 1);
}
END_TEST

static cf_tensor *split_fn(cf_tensor *const *in, void *ud)
{
    (void)ud;
    cf_tensor *p[3];
    cf_split(in[0], 2, 1, p, 3);
    return cf_add(cf_mul_scalar(p[0], 2), cf_mul(p[1], p[1]));
}

TEST(split_passes_gradcheck)
{
    cf_tensor *a = rand_leaf(1, -1, 1, CF_SHAPE(3, 5));
    assert_gradcheck(split_fn, NULL, 1, &a, 1e-2f);
}
END_TEST

TEST(split_rejects_bad_arguments)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(2, 3)), *p[4];
    ck_assert_int_eq(cf_split(a, 0, 1, p, 4), -1);
    assert_error(CF_ERR_ARG, "cf_split", "size 0", "[2, 3]", NULL);
    ck_assert_int_eq(cf_split(a, -1, 1, p, 4), -1);
    assert_error(CF_ERR_ARG, "cf_split", NULL);
    ck_assert_int_eq(cf_split(a, 1, 2, p, 4), -1);
    assert_error(CF_ERR_DIM, "cf_split", NULL);
    ck_assert_int_eq(cf_split(a, 1, 0, NULL, 4), -1);
    assert_error(CF_ERR_ARG, "cf_split", NULL);
    ck_assert_int_eq(cf_split(cf_scalar(1), 1, 0, p, 4), -1);
    assert_error(CF_ERR_DIM, "cf_split", "0-d", NULL);
    ck_assert_int_eq(cf_split(NULL, 1, 0, p, 4), -1);
    assert_error(CF_ERR_ARG, "cf_split", NULL);
}
END_TEST

TEST(chunk_follows_torch_chunk_sizes)
{
    cf_tensor *p[4];
    ck_assert_int_eq(cf_chunk(cf_zeros(CF_SHAPE(5)), 4, 0, p), 3);
    assert_sizes(p, 3, 0, (int64_t[]){2, 2, 1});
    ck_assert_int_eq(cf_chunk(cf_zeros(CF_SHAPE(6)), 4, 0, p), 3);
    assert_sizes(p, 3, 0, (int64_t[]){2, 2, 2});
    ck_assert_int_eq(cf_chunk(cf_zeros(CF_SHAPE(2, 8)), 4, -1, p), 4);
    assert_sizes(p, 4, 1, (int64_t[]){2, 2, 2, 2});
    ck_assert_int_eq(cf_chunk(cf_zeros(CF_SHAPE(3)), 4, 0, p), 3);
    assert_sizes(p, 3, 0, (int64_t[]){1, 1, 1});
}
END_TEST

TEST(chunk_of_an_empty_dim_gives_chunks_empty_views)
{
    cf_tensor *p[3];
    ck_assert_int_eq(cf_chunk(cf_zeros(CF_SHAPE(0, 2)), 3, 0, p), 3);
    assert_sizes(p, 3, 0, (int64_t[]){0, 0, 0});
}
END_TEST

TEST(chunk_gradients_reach_the_input)
{
    cf_tensor *a = rand_leaf(1, -1, 1, CF_SHAPE(5, 2));
    cf_tensor *p[2];
    ck_assert_int_eq(cf_chunk(a, 2, 0, p), 2);
    cf_backward(cf_sum_all(cf_add(cf_sum_all(p[0]), cf_mul_scalar(cf_sum_all(p[1]), 3))));
    assert_values(a->grad, (float[]){1, 1, 1, 1, 1, 1, 3, 3, 3, 3}, 0, 0);
}
END_TEST

TEST(chunk_rejects_bad_arguments)
{
    cf_tensor *a = cf_zeros(CF_SHAPE(4)), *p[2];
    ck_assert_int_eq(cf_chunk(a, 0, 0, p), -1);
    assert_error(CF_ERR_ARG, "cf_chunk", "0 chunks", NULL);
    ck_assert_int_eq(cf_chunk(a, 2, 0, NULL), -1);
    assert_error(CF_ERR_ARG, "cf_chunk", NULL);
    ck_assert_int_eq(cf_chunk(a, 2, 1, p), -1);
    assert_error(CF_ERR_DIM, "cf_chunk", NULL);
}
END_TEST
