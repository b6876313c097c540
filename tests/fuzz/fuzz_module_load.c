/* Fuzz target: loading a model checkpoint. Loads the input into the model
 * of tests/fuzz/net.c with cf_module_load_report (not strict) and
 * cf_module_load (strict). A failed load must record its error with a
 * message and change no parameter and no dropout generator. Seeds:
 * tests/fuzz/corpus/module_load. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/net.h"

static cf_module *net;

static void rebuild(void)
{
    cf_module_free(net);
    net = fuzz_net_new();
    FUZZ_ASSERT(net != NULL, "fuzz_net_new: %s", cf_error_message());
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rebuild();
    return 0;
}

static void load(const char *path, bool strict)
{
    static const cf_status errors[] = {CF_ERR_FORMAT, CF_ERR_SHAPE, CF_ERR_DTYPE, CF_ERR_NOMEM};
    const char *what = strict ? "cf_module_load (strict)" : "cf_module_load_report";
    fuzz_snapshot *before = fuzz_snapshot_take(net);
    cf_error_clear();
    cf_load_report r;
    cf_status st =
        strict ? cf_module_load(net, path, true) : cf_module_load_report(net, path, false, &r);
    if (!strict) {
        FUZZ_ASSERT(r.nmissing >= 0 && r.nunexpected >= 0, "report counts");
        for (int i = 0; i < r.nmissing; i++)
            FUZZ_ASSERT(cf_module_find(net, r.missing[i]), "missing %s is no parameter",
                        r.missing[i]);
        cf_load_report_free(&r);
    }
    if (st != CF_OK) {
        fuzz_check_failure(what, st, 4, errors);
        fuzz_snapshot_check(before, net, what);
    } else {
        fuzz_check_success(what);
        rebuild();
    }
    fuzz_snapshot_free(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    load(path, false);
    load(path, true);
    return 0;
}
