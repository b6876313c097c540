/* The autograd core (autograd/engine.c, autograd/gradcheck.c): recording,
 * backward, accumulation, grad mode, user-defined ops, the gradient checker,
 * error composition and gradient hooks; compositions of several ops against
 * PyTorch (gen_golden.py's "chain." cases). */
#include "tests/expr.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TEST(backward_fills_the_gradient_of_each_leaf)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2, 3}, CF_SHAPE(3)), true);
    cf_tensor *w = cf_requires_grad(cf_from_array((float[]){4, 5, 6}, CF_SHAPE(3)), true);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(x, w))), CF_OK);
    assert_values(x->grad, (float[]){4, 5, 6}, 0, 0);
    assert_values(w->grad, (float[]){1, 2, 3}, 0, 0);
}
END_TEST

TEST(a_tensor_used_twice_accumulates_both_paths)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){3}, CF_SHAPE(1)), true);
    cf_tensor *y = cf_add(cf_mul(x, x), cf_mul_scalar(x, 2)); /* x^2 + 2x */
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){8}, 0, 0);
}
END_TEST

TEST(gradients_accumulate_across_backward_calls)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2}, CF_SHAPE(2)), true);
    cf_backward(cf_sum_all(cf_mul_scalar(x, 3)));
    cf_backward(cf_sum_all(cf_mul_scalar(x, 3)));
    assert_values(x->grad, (float[]){6, 6}, 0, 0);
    cf_zero_grad(x);
    assert_values(x->grad, (float[]){0, 0}, 0, 0);
}
END_TEST

TEST(backward_twice_on_a_retained_graph_recomputes_intermediates)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){2}, CF_SHAPE(1)), true);
    cf_tensor *loss = cf_sum_all(cf_square(cf_mul_scalar(x, 3)));
    ck_assert_int_eq(cf_backward_ex(loss, &(cf_backward_opts){.retain_graph = true}), CF_OK);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    assert_values(x->grad, (float[]){72}, 0, 0); /* 2 * 18x */
}
END_TEST

TEST(backward_twice_on_one_graph_is_a_state_error_and_changes_nothing)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){2}, CF_SHAPE(1)), true);
    cf_tensor *loss = cf_sum_all(cf_square(cf_mul_scalar(x, 3)));
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    ck_assert_int_eq(cf_backward(loss), CF_ERR_STATE);
    assert_error(CF_ERR_STATE, "cf_backward", "already went through", "retain", NULL);
    assert_values(x->grad, (float[]){36}, 0, 0);
}
END_TEST

TEST(two_losses_sharing_a_subgraph_need_a_retained_graph)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){2}, CF_SHAPE(1)), true);
    cf_tensor *h = cf_mul_scalar(x, 3);
    cf_tensor *l1 = cf_sum_all(cf_square(h)), *l2 = cf_sum_all(cf_exp(h));
    ck_assert_int_eq(cf_backward(l1), CF_OK);
    ck_assert_int_eq(cf_backward(l2), CF_ERR_STATE);
    assert_error(CF_ERR_STATE, "mul_scalar", NULL);

    cf_tensor *h2 = cf_mul_scalar(x, 3);
    cf_zero_grad(x);
    ck_assert_int_eq(
        cf_backward_ex(cf_sum_all(cf_square(h2)), &(cf_backward_opts){.retain_graph = true}),
        CF_OK);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_exp(h2))), CF_OK);
    assert_values(x->grad, (float[]){36 + 3 * expf(6)}, 0, 1e-6f);
}
END_TEST

TEST(backward_ex_takes_the_output_gradient)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2}, CF_SHAPE(2)), true);
    cf_tensor *y = cf_mul_scalar(x, 2);
    cf_tensor *dy = cf_from_array((float[]){10, 100}, CF_SHAPE(2));
    ck_assert_int_eq(cf_backward_ex(y, &(cf_backward_opts){.grad = dy}), CF_OK);
    assert_values(x->grad, (float[]){20, 200}, 0, 0);
    ck_assert_int_eq(cf_backward_ex(y, NULL), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "not a scalar", NULL);
}
END_TEST

TEST(backward_with_takes_the_output_gradient)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1, 2}, CF_SHAPE(2)), true);
    cf_tensor *y = cf_mul_scalar(x, 2);
    ck_assert_int_eq(cf_backward_with(y, cf_from_array((float[]){10, 100}, CF_SHAPE(2))), CF_OK);
    assert_values(x->grad, (float[]){20, 200}, 0, 0);
}
END_TEST

TEST(backward_of_a_non_scalar_is_an_error)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(2, 2)), true);
    ck_assert_int_eq(cf_backward(cf_exp(x)), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_backward", "[2, 2]", "not a scalar", NULL);
}
END_TEST

TEST(backward_with_a_gradient_of_the_wrong_shape_is_an_error)
{
    cf_tensor *x = cf_requires_grad(cf_zeros(CF_SHAPE(2, 2)), true);
    ck_assert_int_eq(cf_backward_with(cf_exp(x), cf_zeros(CF_SHAPE(4))), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_backward_with", "[4]", "[2, 2]", NULL);
}
END_TEST

TEST(backward_without_any_leaf_needing_a_gradient_is_an_error)
{
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_ones(CF_SHAPE(2)))), CF_ERR_STATE);
    assert_error(CF_ERR_STATE, "cf_backward", NULL);
}
END_TEST

TEST(no_grad_scope_records_nothing)
{
    cf_tensor *x = cf_requires_grad(cf_ones(CF_SHAPE(2)), true);
    cf_tensor *y = NULL;
    CF_NO_GRAD { y = cf_mul_scalar(x, 2); }
    ck_assert(cf_is_grad_enabled());
    ck_assert_ptr_null(y->op);
    ck_assert(!(y->flags & CF_REQUIRES_GRAD));
}
END_TEST

TEST(detach_stops_the_gradient)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){3}, CF_SHAPE(1)), true);
    cf_tensor *y = cf_mul(x, cf_detach(x)); /* d/dx = detached x */
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){3}, 0, 0);
}
END_TEST

TEST(inputs_without_requires_grad_get_no_gradient)
{
    cf_tensor *x = cf_requires_grad(cf_ones(CF_SHAPE(2)), true);
    cf_tensor *c = cf_ones(CF_SHAPE(2));
    cf_backward(cf_sum_all(cf_mul(x, c)));
    ck_assert_ptr_null(c->grad);
}
END_TEST

TEST(requires_grad_on_an_op_result_is_an_error)
{
    cf_tensor *x = cf_requires_grad(cf_ones(CF_SHAPE(2)), true);
    ck_assert_ptr_null(cf_requires_grad(cf_exp(x), true));
    assert_error(CF_ERR_ARG, "not a leaf", NULL);
}
END_TEST

TEST(heap_leaf_gradient_survives_arena_reset)
{
    cf_tensor *w = cf_requires_grad(cf_tensor_new(CF_F32, CF_SHAPE(2)), true);
    cf_fill(w, 1);
    cf_backward(cf_sum_all(cf_mul_scalar(w, 5)));
    cf_arena_reset(cf_arena_current());
    ck_assert(w->grad->flags & CF_HEAP);
    assert_values(w->grad, (float[]){5, 5}, 0, 0);
    cf_backward(cf_sum_all(cf_mul_scalar(w, 5)));
    assert_values(w->grad, (float[]){10, 10}, 0, 0);
    cf_tensor_free(w);
}
END_TEST

TEST(a_deep_chain_backpropagates)
{
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){1}, CF_SHAPE(1)), true);
    cf_tensor *y = x;
    for (int i = 0; i < 10000; i++)
        y = cf_add_scalar(y, 0.5f);
    cf_backward(cf_sum_all(y));
    assert_values(x->grad, (float[]){1}, 0, 0);
}
END_TEST

/* ---- user-defined ops ---- */

static cf_status cube_backward(cf_tensor *out)
{
    cf_tensor *x = out->src[0], *gx = cf_grad_for(x);
    if (!gx)
        return cf_error();
    const float *xv = x->data, *g = out->grad->data;
    float *d = gx->data;
    for (int64_t i = 0; i < cf_numel(x); i++)
        d[i] += 3 * xv[i] * xv[i] * g[i];
    return CF_OK;
}

static const cf_op cube_op = {"cube", cube_backward};

/* Assumes a contiguous input, as a quick research op would. */
static cf_tensor *cube(cf_tensor *x)
{
    cf_tensor *out = cf_empty(CF_F32, x->ndim, x->shape);
    const float *xv = x->data;
    float *o = out->data;
    for (int64_t i = 0; i < cf_numel(x); i++)
        o[i] = xv[i] * xv[i] * xv[i];
    return cf_op_record(out, &cube_op, 1, &x);
}

static cf_tensor *cube_fn(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_mul_scalar(cube(in[0]), 2);
}

TEST(user_defined_op_passes_gradcheck)
{
    cf_tensor *x = rand_leaf(1, -2, 2, CF_SHAPE(3, 4));
    assert_gradcheck(cube_fn, NULL, 1, &x, 1e-2f);
}
END_TEST

TEST(user_defined_op_records_its_name)
{
    cf_tensor *x = rand_leaf(1, -2, 2, CF_SHAPE(2));
    cf_tensor *y = cube(x);
    ck_assert_str_eq(y->op->name, "cube");
    ck_assert_ptr_eq(y->src[0], x);
}
END_TEST

static cf_tensor *wrong_grad_fn(cf_tensor *const *in, void *ud)
{
    (void)ud;
    return cf_detach(cube(in[0])); /* forward without its backward */
}

TEST(gradcheck_catches_a_missing_gradient)
{
    cf_tensor *x = rand_leaf(2, 1, 2, CF_SHAPE(3));
    cf_gradcheck_report rep;
    cf_tensor *y = wrong_grad_fn(&x, NULL);
    ck_assert_ptr_nonnull(y);
    /* The output needs no gradient, so backward itself reports the problem. */
    ck_assert_int_ne(cf_gradcheck(wrong_grad_fn, NULL, 1, &x, 1e-3f, &rep), CF_OK);
    assert_error(CF_ERR_STATE, NULL);
}
END_TEST

/* ---- errors through expressions ---- */

TEST(shape_mismatch_names_the_op_and_both_shapes)
{
    ck_assert_ptr_null(cf_add(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(4))));
    assert_error(CF_ERR_SHAPE, "cf_add", "[2, 3]", "[4]", NULL);
    ck_assert_ptr_null(cf_matmul(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(4, 5))));
    assert_error(CF_ERR_SHAPE, "cf_matmul", "[2, 3]", "[4, 5]", NULL);
}
END_TEST

TEST(a_failed_operand_keeps_the_first_error)
{
    cf_tensor *bad = cf_add(cf_zeros(CF_SHAPE(2)), cf_zeros(CF_SHAPE(3)));
    cf_tensor *y = cf_relu(cf_mul(cf_exp(bad), cf_ones(CF_SHAPE(2))));
    ck_assert_ptr_null(y);
    assert_error(CF_ERR_SHAPE, "cf_add", "[2]", "[3]", NULL);
}
END_TEST

TEST(a_null_operand_alone_is_reported)
{
    ck_assert_ptr_null(cf_exp(NULL));
    assert_error(CF_ERR_ARG, "cf_exp", "NULL", NULL);
}
END_TEST

/* A status-returning call reports its own outcome (tensor.h, "Errors"). */
TEST(backward_after_an_unhandled_error_returns_ok_and_fills_every_gradient)
{
    cf_item(cf_zeros(CF_SHAPE(2))); /* CF_ERR_SHAPE, handled but not cleared */
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(3));
    cf_tensor *loss = cf_sum_all(cf_mul_scalar(cf_exp(cf_mul_scalar(x, 2)), 3));
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    for (int i = 0; i < 3; i++) {
        float xi = cf_get(x, CF_IDX(i));
        ck_assert_float_eq_tol(cf_get(x->grad, CF_IDX(i)), 6 * expf(2 * xi), 1e-5f);
    }
    assert_error(CF_ERR_SHAPE, "cf_item", NULL);
}
END_TEST

TEST(backward_of_a_failed_expression_returns_its_root_cause)
{
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(3));
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_add(x, cf_zeros(CF_SHAPE(4))))), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_add", "[3]", "[4]", NULL);
    ck_assert_int_eq(cf_backward(NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_backward", "NULL", NULL);
}
END_TEST

TEST(a_failing_status_call_replaces_an_older_error)
{
    cf_item(cf_zeros(CF_SHAPE(2)));
    cf_tensor *y = cf_sum(rand_leaf(1, -1, 1, CF_SHAPE(2, 3)), CF_DIMS(0), false);
    ck_assert_int_eq(cf_backward(y), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_backward", "[3]", "not a scalar", NULL);
}
END_TEST

TEST(int_tensors_are_rejected_by_float_ops)
{
    ck_assert_ptr_null(cf_exp(cf_from_ints((int32_t[]){1}, CF_SHAPE(1))));
    assert_error(CF_ERR_DTYPE, "cf_exp", "int32", NULL);
}
END_TEST

/* ---- grad-ready hook ---- */

typedef struct {
    int n;
    cf_tensor *seen[8];
    float value[8]; /* the first gradient element when reported */
    int stop_at;    /* report number that fails (-1: none) */
} ready_log;

static cf_status log_ready(cf_tensor *leaf, void *ud)
{
    ready_log *log = ud;
    if (log->n == log->stop_at) {
        cf_error_set(CF_ERR_IO, "log_ready: refused");
        return CF_ERR_IO;
    }
    log->seen[log->n] = leaf;
    log->value[log->n++] = ((const float *)leaf->grad->data)[0];
    return CF_OK;
}

TEST(grad_ready_hook_reports_each_leaf_once_with_its_final_gradient)
{
    /* w1 feeds the first layer and is used twice; w2 the second. */
    cf_tensor *x = cf_from_array((float[]){1, 2}, CF_SHAPE(2));
    cf_tensor *w1 = cf_requires_grad(cf_from_array((float[]){3, 4}, CF_SHAPE(2)), true);
    cf_tensor *w2 = cf_requires_grad(cf_from_array((float[]){5, 6}, CF_SHAPE(2)), true);
    cf_tensor *h = cf_add(cf_mul(x, w1), cf_mul(w1, w1)); /* x w1 + w1^2 */
    cf_tensor *loss = cf_sum_all(cf_mul(h, w2));
    ready_log log = {.stop_at = -1};
    cf_set_grad_ready_hook(log_ready, &log);
    ck_assert_int_eq(cf_backward(loss), CF_OK);
    cf_set_grad_ready_hook(NULL, NULL);
    ck_assert_int_eq(log.n, 2);
    ck_assert_ptr_eq(log.seen[0], w2); /* the later layer is final first */
    ck_assert_ptr_eq(log.seen[1], w1);
    ck_assert_float_eq(log.value[0], 1 * 3 + 9);       /* h[0] */
    ck_assert_float_eq(log.value[1], 5 * (1 + 2 * 3)); /* w2 (x + 2 w1) */
}
END_TEST

TEST(grad_ready_hook_skips_leaves_without_a_gradient)
{
    cf_tensor *x = cf_from_array((float[]){1, 2}, CF_SHAPE(2));
    cf_tensor *w = cf_requires_grad(cf_from_array((float[]){3, 4}, CF_SHAPE(2)), true);
    ready_log log = {.stop_at = -1};
    cf_set_grad_ready_hook(log_ready, &log);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(x, w))), CF_OK);
    cf_set_grad_ready_hook(NULL, NULL);
    ck_assert_int_eq(log.n, 1);
    ck_assert_ptr_eq(log.seen[0], w);
}
END_TEST

TEST(grad_ready_hook_error_stops_backward)
{
    cf_tensor *w1 = cf_requires_grad(cf_from_array((float[]){3}, CF_SHAPE(1)), true);
    cf_tensor *w2 = cf_requires_grad(cf_from_array((float[]){5}, CF_SHAPE(1)), true);
    cf_tensor *loss = cf_sum_all(cf_mul(cf_exp(w1), w2));
    ready_log log = {.stop_at = 0};
    cf_set_grad_ready_hook(log_ready, &log);
    ck_assert_int_eq(cf_backward(loss), CF_ERR_IO);
    cf_set_grad_ready_hook(NULL, NULL);
    ck_assert_ptr_null(w1->grad); /* backward stopped before reaching w1 */
    assert_error(CF_ERR_IO, "log_ready", NULL);
}
END_TEST

TEST(grad_ready_hook_removed_is_not_called)
{
    cf_tensor *w = cf_requires_grad(cf_from_array((float[]){3}, CF_SHAPE(1)), true);
    ready_log log = {.stop_at = -1};
    cf_set_grad_ready_hook(log_ready, &log);
    cf_set_grad_ready_hook(NULL, &log);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_square(w))), CF_OK);
    ck_assert_int_eq(log.n, 0);
}
END_TEST

/* ---- determinism ---- */

TEST(sums_are_bit_identical_for_any_thread_count)
{
    cf_tensor *x = rand_leaf(9, -1, 1, CF_SHAPE(513, 1031));
    int nt = cf_get_num_threads();
    float r[3][2];
    for (int t = 1; t <= 3; t++) {
        cf_set_num_threads(t);
        r[t - 1][0] = cf_item(cf_sum_all(x));
        r[t - 1][1] = cf_item(cf_sum(cf_sum(x, CF_DIMS(0), false), CF_DIMS(0), false));
    }
    cf_set_num_threads(nt);
    ck_assert(memcmp(r[0], r[1], sizeof r[0]) == 0);
    ck_assert(memcmp(r[0], r[2], sizeof r[0]) == 0);
}
END_TEST

/* ---- profiling ---- */

TEST_WITH(compositions_match_pytorch_and_finite_differences, .golden = "chain.")
{
    assert_golden_expr("ops.safetensors", "chain.", _i);
}
END_TEST
