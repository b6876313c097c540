/* Golden cases of modules, in the layout of gen_nn.py and gen_layers.py.
 *
 * Case c of a fixture holds, under the metadata key c, the module's
 * state_dict names in PyTorch's order (comma-separated); its parameters and
 * buffers as c.<name>; inputs c.<input>; outputs c.<output> with their
 * upstream gradients c.d<output>; the inputs' gradients c.grad_<input>, the
 * parameters' c.grad.<name> and the buffers' values after the run
 * c.after.<name>. Comparisons use assert_golden's tolerance (util.h). */
#ifndef CF_TEST_GOLD_H
#define CF_TEST_GOLD_H

#include "tests/util.h"

/* One open case: the fixture, the case name and the module it loaded. */
typedef struct {
    cf_safetensors *f;
    const char *c;
    cf_module *m;
} gold;

/* Opens case c of fixture file (under tests/golden) for module m: fails
 * unless m was created and its state_dict names are the case's, in order;
 * loads the case's values into m. */
gold gold_open(const char *file, const char *c, cf_module *m);
/* The case's tensor c.<n>, in the arena; fails the test if absent. */
cf_tensor *gold_get(const gold *g, const char *n);
/* The same as an input: a float tensor becomes a leaf requiring a
 * gradient. */
cf_tensor *gold_in(const gold *g, const char *n);
/* Compares t with c.<n>. */
void gold_check(const gold *g, const cf_tensor *t, const char *n);
/* Backpropagates from the n outputs with their upstream gradients
 * c.d<name>: seeded with it for one output, through the sum of the dot
 * products for more. */
void gold_backward(const gold *g, int n, cf_tensor *const *outs, const char *const *names);
/* gold_check of each of the n outputs, then gold_backward from all. */
void gold_outputs(const gold *g, int n, cf_tensor *const *outs, const char *const *names);
/* Checks the gradients of the n named inputs, of every parameter and the
 * value of every buffer, then closes the case and frees the module. */
void gold_finish(gold *g, int n, cf_tensor *const *ins, const char *const *names);

/* A module's forward with one input. */
typedef cf_tensor *(*gold_fwd)(cf_module *m, cf_tensor *x);
/* The whole case c of a module with one input x and one output out: in
 * training mode or not, x passed as a non-contiguous view or not. */
void gold_unary(const char *file, const char *c, cf_module *m, gold_fwd fwd, bool training,
                bool view);

/* x's values in a non-contiguous layout (dims 0 and 1 swapped in memory),
 * still differentiable with respect to x. */
cf_tensor *strided(cf_tensor *x);

#endif
