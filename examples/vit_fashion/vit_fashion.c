/* Trains a tiny Vision Transformer on Fashion-MNIST within a time budget,
 * then draws its loss curve and where its CLS token looks.
 *
 *     ./examples/vit_fashion/vit_fashion                 # 15 minutes
 *     ./examples/vit_fashion/vit_fashion --quick         # a CI smoke run
 *     ./examples/vit_fashion/vit_fashion --minutes 5 --threads 2 --out /tmp/vf
 *     mpirun -np 2 ./examples/vit_fashion/vit_fashion --threads 1   # --with-mpi
 *
 * Data-parallel under mpirun (cformer configured --with-mpi): each rank
 * trains on its slice of every batch of --batch images and evaluates its
 * slice of the test set; gradients, losses and counts are summed over the
 * ranks, and the time-budget decisions use the ranks' mean elapsed times,
 * so every rank takes the same steps. Rank 0 prints and writes the
 * outputs.
 *
 * Data: the IDX files of the Debian package dataset-fashion-mnist (gzip or
 * plain), 60000 training and 10000 test images of 28x28 pixels, 10 classes.
 * Images are scaled to [0, 1] and normalised with the training set's mean
 * and standard deviation; training batches are reshuffled every epoch
 * (--flip also mirrors half of their images left to right, which in runs
 * this short costs accuracy: 86.9% instead of 88.1% after 5 epochs).
 *
 * Legend: B = batch, N = patches, D = width, K = 10 classes.
 *
 *     logits = vit(images)                  // (B, 1, 28, 28) -> (B, K)
 *     loss   = cross_entropy(logits, labels, label smoothing)
 *
 * One step: forward, loss, backward, gradient clipping, AdamW at the
 * scheduled learning rate (linear warm-up, then a cosine decay that ends
 * when the epochs or the time budget run out, whichever comes first, as
 * projected from the pace so far), then one reset of the step arena, which
 * frees everything the step made. The test accuracy is measured after each
 * epoch in eval mode without recording a graph.
 *
 * Writes to --out (default vit_fashion_out): vit_fashion.safetensors (the
 * model, timm's parameter names), loss.png (training loss per step, light,
 * and its moving average, dark; a grid line every 0.5 and at every epoch)
 * and attention.png (for the first test image of each class: the image,
 * the attention rollout of the CLS token over the patches upsampled to
 * 28x28, and both blended; framed green when the prediction is right, red
 * when wrong).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdir */
#endif
#include <cformer/cformer.h>

#include "../common/dist_opt.h"
#include "../png.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define SIDE         28
#define PIXELS       (SIDE * SIDE)
#define CLASSES      10
#define MAX_DEPTH    32
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define DEFAULT_OUT  "vit_fashion_out"
#define EVAL_BATCH   500
#define PRINT_EVERY  50
#define QUICK_TRAIN  2000 /* images */
#define QUICK_TEST   1000

typedef struct {
    double minutes; /* time budget; 0: none */
    int epochs, threads;
    const char *data, *out;
    bool quick;
    int patch, dim, depth, heads, batch;
    float lr, min_lr, weight_decay, clip, smoothing;
    bool flip;
    uint64_t seed;
} options;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "m:ss" */
static const char *clock_str(double seconds, char *buf, size_t size)
{
    long s = lround(seconds);
    snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

/* ---- IDX files ---- */

typedef struct {
    int64_t n;
    uint8_t *images; /* (n, 28, 28), row-major, 0 = background */
    uint8_t *labels; /* (n) */
} dataset;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib's reason for the last failure on f, without the file name zlib
 * puts in front, or "" when there is none. */
static const char *gz_reason(gzFile f, const char *path)
{
    int err;
    const char *msg = gzerror(f, &err);
    size_t n = strlen(path);
    if (err == Z_ERRNO)
        return strerror(errno);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2;
    return err == Z_OK ? "" : msg;
}

/* Reads all of an IDX file of unsigned bytes with ndim 1 or 3 dims (magic
 * 0x0000080N), gzip-compressed or not: the item count (dim 0) goes to
 * *count and the data, whose other dims must equal shape[1..ndim), to a
 * malloc'd *data. A short, long, corrupt or mis-shaped file is CF_ERR_FORMAT
 * naming the file and the fault. */
static cf_status idx_read(const char *path, int ndim, const uint32_t *shape, int64_t *count,
                          uint8_t **data)
{
    *data = NULL;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        cf_error_set(CF_ERR_IO, "%s: cannot open: %s%s", path,
                     errno ? strerror(errno) : "out of memory",
                     errno == ENOENT ? " (install the Debian package dataset-fashion-mnist or "
                                       "pass --data DIR)"
                                     : "");
        return CF_ERR_IO;
    }
    uint8_t head[4 + 4 * 3];
    int head_len = 4 + 4 * ndim, got = gzread(f, head, (unsigned)head_len);
    uint32_t magic = got >= 4 ? be32(head) : 0, want_magic = 0x800u | (uint32_t)ndim;
    char why[200] = "";
    int64_t n = 0;
    size_t size = 0, item = 1;
    if (got < 0)
        snprintf(why, sizeof why, "corrupt: %s", gz_reason(f, path));
    else if (got < 4)
        snprintf(why, sizeof why, "truncated: %d bytes, shorter than an IDX header", got);
    else if (magic != want_magic)
        snprintf(why, sizeof why,
                 "not an IDX file of %d-dimensional unsigned bytes: magic number 0x%08x, expected "
                 "0x%08x",
                 ndim, magic, want_magic);
    else if (got < head_len)
        snprintf(why, sizeof why, "truncated: the header ends after %d of %d bytes", got, head_len);
    for (int i = 1; !*why && i < ndim; i++) {
        item *= be32(head + 4 + 4 * i);
        if (be32(head + 4 + 4 * i) != shape[i])
            snprintf(why, sizeof why, "items are %ux%u, expected %ux%u", be32(head + 8),
                     be32(head + 12), shape[1], shape[2]);
    }
    if (!*why) {
        n = be32(head + 4);
        if (n < 1 || n > 1000000)
            snprintf(why, sizeof why, "holds %lld items; expected 1 to 1000000", (long long)n);
        size = (size_t)n * item;
    }
    if (!*why && !(*data = malloc(size)))
        snprintf(why, sizeof why, "out of memory for %zu bytes", size);
    size_t done = 0;
    int r = 1;
    while (!*why && done < size && r > 0) {
        unsigned chunk = size - done < (1u << 20) ? (unsigned)(size - done) : 1u << 20;
        r = gzread(f, *data + done, chunk);
        done += r > 0 ? (size_t)r : 0;
    }
    if (!*why && r < 0)
        snprintf(why, sizeof why, "corrupt after %zu of %zu data bytes: %s", done, size,
                 gz_reason(f, path));
    else if (!*why && done < size) {
        const char *reason = gz_reason(f, path);
        snprintf(why, sizeof why, "truncated: %zu of the %zu data bytes its header announces%s%s%s",
                 done, size, *reason ? " (" : "", reason, *reason ? ")" : "");
    }
    uint8_t extra;
    /* Reading past the data also makes zlib check the gzip trailer (CRC and
     * length). */
    r = *why ? 0 : gzread(f, &extra, 1);
    if (r < 0)
        snprintf(why, sizeof why, "corrupt: %s", gz_reason(f, path));
    else if (r > 0)
        snprintf(why, sizeof why, "has bytes after the %zu its header announces", size);
    gzclose(f);
    if (*why) {
        free(*data);
        *data = NULL;
        cf_error_set(CF_ERR_FORMAT, "%s: %s", path, why);
        return CF_ERR_FORMAT;
    }
    *count = n;
    return CF_OK;
}

/* dir/name.gz, or dir/name when only that exists. */
static cf_status data_path(char *buf, size_t size, const char *dir, const char *name)
{
    struct stat st;
    if ((size_t)snprintf(buf, size, "%s/%s.gz", dir, name) >= size) {
        cf_error_set(CF_ERR_ARG, "--data %s: path too long", dir);
        return CF_ERR_ARG;
    }
    if (stat(buf, &st) != 0) {
        char plain[4096];
        snprintf(plain, sizeof plain, "%s/%s", dir, name);
        if (stat(plain, &st) == 0)
            snprintf(buf, size, "%s", plain);
    }
    return CF_OK;
}

/* Loads "<set>-images-idx3-ubyte[.gz]" and "<set>-labels-idx1-ubyte[.gz]". */
static cf_status load_set(const char *dir, const char *set, dataset *d)
{
    char ipath[4096], lpath[4096], name[64];
    int64_t nlabels = 0;
    *d = (dataset){0};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", set);
    cf_status st = data_path(ipath, sizeof ipath, dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", set);
    if (!st)
        st = data_path(lpath, sizeof lpath, dir, name);
    if (!st)
        st = idx_read(ipath, 3, (const uint32_t[]){0, SIDE, SIDE}, &d->n, &d->images);
    if (!st)
        st = idx_read(lpath, 1, (const uint32_t[]){0}, &nlabels, &d->labels);
    if (!st && nlabels != d->n) {
        cf_error_set(CF_ERR_FORMAT, "%s holds %lld labels but %s holds %lld images", lpath,
                     (long long)nlabels, ipath, (long long)d->n);
        st = CF_ERR_FORMAT;
    }
    for (int64_t i = 0; !st && i < d->n; i++)
        if (d->labels[i] >= CLASSES) {
            cf_error_set(CF_ERR_FORMAT, "%s: label %d of item %lld is not a class 0..%d", lpath,
                         d->labels[i], (long long)i, CLASSES - 1);
            st = CF_ERR_FORMAT;
        }
    if (st) {
        free(d->images), free(d->labels);
        *d = (dataset){0};
    }
    return st;
}

static void dataset_free(dataset *d) { free(d->images), free(d->labels); }

/* ---- Batches ---- */

typedef struct {
    float mean, inv_std; /* of the training pixels scaled to [0, 1] */
} norm;

static norm pixel_stats(const dataset *d)
{
    double s = 0, ss = 0, n = (double)d->n * PIXELS;
    for (int64_t i = 0; i < d->n * PIXELS; i++) {
        double v = d->images[i] / 255.0;
        s += v, ss += v * v;
    }
    double mean = s / n;
    return (norm){(float)mean, (float)(1 / sqrt(ss / n - mean * mean))};
}

/* A uniformly random order of 0..n-1 (Fisher-Yates), from n draws of g
 * (draws: a float tensor of n elements owned by the caller). */
static void shuffle(cf_rng *g, cf_tensor *draws, int32_t *order, int64_t n)
{
    cf_fill_uniform(g, draws, 0, 1);
    const float *u = draws->data;
    for (int64_t i = 0; i < n; i++)
        order[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)((double)u[i] * (double)(i + 1));
        j = j > i ? i : j;
        int32_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

/* Arena tensors x (n, 1, 28, 28), normalised, and y (n) for the items
 * idx[0..n); flip (n draws in [0, 1), or NULL) mirrors the images whose
 * draw is below one half. NULL on error. */
static bool make_batch(const dataset *d, const int32_t *idx, int64_t n, norm nm, const float *flip,
                       cf_tensor **x, cf_tensor **y)
{
    *x = cf_empty(CF_F32, CF_SHAPE(n, 1, SIDE, SIDE));
    *y = cf_empty(CF_I32, CF_SHAPE(n));
    if (!*x || !*y)
        return false;
    float *xp = (*x)->data;
    int32_t *yp = (*y)->data;
    float scale = nm.inv_std / 255.0f, shift = -nm.mean * nm.inv_std;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *img = d->images + (int64_t)idx[b] * PIXELS;
        bool mirror = flip && flip[b] < 0.5f;
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++)
                xp[b * PIXELS + r * SIDE + c] =
                    (float)img[r * SIDE + (mirror ? SIDE - 1 - c : c)] * scale + shift;
        yp[b] = d->labels[idx[b]];
    }
    return true;
}

/* ---- Evaluation ---- */

/* The fraction of the first n test items the model classifies right, in
 * eval mode and without a graph (the arena is reset after every batch);
 * negative on error. */
static double accuracy(cf_vit *vit, const dataset *test, int64_t n, norm nm, cf_arena *arena)
{
    cf_module *m = cf_vit_module(vit);
    int32_t *idx = malloc(sizeof *idx * EVAL_BATCH);
    if (!idx)
        return -1;
    int64_t right = 0, lo, hi;
    dopt_range(n, &lo, &hi); /* this rank's slice of the test set */
    bool ok = true;
    cf_module_train(m, false);
    CF_NO_GRAD
    {
        for (int64_t start = lo; ok && start < hi; start += EVAL_BATCH) {
            int64_t b = hi - start < EVAL_BATCH ? hi - start : EVAL_BATCH;
            for (int64_t i = 0; i < b; i++)
                idx[i] = (int32_t)(start + i);
            cf_tensor *x, *y;
            ok = make_batch(test, idx, b, nm, NULL, &x, &y);
            cf_tensor *pred = ok ? cf_argmax(cf_vit_forward(vit, x, NULL), 1, false) : NULL;
            ok = pred != NULL;
            for (int64_t i = 0; ok && i < b; i++)
                right += ((const int32_t *)pred->data)[i] == ((const int32_t *)y->data)[i];
            cf_arena_reset(arena);
        }
    }
    cf_module_train(m, true);
    free(idx);
    double v[2] = {(double)right, ok ? 0 : 1};
    if (dopt_sum(v, 2) != CF_OK || v[1] > 0)
        return -1;
    return v[0] / (double)n;
}

/* ---- Pictures ---- */

typedef struct {
    int w, h;
    uint8_t *px; /* (h, w, 3) */
} canvas;

typedef struct {
    uint8_t r, g, b;
} rgb;

static bool canvas_new(canvas *c, int w, int h, rgb bg)
{
    c->w = w, c->h = h;
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px) {
        cf_error_set(CF_ERR_NOMEM, "out of memory for a %dx%d picture", w, h);
        return false;
    }
    for (int i = 0; i < w * h; i++)
        c->px[3 * i] = bg.r, c->px[3 * i + 1] = bg.g, c->px[3 * i + 2] = bg.b;
    return true;
}

/* Mixes colour k into pixel (x, y) with opacity a; outside the canvas does
 * nothing. */
static void blend(canvas *c, int x, int y, rgb k, float a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || !(a > 0))
        return;
    a = a > 1 ? 1 : a;
    uint8_t *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (uint8_t)lroundf((float)p[0] + a * ((float)k.r - (float)p[0]));
    p[1] = (uint8_t)lroundf((float)p[1] + a * ((float)k.g - (float)p[1]));
    p[2] = (uint8_t)lroundf((float)p[2] + a * ((float)k.b - (float)p[2]));
}

/* [x0, x1) x [y0, y1) */
static void fill_rect(canvas *c, int x0, int y0, int x1, int y1, rgb k)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            blend(c, x, y, k, 1);
}

/* An antialiased segment `width` pixels wide: each pixel near it is
 * covered by how far its centre lies within the half-width (plus half a
 * pixel of ramp). */
static void draw_line(canvas *c, float x0, float y0, float x1, float y1, float width, rgb k)
{
    float half = width / 2, dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int xa = (int)floorf(fminf(x0, x1) - half - 1), xb = (int)ceilf(fmaxf(x0, x1) + half + 1);
    int ya = (int)floorf(fminf(y0, y1) - half - 1), yb = (int)ceilf(fmaxf(y0, y1) + half + 1);
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float px = (float)x + 0.5f - x0, py = (float)y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            blend(c, x, y, k, half + 0.5f - sqrtf(ex * ex + ey * ey));
        }
}

/* The loss per step (light) and its centred moving average (dark) over
 * axes starting at zero, with a grid line every 0.5 and at every epoch. */
static cf_status plot_losses(const char *path, const float *loss, int64_t n,
                             int64_t steps_per_epoch)
{
    enum { W = 800, H = 480, LEFT = 40, RIGHT = 20, TOP = 20, BOTTOM = 40 };
    const rgb white = {255, 255, 255}, grid = {225, 225, 225}, axis = {0, 0, 0},
              raw = {160, 190, 235}, avg = {20, 60, 160};
    canvas c;
    if (n < 1) {
        cf_error_set(CF_ERR_ARG, "%s: no losses to plot", path);
        return CF_ERR_ARG;
    }
    if (!canvas_new(&c, W, H, white))
        return CF_ERR_NOMEM;
    float top = 0.5f;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(loss[i]) && loss[i] > top)
            top = ceilf(loss[i] * 2) / 2;
    float x_scale = (float)(W - LEFT - RIGHT) / (float)(n > 1 ? n - 1 : 1),
          y_scale = (float)(H - TOP - BOTTOM) / top;
#define PX(i) ((float)LEFT + (float)(i)*x_scale)
#define PY(v) ((float)(H - BOTTOM) - (v)*y_scale)
    for (float v = 0.5f; v <= top + 1e-3f; v += 0.5f) {
        fill_rect(&c, LEFT, (int)PY(v), W - RIGHT, (int)PY(v) + 1, grid);
        fill_rect(&c, LEFT - 6, (int)PY(v), LEFT, (int)PY(v) + 1, axis); /* tick */
    }
    for (int64_t e = steps_per_epoch; e < n; e += steps_per_epoch) {
        fill_rect(&c, (int)PX(e), TOP, (int)PX(e) + 1, H - BOTTOM, grid);
        fill_rect(&c, (int)PX(e), H - BOTTOM, (int)PX(e) + 1, H - BOTTOM + 6, axis);
    }
    for (int64_t i = 1; i < n; i++)
        if (isfinite(loss[i - 1]) && isfinite(loss[i]))
            draw_line(&c, PX(i - 1), PY(loss[i - 1]), PX(i), PY(loss[i]), 1, raw);
    int64_t half = n / 100 + 1; /* the window of the average */
    double sum = 0;
    int64_t lo = 0, hi = 0, count = 0; /* the window [lo, hi) */
    float prev = 0;
    for (int64_t i = 0; i < n; i++) {
        for (; hi < n && hi <= i + half; hi++)
            if (isfinite(loss[hi]))
                sum += loss[hi], count++;
        for (; lo < i - half; lo++)
            if (isfinite(loss[lo]))
                sum -= loss[lo], count--;
        float v = count ? (float)(sum / (double)count) : 0;
        if (i > 0)
            draw_line(&c, PX(i - 1), PY(prev), PX(i), PY(v), 2.5f, avg);
        prev = v;
    }
    fill_rect(&c, LEFT - 1, TOP, LEFT + 1, H - BOTTOM + 1, axis);
    fill_rect(&c, LEFT - 1, H - BOTTOM - 1, W - RIGHT, H - BOTTOM + 1, axis);
#undef PX
#undef PY
    cf_status st = write_png(path, W, H, 3, c.px);
    free(c.px);
    return st;
}

/* A perceptually ordered dark-to-bright colour for v in [0, 1], close to
 * matplotlib's inferno. */
static rgb colormap(float v)
{
    static const float stops[5][3] = {
        {0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    int i = v >= 1 ? 3 : (int)(v * 4);
    float t = v * 4 - (float)i;
    float k[3];
    for (int j = 0; j < 3; j++)
        k[j] = stops[i][j] + t * (stops[i + 1][j] - stops[i][j]);
    return (rgb){(uint8_t)lroundf(k[0]), (uint8_t)lroundf(k[1]), (uint8_t)lroundf(k[2])};
}

/* Bilinear upsampling of a g x g map to 28 x 28 (pixel centres aligned, as
 * torch's interpolate with align_corners=False), rescaled to [0, 1]. */
static void upsample(const float *map, int g, float out[PIXELS])
{
    float lo = INFINITY, hi = -INFINITY;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float sy = ((float)y + 0.5f) * (float)g / SIDE - 0.5f,
                  sx = ((float)x + 0.5f) * (float)g / SIDE - 0.5f;
            sy = sy < 0 ? 0 : sy, sx = sx < 0 ? 0 : sx;
            int y0 = (int)sy, x0 = (int)sx;
            int y1 = y0 + 1 < g ? y0 + 1 : y0, x1 = x0 + 1 < g ? x0 + 1 : x0;
            float fy = sy - (float)y0, fx = sx - (float)x0;
            float v = (1 - fy) * ((1 - fx) * map[y0 * g + x0] + fx * map[y0 * g + x1]) +
                      fy * ((1 - fx) * map[y1 * g + x0] + fx * map[y1 * g + x1]);
            out[y * SIDE + x] = v;
            lo = fminf(lo, v), hi = fmaxf(hi, v);
        }
    for (int i = 0; i < PIXELS; i++)
        out[i] = hi > lo ? (out[i] - lo) / (hi - lo) : 0;
}

/* For the first test image of each class: the image, its CLS attention
 * rollout and the two blended, side by side and magnified, framed by
 * whether the model's prediction is right. */
static cf_status plot_attention(const char *path, cf_vit *vit, const cf_vit_config *cfg,
                                const dataset *test, norm nm, cf_arena *arena)
{
    enum { ZOOM = 4, PANEL = SIDE * ZOOM, GAP = 4, FRAME = 4, SPACE = 12, COLS = 2 };
    enum { ITEM_W = 3 * PANEL + 2 * GAP + 2 * FRAME, ITEM_H = PANEL + 2 * FRAME };
    enum { ROWS = (CLASSES + COLS - 1) / COLS };
    const rgb bg = {255, 255, 255}, right = {40, 170, 70}, wrong = {215, 40, 40};
    int32_t idx[CLASSES];
    int found = 0;
    for (int k = 0; k < CLASSES; k++)
        for (int64_t i = 0; i < test->n; i++)
            if (test->labels[i] == k) {
                idx[found++] = (int32_t)i;
                break;
            }
    int g = cfg->image_size / cfg->patch_size;
    float *roll = malloc(sizeof *roll * (size_t)(found * g * g));
    int32_t pred[CLASSES];
    bool ok = roll != NULL;
    cf_module_train(cf_vit_module(vit), false);
    CF_NO_GRAD
    {
        cf_tensor *x, *y, *maps[MAX_DEPTH] = {0};
        ok = ok && make_batch(test, idx, found, nm, NULL, &x, &y);
        cf_tensor *logits = ok ? cf_vit_forward(vit, x, maps) : NULL;
        cf_tensor *p = cf_argmax(logits, 1, false);
        cf_tensor *r = logits ? cf_vit_rollout(vit, maps) : NULL; /* (found, N) */
        ok = p && r;
        if (ok) {
            cf_copy_to(r, roll);
            memcpy(pred, p->data, sizeof *pred * (size_t)found);
        }
        cf_arena_reset(arena);
    }
    cf_module_train(cf_vit_module(vit), true);
    canvas c = {0};
    ok = ok && canvas_new(&c, SPACE + COLS * (ITEM_W + SPACE), SPACE + ROWS * (ITEM_H + SPACE), bg);
    for (int i = 0; ok && i < found; i++) {
        int ox = SPACE + (i % COLS) * (ITEM_W + SPACE), oy = SPACE + (i / COLS) * (ITEM_H + SPACE);
        const uint8_t *img = test->images + (int64_t)idx[i] * PIXELS;
        fill_rect(&c, ox, oy, ox + ITEM_W, oy + ITEM_H,
                  pred[i] == test->labels[idx[i]] ? right : wrong);
        fill_rect(&c, ox + FRAME, oy + FRAME, ox + ITEM_W - FRAME, oy + ITEM_H - FRAME, bg);
        float heat[PIXELS];
        upsample(roll + (size_t)i * (size_t)(g * g), g, heat);
        for (int p = 0; p < PIXELS; p++) {
            rgb gray = {img[p], img[p], img[p]}, h = colormap(heat[p]);
            rgb mix = {(uint8_t)((gray.r + h.r) / 2), (uint8_t)((gray.g + h.g) / 2),
                       (uint8_t)((gray.b + h.b) / 2)};
            int px = ox + FRAME + (p % SIDE) * ZOOM, py = oy + FRAME + (p / SIDE) * ZOOM;
            fill_rect(&c, px, py, px + ZOOM, py + ZOOM, gray);
            fill_rect(&c, px + PANEL + GAP, py, px + PANEL + GAP + ZOOM, py + ZOOM, h);
            fill_rect(&c, px + 2 * (PANEL + GAP), py, px + 2 * (PANEL + GAP) + ZOOM, py + ZOOM,
                      mix);
        }
    }
    cf_status st = ok ? write_png(path, c.w, c.h, 3, c.px) : cf_error() ? cf_error() : CF_ERR_NOMEM;
    free(c.px);
    free(roll);
    return st;
}

/* ---- Checkpoint ---- */

/* Saves the model, loads the file into a fresh model and checks that both
 * give the same logits on a few test images. */
static cf_status save_and_check(const char *path, cf_vit *vit, const cf_vit_config *cfg,
                                const dataset *test, norm nm, cf_arena *arena)
{
    enum { N = 16 };
    cf_status st = cf_module_save(cf_vit_module(vit), path);
    if (st)
        return st;
    cf_rng g;
    cf_rng_init(&g, 0);
    cf_vit *copy = cf_vit_new(cfg, &g);
    if (!copy)
        return cf_error();
    st = cf_module_load(cf_vit_module(copy), path, true);
    int32_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    float want[N * CLASSES], got[N * CLASSES];
    cf_module_train(cf_vit_module(vit), false);
    cf_module_train(cf_vit_module(copy), false);
    CF_NO_GRAD
    {
        cf_tensor *x, *y;
        if (!st && make_batch(test, idx, N, nm, NULL, &x, &y)) {
            cf_tensor *a = cf_vit_forward(vit, x, NULL), *b = cf_vit_forward(copy, x, NULL);
            if (a && b)
                cf_copy_to(a, want), cf_copy_to(b, got);
        }
        cf_arena_reset(arena);
    }
    cf_module_train(cf_vit_module(vit), true);
    cf_module_free(cf_vit_module(copy));
    if (!st && cf_error())
        st = cf_error();
    for (int i = 0; !st && i < N * CLASSES; i++)
        if (want[i] != got[i]) {
            cf_error_set(CF_ERR_FORMAT, "%s: the reloaded model's logit %d is %g, not %g", path, i,
                         (double)got[i], (double)want[i]);
            st = CF_ERR_FORMAT;
        }
    return st;
}

/* ---- Options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vit_fashion [options]\n"
            "  --minutes M   time budget in minutes, loading and evaluation included "
            "(default 15; 0: none)\n"
            "  --epochs N    at most N epochs (default 30)\n"
            "  --threads N   kernel threads (default: CF_NUM_THREADS, else all cores)\n"
            "  --data DIR    the Fashion-MNIST IDX files (default " DEFAULT_DATA ")\n"
            "  --out DIR     where the checkpoint and pictures go (default " DEFAULT_OUT ")\n"
            "  --quick       a smoke run: %d training images, one epoch, fails unless the "
            "loss falls\n"
            "  --patch P --dim D --depth L --heads H --batch B --lr LR --wd W --smoothing S\n"
            "  --seed S --flip\n"
            "                the model and training (default patch 7, dim 64, depth 4, "
            "heads 4, batch 128,\n"
            "                lr 2e-3, weight decay 0.05, label smoothing 0.1, no flips)\n",
            QUICK_TRAIN);
}

/* Parses argv into o; false (after printing why) on a bad option. */
static bool parse_args(int argc, char **argv, options *o)
{
    *o = (options){.minutes = 15,
                   .epochs = 30,
                   .data = DEFAULT_DATA,
                   .out = DEFAULT_OUT,
                   .patch = 7,
                   .dim = 64,
                   .depth = 4,
                   .heads = 4,
                   .batch = 128,
                   .lr = 2e-3f,
                   .min_lr = 1e-5f,
                   .weight_decay = 0.05f,
                   .clip = 1.0f,
                   .smoothing = 0.1f,
                   .seed = 42};
    /* Kinds: 'n' a whole number >= 1, 'm' minutes >= 0, 'r' a rate in
     * (0, 1), 'f' a fraction in [0, 1), 's' a seed >= 0, 'p' a path. */
    const struct {
        const char *name;
        char kind;
        void *dst;
    } spec[] = {{"--minutes", 'm', &o->minutes},
                {"--epochs", 'n', &o->epochs},
                {"--threads", 'n', &o->threads},
                {"--data", 'p', &o->data},
                {"--out", 'p', &o->out},
                {"--patch", 'n', &o->patch},
                {"--dim", 'n', &o->dim},
                {"--depth", 'n', &o->depth},
                {"--heads", 'n', &o->heads},
                {"--batch", 'n', &o->batch},
                {"--lr", 'r', &o->lr},
                {"--seed", 's', &o->seed},
                {"--smoothing", 'f', &o->smoothing},
                {"--wd", 'f', &o->weight_decay}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            o->quick = true;
            continue;
        } else if (strcmp(a, "--flip") == 0) {
            o->flip = true;
            continue;
        }
        int k = 0, n = (int)(sizeof spec / sizeof spec[0]);
        while (k < n && strcmp(a, spec[k].name) != 0)
            k++;
        if (k == n) {
            fprintf(stderr, "vit_fashion: unknown option %s\n", a);
            usage(stderr);
            return false;
        }
        const char *v = i + 1 < argc ? argv[++i] : "";
        char *end;
        double num = strtod(v, &end);
        bool whole = end != v && *end == '\0' && num == floor(num) && num >= 0 && num <= 1e9;
        bool ok = true;
        switch (spec[k].kind) {
        case 'n': ok = whole && num >= 1, *(int *)spec[k].dst = (int)num; break;
        case 's': ok = whole, *(uint64_t *)spec[k].dst = (uint64_t)num; break;
        case 'm':
            ok = end != v && *end == '\0' && num >= 0 && num <= 1e6;
            *(double *)spec[k].dst = num;
            break;
        case 'r':
            ok = end != v && *end == '\0' && num > 0 && num < 1;
            *(float *)spec[k].dst = (float)num;
            break;
        case 'f':
            ok = end != v && *end == '\0' && num >= 0 && num < 1;
            *(float *)spec[k].dst = (float)num;
            break;
        default: ok = *v != '\0', *(const char **)spec[k].dst = v; break;
        }
        if (!ok) {
            fprintf(stderr, "vit_fashion: %s: bad value '%s'\n", a, v);
            usage(stderr);
            return false;
        }
    }
    if (o->depth > MAX_DEPTH) {
        fprintf(stderr, "vit_fashion: --depth %d: at most %d\n", o->depth, MAX_DEPTH);
        return false;
    }
    if (o->quick)
        o->epochs = 1;
    return true;
}

/* ---- Training ---- */

static int fail(const char *what)
{
    fprintf(stderr, "vit_fashion: %s: %s (%s)\n", what, cf_error_message(),
            cf_status_str(cf_error()));
    return 1;
}

/* The ranks' mean of x (x itself in one process): clocks that steer the
 * run must be the same on every rank. */
static double agreed(double x)
{
    dopt_check(dopt_sum(&x, 1));
    return x / dopt_size();
}

/* The steps the run will take: all its epochs, or as many as the time left
 * allows at the pace so far, whichever is fewer. */
static int64_t planned_steps(int64_t step, int64_t total, double elapsed, double budget)
{
    if (budget <= 0 || step < 10 || elapsed <= 0)
        return total;
    double projected = (double)step * budget / elapsed;
    return projected < (double)total ? (int64_t)projected : total;
}

/* One step on the training items idx[0..b): forward, loss, backward,
 * clipping, AdamW at rate lr, arena reset. Returns the loss, or NAN with the
 * error recorded. */
static float train_step(cf_vit *vit, cf_optim *opt, const options *o, const dataset *train,
                        const int32_t *idx, int64_t b, norm nm, float lr, cf_rng *g,
                        cf_arena *arena)
{
    /* Every rank draws the whole batch's flips (the generators stay in
     * step) and trains on its slice [lo, hi) of the batch. */
    cf_tensor *flips = o->flip ? cf_uniform(g, 0, 1, CF_SHAPE(b)) : NULL;
    int64_t lo, hi;
    dopt_range(b, &lo, &hi);
    cf_tensor *x = NULL, *y = NULL;
    double sum[2] = {0, (double)(hi - lo)}; /* loss * images, images */
    bool ok = !o->flip || flips;
    cf_optim_zero_grad(opt);
    if (ok && hi > lo) {
        ok = make_batch(train, idx + lo, hi - lo, nm, flips ? (float *)flips->data + lo : NULL, &x,
                        &y);
        cf_tensor *logits = ok ? cf_vit_forward(vit, x, NULL) : NULL; /* (b, K) */
        cf_tensor *loss =
            cf_cross_entropy(logits, y, &(cf_loss_opts){.label_smoothing = o->smoothing});
        ok = loss && cf_backward(loss) == CF_OK;
        if (ok)
            sum[0] = cf_item(loss) * (double)(hi - lo);
    }
    dopt_weight((float)(hi - lo) / (float)b);
    if (ok && dopt_finish() == CF_OK && dopt_sum(sum, 2) == CF_OK) {
        cf_clip_grad_norm(cf_vit_module(vit), o->clip);
        cf_optim_set_lr(opt, lr);
        cf_optim_step(opt);
    }
    cf_arena_reset(arena);
    return cf_error() ? NAN : (float)(sum[0] / sum[1]);
}

/* Kernels give the same bits for any thread count, so a run may change its
 * count between steps. OpenMP threads that spin at barriers collapse when
 * other programs keep the cores busy (on a loaded 2-core machine, 2 threads
 * ran a step 4-5x slower than 1), so unless --threads sets the count, step
 * 2 of every epoch tries the other choice of one thread or all cores, and
 * the faster against steps 1 and 3 is kept (step 0 warms up). */
typedef struct {
    int many;        /* all cores; 0: no tuning */
    int chosen;      /* the count in use */
    double ref, try; /* seconds per step with the chosen count, the other */
} tuner;

static int tuner_other(const tuner *t) { return t->chosen == 1 ? t->many : 1; }

/* The thread count for step s of an epoch. */
static int tuner_threads(const tuner *t, int64_t s)
{
    return t->many && s == 2 ? tuner_other(t) : t->chosen;
}

/* Records that step s took `seconds`; true when the count was just chosen. */
static bool tuner_record(tuner *t, int64_t s, double seconds)
{
    if (!t->many || s < 1 || s > 3)
        return false;
    if (s == 2)
        t->try = seconds;
    else
        t->ref = (s == 1 ? 0 : t->ref) + seconds / 2;
    if (s < 3)
        return false;
    if (t->try < t->ref) {
        double r = t->ref;
        t->chosen = tuner_other(t);
        t->ref = t->try, t->try = r;
    }
    return true;
}

int main(int argc, char **argv)
{
    dopt_init(&argc, &argv);
    if (!dopt_root() && !freopen("/dev/null", "w", stdout))
        return 1;
    double t_start = now();
    options o;
    if (!parse_args(argc, argv, &o))
        return 2;
    if (o.threads)
        cf_set_num_threads(o.threads);
    tuner tune = {.many = o.threads || cf_get_num_threads() < 2 ? 0 : cf_get_num_threads(),
                  .chosen = cf_get_num_threads()};

    dataset train, test;
    if (load_set(o.data, "train", &train) || load_set(o.data, "t10k", &test))
        return fail("data");
    norm nm = pixel_stats(&train);
    if (o.quick)
        train.n = QUICK_TRAIN < train.n ? QUICK_TRAIN : train.n;
    int64_t n_test = o.quick && QUICK_TEST < test.n ? QUICK_TEST : test.n;
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
        cf_error_set(CF_ERR_IO, "cannot create %s: %s", o.out, strerror(errno));
        return fail("output");
    }

    cf_vit_config cfg = {.image_size = SIDE,
                         .channels = 1,
                         .patch_size = o.patch,
                         .dim = o.dim,
                         .depth = o.depth,
                         .heads = o.heads,
                         .mlp_ratio = 2,
                         .classes = CLASSES,
                         .dropout = 0};
    cf_rng g;
    cf_rng_init(&g, o.seed);
    cf_vit *vit = cf_vit_new(&cfg, &g);
    if (!vit)
        return fail("model");
    cf_module *model = cf_vit_module(vit);
    dopt_check(dopt_attach(model));
    cf_optim *opt =
        cf_adamw_new(model, &(cf_adamw_opts){.lr = o.lr, .weight_decay = o.weight_decay});
    cf_arena *arena = cf_arena_new(0);
    int64_t B = o.batch, steps_per_epoch = (train.n + B - 1) / B;
    int64_t total = (int64_t)o.epochs * steps_per_epoch;
    int64_t warmup = o.quick ? 3 : steps_per_epoch / 2;
    float *losses = malloc(sizeof *losses * (size_t)total);
    int32_t *order = malloc(sizeof *order * (size_t)train.n);
    cf_tensor *draws = cf_tensor_new(CF_F32, CF_SHAPE(train.n));
    if (!opt || !arena || !losses || !order || !draws) {
        if (!cf_error())
            cf_error_set(CF_ERR_NOMEM, "out of memory");
        return fail("setup");
    }
    cf_arena_use(arena);

    char t1[32], t2[32];
    printf("Fashion-MNIST from %s: %lld training and %lld test images (pixel mean %.4f, std "
           "%.4f)\n",
           o.data, (long long)train.n, (long long)n_test, (double)nm.mean,
           1.0 / (double)nm.inv_std);
    printf("ViT: patch %d (%d patches + CLS), dim %d, depth %d, heads %d, mlp %d: %lld "
           "parameters; threads: %d%s\n",
           o.patch, (SIDE / o.patch) * (SIDE / o.patch), o.dim, o.depth, o.heads, 2 * o.dim,
           (long long)cf_module_num_params(model), cf_get_num_threads(),
           tune.many ? " or 1, the faster, chosen each epoch" : "");
    if (dopt_size() > 1)
        printf("data-parallel: %d ranks, each on a slice of every batch\n", dopt_size());
    printf("AdamW lr %g (warm-up %lld steps, cosine to %g), weight decay %g, clip %g, label "
           "smoothing %g, flips %s; batch %lld, at most %d epoch%s",
           (double)o.lr, (long long)warmup, (double)o.min_lr, (double)o.weight_decay,
           (double)o.clip, (double)o.smoothing, o.flip ? "on" : "off", (long long)B, o.epochs,
           o.epochs == 1 ? "" : "s");
    if (o.minutes > 0)
        printf(" or %g minutes", o.minutes);
    printf("\n");
    fflush(stdout);

    /* The budget covers the whole run: what is left for training keeps back
     * the time of a final evaluation and the outputs, measured by the first
     * evaluation and guessed until then (inference being about 3x faster
     * than training). */
    double budget = o.minutes * 60, t_train = now(), eval_time = -1;
    double setup = agreed(t_train - t_start), t_mark = t_train;
    int64_t step = 0, mark_step = 0, mark_images = 0;
    double acc = -1, loss_sum = 0;
    bool out_of_time = false;
    for (int epoch = 1; epoch <= o.epochs && !out_of_time; epoch++) {
        shuffle(&g, draws, order, train.n);
        bool whole_epoch = true;
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            double t = now(), elapsed = agreed(t - t_train);
            double per_step = step ? elapsed / (double)step : 0;
            double reserve =
                2 + (eval_time >= 0 ? eval_time : (double)n_test / (double)B * per_step / 3);
            double left = budget - setup - reserve;
            if (budget > 0 && elapsed >= left) {
                out_of_time = true, whole_epoch = false;
                break;
            }
            int64_t planned = planned_steps(step, total, elapsed, budget > 0 ? left : 0);
            float lr = cf_lr_cosine(step + 1, warmup, planned > warmup ? planned : warmup + 1, o.lr,
                                    o.min_lr);
            int64_t start = s * B, b = train.n - start < B ? train.n - start : B;
            cf_set_num_threads(tuner_threads(&tune, s));
            float loss = train_step(vit, opt, &o, &train, order + start, b, nm, lr, &g, arena);
            if (isnan(loss) && cf_error())
                return fail("training step");
            losses[step++] = loss;
            loss_sum += loss, mark_images += b;
            double t_end = now();
            if (tuner_record(&tune, s, t_end - t))
                printf("epoch %2d  threads: %d at %.0f ms/step, %d at %.0f ms/step; using %d\n",
                       epoch, tune.chosen, 1e3 * tune.ref, tuner_other(&tune), 1e3 * tune.try,
                       tune.chosen);

            if (step % PRINT_EVERY == 0 || s + 1 == steps_per_epoch) {
                printf("epoch %2d  step %4lld/%lld  loss %.4f  lr %.2e  %5.0f img/s  elapsed "
                       "%s\n",
                       epoch, (long long)s + 1, (long long)steps_per_epoch,
                       loss_sum / (double)(step - mark_step), (double)lr,
                       (double)mark_images / (t_end - t_mark),
                       clock_str(t_end - t_start, t1, sizeof t1));
                fflush(stdout);
                loss_sum = 0, mark_step = step, mark_images = 0, t_mark = t_end;
            }
        }
        if (!whole_epoch)
            break;
        double t = now();
        acc = accuracy(vit, &test, n_test, nm, arena);
        if (acc < 0)
            return fail("evaluation");
        eval_time = agreed(now() - t);
        printf("epoch %2d  test accuracy %.2f%%  (evaluated in %.1f s, elapsed %s)\n", epoch,
               100 * acc, eval_time, clock_str(now() - t_start, t1, sizeof t1));
        fflush(stdout);
        t_mark = now(), mark_step = step, mark_images = 0, loss_sum = 0;
    }
    if (out_of_time || acc < 0) {
        acc = accuracy(vit, &test, n_test, nm, arena);
        if (acc < 0)
            return fail("evaluation");
    }
    double epochs_done = (double)step / (double)steps_per_epoch;
    printf("test accuracy %.2f%% after %.2f epochs (%lld steps) in %s, training %s\n", 100 * acc,
           epochs_done, (long long)step, clock_str(now() - t_start, t1, sizeof t1),
           clock_str(now() - t_train, t2, sizeof t2));

    if (!dopt_root()) { /* rank 0 writes the outputs */
        dopt_finalize();
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/vit_fashion.safetensors", o.out);
    if (save_and_check(path, vit, &cfg, &test, nm, arena))
        return fail("checkpoint");
    printf("wrote %s (reloaded: same logits)\n", path);
    snprintf(path, sizeof path, "%s/loss.png", o.out);
    if (plot_losses(path, losses, step, steps_per_epoch))
        return fail("loss curve");
    printf("wrote %s\n", path);
    snprintf(path, sizeof path, "%s/attention.png", o.out);
    if (plot_attention(path, vit, &cfg, &test, nm, arena))
        return fail("attention maps");
    printf("wrote %s\n", path);

    int status = 0;
    if (o.quick) {
        /* The mean loss of the last quarter of the steps against the first. */
        int64_t q = step / 4 > 0 ? step / 4 : 1;
        double first = 0, last = 0;
        for (int64_t i = 0; i < q; i++)
            first += losses[i], last += losses[step - 1 - i];
        printf("quick run: mean loss %.4f over the first %lld steps, %.4f over the last\n",
               first / (double)q, (long long)q, last / (double)q);
        if (!(last < first)) {
            fprintf(stderr, "vit_fashion: the loss did not fall\n");
            status = 1;
        }
    }
    cf_arena_use(NULL);
    cf_arena_free(arena);
    cf_tensor_free(draws);
    free(order);
    free(losses);
    cf_optim_free(opt);
    cf_module_free(model);
    dataset_free(&train);
    dataset_free(&test);
    dopt_finalize();
    return status;
}
