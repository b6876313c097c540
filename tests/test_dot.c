/* The recorded graph in Graphviz DOT (autograd/dot.c). */
#include "tests/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(graph_dot_names_ops_and_shapes)
{
    cf_tensor *x = rand_leaf(1, 0, 1, CF_SHAPE(2, 3));
    cf_tensor *w = rand_leaf(2, 0, 1, CF_SHAPE(3, 4));
    x->name = "x";
    cf_tensor *y = cf_sum_all(cf_relu(cf_matmul(x, w)));
    char *buf = dot_text(y);
    ck_assert_ptr_nonnull(strstr(buf, "digraph"));
    ck_assert_ptr_nonnull(strstr(buf, "matmul\\n[2, 4]"));
    ck_assert_ptr_nonnull(strstr(buf, "relu"));
    ck_assert_ptr_nonnull(strstr(buf, "x\\n[2, 3]"));
    free(buf);
}
END_TEST

TEST(graph_dot_labels_named_op_nodes_and_escapes_names)
{
    cf_tensor *x = rand_leaf(1, 0, 1, CF_SHAPE(2, 3));
    x->name = "say \"hi\"\n";
    cf_tensor *h = cf_relu(x);
    h->name = "hidden";
    char *buf = dot_text(cf_sum_all(h));
    ck_assert_ptr_nonnull(strstr(buf, "relu: hidden\\n[2, 3]"));
    ck_assert_ptr_nonnull(strstr(buf, "say \\\"hi\\\"\\n[2, 3]"));
    free(buf);
}
END_TEST
