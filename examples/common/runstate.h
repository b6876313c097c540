/* examples/common/runstate.h: a training run's whole state in one
 * safetensors checkpoint, so --resume continues to the same numbers.
 *
 * The file holds the model's parameters under their own names (so
 * cf_module_load(model, path, false) and PyTorch read it as weights), the
 * optimizer's state under "optimizer.<name>", each metric history as a
 * float tensor "run.history.<name>", and in the metadata the epochs done,
 * the steps taken, the data generator (whose state fixes the order and
 * augmentation of every later epoch), the dropout generators, the
 * training seconds so far and the settings the run was started with. It
 * is replaced atomically (cf_safetensors_save), so a run killed while
 * saving leaves the previous checkpoint.
 *
 *     ex_run run;
 *     ex_run_init(&run, seed);
 *     if (resume && ex_run_load(&run, path, model, opt, settings) != CF_OK)
 *         return fail();                    // names the file and what is wrong
 *     for (int epoch = run.epoch + 1; epoch <= epochs; epoch++) {
 *         shuffle(&run.data_rng, order);
 *         ... steps: run.step++, ex_run_push(&run, "loss", loss) ...
 *         run.epoch = epoch;
 *         ex_run_save(&run, path, model, opt, settings);
 *     }
 *     ex_run_free(&run);
 *
 * For identical numbers after a resume, everything random must come from
 * data_rng or the model's own generators, and the learning rate must be a
 * function of the step (a time budget that projects the schedule from the
 * pace breaks this; runs without one are exact).
 */
#ifndef EXAMPLES_COMMON_RUNSTATE_H
#define EXAMPLES_COMMON_RUNSTATE_H

#include <cformer/nn.h>

#define EX_SERIES_MAX  8
#define EX_SERIES_NAME 32

typedef struct {
    char name[EX_SERIES_NAME];
    float *v; /* n values, malloc'd */
    int64_t n, cap;
} ex_series;

typedef struct {
    int epoch;       /* epochs completed */
    int64_t step;    /* optimizer steps taken */
    cf_rng data_rng; /* data order and augmentation */
    double seconds;  /* training time so far, over all resumes */
    int nseries;
    ex_series series[EX_SERIES_MAX];
} ex_run;

/* A fresh run: nothing done, data_rng seeded with seed. */
void ex_run_init(ex_run *r, uint64_t seed);
/* The history named name, added (empty) when missing; NULL with
 * CF_ERR_ARG recorded when the name is empty or too long or the run holds
 * EX_SERIES_MAX histories already. */
ex_series *ex_run_series(ex_run *r, const char *name);
/* Appends v to the history named name. CF_OK, CF_ERR_NOMEM or as
 * ex_run_series. */
cf_status ex_run_push(ex_run *r, const char *name, float v);
/* Whether a history fell: the mean of its last quarter (at least one
 * value) is below the mean of its first quarter, which go to *first and
 * *last. False for NULL or fewer than two values. */
bool ex_series_fell(const ex_series *s, double *first, double *last);
/* Frees the histories. */
void ex_run_free(ex_run *r);

/* Writes the run, model and optimizer to path, atomically. settings is a
 * text that must match on resume (e.g. "batch 128 lr 0.002 layers 2").
 * Uses a temporary file <path>.optim-tmp. Returns CF_OK or the error
 * recorded (CF_ERR_IO, CF_ERR_NOMEM, ...). */
cf_status ex_run_save(const ex_run *r, const char *path, cf_module *model, const cf_optim *opt,
                      const char *settings);
/* Restores a run saved by ex_run_save into r, model and opt (made as
 * before: same model, same kind of optimizer). Returns CF_OK; CF_ERR_IO
 * when the file cannot be read (naming it); CF_ERR_FORMAT when it is not a
 * run checkpoint or is damaged; CF_ERR_ARG when it was saved with other
 * settings (the message shows both); or the errors of cf_module_load and
 * cf_optim_load. On error r is unchanged, but model or opt may already
 * hold loaded values. */
cf_status ex_run_load(ex_run *r, const char *path, cf_module *model, cf_optim *opt,
                      const char *settings);

#endif
