/* Fuzz target: loading an optimizer checkpoint. Loads the input into the
 * AdamW optimizer of tests/fuzz/net.c with cf_optim_load. A failed load
 * must record its error with a message and change no parameter, learning
 * rate or step count; no load may change a parameter. Seeds:
 * tests/fuzz/corpus/optim_load. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/net.h"

static cf_module *net;
static cf_optim *opt;

static void rebuild(void)
{
    cf_optim_free(opt);
    cf_module_free(net);
    net = fuzz_net_new();
    opt = net ? fuzz_optim_new(net) : NULL;
    FUZZ_ASSERT(opt != NULL, "fuzz_optim_new: %s", cf_error_message());
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    rebuild();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const cf_status errors[] = {CF_ERR_FORMAT, CF_ERR_SHAPE, CF_ERR_DTYPE, CF_ERR_NOMEM};
    const char *path = fuzz_file(data, size);
    fuzz_snapshot *before = fuzz_snapshot_take(net);
    float lr = cf_optim_lr(opt);
    int64_t steps = cf_optim_steps(opt);
    cf_error_clear();
    cf_status st = cf_optim_load(opt, path);
    fuzz_snapshot_check(before, net, "cf_optim_load");
    fuzz_snapshot_free(before);
    if (st != CF_OK) {
        fuzz_check_failure("cf_optim_load", st, 4, errors);
        FUZZ_ASSERT(cf_optim_lr(opt) == lr, "a failed load changed the learning rate");
        FUZZ_ASSERT(cf_optim_steps(opt) == steps, "a failed load changed the step count");
    } else {
        fuzz_check_success("cf_optim_load");
        rebuild();
    }
    return 0;
}
