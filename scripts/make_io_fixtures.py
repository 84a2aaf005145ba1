#!/usr/bin/env python3
"""Write the small reference files tests/test_safetensors.c and tests/test_npy.c read back:
a .safetensors file made by the safetensors package (F32, F16, BF16, I64, a scalar, a "bert."
prefixed name, metadata) and .npy files made by numpy (format versions 1.0 and 2.0).
The expected values are spelled out in the C tests; rerun this only to regenerate them."""
import os

import numpy as np
import torch
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "tests", "fixtures", "io")
os.makedirs(out, exist_ok=True)

inf, nan = float("inf"), float("nan")
tensors = {
    "a": (torch.arange(6, dtype=torch.float32) * 0.5 - 1.0).reshape(2, 3),
    # normal, max, smallest normal, smallest subnormal, infinities, nan, negative zero
    "h": torch.tensor([1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24, inf, -inf, nan, -0.0,
                       0.333251953125], dtype=torch.float16),
    # bfloat16: max finite, smallest subnormal (2^-133), infinities, nan, negative zero
    "b": torch.tensor([1.0, -3.140625, 3.3895313892515355e38, 2.0**-133, inf, nan, -0.0,
                       0.00099945068359375], dtype=torch.bfloat16),
    "bert.pooler.dense.bias": torch.tensor([0.25, -0.5, 0.75, -1.0], dtype=torch.float32),
    "pos": torch.arange(5, dtype=torch.int64).reshape(1, 5),
    "scalar": torch.tensor(7.0, dtype=torch.float32),
}
save_file(tensors, os.path.join(out, "py_mixed.safetensors"), metadata={"format": "pt"})

m = (np.arange(12, dtype=np.float32) / 4).reshape(3, 4)
np.save(os.path.join(out, "py_matrix.npy"), m)
with open(os.path.join(out, "py_matrix_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, m, version=(2, 0))
