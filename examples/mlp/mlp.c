/* Trains a two-layer MLP to fit y = sin(x0) * cos(x1) on the square
 * [-pi, pi]^2, using only the public cformer API.
 *
 *     ./examples/mlp/mlp
 *
 * Legend: N = training points, H = hidden units.
 *
 *     h    = tanh(x @ w1 + b1)        // (N, H)
 *     pred = h @ w2 + b2              // (N, 1)
 *     loss = mean((pred - y)^2)       // ()
 *
 * The parameters and the data outlive a step, so they come from
 * cf_tensor_new and belong to this program. Everything a step makes (the
 * activations, the loss, the graph) lives in the step arena, which is reset
 * after every update. The optimizer is Adam, written out by hand over the
 * parameters' floats. Exits 0 when the training loss ends below TARGET_LOSS.
 */
#include <cformer/cformer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N           256  /* training points */
#define N_TEST      1024 /* held-out points */
#define H           32   /* hidden units */
#define STEPS       3000
#define PRINT_EVERY 250
#define TARGET_LOSS 1e-3f
#define LR          1e-2f
#define PI_F        3.14159265f /* M_PI is not in strict C11 */

/* ---- data ---- */

/* Points drawn uniformly from [-pi, pi]^2 and their targets. */
static void make_data(cf_rng *g, cf_tensor *x, cf_tensor *y)
{
    cf_fill_uniform(g, x, -PI_F, PI_F); /* (n, 2), n = N or N_TEST */
    const float *xp = x->data;
    float *yp = y->data; /* (n, 1) */
    for (int64_t i = 0; i < x->shape[0]; i++)
        yp[i] = sinf(xp[2 * i]) * cosf(xp[2 * i + 1]);
}

/* ---- model ---- */

typedef struct {
    cf_tensor *w1; /* (2, H) */
    cf_tensor *b1; /* (H) */
    cf_tensor *w2; /* (H, 1) */
    cf_tensor *b2; /* (1) */
} mlp;

#define NPARAMS 4

/* The parameters in a list, for the loops that treat them alike. */
static void param_list(const mlp *m, cf_tensor *list[NPARAMS])
{
    list[0] = m->w1, list[1] = m->b1, list[2] = m->w2, list[3] = m->b2;
}

/* Weights and biases uniform in +-1/sqrt(fan_in), as in PyTorch's nn.Linear.
 * On allocation failure the error is recorded and a parameter is NULL. */
static void mlp_init(mlp *m, cf_rng *g)
{
    m->w1 = cf_tensor_new(CF_F32, CF_SHAPE(2, H));
    m->b1 = cf_tensor_new(CF_F32, CF_SHAPE(H));
    m->w2 = cf_tensor_new(CF_F32, CF_SHAPE(H, 1));
    m->b2 = cf_tensor_new(CF_F32, CF_SHAPE(1));
    cf_tensor *p[NPARAMS];
    param_list(m, p);
    const int fan_in[NPARAMS] = {2, 2, H, H};
    for (int i = 0; i < NPARAMS && p[i]; i++) {
        float bound = 1.0f / sqrtf((float)fan_in[i]);
        cf_fill_uniform(g, p[i], -bound, bound);
        cf_requires_grad(p[i], true);
    }
}

static void mlp_free(mlp *m)
{
    cf_tensor_free(m->w1), cf_tensor_free(m->b1);
    cf_tensor_free(m->w2), cf_tensor_free(m->b2);
}

/* The mean squared error of the model on (x, y); NULL on error. */
static cf_tensor *mlp_loss(mlp *m, cf_tensor *x, cf_tensor *y)
{
    cf_tensor *h = cf_tanh(cf_add(cf_matmul(x, m->w1), m->b1)); /* (n, H) */
    cf_tensor *pred = cf_add(cf_matmul(h, m->w2), m->b2);       /* (n, 1) */
    return cf_mean_all(cf_square(cf_sub(pred, y)));             /* () */
}

/* ---- optimizer ---- */

/* Adam's running averages of the gradient and its square, per parameter. */
typedef struct {
    cf_tensor *m[NPARAMS];
    cf_tensor *v[NPARAMS];
    int t; /* steps taken */
} adam;

/* Zeroed state shaped like the parameters (which must exist). */
static void adam_init(adam *opt, const mlp *model)
{
    cf_tensor *p[NPARAMS];
    param_list(model, p);
    for (int i = 0; i < NPARAMS; i++) {
        opt->m[i] = cf_tensor_new(CF_F32, p[i]->ndim, p[i]->shape);
        opt->v[i] = cf_tensor_new(CF_F32, p[i]->ndim, p[i]->shape);
    }
    opt->t = 0;
}

static void adam_free(adam *opt)
{
    for (int i = 0; i < NPARAMS; i++)
        cf_tensor_free(opt->m[i]), cf_tensor_free(opt->v[i]);
}

/* One Adam step (Kingma & Ba) on every parameter, then zeroes the
 * gradients. Parameters and gradients are contiguous float tensors. */
static void adam_step(adam *opt, const mlp *model, float lr)
{
    const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    cf_tensor *params[NPARAMS];
    param_list(model, params);
    opt->t++;
    float c1 = 1.0f - powf(beta1, (float)opt->t); /* bias corrections */
    float c2 = 1.0f - powf(beta2, (float)opt->t);
    /* The update itself must never become part of a graph. */
    CF_NO_GRAD
    {
        for (int i = 0; i < NPARAMS; i++) {
            cf_tensor *p = params[i];
            float *w = p->data, *g = p->grad->data;
            float *m = opt->m[i]->data, *v = opt->v[i]->data;
            for (int64_t j = 0; j < cf_numel(p); j++) {
                m[j] = beta1 * m[j] + (1.0f - beta1) * g[j];
                v[j] = beta2 * v[j] + (1.0f - beta2) * g[j] * g[j];
                w[j] -= lr * (m[j] / c1) / (sqrtf(v[j] / c2) + eps);
            }
            cf_zero_grad(p);
        }
    }
}

/* ---- main ---- */

static int fail(const char *what)
{
    fprintf(stderr, "mlp: %s: %s (%s)\n", what, cf_error_message(), cf_status_str(cf_error()));
    return 1;
}

int main(void)
{
    cf_rng g;
    cf_rng_init(&g, 42);

    cf_tensor *x = cf_tensor_new(CF_F32, CF_SHAPE(N, 2));           /* (N, 2) */
    cf_tensor *y = cf_tensor_new(CF_F32, CF_SHAPE(N, 1));           /* (N, 1) */
    cf_tensor *x_test = cf_tensor_new(CF_F32, CF_SHAPE(N_TEST, 2)); /* (N_TEST, 2) */
    cf_tensor *y_test = cf_tensor_new(CF_F32, CF_SHAPE(N_TEST, 1)); /* (N_TEST, 1) */
    mlp model;
    mlp_init(&model, &g);
    if (cf_error()) /* cf_tensor_new records allocation failures */
        return fail("setup");
    adam opt;
    adam_init(&opt, &model);
    cf_arena *step = cf_arena_new(0);
    if (cf_error() || !step)
        return fail("setup");
    make_data(&g, x, y);
    make_data(&g, x_test, y_test);
    cf_arena_use(step);

    printf("fitting y = sin(x0) * cos(x1): %d points, %d hidden units, Adam lr %g\n", N, H,
           (double)LR);
    float loss = INFINITY;
    for (int it = 1; it <= STEPS; it++) {
        cf_tensor *l = mlp_loss(&model, x, y);
        if (cf_error())
            return fail("forward");
        loss = cf_item(l);
        if (cf_backward(l) != CF_OK)
            return fail("backward");
        adam_step(&opt, &model, LR);
        cf_arena_reset(step);
        if (it % PRINT_EVERY == 0 || it == 1)
            printf("step %4d  loss %.6f\n", it, (double)loss);
    }

    float test_loss = NAN;
    CF_NO_GRAD
    {
        cf_tensor *l = mlp_loss(&model, x_test, y_test);
        if (l)
            test_loss = cf_item(l);
    }
    if (cf_error())
        return fail("test");
    printf("final loss %.6f (target %g), held-out loss %.6f\n", (double)loss, (double)TARGET_LOSS,
           (double)test_loss);

    mlp_free(&model);
    adam_free(&opt);
    cf_tensor_free(x), cf_tensor_free(y), cf_tensor_free(x_test), cf_tensor_free(y_test);
    cf_arena_free(step);
    if (!(loss < TARGET_LOSS)) {
        fprintf(stderr, "mlp: loss %g did not reach %g\n", (double)loss, (double)TARGET_LOSS);
        return 1;
    }
    return 0;
}
