#!/usr/bin/python3
# Writes the .npy fixtures of tests/test_npy.cpp with real NumPy (Debian 12: apt-get install
# python3-numpy; run with /usr/bin/python3). The files are committed, so the tests need no Python.
# Element i (flat, C order) of every array is value(i) below, which the test recomputes.
import numpy as np


def value(i):
    # Exact in fp16 and fp32: multiples of 1/8 within +-6.5, a few negative zeros and one large value.
    if i % 11 == 3:
        return -0.0
    if i == 7:
        return 1000.0
    return ((i * 37) % 105 - 52) / 8.0


def array(shape, dtype):
    n = int(np.prod(shape))
    return np.array([value(i) for i in range(n)], dtype=np.float64).reshape(shape).astype(dtype)


np.save("f16_5x2x4.npy", array((5, 2, 4), np.float16))          # version 1.0, '<f2'
np.save("f32_3x2x8.npy", array((3, 2, 8), np.float32))          # version 1.0, '<f4'
with open("f32_v2_4x1x8.npy", "wb") as f:
    np.lib.format.write_array(f, array((4, 1, 8), np.float32), version=(2, 0))
with open("f16_v3_2x3x8.npy", "wb") as f:
    np.lib.format.write_array(f, array((2, 3, 8), np.float16), version=(3, 0))
# Refused, each for one reason the test names:
np.save("bad_fortran_2x3x4.npy", np.asfortranarray(array((2, 3, 4), np.float32)))
np.save("bad_bigendian_2x2x2.npy", array((2, 2, 2), ">f4"))
np.save("bad_2d_4x8.npy", array((4, 8), np.float32))
np.save("bad_float64_2x2x2.npy", array((2, 2, 2), np.float64))
np.save("bad_int32_2x2x2.npy", array((2, 2, 2), np.float32).astype(np.int32))
print("numpy", np.__version__)
