/* The examples' shared code (examples/common): flags, the report line, run
 * checkpoints that resume to the same numbers, and the IDX reader. */
#include "tests/util.h"

#include "examples/common/flags.h"
#include "examples/common/idx.h"
#include "examples/common/progress.h"
#include "examples/common/report.h"
#include "examples/common/runstate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- Flags ---- */

typedef struct {
    ex_common c;
    int width;
    bool flip;
    float smoothing;
} opts;

static opts opts_default(void)
{
    opts o = {.c = ex_common_defaults("/data", "out"), .width = 64, .flip = true};
    o.c.epochs = 10, o.c.batch = 32, o.c.lr = 1e-3f, o.c.minutes = 15;
    return o;
}

/* Parses the NULL-terminated words (after a program name) into o. */
static ex_flags_result parse(opts *o, ...)
{
    char prog[] = "prog", *argv[32] = {prog};
    int argc = 1;
    va_list ap;
    va_start(ap, o);
    for (char *w; (w = va_arg(ap, char *));)
        argv[argc++] = w;
    va_end(ap);
    const ex_flag flags[] = {
        EX_COMMON_FLAGS(&o->c),
        {"width", EX_INT, &o->width, 8, 1024, false, "model width"},
        {"flip", EX_BOOL, &o->flip, 0, 0, false, "mirror images"},
        {"smoothing", EX_FLOAT, &o->smoothing, 0, 1, false, "label smoothing"},
    };
    return ex_flags_parse(flags, EX_COUNT(flags), argc, argv);
}

TEST(flags_take_both_value_forms)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--epochs=3", "--batch", "7", "--lr=0.5", "--data", "/d", "--seed=9",
                           "--minutes", "2.5", NULL),
                     EX_FLAGS_OK);
    ck_assert_int_eq(o.c.epochs, 3);
    ck_assert_int_eq(o.c.batch, 7);
    ck_assert_float_eq(o.c.lr, 0.5f);
    ck_assert_str_eq(o.c.data, "/d");
    ck_assert_uint_eq(o.c.seed, 9);
    ck_assert_double_eq(o.c.minutes, 2.5);
    ck_assert_int_eq(o.width, 64); /* untouched */
}
END_TEST

TEST(flags_bools_set_and_clear)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--quick", "--no-flip", "--resume", NULL), EX_FLAGS_OK);
    ck_assert(o.c.quick && o.c.resume && !o.flip);
    ck_assert_int_eq(parse(&o, "--flip", "--no-quick", NULL), EX_FLAGS_OK);
    ck_assert(o.flip && !o.c.quick);
}
END_TEST

TEST(flags_refuse_out_of_range)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--epochs", "0", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--epochs '0'", "from 1 to 100000", NULL);
    ck_assert_int_eq(parse(&o, "--lr=0", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--lr '0'", "above 0", NULL);
    ck_assert_int_eq(parse(&o, "--width=4", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--width '4'", NULL);
    ck_assert_int_eq(parse(&o, "--seed=-1", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--seed '-1'", NULL);
    ck_assert_int_eq(o.c.epochs, 10);
}
END_TEST

TEST(flags_refuse_malformed_values)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--epochs=3x", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--epochs '3x'", "not a whole number", NULL);
    ck_assert_int_eq(parse(&o, "--lr", "nan", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--lr 'nan'", "not a finite number", NULL);
    ck_assert_int_eq(parse(&o, "--out=", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--out ''", "empty", NULL);
    ck_assert_int_eq(parse(&o, "--epochs", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "--epochs needs a value", NULL);
}
END_TEST

TEST(flags_refuse_unknown_and_stray_words)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--colour", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "unknown option '--colour'", NULL);
    ck_assert_int_eq(parse(&o, "--quick=1", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "'--quick=1'", NULL);
    ck_assert_int_eq(parse(&o, "data.txt", NULL), EX_FLAGS_ERROR);
    assert_error(CF_ERR_ARG, "unexpected argument 'data.txt'", NULL);
}
END_TEST

TEST(flags_report_help)
{
    opts o = opts_default();
    ck_assert_int_eq(parse(&o, "--epochs=2", "--help", NULL), EX_FLAGS_HELP);
    ck_assert_int_eq(parse(&o, "-h", NULL), EX_FLAGS_HELP);
}
END_TEST

TEST(flags_usage_lists_defaults_and_ranges)
{
    opts o = opts_default();
    const ex_flag flags[] = {EX_COMMON_FLAGS(&o.c),
                             {"width", EX_INT, &o.width, 8, 1024, false, "model width"}};
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ex_flags_usage(f, "/usr/libexec/cformer/copy", "Trains.", flags, EX_COUNT(flags));
    fclose(f);
    ck_assert_msg(strstr(text, "Usage: copy [OPTION]...\nTrains.\n"), "%s", text);
    ck_assert_msg(strstr(text, "--width=N") && strstr(text, "model width (default: 64; from 8 "
                                                            "to 1024)"),
                  "%s", text);
    ck_assert_msg(strstr(text, "--[no-]quick"), "%s", text);
    ck_assert_msg(strstr(text, "--data=S") && strstr(text, "(default: /data)"), "%s", text);
    ck_assert_msg(strstr(text, "-h, --help"), "%s", text);
    free(text);
}
END_TEST

/* ---- Progress ---- */

TEST(progress_prints_plain_lines_off_a_terminal)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ex_progress p;
    ex_progress_init(&p, f, 2, "img", 1000);
    ex_progress_plan(&p, 6, 0);
    ex_progress_step(&p, 1, 1, 3, 2.0, 10);
    ex_progress_step(&p, 1, 2, 3, 1.0, 10);
    ck_assert_uint_eq(size, 0); /* within the interval: nothing yet */
    ex_progress_step(&p, 1, 3, 3, 0.0, 10);
    ex_progress_printf(&p, "epoch %d done\n", 1);
    ex_progress_done(&p);
    fclose(f);
    ck_assert_msg(strncmp(text, "epoch 1/2  step 3/3  loss 1.0000  ", 34) == 0, "%s", text);
    ck_assert_msg(strstr(text, " img/s  elapsed 0:00  ETA ") && strstr(text, "\nepoch 1 done\n"),
                  "%s", text);
    ck_assert_msg(!strchr(text, '\r'), "%s", text);
    free(text);
}
END_TEST

TEST(progress_clock_reads_minutes_and_hours)
{
    char buf[32];
    ck_assert_str_eq(ex_clock(61.4, buf, sizeof buf), "1:01");
    ck_assert_str_eq(ex_clock(3725, buf, sizeof buf), "1:02:05");
    ck_assert_str_eq(ex_clock(NAN, buf, sizeof buf), "0:00");
}
END_TEST

/* ---- Report ---- */

TEST(report_is_one_json_line)
{
    ex_report r;
    ex_report_init(&r, "copy");
    ex_report_num(&r, "accuracy", 0.5);
    ex_report_int(&r, "epochs", 3);
    ex_report_num(&r, "loss", NAN);
    ex_report_str(&r, "note", "a \"quoted\"\nline");
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    char a0[] = "./copy", a1[] = "--out", a2[] = "my dir", a3[] = "--x=it's";
    char *argv[] = {a0, a1, a2, a3};
    ck_assert_int_eq(ex_report_print(&r, f, 12.345, 2, 1000, 4, argv), CF_OK);
    fclose(f);
    const char *head = "{\"example\": \"copy\", \"metrics\": {\"accuracy\": 0.5, \"epochs\": 3, "
                       "\"loss\": null, \"note\": \"a \\\"quoted\\\"\\u000aline\"}, "
                       "\"wall_seconds\": 12.35, \"cpu_seconds\": ";
    ck_assert_msg(strncmp(text, head, strlen(head)) == 0, "%s", text);
    char *end;
    double cpu = strtod(text + strlen(head), &end); /* this process's so far */
    ck_assert(cpu >= 0);
    ck_assert_str_eq(end, ", \"threads\": 2, \"parameters\": 1000, "
                          "\"command\": \"./copy --out 'my dir' '--x=it'\\\\''s'\"}\n");
    free(text);
    ex_report_free(&r);
}
END_TEST

TEST(report_numbers_read_back_exactly)
{
    ex_report r;
    ex_report_init(&r, "x");
    ex_report_num(&r, "v", 0.1f);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ck_assert_int_eq(ex_report_print(&r, f, 0, 1, 0, 0, NULL), CF_OK);
    fclose(f);
    const char *v = strstr(text, "\"v\": ");
    ck_assert_ptr_nonnull(v);
    ck_assert(strtod(v + 5, NULL) == (double)0.1f);
    free(text);
    ex_report_free(&r);
}
END_TEST

/* ---- Run state: a run interrupted and resumed ends where an
 * uninterrupted one does ---- */

enum { N = 96, IN = 6, HID = 16, OUT = 3, BATCH = 16 };

typedef struct {
    cf_module *root;
    cf_linear *fc1, *fc2;
    cf_dropout_mod *drop;
    cf_optim *opt;
} toy;

static toy toy_new(void)
{
    cf_rng g;
    cf_rng_init(&g, 7);
    toy t = {.root = cf_module_new("Toy", NULL, NULL)};
    t.fc1 = cf_linear_new(t.root, "fc1", IN, HID, true, &g);
    t.drop = cf_dropout_new(t.root, "drop", 0.2f, 11);
    t.fc2 = cf_linear_new(t.root, "fc2", HID, OUT, true, &g);
    t.opt = cf_adamw_new(t.root, &(cf_adamw_opts){.lr = 1e-2f, .weight_decay = 0.01f});
    ck_assert_ptr_nonnull(t.opt);
    return t;
}

static void toy_free(toy *t)
{
    cf_optim_free(t->opt);
    cf_module_free(t->root);
}

/* A fixed data set: x in [-1, 1), y = the argmax of three sums of x. */
static void toy_data(float *x, int32_t *y)
{
    cf_rng g;
    cf_rng_init(&g, 3);
    cf_tensor *t = cf_uniform(&g, -1, 1, CF_SHAPE(N, IN));
    memcpy(x, t->data, sizeof(float) * N * IN);
    for (int i = 0; i < N; i++) {
        float s[OUT] = {x[i * IN] + x[i * IN + 1], x[i * IN + 2] - x[i * IN + 3],
                        x[i * IN + 4] * x[i * IN + 5]};
        y[i] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
}

/* Trains epochs run->epoch + 1 .. epochs with a shuffle per epoch from
 * the run's generator and a loss history; returns the last loss. */
static float toy_train(toy *t, ex_run *run, int epochs, const float *x, const int32_t *y)
{
    float last = NAN;
    int32_t order[N];
    for (int epoch = run->epoch + 1; epoch <= epochs; epoch++) {
        cf_tensor *u = cf_uniform(&run->data_rng, 0, 1, CF_SHAPE(N));
        for (int i = 0; i < N; i++)
            order[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)(((const float *)u->data)[i] * (float)(i + 1)) % (i + 1), k = order[i];
            order[i] = order[j], order[j] = k;
        }
        for (int s = 0; s < N / BATCH; s++) {
            float bx[BATCH * IN];
            int32_t by[BATCH];
            for (int b = 0; b < BATCH; b++) {
                memcpy(bx + b * IN, x + order[s * BATCH + b] * IN, sizeof(float) * IN);
                by[b] = y[order[s * BATCH + b]];
            }
            cf_tensor *h =
                cf_relu(cf_linear_forward(t->fc1, cf_from_array(bx, CF_SHAPE(BATCH, IN))));
            cf_tensor *logits = cf_linear_forward(t->fc2, cf_dropout_forward(t->drop, h));
            cf_tensor *loss = cf_cross_entropy(logits, cf_from_ints(by, CF_SHAPE(BATCH)), NULL);
            cf_optim_zero_grad(t->opt);
            ck_assert_int_eq(cf_backward(loss), CF_OK);
            cf_optim_set_lr(t->opt, 1e-2f / (float)(1 + run->step));
            cf_optim_step(t->opt);
            last = cf_item(loss);
            run->step++;
            ck_assert_int_eq(ex_run_push(run, "loss", last), CF_OK);
        }
        run->epoch = epoch;
        ASSERT_NO_ERROR();
    }
    return last;
}

SCRATCH_TEST(run_resumes_to_the_same_loss)
{
    float x[N * IN];
    int32_t y[N];
    toy_data(x, y);
    const char *path = scratch_path("run.safetensors");

    toy a = toy_new();
    ex_run ra;
    ex_run_init(&ra, 5);
    float straight = toy_train(&a, &ra, 6, x, y);

    toy b = toy_new();
    ex_run rb;
    ex_run_init(&rb, 5);
    toy_train(&b, &rb, 3, x, y);
    rb.seconds = 1.5;
    ck_assert_int_eq(ex_run_save(&rb, path, b.root, b.opt, "toy lr 0.01"), CF_OK);
    ex_run_free(&rb);
    toy_free(&b);

    toy c = toy_new(); /* a fresh process: new model, optimizer, run */
    ex_run rc;
    ex_run_init(&rc, 99);
    ck_assert_int_eq(ex_run_load(&rc, path, c.root, c.opt, "toy lr 0.01"), CF_OK);
    ck_assert_int_eq(rc.epoch, 3);
    ck_assert_int_eq(rc.step, 3 * N / BATCH);
    ck_assert_double_eq(rc.seconds, 1.5);
    ck_assert_int_eq(cf_optim_steps(c.opt), 3 * N / BATCH);
    float resumed = toy_train(&c, &rc, 6, x, y);

    ck_assert_msg(memcmp(&straight, &resumed, sizeof straight) == 0,
                  "final loss %.9g straight, %.9g resumed", (double)straight, (double)resumed);
    ex_series *ha = ex_run_series(&ra, "loss"), *hc = ex_run_series(&rc, "loss");
    ck_assert_int_eq(ha->n, 6 * N / BATCH);
    ck_assert_int_eq(hc->n, ha->n);
    ck_assert(memcmp(ha->v, hc->v, sizeof(float) * (size_t)ha->n) == 0);
    ex_run_free(&ra);
    ex_run_free(&rc);
    toy_free(&a);
    toy_free(&c);
}
END_TEST

SCRATCH_TEST(run_checkpoint_loads_as_weights)
{
    toy a = toy_new();
    ex_run r;
    ex_run_init(&r, 1);
    const char *path = scratch_path("run.safetensors");
    ck_assert_int_eq(ex_run_save(&r, path, a.root, a.opt, ""), CF_OK);
    toy b = toy_new();
    ck_assert_int_eq(cf_module_load(b.root, path, false), CF_OK);
    toy_free(&a);
    toy_free(&b);
}
END_TEST

SCRATCH_TEST(run_refuses_other_settings)
{
    toy a = toy_new();
    ex_run r;
    ex_run_init(&r, 1);
    const char *path = scratch_path("run.safetensors");
    ck_assert_int_eq(ex_run_save(&r, path, a.root, a.opt, "batch 16"), CF_OK);
    r.epoch = 4;
    ck_assert_int_eq(ex_run_load(&r, path, a.root, a.opt, "batch 32"), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, path, "saved \"batch 16\", now \"batch 32\"", NULL);
    ck_assert_int_eq(r.epoch, 4);
    toy_free(&a);
}
END_TEST

SCRATCH_TEST(run_refuses_plain_weights)
{
    toy a = toy_new();
    ex_run r;
    ex_run_init(&r, 1);
    const char *path = scratch_path("weights.safetensors");
    ck_assert_int_eq(cf_module_save(a.root, path), CF_OK);
    ck_assert_int_eq(ex_run_load(&r, path, a.root, a.opt, ""), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, path, "not a run checkpoint", NULL);
    toy_free(&a);
}
END_TEST

SCRATCH_TEST(run_refuses_a_model_it_lacks_parameters_of)
{
    toy a = toy_new();
    ex_run r;
    ex_run_init(&r, 1);
    const char *path = scratch_path("run.safetensors");
    ck_assert_int_eq(ex_run_save(&r, path, a.root, a.opt, ""), CF_OK);
    cf_rng g;
    cf_rng_init(&g, 1);
    cf_linear_new(a.root, "fc3", OUT, OUT, true, &g);
    cf_optim *opt = cf_adamw_new(a.root, &(cf_adamw_opts){.lr = 1e-2f, .weight_decay = 0.01f});
    ck_assert_int_eq(ex_run_load(&r, path, a.root, opt, ""), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, path, "\"fc3.weight\"", NULL);
    cf_optim_free(opt);
    toy_free(&a);
}
END_TEST

SCRATCH_TEST(run_names_a_missing_file)
{
    toy a = toy_new();
    ex_run r;
    ex_run_init(&r, 1);
    const char *path = scratch_path("none.safetensors");
    ck_assert_int_eq(ex_run_load(&r, path, a.root, a.opt, ""), CF_ERR_IO);
    assert_error(CF_ERR_IO, path, NULL);
    toy_free(&a);
}
END_TEST

/* ---- IDX ---- */

/* An IDX header for ubyte data with the given dims, then n data bytes. */
static size_t idx_bytes(uint8_t *buf, int ndim, const uint32_t *dims, size_t n)
{
    buf[0] = buf[1] = 0, buf[2] = 8, buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            buf[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    for (size_t i = 0; i < n; i++)
        buf[4 + 4 * ndim + i] = (uint8_t)i;
    return 4 + 4 * (size_t)ndim + n;
}

TEST(idx_parses_a_buffer)
{
    uint8_t buf[64];
    size_t len = idx_bytes(buf, 3, (uint32_t[]){2, 3, 4}, 24);
    ex_idx x;
    ck_assert_int_eq(ex_idx_parse(buf, len, "t", &x), CF_OK);
    ck_assert_int_eq(x.ndim, 3);
    ck_assert_uint_eq(x.dims[2], 4);
    ck_assert_uint_eq(x.size, 24);
    ck_assert_ptr_eq(x.data, buf + 16);
}
END_TEST

TEST(idx_names_the_offset_of_a_fault)
{
    uint8_t buf[64];
    ex_idx x;
    size_t len = idx_bytes(buf, 1, (uint32_t[]){5}, 5);
    buf[2] = 0x0D;
    ck_assert_int_eq(ex_idx_parse(buf, len, "f.idx", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "f.idx: offset 2:", "32-bit floats", NULL);
    buf[2] = 8, buf[0] = 1;
    ck_assert_int_eq(ex_idx_parse(buf, len, "f.idx", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "f.idx: offset 0:", "not an IDX file", NULL);
    ck_assert_int_eq(ex_idx_parse(buf, 3, "f.idx", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "truncated", NULL);
}
END_TEST

TEST(idx_checks_claimed_sizes_against_the_length)
{
    uint8_t buf[64];
    ex_idx x;
    /* 4e9 x 4e9 items would overflow; the length bounds the product first. */
    size_t len = idx_bytes(buf, 2, (uint32_t[]){4000000000u, 4000000000u}, 8);
    ck_assert_int_eq(ex_idx_parse(buf, len, "big", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "big: offset 4:", "claim more data than the 8 bytes", NULL);
    len = idx_bytes(buf, 1, (uint32_t[]){5}, 7);
    ck_assert_int_eq(ex_idx_parse(buf, len, "long", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "long: offset 13:", "2 bytes follow", NULL);
    len = idx_bytes(buf, 1, (uint32_t[]){0}, 0);
    ck_assert_int_eq(ex_idx_parse(buf, len, "zero", &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "size 0 is 0", NULL);
}
END_TEST

/* Writes buf to path, gzip-compressed. */
static void write_gzip(const char *path, const uint8_t *buf, size_t len)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, buf, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

SCRATCH_TEST(idx_loads_a_set_gzip_or_plain)
{
    uint8_t buf[64];
    size_t len = idx_bytes(buf, 3, (uint32_t[]){3, 2, 2}, 12);
    write_gzip(scratch_path("train-images-idx3-ubyte.gz"), buf, len);
    len = idx_bytes(buf, 1, (uint32_t[]){3}, 3);
    write_file(scratch_path("train-labels-idx1-ubyte"), buf, len);
    ex_idx_set s;
    ck_assert_int_eq(ex_idx_load_set(scratch_path(NULL), "train", 10, "pkg", &s), CF_OK);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.rows, 2);
    ck_assert_int_eq(s.images[11], 11);
    ck_assert_int_eq(s.labels[2], 2);
    ex_idx_set_free(&s);
    ck_assert_int_eq(ex_idx_load_set(scratch_path(NULL), "train", 2, "pkg", &s), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, "train-labels-idx1-ubyte: offset 10: label 2", NULL);
}
END_TEST

SCRATCH_TEST(idx_names_the_package_of_a_missing_file)
{
    ex_idx_set s;
    ck_assert_int_eq(ex_idx_load_set(scratch_path(NULL), "t10k", 10, "dataset-fashion-mnist", &s),
                     CF_ERR_IO);
    assert_error(CF_ERR_IO, "t10k-images-idx3-ubyte.gz", "apt-get install dataset-fashion-mnist",
                 NULL);
}
END_TEST

SCRATCH_TEST(idx_reports_a_truncated_gzip_file)
{
    uint8_t buf[4096];
    size_t len = idx_bytes(buf, 1, (uint32_t[]){4000}, 4000);
    const char *path = scratch_path("cut.gz");
    write_gzip(path, buf, len);
    size_t zn;
    unsigned char *z = read_file(path, &zn);
    write_file(path, z, zn / 2);
    ex_idx_file x;
    ck_assert_int_eq(ex_idx_load(path, NULL, &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, path, "offset", NULL);
    z[zn - 3] ^= 0xff; /* the length in the trailer */
    write_file(path, z, zn);
    free(z);
    ck_assert_int_eq(ex_idx_load(path, NULL, &x), CF_ERR_FORMAT);
    assert_error(CF_ERR_FORMAT, path, "offset", NULL);
}
END_TEST
