/* libcformer-viz: the pictures are decoded with libpng and checked for what
 * a reader would see: sizes, the brightest cell, labels where they belong,
 * curves that follow the data, a legend, and errors for bad arguments.
 *
 * Pixels are classified rather than matched exactly: "coloured" means
 * saturated (max - min channel > 40: viridis, the curves' palette and the
 * red of non-finite cells, never the grey text, axes or background), "ink"
 * means dark grey (the text). */
#include "tests/util.h"

#include "cformer/viz.h"

#include <png.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int w, h;
    uint8_t *px; /* (h, w, 3) */
} picture;

static picture load(const char *path)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&im, path), "cannot read %s: %s", path,
                  im.message);
    im.format = PNG_FORMAT_RGB;
    picture p = {(int)im.width, (int)im.height, malloc(PNG_IMAGE_SIZE(im))};
    ck_assert_ptr_nonnull(p.px);
    ck_assert_msg(png_image_finish_read(&im, NULL, p.px, 0, NULL), "cannot decode %s: %s", path,
                  im.message);
    return p;
}

static const uint8_t *at(const picture *p, int x, int y)
{
    ck_assert_msg(x >= 0 && x < p->w && y >= 0 && y < p->h, "(%d, %d) outside %d x %d", x, y, p->w,
                  p->h);
    return p->px + ((size_t)y * (size_t)p->w + (size_t)x) * 3;
}

static bool coloured(const uint8_t *c)
{
    int mx = c[0] > c[1] ? c[0] : c[1], mn = c[0] < c[1] ? c[0] : c[1];
    mx = c[2] > mx ? c[2] : mx;
    mn = c[2] < mn ? c[2] : mn;
    return mx - mn > 40;
}

static bool ink(const uint8_t *c) { return !coloured(c) && c[0] < 100; }

static double lum(const uint8_t *c) { return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; }

typedef struct {
    int x0, y0, x1, y1; /* [x0, x1) x [y0, y1); empty when x1 == 0 */
} box;

/* The bounding box of the coloured pixels in [xa, xb) (all for xb = 0). */
static box coloured_box(const picture *p, int xa, int xb)
{
    box b = {p->w, p->h, 0, 0};
    for (int y = 0; y < p->h; y++)
        for (int x = xa; x < (xb ? xb : p->w); x++)
            if (coloured(at(p, x, y))) {
                b.x0 = x < b.x0 ? x : b.x0;
                b.y0 = y < b.y0 ? y : b.y0;
                b.x1 = x + 1 > b.x1 ? x + 1 : b.x1;
                b.y1 = y + 1 > b.y1 ? y + 1 : b.y1;
            }
    return b;
}

static int count(const picture *p, int x0, int y0, int x1, int y1, bool (*is)(const uint8_t *))
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            n += is(at(p, x, y));
    return n;
}

/* ---- heatmaps ---- */

static cf_tensor *matrix(int rows, int cols, const float *v)
{
    return cf_from_array(v, CF_SHAPE(rows, cols));
}

SCRATCH_TEST(test_heatmap_cells_have_the_requested_size)
{
    float v[15];
    for (int i = 0; i < 15; i++)
        v[i] = (float)i;
    cf_heatmap_opts o = {.cell = 10, .no_colorbar = true};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(3, 5, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    ck_assert_int_eq(b.x1 - b.x0, 50);
    ck_assert_int_eq(b.y1 - b.y0, 30);
    ck_assert_int_le(p.w, 50 + 40); /* only a margin around the cells */
    ck_assert_int_le(p.h, 30 + 40);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_default_cells_fit_about_640_pixels)
{
    float v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 4, v), NULL), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    ck_assert_int_ge(b.x1 - b.x0, 600); /* cells plus colour bar */
    ck_assert_int_le(p.w, 800);
    free(p.px);
}
END_TEST

/* The cell centres of a rows x cols heatmap drawn without colour bar. */
static void cell_centre(const box *b, int rows, int cols, int i, int j, int *x, int *y)
{
    int cw = (b->x1 - b->x0) / cols, ch = (b->y1 - b->y0) / rows;
    *x = b->x0 + j * cw + cw / 2;
    *y = b->y0 + i * ch + ch / 2;
}

SCRATCH_TEST(test_heatmap_largest_cell_is_brightest)
{
    enum { R = 4, C = 6 };
    float v[R * C];
    cf_rng g;
    cf_rng_init(&g, 7);
    cf_tensor *t = cf_uniform(&g, -1, 1, CF_SHAPE(R, C));
    cf_copy_to(t, v);
    v[2 * C + 3] = 5;  /* the largest */
    v[1 * C + 0] = -5; /* the smallest */
    cf_heatmap_opts o = {.cell = 12, .no_colorbar = true};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(R, C, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    int best = -1, worst = -1;
    double hi = -1, lo = 1e9;
    for (int i = 0; i < R * C; i++) {
        int x, y;
        cell_centre(&b, R, C, i / C, i % C, &x, &y);
        double l = lum(at(&p, x, y));
        if (l > hi)
            hi = l, best = i;
        if (l < lo)
            lo = l, worst = i;
    }
    ck_assert_int_eq(best, 2 * C + 3);
    ck_assert_int_eq(worst, 1 * C + 0);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_brightness_follows_values)
{
    float v[6] = {0, 1, 2, 3, 4, 5};
    cf_heatmap_opts o = {.cell = 8, .no_colorbar = true};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(1, 6, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    double prev = -1;
    for (int j = 0; j < 6; j++) {
        int x, y;
        cell_centre(&b, 1, 6, 0, j, &x, &y);
        ck_assert_double_gt(lum(at(&p, x, y)), prev);
        prev = lum(at(&p, x, y));
    }
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_reads_any_strides)
{
    float v[6] = {0, 1, 2, 3, 4, 5}, vt[6] = {0, 3, 1, 4, 2, 5};
    cf_heatmap_opts o = {.cell = 6};
    cf_tensor *view = cf_transpose(matrix(2, 3, v), 0, 1);
    ck_assert(!cf_is_contiguous(view));
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("a.png"), view, &o), CF_OK);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("b.png"), matrix(3, 2, vt), &o), CF_OK);
    picture a = load(scratch_path("a.png")), b = load(scratch_path("b.png"));
    ck_assert_int_eq(a.w, b.w);
    ck_assert_int_eq(a.h, b.h);
    ck_assert(memcmp(a.px, b.px, (size_t)a.w * (size_t)a.h * 3) == 0);
    free(a.px);
    free(b.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_nonfinite_cells_are_red)
{
    float v[4] = {0, NAN, INFINITY, 2};
    cf_heatmap_opts o = {.cell = 10, .no_colorbar = true};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    for (int i = 0; i < 4; i++) {
        int x, y;
        cell_centre(&b, 2, 2, i / 2, i % 2, &x, &y);
        const uint8_t *c = at(&p, x, y);
        bool red = c[0] > 150 && c[1] < 80 && c[2] < 80;
        ck_assert_msg(red == !isfinite(v[i]), "cell %d (%g) is (%d, %d, %d)", i, v[i], c[0], c[1],
                      c[2]);
    }
    /* The range comes from the finite values: 0 is dark, 2 is bright. */
    int x0, y0, x3, y3;
    cell_centre(&b, 2, 2, 0, 0, &x0, &y0);
    cell_centre(&b, 2, 2, 1, 1, &x3, &y3);
    ck_assert_double_gt(lum(at(&p, x3, y3)), lum(at(&p, x0, y0)) + 100);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_vmin_vmax_clamp)
{
    float v[3] = {-10, 0.5f, 10};
    cf_heatmap_opts o = {.cell = 10, .no_colorbar = true, .vmin = 0, .vmax = 1};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(1, 3, v), &o), CF_OK);
    float w[3] = {0, 0.5f, 1};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("w.png"), matrix(1, 3, w), &o), CF_OK);
    picture a = load(scratch_path("h.png")), b = load(scratch_path("w.png"));
    ck_assert(memcmp(a.px, b.px, (size_t)a.w * (size_t)a.h * 3) == 0);
    free(a.px);
    free(b.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_row_labels_sit_left_of_their_rows)
{
    float v[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    const char *rows[3] = {"AB", NULL, "CD"};
    cf_heatmap_opts o = {.cell = 20, .no_colorbar = true, .row_labels = rows};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(3, 3, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    /* Ink in the band left of rows 0 and 2, none left of row 1. */
    ck_assert_int_gt(count(&p, 0, b.y0, b.x0, b.y0 + 20, ink), 10);
    ck_assert_int_eq(count(&p, 0, b.y0 + 20, b.x0, b.y0 + 40, ink), 0);
    ck_assert_int_gt(count(&p, 0, b.y0 + 40, b.x0, b.y0 + 60, ink), 10);
    /* The text is close to the cells, right-aligned. */
    ck_assert_int_gt(count(&p, b.x0 - 12, b.y0, b.x0, b.y0 + 20, ink), 0);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_column_labels_and_titles_sit_around_the_cells)
{
    float v[4] = {0, 1, 2, 3};
    const char *cols[2] = {"x", "long column name"};
    cf_heatmap_opts o = {.cell = 30, .no_colorbar = true, .col_labels = cols};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    box b = coloured_box(&p, 0, 0);
    ck_assert_int_eq(count(&p, 0, 0, p.w, b.y0, ink), 0); /* no title */
    /* Below each column, ink; the long label is turned (taller than a line). */
    ck_assert_int_gt(count(&p, b.x0, b.y1, b.x0 + 30, p.h, ink), 0);
    int tall = 0;
    for (int y = b.y1; y < p.h; y++)
        tall += count(&p, b.x0 + 30, y, b.x0 + 60, y + 1, ink) > 0;
    ck_assert_int_gt(tall, 40);
    free(p.px);

    o.title = "Title";
    o.xlabel = "keys";
    o.ylabel = "queries";
    o.col_labels = NULL;
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("t.png"), matrix(2, 2, v), &o), CF_OK);
    p = load(scratch_path("t.png"));
    b = coloured_box(&p, 0, 0);
    ck_assert_int_gt(count(&p, b.x0, 0, b.x1, b.y0, ink), 20);   /* title above */
    ck_assert_int_gt(count(&p, b.x0, b.y1, b.x1, p.h, ink), 10); /* x title below */
    ck_assert_int_gt(count(&p, 0, b.y0, b.x0, b.y1, ink), 10);   /* y title left */
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_colorbar_runs_bright_at_top)
{
    float v[4] = {0, 1, 2, 3};
    cf_heatmap_opts o = {.cell = 40};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), &o), CF_OK);
    picture p = load(scratch_path("h.png"));
    /* The rightmost coloured column is the bar's. */
    box all = coloured_box(&p, 0, 0);
    box bar = coloured_box(&p, all.x1 - 1, all.x1);
    ck_assert_int_ge(bar.y1 - bar.y0, 80);
    ck_assert_double_gt(lum(at(&p, all.x1 - 1, bar.y0)), lum(at(&p, all.x1 - 1, bar.y1 - 1)) + 100);
    /* Numbers right of it. */
    ck_assert_int_gt(count(&p, all.x1, bar.y0 - 5, p.w, bar.y1 + 5, ink), 10);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_heatmap_leaves_no_temporary_files)
{
    float v[4] = {0, 1, 2, 3};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), NULL), CF_OK);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), NULL), CF_OK);
    DIR *d = opendir(scratch_path(NULL));
    ck_assert_ptr_nonnull(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            ck_assert_str_eq(e->d_name, "h.png");
            files++;
        }
    closedir(d);
    ck_assert_int_eq(files, 1);
}
END_TEST

/* Saves go through the library's atomic writer, as checkpoints do. */
SCRATCH_TEST(test_heatmap_writes_through_a_symlink_and_keeps_the_mode)
{
    float v[4] = {0, 1, 2, 3};
    char target[512];
    snprintf(target, sizeof target, "%s", scratch_path("real.png"));
    ck_assert_int_eq(cf_viz_heatmap(target, matrix(2, 2, v), NULL), CF_OK);
    ck_assert_int_eq(chmod(target, 0600), 0);
    ck_assert_int_eq(symlink("real.png", scratch_path("link.png")), 0);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("link.png"), matrix(2, 2, v), NULL), CF_OK);
    struct stat sb;
    ck_assert_int_eq(lstat(scratch_path("link.png"), &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_int_eq(stat(target, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
}
END_TEST

SCRATCH_TEST(test_heatmap_removes_temporaries_of_killed_saves)
{
    float v[4] = {0, 1, 2, 3};
    FILE *f = fopen(scratch_path("h.png.tmp-abc123"), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), matrix(2, 2, v), NULL), CF_OK);
    ck_assert_int_ne(access(scratch_path("h.png.tmp-abc123"), F_OK), 0);
}
END_TEST

SCRATCH_TEST(test_heatmap_bad_arguments_are_errors)
{
    float v[6] = {0};
    cf_tensor *m = matrix(2, 3, v);
    ck_assert_int_eq(cf_viz_heatmap(NULL, m, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_heatmap", "path", NULL);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), NULL, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "tensor", NULL);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), cf_from_array(v, CF_SHAPE(6)), NULL),
                     CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "h.png", "[6]", NULL);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), cf_zeros(CF_SHAPE(0, 3)), NULL),
                     CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "[0, 3]", NULL);
    cf_heatmap_opts o = {.cell = -1};
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), m, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cell", NULL);
    o.cell = 100000;
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), m, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "pixels", NULL);
    ck_assert_int_eq(cf_viz_heatmap("/nonexistent-dir/h.png", m, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, "/nonexistent-dir/h.png", NULL);
}
END_TEST

SCRATCH_TEST(test_failed_call_reports_itself_over_an_older_error)
{
    cf_error_set(CF_ERR_INDEX, "an older error");
    float y[2] = {1, 2};
    cf_series s = {.y = y, .n = 2};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_OK);
    assert_error(CF_ERR_INDEX, "an older error", NULL); /* success leaves it */
    cf_error_set(CF_ERR_INDEX, "an older error");
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 0, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_lines", "nseries", NULL);
}
END_TEST

SCRATCH_TEST(test_null_tensor_from_a_failed_op_reports_that_failure)
{
    cf_tensor *bad = cf_add(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(4)));
    ck_assert_ptr_null(bad);
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), bad, NULL), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_add", NULL);
    bad = cf_add(cf_zeros(CF_SHAPE(2, 3)), cf_zeros(CF_SHAPE(4)));
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), bad, NULL, NULL), CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "cf_add", NULL);
}
END_TEST

/* ---- line plots ---- */

SCRATCH_TEST(test_lines_default_size_is_800_by_500)
{
    float y[3] = {1, 2, 3};
    cf_series s = {.y = y, .n = 3};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_OK);
    picture p = load(scratch_path("l.png"));
    ck_assert_int_eq(p.w, 800);
    ck_assert_int_eq(p.h, 500);
    free(p.px);
    cf_plot_opts o = {.width = 320, .height = 200};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, &o), CF_OK);
    p = load(scratch_path("l.png"));
    ck_assert_int_eq(p.w, 320);
    ck_assert_int_eq(p.h, 200);
    free(p.px);
}
END_TEST

/* The mean row of the coloured pixels in each of k bands across [x0, x1). */
static void band_rows(const picture *p, int x0, int x1, int k, double *rows)
{
    for (int b = 0; b < k; b++) {
        int xa = x0 + (x1 - x0) * b / k, xb = x0 + (x1 - x0) * (b + 1) / k;
        double sum = 0;
        int n = 0;
        for (int y = 0; y < p->h; y++)
            for (int x = xa; x < xb; x++)
                if (coloured(at(p, x, y)))
                    sum += y, n++;
        ck_assert_msg(n > 0, "no curve pixels in band %d", b);
        rows[b] = sum / n;
    }
}

SCRATCH_TEST(test_lines_rising_data_draw_a_rising_curve)
{
    enum { N = 50, K = 8 };
    float x[N], up[N], down[N];
    for (int i = 0; i < N; i++) {
        x[i] = 0.1f * (float)i;
        up[i] = x[i] * x[i];
        down[i] = -3 * x[i];
    }
    float *ys[2] = {up, down};
    for (int k = 0; k < 2; k++) {
        cf_series s = {.x = x, .y = ys[k], .n = N};
        ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_OK);
        picture p = load(scratch_path("l.png"));
        box b = coloured_box(&p, 0, 0);
        ck_assert_int_gt(b.x1 - b.x0, 600); /* the curve spans the plot */
        ck_assert_int_gt(b.y1 - b.y0, 300);
        double rows[K];
        band_rows(&p, b.x0, b.x1, K, rows);
        for (int i = 1; i < K; i++)
            ck_assert_msg(k == 0 ? rows[i] < rows[i - 1] : rows[i] > rows[i - 1],
                          "series %d: band %d at row %.1f after %.1f", k, i, rows[i], rows[i - 1]);
        free(p.px);
    }
}
END_TEST

SCRATCH_TEST(test_lines_legend_shows_labelled_series)
{
    float y[20];
    for (int i = 0; i < 20; i++)
        y[i] = (float)i;
    cf_series s = {.y = y, .n = 20};
    ck_assert_int_eq(cf_viz_lines(scratch_path("plain.png"), &s, 1, NULL), CF_OK);
    s.label = "train loss";
    ck_assert_int_eq(cf_viz_lines(scratch_path("legend.png"), &s, 1, NULL), CF_OK);
    picture a = load(scratch_path("plain.png")), b = load(scratch_path("legend.png"));
    /* The legend adds the label's ink and a horizontal sample of the curve,
     * in a corner the rising curve leaves free (top left). */
    int ink_a = count(&a, 0, 0, a.w, a.h, ink), ink_b = count(&b, 0, 0, b.w, b.h, ink);
    ck_assert_int_gt(ink_b, ink_a + 30);
    int run = 0;
    for (int row = 0; row < b.h / 2; row++)
        for (int x = 0, r = 0; x < b.w / 2; x++) {
            r = coloured(at(&b, x, row)) && !coloured(at(&a, x, row)) ? r + 1 : 0;
            run = r > run ? r : run;
        }
    ck_assert_int_ge(run, 15);
    free(a.px);
    free(b.px);
}
END_TEST

SCRATCH_TEST(test_lines_skip_nonfinite_points)
{
    enum { N = 41 };
    float y[N];
    for (int i = 0; i < N; i++)
        y[i] = 1;
    y[20] = NAN;
    cf_series s = {.y = y, .n = N};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_OK);
    picture p = load(scratch_path("l.png"));
    box b = coloured_box(&p, 0, 0);
    /* A flat line from x(0) to x(40) with a gap from x(19) to x(21). */
    double step = (b.x1 - b.x0 - 1) / 40.0;
    int mid = b.x0 + (int)(20 * step);
    ck_assert_int_eq(count(&p, mid - (int)(step / 2), 0, mid + (int)(step / 2) + 1, p.h, coloured),
                     0);
    ck_assert_int_gt(
        count(&p, b.x0 + (int)(10 * step), 0, b.x0 + (int)(10 * step) + 1, p.h, coloured), 0);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_lines_log_y_skips_nonpositive_values)
{
    float y[5] = {1, 10, 0, -1, 1000};
    cf_series s = {.y = y, .n = 5, .label = "loss"};
    cf_plot_opts o = {.log_y = true, .title = "log", .xlabel = "step", .ylabel = "loss"};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, &o), CF_OK);
    picture p = load(scratch_path("l.png"));
    ck_assert_int_gt(count(&p, 0, 0, p.w, p.h, coloured), 20);
    free(p.px);
}
END_TEST

/* The row of the x axis: the row of the lower half with the most ink. */
static int axis_row(const picture *p)
{
    int best = p->h / 2, most = -1;
    for (int y = p->h / 2; y < p->h; y++) {
        int n = count(p, 0, y, p->w, y + 1, ink);
        if (n > most)
            most = n, best = y;
    }
    return best;
}

/* Runs of rows holding ink, from row y down. */
static int ink_bands_below(const picture *p, int y)
{
    int bands = 0;
    bool in = false;
    for (; y < p->h; y++) {
        bool has = count(p, 0, y, p->w, y + 1, ink) > 0;
        bands += has && !in;
        in = has;
    }
    return bands;
}

SCRATCH_TEST(test_lines_axis_titles_are_drawn)
{
    float y[4] = {3, 1, 4, 1};
    cf_series s = {.y = y, .n = 4};
    ck_assert_int_eq(cf_viz_lines(scratch_path("a.png"), &s, 1, NULL), CF_OK);
    cf_plot_opts o = {.title = "Loss", .xlabel = "epoch", .ylabel = "value"};
    ck_assert_int_eq(cf_viz_lines(scratch_path("b.png"), &s, 1, &o), CF_OK);
    picture a = load(scratch_path("a.png")), b = load(scratch_path("b.png"));
    /* The title: ink at the top. */
    ck_assert_int_gt(count(&b, 0, 0, b.w, 30, ink), count(&a, 0, 0, a.w, 30, ink) + 50);
    /* The x title: a line of text under the tick marks and numbers. */
    ck_assert_int_eq(ink_bands_below(&a, axis_row(&a)), 2);
    ck_assert_int_eq(ink_bands_below(&b, axis_row(&b)), 3);
    /* The y title: turned text at the left edge, tall and one glyph wide. */
    int x0 = b.w, x1 = 0, y0 = b.h, y1 = 0;
    for (int yy = 0; yy < b.h; yy++)
        for (int x = 0; x < 22; x++)
            if (ink(at(&b, x, yy))) {
                x0 = x < x0 ? x : x0;
                x1 = x + 1 > x1 ? x + 1 : x1;
                y0 = yy < y0 ? yy : y0;
                y1 = yy + 1 > y1 ? yy + 1 : y1;
            }
    ck_assert_int_le(x1 - x0, 9);
    ck_assert_int_ge(y1 - y0, 25);
    free(a.px);
    free(b.px);
}
END_TEST

SCRATCH_TEST(test_lines_tick_numbers_are_drawn)
{
    float y[2] = {0, 100};
    cf_series s = {.y = y, .n = 2};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_OK);
    picture p = load(scratch_path("l.png"));
    box b = coloured_box(&p, 0, 0);
    /* y numbers ("0" to "100") left of the axis, x numbers under it. */
    ck_assert_int_gt(count(&p, 0, b.y0, 30, b.y1, ink), 50);
    ck_assert_int_eq(ink_bands_below(&p, axis_row(&p)), 2);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_lines_handle_empty_and_constant_series)
{
    float y[1] = {2};
    cf_series s[2] = {{.y = y, .n = 1, .label = "one point"}, {.y = NULL, .n = 0, .label = "none"}};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), s, 2, NULL), CF_OK);
    picture p = load(scratch_path("l.png"));
    ck_assert_int_gt(count(&p, 0, 0, p.w, p.h, coloured), 10); /* the dot and the legend */
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_lines_bad_arguments_are_errors)
{
    float y[3] = {1, 2, 3};
    cf_series s = {.y = y, .n = 3};
    ck_assert_int_eq(cf_viz_lines(NULL, &s, 1, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_lines", "path", NULL);
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 0, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "nseries", NULL);
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), NULL, 1, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "series", NULL);
    cf_series bad[2] = {s, {.y = NULL, .n = 2}};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), bad, 2, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "series 1", NULL);
    bad[1] = (cf_series){.y = y, .n = -1};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), bad, 2, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "series 1", "negative", NULL);
    cf_plot_opts o = {.width = 10};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "10 x 0", NULL);
    ck_assert_int_eq(cf_viz_lines("/nonexistent-dir/l.png", &s, 1, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, "/nonexistent-dir/l.png", NULL);
}
END_TEST

/* ---- image grids ---- */

static bool black(const uint8_t *c) { return c[0] == 0 && c[1] == 0 && c[2] == 0; }

SCRATCH_TEST(test_grid_places_scaled_images_in_columns)
{
    cf_grid_opts o = {.cols = 2, .scale = 2};
    ck_assert_int_eq(
        cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(4, 5, 7)), NULL, &o), CF_OK);
    picture p = load(scratch_path("g.png"));
    ck_assert_int_eq(count(&p, 0, 0, p.w, p.h, black), 4 * 10 * 14);
    /* Two columns of images: black pixels in the first row of the picture
     * start twice. */
    int starts = 0, first_row = -1;
    for (int y = 0; y < p.h && first_row < 0; y++)
        if (count(&p, 0, y, p.w, y + 1, black))
            first_row = y;
    for (int x = 0; x < p.w; x++)
        starts += black(at(&p, x, first_row)) && (x == 0 || !black(at(&p, x - 1, first_row)));
    ck_assert_int_eq(starts, 2);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_grid_draws_rgb_images)
{
    float v[12] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}; /* red */
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"),
                                       cf_from_array(v, CF_SHAPE(1, 3, 2, 2)), NULL, NULL),
                     CF_OK);
    picture p = load(scratch_path("g.png"));
    int red = 0;
    for (int y = 0; y < p.h; y++)
        for (int x = 0; x < p.w; x++) {
            const uint8_t *c = at(&p, x, y);
            red += c[0] == 255 && c[1] == 0 && c[2] == 0;
        }
    ck_assert_int_eq(red, 2 * 2 * 4 * 4); /* default scale 4 */
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_grid_overlay_is_upsampled_and_colour_mapped)
{
    float heat[4] = {1, 0, 0, 0}; /* hot top left */
    cf_grid_opts o = {.scale = 1, .alpha = 1};
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(1, 8, 8)),
                                       cf_from_array(heat, CF_SHAPE(1, 2, 2)), &o),
                     CF_OK);
    picture p = load(scratch_path("g.png"));
    box b = coloured_box(&p, 0, 0);
    ck_assert_int_eq(b.x1 - b.x0, 8);
    ck_assert_int_eq(b.y1 - b.y0, 8);
    const uint8_t *hot = at(&p, b.x0, b.y0), *cold = at(&p, b.x1 - 1, b.y1 - 1);
    ck_assert_double_gt(lum(hot), lum(cold) + 100);
    /* Bilinear: brightness falls off smoothly along the top row. */
    for (int x = b.x0 + 1; x < b.x1; x++)
        ck_assert_double_le(lum(at(&p, x, b.y0)), lum(at(&p, x - 1, b.y0)));
    free(p.px);
}
END_TEST

static bool nonwhite(const uint8_t *c) { return c[0] != 255 || c[1] != 255 || c[2] != 255; }

SCRATCH_TEST(test_grid_overlay_blends_with_alpha)
{
    float heat[1] = {0};
    cf_tensor *black_image = cf_zeros(CF_SHAPE(1, 4, 4)),
              *ov = cf_from_array(heat, CF_SHAPE(1, 1, 1));
    cf_grid_opts o = {.scale = 1, .alpha = 1};
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("full.png"), black_image, ov, &o), CF_OK);
    o.alpha = 0.25f;
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("quarter.png"), black_image, ov, &o), CF_OK);
    picture full = load(scratch_path("full.png")), quarter = load(scratch_path("quarter.png"));
    ck_assert_int_eq(count(&quarter, 0, 0, quarter.w, quarter.h, nonwhite), 16);
    for (int y = 0; y < full.h; y++)
        for (int x = 0; x < full.w; x++)
            if (nonwhite(at(&full, x, y)))
                for (int k = 0; k < 3; k++)
                    ck_assert_int_le(abs(at(&quarter, x, y)[k] - at(&full, x, y)[k] / 4), 1);
    free(full.px);
    free(quarter.px);
}
END_TEST

SCRATCH_TEST(test_grid_captions_go_under_images)
{
    const char *labels[2] = {"shirt", "boot"};
    cf_grid_opts o = {.labels = labels, .scale = 3};
    ck_assert_int_eq(
        cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(2, 10, 10)), NULL, &o), CF_OK);
    picture p = load(scratch_path("g.png"));
    /* Images are black squares; the captions are grey ink under them. */
    int bottom = 0;
    for (int y = 0; y < p.h; y++)
        if (count(&p, 0, y, p.w, y + 1, black))
            bottom = y + 1;
    int caption = 0;
    for (int y = bottom; y < p.h; y++)
        for (int x = 0; x < p.w; x++)
            caption += ink(at(&p, x, y)) && !black(at(&p, x, y));
    ck_assert_int_gt(caption, 20);
    free(p.px);
}
END_TEST

SCRATCH_TEST(test_grid_bad_arguments_are_errors)
{
    cf_tensor *im = cf_zeros(CF_SHAPE(2, 4, 4));
    ck_assert_int_eq(cf_viz_image_grid(NULL, im, NULL, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_image_grid", "path", NULL);
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), NULL, NULL, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "images", NULL);
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(4, 4)), NULL, NULL),
                     CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "[4, 4]", NULL);
    ck_assert_int_eq(
        cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(2, 2, 4, 4)), NULL, NULL),
        CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "[2, 2, 4, 4]", NULL);
    ck_assert_int_eq(
        cf_viz_image_grid(scratch_path("g.png"), im, cf_zeros(CF_SHAPE(3, 2, 2)), NULL),
        CF_ERR_SHAPE);
    assert_error(CF_ERR_SHAPE, "overlay", "[3, 2, 2]", "[2, 4, 4]", NULL);
    cf_grid_opts o = {.alpha = 2};
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), im, NULL, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "alpha", NULL);
    o = (cf_grid_opts){.cols = -1};
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), im, NULL, &o), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cols", NULL);
    ck_assert_int_eq(cf_viz_image_grid("/nonexistent-dir/g.png", im, NULL, NULL), CF_ERR_IO);
    assert_error(CF_ERR_IO, "/nonexistent-dir/g.png", NULL);
}
END_TEST

/* A change here is an ABI change (tests/test_abi.c). Sizes of LP64. */
SCRATCH_TEST(test_options_keep_their_size)
{
    if (sizeof(void *) != 8 || sizeof(long) != 8)
        return;
    ck_assert_uint_eq(sizeof(cf_heatmap_opts), 88);
    ck_assert_uint_eq(sizeof(cf_series), 64);
    ck_assert_uint_eq(sizeof(cf_plot_opts), 72);
    ck_assert_uint_eq(sizeof(cf_grid_opts), 64);
}
END_TEST

SCRATCH_TEST(test_options_with_reserved_bytes_are_refused)
{
    cf_tensor *t = cf_zeros(CF_SHAPE(2, 2));
    ck_assert_int_eq(cf_viz_heatmap(scratch_path("h.png"), t, &(cf_heatmap_opts){.reserved[0] = 1}),
                     CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_heatmap", "cf_heatmap_opts.reserved[0]", NULL);
    float y[2] = {1, 2};
    cf_series s = {.y = y, .n = 2, .reserved[3] = 1};
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, NULL), CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_lines", "cf_series.reserved[3]", NULL);
    s.reserved[3] = 0;
    ck_assert_int_eq(cf_viz_lines(scratch_path("l.png"), &s, 1, &(cf_plot_opts){.reserved[1] = 1}),
                     CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_plot_opts.reserved[1]", NULL);
    ck_assert_int_eq(cf_viz_image_grid(scratch_path("g.png"), cf_zeros(CF_SHAPE(1, 2, 2)), NULL,
                                       &(cf_grid_opts){.reserved[2] = 1}),
                     CF_ERR_ARG);
    assert_error(CF_ERR_ARG, "cf_viz_image_grid", "cf_grid_opts.reserved[2]", NULL);
}
END_TEST
