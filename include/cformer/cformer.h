/* cformer: reverse-mode autograd tensors in C11.
 *
 * A training loop (see examples/mlp/mlp.c for the whole program):
 *
 *     cf_arena *step = cf_arena_new(0);
 *     cf_arena_use(step);
 *     cf_tensor *w = cf_requires_grad(cf_tensor_new(CF_F32, CF_SHAPE(2, 1)), true);
 *     for (int it = 0; it < 1000; it++) {
 *         cf_tensor *loss = cf_mean_all(cf_square(cf_sub(cf_matmul(x, w), y)));
 *         cf_zero_grad(w);
 *         cf_backward(loss);
 *         ... w -= lr * w->grad ...
 *         cf_arena_reset(step);
 *     }
 *     cf_tensor_free(w);
 *     cf_arena_free(step);
 *
 * tensor.h: tensors, arenas, errors, random numbers.
 * autograd.h: differentiable ops, backward, gradient checking.
 * io.h: saving and loading tensors as safetensors files.
 * nn.h: modules, optimizers, schedules, checkpoints.
 * zoo.h: Transformer, ViT and seq2seq models.
 */
#ifndef CFORMER_H
#define CFORMER_H

#include "tensor.h"
#include "autograd.h"
#include "io.h"
#include "nn.h"
#include "zoo.h"

#endif
