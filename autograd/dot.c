/* The recorded graph in Graphviz DOT. */
#include "autograd/internal.h"

/* s inside a DOT string: quotes and backslashes escaped, control bytes
 * dropped. */
static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
}

/* An op node shows the op and the tensor's name when it has one; a leaf
 * its name (a parameter's state_dict name) or "leaf". */
static void node(FILE *f, const cf_tensor *t)
{
    char b[CF_SHAPE_BUF];
    fprintf(f, "  n%p [label=\"", (const void *)t);
    if (t->op) {
        put_escaped(f, t->op->name);
        if (t->name)
            fputs(": ", f);
    }
    if (t->name)
        put_escaped(f, t->name);
    else if (!t->op)
        fputs("leaf", f);
    fprintf(f, "\\n%s\"%s];\n", cf_shape_str(t, b, sizeof b), t->op ? "" : ", shape=box");
}

static cf_status graph_dot(FILE *f, const cf_tensor *y)
{
    /* Breadth-first over the graph; a node is printed when first seen. */
    int64_t cap = 64, head = 0, tail = 0;
    const cf_tensor **queue = cf__arena_alloc("cf_graph_dot", sizeof(*queue) * cap);
    if (!queue)
        return cf_error();
    fputs("digraph cformer {\n  rankdir=BT;\n", f);
    queue[tail++] = y;
    node(f, y);
    while (head < tail) {
        const cf_tensor *t = queue[head++];
        for (int i = 0; i < t->nsrc; i++) {
            const cf_tensor *s = t->src[i];
            bool seen = false;
            for (int64_t j = 0; j < tail && !seen; j++)
                seen = queue[j] == s;
            if (!seen) {
                if (tail == cap) {
                    const cf_tensor **q2 = cf__arena_alloc("cf_graph_dot", sizeof(*q2) * cap * 2);
                    if (!q2)
                        return cf_error();
                    for (int64_t j = 0; j < tail; j++)
                        q2[j] = queue[j];
                    queue = q2;
                    cap *= 2;
                }
                queue[tail++] = s;
                node(f, s);
            }
            fprintf(f, "  n%p -> n%p;\n", (const void *)s, (const void *)t);
        }
    }
    fputs("}\n", f);
    if (ferror(f)) {
        cf__error(CF_ERR_IO, "cf_graph_dot: write failed");
        return cf_error();
    }
    return CF_OK;
}

cf_status cf_graph_dot(FILE *f, const cf_tensor *y)
{
    if (!y)
        return cf__null_arg("cf_graph_dot", "tensor");
    cf__saved_error saved;
    cf__call_begin(&saved);
    if (!f)
        cf__error(CF_ERR_ARG, "cf_graph_dot: file is NULL");
    return cf__call_end(&saved, f ? graph_dot(f, y) : CF_ERR_ARG);
}
