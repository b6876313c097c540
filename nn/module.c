/* Modules: a tree of named parameters. */
#include "nn/internal.h"

#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 512

_Static_assert(CF_MODULE_MAX_PARAMS <= 64, "cf_module.buffers holds one bit per tensor");

/* Whether name is a parameter or a named child of m, or of a child of m
 * named "" (whose names are m's). */
static bool in_namespace(const cf_module *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->param_names[i], name))
            return true;
    for (const cf_module *c = m->first_child; c; c = c->next)
        if (*c->name ? !strcmp(c->name, name) : in_namespace(c, name))
            return true;
    return false;
}

/* Whether name is already used where a new child or parameter of m would
 * put it: a module named "" shares its parent's namespace. */
static bool name_taken(const cf_module *m, const char *name)
{
    if (!*name)
        return false;
    while (!*m->name && m->parent)
        m = m->parent;
    return in_namespace(m, name);
}

cf_module *cf_module_init(cf_module *m, const char *type, cf_module *parent, const char *name)
{
    if (!name)
        name = "";
    if (strlen(name) >= CF_NAME_MAX) {
        cf__error(CF_ERR_ARG, "%s: name \"%s\" is longer than %d characters", type, name,
                  CF_NAME_MAX - 1);
        return NULL;
    }
    if (strchr(name, '.')) {
        cf__error(CF_ERR_ARG, "%s: name \"%s\" holds a '.', which joins the parts of names", type,
                  name);
        return NULL;
    }
    if (parent && name_taken(parent, name)) {
        cf__error(CF_ERR_ARG, "%s: name \"%s\" is already used in its parent", type, name);
        return NULL;
    }
    m->type = type;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->training = parent ? parent->training : true;
    m->parent = parent;
    if (parent) {
        if (parent->last_child)
            parent->last_child->next = m;
        else
            parent->first_child = m;
        parent->last_child = m;
    }
    return m;
}

cf_module *cf_module_new(const char *type, cf_module *parent, const char *name)
{
    return nn__new(sizeof(cf_module), type, parent, name);
}

static void detach(cf_module *m)
{
    cf_module *p = m->parent;
    if (!p)
        return;
    cf_module *prev = NULL;
    for (cf_module *c = p->first_child; c; prev = c, c = c->next) {
        if (c != m)
            continue;
        if (prev)
            prev->next = c->next;
        else
            p->first_child = c->next;
        if (p->last_child == c)
            p->last_child = prev;
        break;
    }
    m->parent = NULL;
}

static void free_tree(cf_module *m)
{
    for (cf_module *c = m->first_child, *next; c; c = next) {
        next = c->next;
        free_tree(c);
    }
    for (int i = 0; i < m->nparams; i++) {
        cf_tensor_free(m->params[i]);
        cf_free(m->paths[i]);
    }
    if (m->destroy)
        m->destroy(m);
    cf_free(m);
}

void cf_module_free(cf_module *m)
{
    if (!m)
        return;
    detach(m);
    free_tree(m);
}

/* name prefixed by the names of m and its ancestors below the root (malloc'd;
 * NULL when out of memory: the tensor is then unlabelled). */
static char *full_name(const cf_module *m, const char *name)
{
    size_t len = strlen(name) + 1;
    for (const cf_module *p = m; p->parent; p = p->parent)
        len += *p->name ? strlen(p->name) + 1 : 0;
    char *s = cf_malloc(len);
    if (!s)
        return NULL;
    size_t at = len - strlen(name) - 1;
    memcpy(s + at, name, strlen(name) + 1);
    for (const cf_module *p = m; p->parent; p = p->parent) {
        if (!*p->name)
            continue;
        size_t n = strlen(p->name);
        s[--at] = '.';
        at -= n;
        memcpy(s + at, p->name, n);
    }
    return s;
}

/* Adds a zeroed heap tensor to m under name: a parameter (float, requiring
 * a gradient) or a buffer. */
static cf_tensor *add_tensor(const char *fn, cf_module *m, const char *name, cf_dtype dtype,
                             int ndim, const int64_t *shape, bool buffer)
{
    if (!m || !name || !*name || strlen(name) >= CF_NAME_MAX || strchr(name, '.') ||
        name_taken(m, name) || m->nparams == CF_MODULE_MAX_PARAMS) {
        cf__error(CF_ERR_ARG, "%s: cannot add %s \"%s\" to %s \"%s\"", fn,
                  buffer ? "buffer" : "parameter", name ? name : "(null)", m ? m->type : "(null)",
                  m ? m->name : "");
        return NULL;
    }
    cf_tensor *t = cf_tensor_new(dtype, ndim, shape);
    if (!t)
        return NULL;
    if (buffer)
        m->buffers |= (uint64_t)1 << m->nparams;
    else
        cf_requires_grad(t, true);
    snprintf(m->param_names[m->nparams], CF_NAME_MAX, "%s", name);
    /* The state_dict name labels the tensor (cf_graph_dot); a module's
     * ancestors are fixed when it is made, so the name is final. */
    m->paths[m->nparams] = full_name(m, name);
    t->name = m->paths[m->nparams];
    m->params[m->nparams++] = t;
    return t;
}

cf_tensor *cf_module_param(cf_module *m, const char *name, int ndim, const int64_t *shape)
{
    return add_tensor("cf_module_param", m, name, CF_F32, ndim, shape, false);
}

cf_tensor *cf_module_buffer(cf_module *m, const char *name, cf_dtype dtype, int ndim,
                            const int64_t *shape)
{
    return add_tensor("cf_module_buffer", m, name, dtype, ndim, shape, true);
}

static void visit(cf_module *m, char *path, size_t len, cf_param_fn fn, void *ud)
{
    size_t base = len;
    if (*m->name) {
        int n = snprintf(path + len, PATH_MAX_LEN - len, "%s%s", len ? "." : "", m->name);
        base = len + (size_t)n < PATH_MAX_LEN ? len + (size_t)n : PATH_MAX_LEN - 1;
    }
    for (int i = 0; i < m->nparams; i++) {
        snprintf(path + base, PATH_MAX_LEN - base, "%s%s", base ? "." : "", m->param_names[i]);
        fn(path, m->params[i], ud);
    }
    for (cf_module *c = m->first_child; c; c = c->next)
        visit(c, path, base, fn, ud);
    path[len] = '\0';
}

void cf_module_visit(cf_module *m, cf_param_fn fn, void *ud)
{
    if (!m || !fn)
        return;
    char path[PATH_MAX_LEN] = "";
    /* The root's own name is not part of its parameters' names. */
    for (int i = 0; i < m->nparams; i++)
        fn(m->param_names[i], m->params[i], ud);
    for (cf_module *c = m->first_child; c; c = c->next)
        visit(c, path, 0, fn, ud);
}

typedef struct {
    const char *want;
    cf_tensor *found;
    int count;
    int64_t numel;
} search;

static void find_one(const char *name, cf_tensor *t, void *ud)
{
    search *s = ud;
    if (!s->found && !strcmp(name, s->want))
        s->found = t;
}

cf_tensor *cf_module_find(cf_module *m, const char *name)
{
    search s = {name, NULL, 0, 0};
    cf_module_visit(m, find_one, &s);
    return s.found;
}

static void count_one(const char *name, cf_tensor *t, void *ud)
{
    (void)name;
    search *s = ud;
    s->count++;
    s->numel += cf_numel(t);
}

int cf_module_num_tensors(cf_module *m)
{
    search s = {0};
    cf_module_visit(m, count_one, &s);
    return s.count;
}

static void count_params(const char *path, cf_module *m, void *ud)
{
    (void)path;
    for (int i = 0; i < m->nparams; i++)
        if (!(m->buffers >> i & 1))
            *(int64_t *)ud += cf_numel(m->params[i]);
}

int64_t cf_module_num_params(cf_module *m)
{
    int64_t n = 0;
    if (m)
        nn__walk(m, count_params, &n);
    return n;
}

void cf_module_train(cf_module *m, bool training)
{
    if (!m)
        return;
    m->training = training;
    for (cf_module *c = m->first_child; c; c = c->next)
        cf_module_train(c, training);
}

static void zero_one(const char *name, cf_tensor *t, void *ud)
{
    (void)name, (void)ud;
    cf_zero_grad(t);
}

void cf_module_zero_grad(cf_module *m) { cf_module_visit(m, zero_one, NULL); }

void *nn__new(size_t size, const char *type, cf_module *parent, const char *name)
{
    cf_module *m = cf_calloc(1, size);
    if (!m) {
        cf__error(CF_ERR_NOMEM, "%s: out of memory", type);
        return NULL;
    }
    if (!cf_module_init(m, type, parent, name)) {
        cf_free(m);
        return NULL;
    }
    return m;
}

uint64_t nn__seed(cf_rng *g)
{
    /* One Philox block: four floats in [0, 1) of 24 random bits each. */
    float u[4];
    cf_tensor t = {.dtype = CF_F32, .ndim = 1, .shape = {4}, .stride = {1}, .data = u};
    cf_fill_uniform(g, &t, 0, 1);
    uint64_t x = 0;
    for (int i = 0; i < 4; i++)
        x = x * 0x100000001B3ull ^ (uint64_t)(u[i] * 16777216.0f);
    /* splitmix64's finaliser spreads the bits over the whole word. */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void walk(cf_module *m, char *path, size_t len, nn__module_fn fn, void *ud)
{
    size_t base = len;
    if (*m->name && len < PATH_MAX_LEN) {
        int n = snprintf(path + len, PATH_MAX_LEN - len, "%s%s", len ? "." : "", m->name);
        base = len + (size_t)n < PATH_MAX_LEN ? len + (size_t)n : PATH_MAX_LEN - 1;
    }
    fn(path, m, ud);
    for (cf_module *c = m->first_child; c; c = c->next)
        walk(c, path, base, fn, ud);
    path[len] = '\0';
}

void nn__walk(cf_module *m, nn__module_fn fn, void *ud)
{
    char path[PATH_MAX_LEN] = "";
    fn(path, m, ud);
    for (cf_module *c = m->first_child; c; c = c->next)
        walk(c, path, 0, fn, ud);
}
