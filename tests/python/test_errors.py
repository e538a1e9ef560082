"""Bad input: ValueError naming the argument and the shape expected for arrays; vidkv.Error with
its kind for what the library refuses; the cache unchanged after each."""
import numpy as np
import pytest

import vidkv
from conftest import random_kv

KV_HEADS, HEAD_DIM = 2, 64


@pytest.fixture
def cache():
    return vidkv.Cache(2, KV_HEADS, 4, HEAD_DIM, "k1.5-v1.58", 256)


def held(cache, seq):
    k, v = cache.dequantize(seq, 0)
    return k.copy(), v.copy(), cache.stats()


def assert_unchanged(cache, seq, before):
    k, v, stats = held(cache, seq)
    np.testing.assert_array_equal(k, before[0])
    np.testing.assert_array_equal(v, before[1])
    assert stats == before[2]


def test_wrong_dtype_names_argument_and_shape(cache, rng):
    seq = cache.create_sequence()
    k, v = random_kv(rng, 8, KV_HEADS, HEAD_DIM)
    with pytest.raises(ValueError, match=r"^k: dtype must be float16 or float32, got float64 \(shape "
                                         r"\[tokens, kv_heads=2, head_dim=64\]\)"):
        cache.prefill(seq, 0, k.astype(np.float64), v)
    with pytest.raises(ValueError, match=r"^v: dtype must be float16 or float32, got int32"):
        cache.prefill(seq, 0, k, v.astype(np.int32))
    with pytest.raises(ValueError, match=r"^q: dtype must be float16 or float32"):
        cache.attention(seq, 0, np.zeros((4, HEAD_DIM), np.int64))
    assert cache.tokens(seq, 0) == 0


def test_wrong_shape_names_argument_and_shape(cache, rng):
    seq = cache.create_sequence()
    k, v = random_kv(rng, 8, KV_HEADS, HEAD_DIM)
    with pytest.raises(ValueError, match=r"^k: expected shape \[tokens, kv_heads=2, head_dim=64\], got \(8, 3, 64\)$"):
        cache.prefill(seq, 0, np.zeros((8, 3, HEAD_DIM), np.float16), v)
    with pytest.raises(ValueError, match=r"^v: expected shape \[tokens=8, kv_heads=2, head_dim=64\], got \(7, 2, 64\)"):
        cache.prefill(seq, 0, k, v[:7])
    with pytest.raises(ValueError, match=r"^k: expected shape \[tokens, kv_heads=2, head_dim=64\], got \(0, 2, 64\)"):
        cache.prefill(seq, 0, k[:0], v[:0])
    with pytest.raises(ValueError, match=r"^k: expected shape \[kv_heads=2, head_dim=64\], got \(1, 2, 64\)"):
        cache.append(seq, 0, k[:1], v[:1])
    with pytest.raises(ValueError, match=r"^q: expected shape \[q_heads=4, head_dim=64\], got \(64,\)"):
        cache.attention(seq, 0, np.zeros(HEAD_DIM, np.float32))
    with pytest.raises(ValueError, match=r"^k: dtype must be float16 or float32, got object"):
        cache.prefill(seq, 0, object(), v)

    class Unreadable:
        def __array__(self, dtype=None):
            raise TypeError("no data here")

    with pytest.raises(ValueError, match=r"^k: expected a NumPy array, .* got Unreadable \(TypeError: no data here\)"):
        cache.prefill(seq, 0, Unreadable(), v)
    assert cache.tokens(seq, 0) == 0


def test_library_errors_carry_their_kind_and_leave_the_cache_as_before(cache, rng):
    seq = cache.create_sequence()
    k, v = random_kv(rng, 40, KV_HEADS, HEAD_DIM)
    cache.prefill(seq, 0, k, v)
    before = held(cache, seq)
    with pytest.raises(vidkv.Error) as e:
        cache.prefill(seq, 0, k, v)  # twice
    assert isinstance(e.value, Exception) and e.value.kind == "invalid_argument"
    assert str(e.value) == "invalid_argument: " + e.value.message
    assert_unchanged(cache, seq, before)

    with pytest.raises(vidkv.Error) as e:
        cache.attention(seq + 7, 0, np.zeros((4, HEAD_DIM), np.float32))
    assert e.value.kind == "invalid_argument" and "sequence" in e.value.message

    with pytest.raises(vidkv.Error) as e:
        cache.dequantize(seq, 2)
    assert e.value.kind == "invalid_argument" and "layer" in e.value.message

    bad = k[0].copy()
    bad[1, 7] = np.nan
    with pytest.raises(vidkv.Error, match="NaN/Inf") as e:
        cache.append(seq, 0, bad, v[0])
    assert e.value.kind == "invalid_argument" and "head 1, channel 7" in e.value.message
    assert_unchanged(cache, seq, before)

    with pytest.raises(vidkv.Error) as e:
        cache.prefill(seq, 1, np.zeros((300, KV_HEADS, HEAD_DIM), np.float16), np.zeros((300, KV_HEADS, HEAD_DIM), np.float16))
    assert e.value.kind == "invalid_argument"  # over max_tokens
    assert cache.tokens(seq, 1) == 0


def test_bad_settings_geometry_and_device():
    with pytest.raises(vidkv.Error, match="k9-v9") as e:
        vidkv.Cache(1, 2, 4, 64, "k9-v9", 64)
    assert e.value.kind == "invalid_argument"
    with pytest.raises(vidkv.Error) as e:
        vidkv.Cache(1, 2, 4, 100, "fp16", 64)
    assert e.value.kind == "invalid_argument" and "head_dim" in e.value.message
    with pytest.raises(vidkv.Error) as e:
        vidkv.Cache(1, 2, 4, 64, "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 1.58], 'q_group_size': 48}", 64)
    assert e.value.kind == "bad_group_size"
    with pytest.raises(ValueError, match="settings"):
        vidkv.Cache(1, 2, 4, 64, 3, 64)
    with pytest.raises(ValueError, match="device"):
        vidkv.Cache(1, 2, 4, 64, "fp16", 64, device=1.5)
    with pytest.raises(vidkv.Error) as e:
        vidkv.Cache(1, 2, 4, 64, "fp16", 64, device="no such device anywhere")
    assert e.value.kind == "no_device"


def test_configuration_dict_and_ignored_keys_warn():
    config = {"backend": "QuantizedCacheVLM", "nbits": [1.5, 1.58], "q_group_size": 32, "residual_length": 128,
              "axis_key": -1, "axis_value": -1}
    assert vidkv.Cache(1, 2, 4, 64, config, 64).settings == "k1.5-v1.58"
    with pytest.warns(UserWarning, match="compute_dtype"):
        vidkv.Cache(1, 2, 4, 64, dict(config, compute_dtype="float16"), 64)
