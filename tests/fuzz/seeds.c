/* Writes the seed corpora of the fuzz targets into DIR/<target>/ (make
 * fuzz-seeds writes them into tests/fuzz/corpus, where they are committed):
 * valid inputs of each reader, small enough that a fuzzer mutates them
 * quickly. */
#include "tests/fuzz/net.h"

#include "cformer/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const char *dir;

static const char *path_of(const char *target, const char *file)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, target);
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        perror(p);
        exit(1);
    }
    snprintf(p, sizeof p, "%s/%s/%s", dir, target, file);
    return p;
}

static void check(cf_status st)
{
    if (st != CF_OK) {
        fprintf(stderr, "seeds: %s\n", cf_error_message());
        exit(1);
    }
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A safetensors file with the given header, padded to 8 bytes, and data. */
static void write_raw(const char *path, const char *header, const void *data, size_t size)
{
    unsigned char buf[1024];
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    memcpy(buf + 8 + padded, data, size);
    write_bytes(path, buf, 8 + padded + size);
}

static void safetensors_seeds(void)
{
    cf_arena *a = cf_arena_new(0);
    cf_arena_use(a);
    const char *names[] = {"w", "ids", "mask", "s", "empty", "no_cols"};
    cf_tensor *ts[] = {
        cf_from_array((const float[]){1, -2, 3.5f, 0, 1e-3f, -7}, CF_SHAPE(2, 3)),
        cf_from_ints((const int32_t[]){0, 4, -1}, CF_SHAPE(3)),
        cf_empty(CF_BOOL, CF_SHAPE(2, 2)),
        cf_scalar(0.25f),
        cf_zeros(CF_SHAPE(0, 4)),
        cf_zeros(CF_SHAPE(5, 0)), /* contiguous strides [0, 1] */
    };
    memset(ts[2]->data, 1, 2);
    check(cf_safetensors_save(path_of("safetensors", "mixed.safetensors"), 6, names, ts,
                              "{\"format\": \"pt\", \"epoch\": \"3\"}"));
    check(cf_safetensors_save(path_of("safetensors", "empty.safetensors"), 0, names, ts, NULL));
    /* dtypes cformer opens but does not read: F16 1, -2, 1/3, 0 and I64 7. */
    write_raw(path_of("safetensors", "f16.safetensors"),
              "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
              "\"l\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}",
              (const unsigned char[16]){0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0, 0, 7}, 16);
    cf_arena_use(NULL);
    cf_arena_free(a);
}

static void checkpoint_seeds(void)
{
    cf_module *net = fuzz_net_new();
    cf_optim *o = net ? fuzz_optim_new(net) : NULL;
    if (!o)
        check(cf_error());
    const char *model = path_of("module_load", "net.safetensors");
    check(cf_module_save(net, model));
    check(cf_optim_save(o, path_of("optim_load", "adamw.safetensors")));
    /* The reader's target starts from checkpoints too. */
    check(cf_module_save(net, path_of("safetensors", "net.safetensors")));
    check(cf_optim_save(o, path_of("safetensors", "adamw.safetensors")));
    cf_optim_free(o);
    cf_module_free(net);
}

static void idx_seeds(void)
{
    /* 2 images of 3 x 2 bytes, and 2 labels. */
    const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0,   0,   0,   3,   0,   0,
                                    0, 2, 0, 1, 2, 3, 4, 5, 255, 254, 253, 252, 251, 250};
    const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 7, 1};
    write_bytes(path_of("idx", "images-idx3-ubyte"), images, sizeof images);
    write_bytes(path_of("idx", "labels-idx1-ubyte"), labels, sizeof labels);
    gzFile gz = gzopen(path_of("idx", "labels-idx1-ubyte.gz"), "wb9");
    if (!gz || gzwrite(gz, labels, sizeof labels) != (int)sizeof labels || gzclose(gz) != Z_OK) {
        fprintf(stderr, "seeds: cannot write the gzip seed\n");
        exit(1);
    }
}

static void cmudict_seeds(void)
{
    static const char dict[] = "MNCL\n"
                               "(\"abandon\" nil (((ax) 0) ((b ae n) 1) ((d ax n) 0)))\n"
                               "(\"abject\" n (((ae b) 1) ((jh eh k t) 0)))\n"
                               "(\"abject\" j (((ae b) 0) ((jh eh k t) 1)))\n"
                               "(\"Chaim\" nil (((hh ay m) 1)))\n"
                               "(\"zhivago\" nil (((zh ih) 0) ((v aa) 1) ((g ow) 0)))\r\n"
                               "\n"
                               "(\"o'clock\" nil (((ax) 0) ((k l aa k) 1)))\n";
    write_bytes(path_of("cmudict", "cmudict.out"), dict, sizeof dict - 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    safetensors_seeds();
    checkpoint_seeds();
    idx_seeds();
    cmudict_seeds();
    return 0;
}
