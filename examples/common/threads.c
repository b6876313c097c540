/* Thread-count tuning; see threads.h. */
#include "threads.h"

#include <cformer/tensor.h>

void ex_tuner_init(ex_tuner *t, int requested)
{
    if (requested > 0)
        cf_set_num_threads(requested);
    int n = cf_get_num_threads();
    *t = (ex_tuner){.many = requested > 0 || n < 2 ? 0 : n, .chosen = n};
}

int ex_tuner_other(const ex_tuner *t) { return t->chosen == 1 ? t->many : 1; }

void ex_tuner_begin(ex_tuner *t, int64_t s)
{
    if (s == 0) {
        t->trying = t->many && t->wait == 0;
        t->wait -= t->wait > 0;
    }
    cf_set_num_threads(t->trying && s == 2 ? ex_tuner_other(t) : t->chosen);
}

bool ex_tuner_end(ex_tuner *t, int64_t s, double seconds)
{
    if (!t->trying || s < 1 || s > 3)
        return false;
    if (s == 2)
        t->other = seconds;
    else
        t->ref = (s == 1 ? 0 : t->ref) + seconds / 2;
    if (s < 3)
        return false;
    if (t->other < t->ref) {
        double r = t->ref;
        t->chosen = ex_tuner_other(t);
        t->ref = t->other, t->other = r;
        t->gap = 0;
    } else {
        t->gap = t->gap ? (t->gap < 16 ? 2 * t->gap : 16) : 1;
    }
    t->wait = t->gap;
    cf_set_num_threads(t->chosen);
    return true;
}
