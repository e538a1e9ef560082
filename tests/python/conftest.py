"""Shared fixtures: the validation layer is on (unless VIDKV_VALIDATION says otherwise) and every
test fails on any validation message, as the C++ tests do."""
import os

os.environ.setdefault("VIDKV_VALIDATION", "1")  # read when the first device context is made

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vidkv  # noqa: E402


@pytest.fixture(autouse=True)
def no_validation_messages():
    before = len(vidkv.validation_messages())
    yield
    assert vidkv.validation_messages()[before:] == []


@pytest.fixture
def rng(request):
    """Fresh random inputs each run; the seed is printed on failure, VIDKV_TEST_SEED replays it."""
    seed = int(os.environ.get("VIDKV_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"seed {seed} (set VIDKV_TEST_SEED to replay)")
    return np.random.default_rng(seed)


def random_kv(rng, tokens, kv_heads, head_dim, dtype=np.float16):
    """K with a few large channels (as real keys have), V plain; [tokens, kv_heads, head_dim]."""
    k = rng.standard_normal((tokens, kv_heads, head_dim)).astype(np.float32)
    k[:, :, rng.choice(head_dim, 4, replace=False)] *= 8
    v = rng.standard_normal((tokens, kv_heads, head_dim)).astype(np.float32)
    return k.astype(dtype), v.astype(dtype)


def realistic_query(rng, k, q_heads):
    """A random q [q_heads, D] scaled so that its scores over k have a standard deviation of 2 (as
    the C++ tests' realistic_query): softmax neither uniform nor one-hot."""
    dim = k.shape[2]
    q = rng.standard_normal((q_heads, dim))
    group = q_heads // k.shape[1]
    for h in range(q_heads):
        scores = k[:, h // group, :].astype(np.float64) @ q[h] / np.sqrt(dim)
        q[h] *= 2.0 / max(scores.std(), 1e-6)
    return q.astype(np.float32)


# Attention read from the packed cache against the float64 reference over dequantize(): the
# kernel uses the exact decoded values, dequantize() rounds them to fp16, and the rounding of the
# large key channels moves the reference's scores (worst seen: 2.3e-3 over 120 random cases of
# the quantized presets; fp16 1.5e-6). The C++ tests compare with the exact decode at 1e-3.
# Quantization itself changes the output by far more than these bounds.
ATTENTION_TOLERANCE = {"fp16": 1e-3}
QUANTIZED_ATTENTION_TOLERANCE = 5e-3


def reference_attention(q, k, v, scale=0.0):
    """float64 decode attention of q [q_heads, D] over k, v [tokens, kv_heads, D]; query head h
    reads KV head h // (q_heads / kv_heads)."""
    q = np.asarray(q, np.float64)
    k = np.asarray(k, np.float64)
    v = np.asarray(v, np.float64)
    q_heads, dim = q.shape
    group = q_heads // k.shape[1]
    scale = scale or 1.0 / np.sqrt(dim)
    out = np.empty((q_heads, dim))
    for h in range(q_heads):
        scores = k[:, h // group, :] @ q[h] * scale
        weights = np.exp(scores - scores.max())
        out[h] = weights @ v[:, h // group, :] / weights.sum()
    return out


def attention_error(out, ref):
    """Worst over heads of max |out - ref| / max |ref| (the C++ tests' measure)."""
    out = np.asarray(out, np.float64)
    assert np.isfinite(out).all()
    return max(np.abs(out[h] - ref[h]).max() / max(np.abs(ref[h]).max(), 1e-30) for h in range(ref.shape[0]))
