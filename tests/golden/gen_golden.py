#!/usr/bin/python3
"""Writes the golden fixtures of cformer's test suites, using PyTorch (1.13).

    /usr/bin/python3 tests/golden/gen_golden.py

ops.safetensors holds one case per row of CASES below, read by the test
file of the op's family (tests/test_arith.c for "arith.", test_unary.c,
test_reduce.c, test_matmul.c, test_view.c, and test_autograd.c for the
"chain." compositions) through tests/expr.c. A case is an expression over
the inputs x0, x1, ... written in the names of cformer's ops (autograd.h
without the cf_ prefix); the C test parses the same expression and
evaluates it with cformer. For a case named <family>.<detail> the file
holds the layout of every golden fixture (goldlib.case's):

    metadata  "<family>.<detail>"          the expression
    metadata  "<family>.<detail>.kink"     why it gets no gradient check (if so)
    tensor    "<family>.<detail>.in<i>"    input i (a contiguous leaf)
    tensor    "<family>.<detail>.out"      the expression's value
    tensor    "<family>.<detail>.dout"     a random upstream gradient
    tensor    "<family>.<detail>.grad<i>"  d(sum(out * dout)) / d(in<i>)

Non-contiguous operands come from views inside the expression, e.g.
matmul(transpose(x0, 0, 1), x1), so every gradient is with respect to a
stored leaf. Inputs and dout are float32 values; the references are computed
in float64 from those values and rounded to float32 once, so they are the
correctly rounded answers and a tolerance only has to cover cformer's own
float32 rounding. The C test also checks each expression's gradients by
finite differences at the stored inputs, except where an input sits on a
kink on purpose (relu's inputs hold exact zeros, to pin its gradient there).

io.safetensors (read by tests/test_io.c) holds tensors of several dtypes,
some that cformer reads and some it refuses, with names and metadata that
need JSON escapes, to check interoperability with another writer.

The format is written here with json and struct, not the safetensors
package, following https://github.com/huggingface/safetensors: an 8-byte
little-endian header length, the JSON header padded with spaces to a
multiple of 8 bytes, then the tensors' bytes.
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: same bits as int16
        t = t.view(torch.int16)
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def write_safetensors(path, tensors, metadata=None, ensure_ascii=False):
    """tensors: {name: tensor}. Data is laid out by decreasing element size,
    then name, so every element is aligned to its size in the file."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    chunks, offset = [], 0
    for name in order:
        b = tensor_bytes(tensors[name])
        header[name] = {
            "dtype": DTYPES[tensors[name].dtype],
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(b)],
        }
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=ensure_ascii)
    text = text.encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)
    return os.path.getsize(path)


# ---- The ops, as cformer names them ----


def _slice(a, dim, start, end, step):
    idx = [slice(None)] * a.dim()
    idx[dim] = slice(start, end, step)
    return a[tuple(idx)]


def _reduce(fn):
    def f(a, dims, keepdim):
        if not dims:  # ndims 0 means every dim
            dims = list(range(a.dim()))
        if not dims:  # a 0-d tensor
            return fn(a)
        return fn(a, dims, keepdim=bool(keepdim))

    return f


OPS = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "neg": torch.neg,
    "add_scalar": lambda a, s: a + s,
    "mul_scalar": lambda a, s: a * s,
    "rsub_scalar": lambda a, s: s - a,
    "rdiv_scalar": lambda a, s: s / a,
    "square": lambda a: a * a,
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "sum": _reduce(torch.sum),
    "mean": _reduce(torch.mean),
    "sum_all": torch.sum,
    "mean_all": torch.mean,
    "matmul": torch.matmul,
    "affine": torch.nn.functional.linear,
    "view": lambda a, shape: a.view(shape),
    "reshape": lambda a, shape: a.reshape(shape),
    "permute": lambda a, dims: a.permute(dims),
    "transpose": lambda a, d0, d1: a.transpose(d0, d1),
    "slice": _slice,
    "expand": lambda a, shape: a.expand(shape),
    "squeeze": lambda a, dim: a.squeeze(dim),
    "unsqueeze": lambda a, dim: a.unsqueeze(dim),
    "contiguous": lambda a: a.contiguous(),
    "clone": lambda a: a.clone(),
}

# Input kinds: n = standard normal, w = normal * 3 (reaches the flat parts of
# tanh and sigmoid), p = uniform in [0.5, 2) (for log and divisors),
# z = nonzero: +-[0.5, 2) (for divisors), r = normal with exact zeros (relu),
# a = away from zero: +-[0.2, 1) (relu's gradient check).
N, W, P, Z, R, A = "n", "w", "p", "z", "r", "a"

# (name, expression, [(shape, kind), ...])
CASES = [
    # -- arith: broadcasting binary ops, scalar forms, square --
    ("arith.add_same_shape", "add(x0, x1)", [([3, 4], N), ([3, 4], N)]),
    ("arith.add_row_vector", "add(x0, x1)", [([3, 4], N), ([4], N)]),
    ("arith.add_size1", "add(x0, x1)", [([2, 3], N), ([1], N)]),
    ("arith.add_0d", "add(x0, x1)", [([2, 3], N), ([], N)]),
    ("arith.add_7x1x5_3x1", "add(x0, x1)", [([7, 1, 5], N), ([3, 1], N)]),
    ("arith.add_column_row", "add(x0, x1)", [([4, 1], N), ([1, 5], N)]),
    ("arith.add_transposed", "add(transpose(x0, 0, 1), x1)", [([4, 3], N), ([3, 4], N)]),
    ("arith.add_self_transposed", "add(x0, transpose(x0, 0, 1))", [([4, 4], N)]),
    ("arith.sub_3x1_7x1x5", "sub(x0, x1)", [([3, 1], N), ([7, 1, 5], N)]),
    ("arith.sub_sliced", "sub(slice(x0, 1, 0, 8, 2), x1)", [([3, 8], N), ([3, 4], N)]),
    ("arith.sub_same_input", "sub(x0, x0)", [([2, 3], N)]),
    ("arith.mul_2x3x4_3x1", "mul(x0, x1)", [([2, 3, 4], N), ([3, 1], N)]),
    ("arith.mul_permuted", "mul(permute(x0, [2, 0, 1]), x1)", [([3, 4, 2], N), ([4], N)]),
    ("arith.mul_self", "mul(x0, x0)", [([3, 4], N)]),
    ("arith.mul_0d_0d", "mul(x0, x1)", [([], N), ([], N)]),
    ("arith.div_7x1x5_3x1", "div(x0, x1)", [([7, 1, 5], N), ([3, 1], Z)]),
    ("arith.div_5_4x5", "div(x0, x1)", [([5], N), ([4, 5], Z)]),
    ("arith.div_expanded", "div(expand(x0, [2, 3, 4]), x1)", [([3, 1], N), ([2, 3, 4], Z)]),
    ("arith.div_transposed_divisor", "div(x0, transpose(x1, 0, 1))", [([3, 2], N), ([2, 3], Z)]),
    ("arith.neg", "neg(x0)", [([2, 3], N)]),
    ("arith.neg_transposed", "neg(transpose(x0, 0, 1))", [([2, 3], N)]),
    ("arith.add_scalar", "add_scalar(x0, 2.5)", [([3, 4], N)]),
    ("arith.mul_scalar", "mul_scalar(x0, -1.5)", [([3, 4], N)]),
    ("arith.mul_scalar_0d", "mul_scalar(x0, 0.5)", [([], N)]),
    ("arith.rsub_scalar", "rsub_scalar(x0, 3.0)", [([3, 4], N)]),
    ("arith.rdiv_scalar", "rdiv_scalar(x0, 2.0)", [([3, 4], Z)]),
    ("arith.rdiv_scalar_sliced", "rdiv_scalar(slice(x0, 0, 0, 6, 2), -0.75)", [([6, 2], Z)]),
    ("arith.square", "square(x0)", [([3, 4], N)]),
    ("arith.square_transposed", "square(transpose(x0, 0, 1))", [([3, 4], N)]),
    # -- unary functions --
    ("unary.exp", "exp(x0)", [([3, 4], N)]),
    ("unary.exp_transposed", "exp(transpose(x0, 0, 1))", [([3, 4], N)]),
    ("unary.exp_0d", "exp(x0)", [([], N)]),
    ("unary.log", "log(x0)", [([3, 4], P)]),
    ("unary.log_sliced", "log(slice(x0, 1, 1, 5, 3))", [([3, 5], P)]),
    ("unary.tanh", "tanh(x0)", [([4, 5], W)]),
    ("unary.tanh_permuted", "tanh(permute(x0, [1, 2, 0]))", [([2, 3, 4], W)]),
    ("unary.sigmoid", "sigmoid(x0)", [([4, 5], W)]),
    ("unary.sigmoid_expanded", "sigmoid(expand(x0, [3, 4]))", [([4], W)]),
    ("unary.relu", "relu(x0)", [([4, 5], R)]),
    ("unary.relu_transposed", "relu(transpose(x0, 0, 1))", [([4, 5], R)]),
    ("unary.relu_0d", "relu(x0)", [([], N)]),
    # -- reductions --
    ("reduce.sum_dim0", "sum(x0, [0], 0)", [([3, 4], N)]),
    ("reduce.sum_dim1_keepdim", "sum(x0, [1], 1)", [([3, 4], N)]),
    ("reduce.sum_last_negative", "sum(x0, [-1], 0)", [([2, 3, 4], N)]),
    ("reduce.sum_middle_keepdim", "sum(x0, [1], 1)", [([2, 3, 4], N)]),
    ("reduce.sum_dims_0_2", "sum(x0, [0, 2], 0)", [([2, 3, 4], N)]),
    ("reduce.sum_dims_0_2_keepdim", "sum(x0, [0, 2], 1)", [([2, 3, 4], N)]),
    ("reduce.sum_dims_unordered", "sum(x0, [2, -3], 0)", [([2, 3, 4], N)]),
    ("reduce.sum_no_dims_is_all", "sum(x0, [], 0)", [([2, 3, 4], N)]),
    ("reduce.sum_no_dims_keepdim", "sum(x0, [], 1)", [([2, 3, 4], N)]),
    ("reduce.sum_all", "sum_all(x0)", [([2, 3, 4], N)]),
    ("reduce.sum_all_0d", "sum_all(x0)", [([], N)]),
    ("reduce.sum_transposed", "sum(transpose(x0, 0, 1), [0], 0)", [([3, 4], N)]),
    ("reduce.sum_expanded", "sum(expand(x0, [4, 3]), [0], 0)", [([1, 3], N)]),
    ("reduce.sum_long_column", "sum(x0, [0], 0)", [([257, 3], N)]),
    ("reduce.mean_dim1", "mean(x0, [1], 0)", [([3, 4], N)]),
    ("reduce.mean_dims_0_2_keepdim", "mean(x0, [0, 2], 1)", [([2, 3, 4], N)]),
    ("reduce.mean_no_dims_is_all", "mean(x0, [], 0)", [([2, 3, 4], N)]),
    ("reduce.mean_all", "mean_all(x0)", [([2, 3, 4], N)]),
    ("reduce.mean_all_size1", "mean_all(x0)", [([1], N)]),
    ("reduce.mean_sliced_keepdim", "mean(slice(x0, 0, 1, 6, 2), [1], 1)", [([6, 4], N)]),
    ("reduce.mean_permuted", "mean(permute(x0, [2, 0, 1]), [-1], 0)", [([2, 3, 4], N)]),
    # -- matmul (torch.matmul semantics) --
    ("matmul.vec_vec", "matmul(x0, x1)", [([5], N), ([5], N)]),
    ("matmul.vec_mat", "matmul(x0, x1)", [([4], N), ([4, 3], N)]),
    ("matmul.mat_vec", "matmul(x0, x1)", [([3, 4], N), ([4], N)]),
    ("matmul.mat_mat", "matmul(x0, x1)", [([3, 4], N), ([4, 5], N)]),
    ("matmul.row_col", "matmul(x0, x1)", [([1, 4], N), ([4, 1], N)]),
    ("matmul.col_row", "matmul(x0, x1)", [([4, 1], N), ([1, 3], N)]),
    ("matmul.transposed_lhs", "matmul(transpose(x0, 0, 1), x1)", [([4, 3], N), ([4, 5], N)]),
    ("matmul.transposed_rhs", "matmul(x0, transpose(x1, 0, 1))", [([3, 4], N), ([5, 4], N)]),
    (
        "matmul.transposed_both",
        "matmul(transpose(x0, 0, 1), transpose(x1, 0, 1))",
        [([4, 3], N), ([5, 4], N)],
    ),
    ("matmul.gram", "matmul(x0, transpose(x0, 0, 1))", [([3, 4], N)]),
    ("matmul.sliced_lhs", "matmul(slice(x0, 1, 0, 8, 2), x1)", [([3, 8], N), ([4, 2], N)]),
    ("matmul.batched", "matmul(x0, x1)", [([2, 3, 4], N), ([2, 4, 5], N)]),
    ("matmul.batched_mat", "matmul(x0, x1)", [([2, 3, 4], N), ([4, 5], N)]),
    ("matmul.mat_batched", "matmul(x0, x1)", [([3, 4], N), ([2, 4, 5], N)]),
    ("matmul.batch_broadcast", "matmul(x0, x1)", [([2, 1, 3, 4], N), ([5, 4, 6], N)]),
    ("matmul.batch_broadcast_size1", "matmul(x0, x1)", [([1, 3, 4], N), ([2, 4, 2], N)]),
    ("matmul.vec_batched", "matmul(x0, x1)", [([4], N), ([2, 4, 5], N)]),
    ("matmul.batched_vec", "matmul(x0, x1)", [([2, 3, 4], N), ([4], N)]),
    (
        "matmul.batched_transposed_lhs",
        "matmul(transpose(x0, -1, -2), x1)",
        [([2, 4, 3], N), ([2, 4, 5], N)],
    ),
    (
        "matmul.batched_transposed_rhs",
        "matmul(x0, transpose(x1, 1, 2))",
        [([2, 3, 4], N), ([2, 5, 4], N)],
    ),
    ("matmul.batched_permuted", "matmul(permute(x0, [1, 0, 2]), x1)", [([3, 2, 4], N), ([4, 5], N)]),
    ("matmul.expanded_batch", "matmul(expand(x0, [3, 2, 4]), x1)", [([2, 4], N), ([3, 4, 5], N)]),
    # -- views --
    ("view.reshape", "reshape(x0, [4, 3])", [([3, 4], N)]),
    ("view.reshape_infer", "reshape(x0, [-1, 6])", [([2, 3, 4], N)]),
    ("view.reshape_transposed", "reshape(transpose(x0, 0, 1), [12])", [([3, 4], N)]),
    ("view.reshape_to_0d", "reshape(x0, [])", [([1, 1], N)]),
    ("view.view", "view(x0, [2, 12])", [([2, 3, 4], N)]),
    ("view.view_split", "view(x0, [3, 2, 2])", [([3, 4], N)]),
    ("view.permute", "permute(x0, [2, 0, 1])", [([2, 3, 4], N)]),
    ("view.transpose", "transpose(x0, 0, 2)", [([2, 3, 4], N)]),
    ("view.transpose_negative", "transpose(x0, -1, -2)", [([2, 3, 4], N)]),
    ("view.slice_step", "slice(x0, 1, 1, 7, 2)", [([3, 8], N)]),
    ("view.slice_negative_start", "slice(x0, 0, -3, 100, 1)", [([5, 2], N)]),
    ("view.slice_step3_last_dim", "slice(x0, -1, 0, 10, 3)", [([2, 10], N)]),
    ("view.slice_of_slice", "slice(slice(x0, 0, 1, 6, 2), 1, 0, 5, 3)", [([6, 5], N)]),
    ("view.expand", "expand(x0, [2, 3, 4])", [([3, 1], N)]),
    ("view.expand_keep_size", "expand(x0, [-1, 4])", [([3, 1], N)]),
    ("view.expand_leading_dim", "expand(x0, [2, 3])", [([3], N)]),
    ("view.expand_0d", "expand(x0, [2, 2])", [([], N)]),
    ("view.squeeze", "squeeze(x0, 1)", [([3, 1, 4], N)]),
    ("view.squeeze_negative", "squeeze(x0, -1)", [([3, 4, 1], N)]),
    ("view.squeeze_not_size1", "squeeze(x0, 0)", [([3, 4], N)]),
    ("view.unsqueeze_front", "unsqueeze(x0, 0)", [([3, 4], N)]),
    ("view.unsqueeze_middle", "unsqueeze(x0, 1)", [([3, 4], N)]),
    ("view.unsqueeze_negative", "unsqueeze(x0, -1)", [([3, 4], N)]),
    ("view.contiguous_transposed", "contiguous(transpose(x0, 0, 1))", [([3, 4], N)]),
    ("view.contiguous_already", "contiguous(x0)", [([3, 4], N)]),
    ("view.clone_permuted", "clone(permute(x0, [1, 0, 2]))", [([2, 3, 2], N)]),
    (
        "view.chain",
        "sum(slice(permute(reshape(x0, [2, 3, 4]), [2, 1, 0]), 0, 1, 4, 2), [1], 0)",
        [([6, 4], N)],
    ),
    # -- compositions --
    ("chain.linear_relu", "relu(add(matmul(x0, x1), x2))", [([4, 3], N), ([3, 5], N), ([5], N)]),
    (
        "chain.mse",
        "mean_all(square(sub(matmul(x0, x1), x2)))",
        [([6, 3], N), ([3, 2], N), ([6, 2], N)],
    ),
    ("chain.softmax", "div(exp(x0), sum(exp(x0), [-1], 1))", [([3, 4], N)]),
    ("chain.log_sigmoid", "log(sigmoid(x0))", [([3, 4], W)]),
    ("chain.tanh_mlp", "matmul(tanh(matmul(x0, x1)), x2)", [([2, 3], N), ([3, 4], N), ([4], N)]),
    (
        "chain.attention_scores",
        "matmul(mul_scalar(matmul(x0, transpose(x1, -1, -2)), 0.5), x2)",
        [([2, 3, 4], N), ([2, 5, 4], N), ([2, 5, 2], N)],
    ),
    # -- affine (F.linear); last, so that adding them left earlier draws as they were --
    ("matmul.affine", "affine(x0, x1, x2)", [([3, 4], N), ([5, 4], N), ([5], N)]),
    ("matmul.affine_batched", "affine(x0, x1, x2)", [([2, 3, 4], N), ([5, 4], N), ([5], N)]),
    ("matmul.affine_vector", "affine(x0, x1, x2)", [([4], N), ([5, 4], N), ([5], N)]),
    ("matmul.affine_row", "affine(x0, x1, x2)", [([1, 6], N), ([3, 6], N), ([3], N)]),
    (
        "matmul.affine_permuted_input",
        "affine(permute(x0, [1, 0, 2]), x1, x2)",
        [([3, 2, 4], N), ([5, 4], N), ([5], N)],
    ),
    (
        "matmul.affine_sliced_weight",
        "affine(x0, slice(x1, 0, 2, 6, 1), slice(x2, 0, 2, 6, 1))",
        [([3, 4], N), ([8, 4], N), ([8], N)],
    ),
    # -- shapes once covered only by hand-written gradient checks; last too --
    ("arith.sub_same_shape", "sub(x0, x1)", [([2, 3], N), ([2, 3], N)]),
    ("arith.mul_same_shape", "mul(x0, x1)", [([2, 3], N), ([2, 3], N)]),
    ("arith.div_same_shape", "div(x0, x1)", [([2, 3], N), ([2, 3], Z)]),
    ("arith.div_numerator_broadcast", "div(x0, x1)", [([4, 1], N), ([3, 1, 5], Z)]),
    ("arith.mul_size1_left", "mul(x0, x1)", [([1], N), ([2, 3], N)]),
    ("arith.sub_0d_left", "sub(x0, x1)", [([], N), ([2, 3], N)]),
    ("arith.mul_0d", "mul(x0, x1)", [([2, 3], N), ([], N)]),
    ("arith.div_0d_divisor", "div(x0, x1)", [([2, 3], N), ([], Z)]),
    ("arith.sub_transposed", "sub(x0, transpose(x1, 0, 1))", [([2, 3], N), ([3, 2], N)]),
    ("arith.mul_transposed", "mul(transpose(x0, 0, 1), x1)", [([3, 2], N), ([2, 3], N)]),
    ("arith.add_self", "add(x0, x0)", [([2, 3], N)]),
    ("arith.div_self", "div(x0, x0)", [([2, 3], Z)]),
    ("unary.relu_away_from_zero", "relu(x0)", [([2, 4], A)]),
    ("reduce.mean_negative_dims_keepdim", "mean(x0, [-1, -3], 1)", [([2, 3, 4], N)]),
    ("reduce.sum_transposed_3d", "sum(transpose(x0, 0, 2), [1], 0)", [([2, 3, 4], N)]),
    ("matmul.batched4d_mat", "matmul(x0, x1)", [([2, 3, 2, 4], N), ([4, 3], N)]),
    ("matmul.batch_3_size1", "matmul(x0, x1)", [([3, 2, 4], N), ([1, 4, 5], N)]),
    ("matmul.affine_transposed_weight", "affine(x0, transpose(x1, 0, 1), x2)",
     [([3, 4], N), ([4, 5], N), ([5], N)]),
    ("view.reshape_transposed_3d", "reshape(transpose(x0, 0, 2), [4, -1])", [([2, 3, 4], N)]),
    ("view.slice_negative_start_step", "slice(x0, -2, -5, 6, 2)", [([6, 3], N)]),
    ("view.unsqueeze_transposed_last", "unsqueeze(transpose(x0, 0, 1), -1)", [([2, 3], N)]),
    ("view.clone_sliced", "clone(slice(x0, 1, 0, 4, 2))", [([3, 4], N)]),
]


def make_input(gen, shape, kind):
    if kind == N:
        return torch.randn(shape, generator=gen)
    if kind == W:
        return 3 * torch.randn(shape, generator=gen)
    if kind == P:
        return 0.5 + 1.5 * torch.rand(shape, generator=gen)
    if kind == Z:
        mag = 0.5 + 1.5 * torch.rand(shape, generator=gen)
        sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
        return mag * sign
    if kind == A:
        mag = 0.2 + 0.8 * torch.rand(shape, generator=gen)
        return torch.where(torch.rand(shape, generator=gen) < 0.5, -mag, mag)
    if kind == R:
        x = torch.randn(shape, generator=gen)
        x[torch.rand(shape, generator=gen) < 0.25] = 0.0
        return x
    raise ValueError(kind)


def gen_ops():
    gen = torch.Generator().manual_seed(1234)
    tensors, meta = {}, {
        "generator": "tests/golden/gen_golden.py",
        "torch": torch.__version__,
        "convention": "metadata NAME = expression over x0..; tensors "
        "NAME.in<i>, .out, .dout, .grad<i>; references in float64",
    }
    names = set()
    for name, expr, inputs in CASES:
        assert name not in names, name
        names.add(name)
        xs32 = [make_input(gen, shape, kind).float() for shape, kind in inputs]
        xs = [x.double().requires_grad_(True) for x in xs32]
        env = dict(OPS)
        env.update({"x%d" % i: x for i, x in enumerate(xs)})
        out = eval(expr, {"__builtins__": {}}, env)
        dout32 = torch.randn(out.shape, generator=gen).float()
        out.backward(dout32.double())
        key = name
        meta[key] = expr
        if any(kind == R for _, kind in inputs):
            meta[key + ".kink"] = "relu at the exact zeros of its input"
        for i, x in enumerate(xs32):
            tensors["%s.in%d" % (key, i)] = x
        tensors[key + ".out"] = out.detach().float()
        tensors[key + ".dout"] = dout32
        for i, x in enumerate(xs):
            g = x.grad if x.grad is not None else torch.zeros_like(x)
            tensors["%s.grad%d" % (key, i)] = g.float()
    path = os.path.join(HERE, "ops.safetensors")
    size = write_safetensors(path, tensors, meta)
    print("%s: %d cases, %d tensors, %d bytes" % (path, len(CASES), len(tensors), size))


def gen_io():
    tensors = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
        "i32": torch.tensor([-2, 0, 7, 2147483647], dtype=torch.int32),
        "bool": torch.tensor([True, False, True, True, False]),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "f16": torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16),
        "bf16": torch.tensor([1.0, 3.0], dtype=torch.bfloat16),
        "f64": torch.tensor([1.0, 2.0], dtype=torch.float64),
        "i64": torch.tensor([5, -6], dtype=torch.int64),
        "u8": torch.tensor([1, 2, 255], dtype=torch.uint8),
        # Non-ASCII names, written as \u escapes (a surrogate pair for U+1F600).
        "caf\u00e9 \"quoted\"": torch.tensor([1.0], dtype=torch.float32),
        "\U0001F600": torch.tensor([2.0], dtype=torch.float32),
    }
    meta = {"format": "pt", "note": "line\nbreak, tab\t, check \u2713"}
    path = os.path.join(HERE, "io.safetensors")
    size = write_safetensors(path, tensors, meta, ensure_ascii=True)
    print("%s: %d tensors, %d bytes" % (path, len(tensors), size))


if __name__ == "__main__":
    torch.manual_seed(1234)
    gen_ops()
    gen_io()
