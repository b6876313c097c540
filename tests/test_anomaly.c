/* Anomaly mode (autograd.h): the first op whose output or gradient holds
 * NaN or infinity fails with CF_ERR_NUMERIC, named with its shapes. */
#include "tests/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every test starts with the mode off (whatever CF_ANOMALY says) and leaves
 * it off. */
static void anomaly_off(void) { cf_set_anomaly(false); }

/* A test that starts and ends with anomaly mode off. */
#define ANOMALY_TEST(name) TEST_WITH(name, .setup = anomaly_off, .teardown = anomaly_off)

static cf_tensor *with_nan(int64_t n, int64_t at)
{
    cf_tensor *t = cf_arange(1, (float)n + 1, 1);
    cf_set(t, CF_IDX(at), NAN);
    return t;
}

ANOMALY_TEST(off_nan_flows_through_without_an_error)
{
    ck_assert(!cf_anomaly_enabled());
    cf_tensor *y = cf_exp(cf_log(with_nan(3, 1)));
    ck_assert_ptr_nonnull(y);
    ck_assert(isnan(cf_get(y, CF_IDX(1))));
    ASSERT_NO_ERROR();
}
END_TEST

ANOMALY_TEST(set_anomaly_returns_the_previous_setting)
{
    ck_assert(!cf_set_anomaly(true));
    ck_assert(cf_anomaly_enabled());
    ck_assert(cf_set_anomaly(false));
    ck_assert(!cf_anomaly_enabled());
}
END_TEST

ANOMALY_TEST(an_infinity_made_by_an_op_names_the_op_and_its_shapes)
{
    cf_set_anomaly(true);
    cf_tensor *x = cf_from_array((float[]){1, 2, 0, 4, 5, 6}, CF_SHAPE(2, 3));
    ck_assert_ptr_null(cf_sum_all(cf_log(x)));
    assert_error(CF_ERR_NUMERIC, "anomaly", "op 'log'", "infinity", "output [2, 3]", "element 2",
                 "inputs [2, 3]", NULL);
    ck_assert_ptr_null(cf_exp(cf_full(100, CF_SHAPE(4))));
    assert_error(CF_ERR_NUMERIC, "op 'exp'", "infinity", "[4]", NULL);
}
END_TEST

ANOMALY_TEST(nan_in_the_data_stops_the_first_op_that_meets_it)
{
    cf_set_anomaly(true);
    cf_tensor *w = cf_ones(CF_SHAPE(4, 2));
    ck_assert_ptr_null(cf_relu(cf_matmul(cf_view(with_nan(8, 5), CF_SHAPE(2, 4)), w)));
    assert_error(CF_ERR_NUMERIC, "op 'view'", "NaN", "output [2, 4]", "element 5",
                 "inputs [8] holding NaN", NULL);
}
END_TEST

ANOMALY_TEST(nan_made_from_finite_values_is_caught_with_or_without_grad)
{
    cf_set_anomaly(true);
    cf_tensor *z = cf_zeros(CF_SHAPE(3));
    ck_assert_ptr_null(cf_div(z, z));
    assert_error(CF_ERR_NUMERIC, "op 'div'", "NaN", "inputs [3], [3]", NULL);
    cf_tensor *inf = cf_full(INFINITY, CF_SHAPE(2));
    CF_NO_GRAD { ck_assert_ptr_null(cf_sub(inf, inf)); }
    assert_error(CF_ERR_NUMERIC, "op 'sub'", "NaN", "[2] holding infinity", NULL);
}
END_TEST

ANOMALY_TEST(infinities_asked_for_or_carried_from_inputs_are_not_anomalies)
{
    cf_set_anomaly(true);
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(2, 4, 4));
    cf_tensor *mask = cf_gt(cf_arange(0, 4, 1), cf_view(cf_arange(0, 4, 1), CF_SHAPE(4, 1)));
    cf_tensor *scores = cf_masked_fill(x, mask, -INFINITY); /* [2, 4, 4] with -inf */
    cf_tensor *p = cf_softmax(scores, -1);
    cf_tensor *lp = cf_log_softmax(cf_add_scalar(scores, 1), -1); /* carries -inf */
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(lp);
    ck_assert_int_eq(cf_backward(cf_sum_all(cf_mul(p, x))), CF_OK);
    ASSERT_NO_ERROR();
}
END_TEST

ANOMALY_TEST(a_gradient_made_non_finite_names_the_backward)
{
    cf_set_anomaly(true);
    cf_tensor *x = cf_requires_grad(cf_from_array((float[]){4, 0, 1, 9}, CF_SHAPE(4)), true);
    cf_tensor *y = cf_sum_all(cf_sqrt(x)); /* d sqrt(x) / dx = inf at 0 */
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(cf_backward(y), CF_ERR_NUMERIC);
    assert_error(CF_ERR_NUMERIC, "anomaly", "backward of op 'sqrt'", "output [4]", "input 0 [4]",
                 "infinity", "element 1", NULL);
}
END_TEST

ANOMALY_TEST(a_non_finite_output_gradient_is_caught)
{
    cf_set_anomaly(true);
    cf_tensor *x = rand_leaf(1, -1, 1, CF_SHAPE(3));
    cf_tensor *y = cf_mul_scalar(x, 2);
    ck_assert_int_eq(cf_backward_with(y, with_nan(3, 2)), CF_ERR_NUMERIC);
    assert_error(CF_ERR_NUMERIC, "output gradient", "NaN", "element 2", NULL);
}
END_TEST

ANOMALY_TEST(a_finite_training_step_runs_unchanged)
{
    cf_tensor *w = rand_leaf(2, -1, 1, CF_SHAPE(4, 3));
    cf_tensor *x = rand_leaf(3, -1, 1, CF_SHAPE(5, 4));
    cf_tensor *t = cf_from_ints((int32_t[]){0, 2, 1, 1, 0}, CF_SHAPE(5));
    ck_assert_int_eq(cf_backward(cf_cross_entropy(cf_matmul(x, w), t, NULL)), CF_OK);
    float off[12], on[12];
    cf_copy_to(w->grad, off);
    cf_zero_grad(w);
    cf_set_anomaly(true);
    ck_assert_int_eq(cf_backward(cf_cross_entropy(cf_matmul(x, w), t, NULL)), CF_OK);
    cf_copy_to(w->grad, on);
    ck_assert_mem_eq(off, on, sizeof off);
}
END_TEST

/* Every op goes through the check: each is fed NaN. */
typedef cf_tensor *(*unary_fn)(cf_tensor *x);
static cf_tensor *op_exp(cf_tensor *x) { return cf_exp(x); }
static cf_tensor *op_tanh(cf_tensor *x) { return cf_tanh(x); }
static cf_tensor *op_sigmoid(cf_tensor *x) { return cf_sigmoid(x); }
static cf_tensor *op_relu(cf_tensor *x) { return cf_relu(x); }
static cf_tensor *op_gelu(cf_tensor *x) { return cf_gelu(x, false); }
static cf_tensor *op_silu(cf_tensor *x) { return cf_silu(x); }
static cf_tensor *op_abs(cf_tensor *x) { return cf_abs(x); }
static cf_tensor *op_clamp(cf_tensor *x) { return cf_clamp(x, -1, 1); }
static cf_tensor *op_square(cf_tensor *x) { return cf_square(x); }
static cf_tensor *op_neg(cf_tensor *x) { return cf_neg(x); }
static cf_tensor *op_sum(cf_tensor *x) { return cf_sum(x, CF_DIMS(1), false); }
static cf_tensor *op_mean(cf_tensor *x) { return cf_mean_all(x); }
static cf_tensor *op_max(cf_tensor *x) { return cf_max(x, 1, false, NULL); }
static cf_tensor *op_var(cf_tensor *x) { return cf_var(x, CF_DIMS(1), true, false); }
static cf_tensor *op_lse(cf_tensor *x) { return cf_logsumexp(x, CF_DIMS(1), false); }
static cf_tensor *op_softmax(cf_tensor *x) { return cf_softmax(x, 1); }
static cf_tensor *op_log_softmax(cf_tensor *x) { return cf_log_softmax(x, 1); }
static cf_tensor *op_layer_norm(cf_tensor *x) { return cf_layer_norm(x, 1, NULL, NULL, 1e-5f); }
static cf_tensor *op_matmul(cf_tensor *x) { return cf_matmul(x, cf_ones(CF_SHAPE(4, 2))); }
static cf_tensor *op_transpose(cf_tensor *x) { return cf_transpose(x, 0, 1); }
static cf_tensor *op_reshape(cf_tensor *x) { return cf_reshape(x, CF_SHAPE(8)); }
static cf_tensor *op_slice(cf_tensor *x) { return cf_slice(x, 1, 1, 3, 1); }
static cf_tensor *op_expand(cf_tensor *x) { return cf_expand(x, CF_SHAPE(3, 2, 4)); }
static cf_tensor *op_clone(cf_tensor *x) { return cf_clone(x); }
static cf_tensor *op_cat(cf_tensor *x) { return cf_cat(2, (cf_tensor *[]){x, x}, 0); }
static cf_tensor *op_stack(cf_tensor *x) { return cf_stack(2, (cf_tensor *[]){x, x}, 0); }
static cf_tensor *op_index_select(cf_tensor *x)
{
    return cf_index_select(x, 1, cf_from_ints((int32_t[]){2, 1}, CF_SHAPE(2)));
}
static cf_tensor *op_embedding(cf_tensor *x)
{
    return cf_embedding(x, cf_from_ints((int32_t[]){0, 1}, CF_SHAPE(2)), -1);
}
/* Dropout zeroes what it drops, NaN too: keep (almost) everything. */
static cf_tensor *op_dropout(cf_tensor *x) { return cf_dropout(x, 1e-4f, true, NULL); }
static cf_tensor *op_mse(cf_tensor *x) { return cf_mse_loss(x, cf_zeros(CF_SHAPE(2, 4)), NULL); }
static cf_tensor *op_cross_entropy(cf_tensor *x)
{
    return cf_cross_entropy(x, cf_from_ints((int32_t[]){0, 3}, CF_SHAPE(2)), NULL);
}
static cf_tensor *op_attention(cf_tensor *x)
{
    cf_tensor *q = cf_view(x, CF_SHAPE(1, 1, 2, 4));
    return cf_attention(q, q, q, NULL);
}

static const struct {
    const char *name;
    unary_fn fn;
} ops[] = {
    {"exp", op_exp},
    {"tanh", op_tanh},
    {"sigmoid", op_sigmoid},
    {"relu", op_relu},
    {"gelu", op_gelu},
    {"silu", op_silu},
    {"abs", op_abs},
    {"clamp", op_clamp},
    {"square", op_square},
    {"neg", op_neg},
    {"sum", op_sum},
    {"mean", op_mean},
    {"max", op_max},
    {"var", op_var},
    {"logsumexp", op_lse},
    {"softmax", op_softmax},
    {"log_softmax", op_log_softmax},
    {"layer_norm", op_layer_norm},
    {"matmul", op_matmul},
    {"transpose", op_transpose},
    {"reshape", op_reshape},
    {"slice", op_slice},
    {"expand", op_expand},
    {"clone", op_clone},
    {"cat", op_cat},
    {"stack", op_stack},
    {"index_select", op_index_select},
    {"embedding", op_embedding},
    {"dropout", op_dropout},
    {"mse", op_mse},
    {"cross_entropy", op_cross_entropy},
    {"attention", op_attention},
};

TEST_WITH(every_op_checks_its_output, .loop = COUNT(ops), .setup = anomaly_off,
          .teardown = anomaly_off)
{
    cf_tensor *x = cf_view(with_nan(8, 2), CF_SHAPE(2, 4));
    ck_assert_ptr_nonnull(x);
    cf_set_anomaly(true);
    for (int grad = 0; grad < 2; grad++) {
        cf_tensor *in = x;
        if (grad) {
            in = cf_tensor_new(CF_F32, CF_SHAPE(2, 4));
            float v[8];
            cf_copy_to(x, v);
            cf_copy_from(in, v);
            cf_requires_grad(in, true);
        }
        cf_tensor *out = ops[_i].fn(in);
        ck_assert_msg(out == NULL && cf_error() == CF_ERR_NUMERIC,
                      "%s (grad %d) let NaN through: %s", ops[_i].name, grad, cf_error_message());
        assert_error(CF_ERR_NUMERIC, "anomaly", "NaN", NULL);
        cf_tensor_free(grad ? in : NULL);
    }
}
END_TEST

/* CF_ANOMALY=1 in the environment turns the mode on at startup: this
 * program runs itself with it (see main). */
ANOMALY_TEST(the_environment_variable_turns_it_on)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "CF_ANOMALY=1 /proc/%d/exe --print-anomaly", (int)getpid());
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[16] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_str_eq(line, "on\n");
    snprintf(cmd, sizeof cmd, "CF_ANOMALY=0 /proc/%d/exe --print-anomaly", (int)getpid());
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    pclose(p);
    ck_assert_str_eq(line, "off\n");
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--print-anomaly") == 0) {
        puts(cf_anomaly_enabled() ? "on" : "off");
        return 0;
    }
    return run_tests(false);
}
