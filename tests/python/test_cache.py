"""vidkv.Cache: round trips, attention against a float64 reference over dequantize, inputs."""
import threading

import numpy as np
import pytest

import vidkv
from conftest import (ATTENTION_TOLERANCE, QUANTIZED_ATTENTION_TOLERANCE, attention_error, random_kv,
                      realistic_query, reference_attention)

LAYERS, KV_HEADS, HEAD_DIM = 2, 2, 64


def make_cache(settings="fp16", q_heads=4, max_tokens=512, kv_heads=KV_HEADS, head_dim=HEAD_DIM):
    return vidkv.Cache(LAYERS, kv_heads, q_heads, head_dim, settings, max_tokens)


def test_presets_listed_and_described():
    names = vidkv.presets()
    assert "k1.5-v1.58" in names and "fp16" in names
    assert vidkv.describe("k1.5-v1.58").startswith("k1.5-v1.58:")


def test_fp16_prefill_and_appends_round_trip_exactly(rng):
    cache = make_cache("fp16")
    assert (cache.layers, cache.kv_heads, cache.q_heads, cache.head_dim, cache.max_tokens) == (2, 2, 4, 64, 512)
    seq = cache.create_sequence()
    k, v = random_kv(rng, 37, KV_HEADS, HEAD_DIM)
    cache.prefill(seq, 1, k, v)
    k1, v1 = random_kv(rng, 5, KV_HEADS, HEAD_DIM)
    for t in range(5):
        cache.append(seq, 1, k1[t], v1[t])
    assert cache.tokens(seq, 1) == 42 and cache.tokens(seq, 0) == 0
    dk, dv = cache.dequantize(seq, 1)
    assert dk.dtype == np.float16 and dk.shape == (42, KV_HEADS, HEAD_DIM)
    np.testing.assert_array_equal(dk, np.concatenate([k, k1]))
    np.testing.assert_array_equal(dv, np.concatenate([v, v1]))


def test_fp32_input_rounds_to_nearest_even_as_numpy(rng):
    cache = make_cache("fp16")
    seq = cache.create_sequence()
    k, v = random_kv(rng, 20, KV_HEADS, HEAD_DIM, dtype=np.float32)
    k[0, 0, :3] = [1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, -65519.0]  # ties and a value near the top
    cache.prefill(seq, 0, k, v)
    dk, dv = cache.dequantize(seq, 0)
    np.testing.assert_array_equal(dk, k.astype(np.float16))
    np.testing.assert_array_equal(dv, v.astype(np.float16))


@pytest.mark.parametrize("settings", ["fp16", "2bit", "kivi", "k1.5-v2", "k1.5-v1.58"])
@pytest.mark.parametrize("q_heads", [2, 8])
def test_attention_matches_float64_reference_over_dequantize(rng, settings, q_heads):
    cache = make_cache(settings, q_heads=q_heads)
    seq = cache.create_sequence()
    k, v = random_kv(rng, 150, KV_HEADS, HEAD_DIM)  # 128 quantized + 22 in the residual
    cache.prefill(seq, 0, k, v)
    q = realistic_query(rng, k, q_heads)
    tolerance = ATTENTION_TOLERANCE.get(settings, QUANTIZED_ATTENTION_TOLERANCE)
    checks = 0
    for step in range(110):  # crosses a residual flush at 128 residual tokens
        if step in (0, 105, 109):
            dk, dv = cache.dequantize(seq, 0)
            out = cache.attention(seq, 0, q)
            assert out.dtype == np.float32 and out.shape == (q_heads, HEAD_DIM)
            assert attention_error(out, reference_attention(q, dk, dv)) < tolerance
            checks += 1
        k1, v1 = random_kv(rng, 1, KV_HEADS, HEAD_DIM)
        cache.append(seq, 0, k1[0], v1[0])
    stats = cache.stats()
    assert stats["tokens"] == 260 and stats["sequences"] == 1
    if settings != "fp16":
        assert stats["segments"] == 2 and stats["quantized_tokens"] == 256 and stats["residual_tokens"] == 4
    assert checks == 3


@pytest.mark.parametrize("settings", ["fp16", "2bit", "k1.5-v1.58"])
@pytest.mark.parametrize("head_dim", [80, 112])
def test_head_dims_of_today_s_models(rng, settings, head_dim):
    """head_dim 80 and 112 (any multiple of 16 from 64 to 256): prefill, appends across a flush."""
    cache = make_cache(settings, q_heads=8, head_dim=head_dim)
    seq = cache.create_sequence()
    k, v = random_kv(rng, 150, KV_HEADS, head_dim)
    cache.prefill(seq, 0, k, v)
    k1, v1 = random_kv(rng, 110, KV_HEADS, head_dim)
    for t in range(110):
        cache.append(seq, 0, k1[t], v1[t])
    dk, dv = cache.dequantize(seq, 0)
    q = realistic_query(rng, dk, 8)
    out = cache.attention(seq, 0, q)
    assert out.shape == (8, head_dim)
    tolerance = ATTENTION_TOLERANCE.get(settings, QUANTIZED_ATTENTION_TOLERANCE)
    assert attention_error(out, reference_attention(q, dk, dv)) < tolerance
    if settings != "fp16":
        assert cache.stats()["quantized_tokens"] == 256


def test_head_dims_refused_name_the_rule():
    with pytest.raises((vidkv.Error, ValueError), match="head_dim 72"):
        make_cache("k1.5-v1.58", head_dim=72)
    # KIVI quantizes each token in groups of channels: head_dim 80 holds no whole groups of 32
    with pytest.raises((vidkv.Error, ValueError), match="head_dim 80 is not a multiple of group_size 32"):
        make_cache("kivi", head_dim=80)


@pytest.mark.parametrize("settings", ["fp16", "k1.5-v1.58"])
def test_extend_equals_appends_and_causal_attention_matches_reference(rng, settings):
    extended, appended = make_cache(settings), make_cache(settings)
    a, b = extended.create_sequence(), appended.create_sequence()
    k, v = random_kv(rng, 300, KV_HEADS, HEAD_DIM)
    for cache, seq in ((extended, a), (appended, b)):
        cache.prefill(seq, 0, k[:100], v[:100])
    extended.extend(a, 0, k[100:], v[100:])  # 4 + 200 residual tokens: a flush in the middle
    for t in range(100, 300):
        appended.append(b, 0, k[t], v[t])
    for x, y in zip(extended.dequantize(a, 0), appended.dequantize(b, 0)):
        np.testing.assert_array_equal(x, y)
    assert extended.stats()["segments"] == appended.stats()["segments"]
    dk, dv = extended.dequantize(a, 0)
    q = np.stack([realistic_query(rng, k, 4) for _ in range(30)])
    out = extended.attention_causal(a, 0, q)
    assert out.dtype == np.float32 and out.shape == (30, 4, HEAD_DIM)
    tolerance = ATTENTION_TOLERANCE.get(settings, QUANTIZED_ATTENTION_TOLERANCE)
    for i in range(30):
        visible = 300 - 30 + i + 1
        assert attention_error(out[i], reference_attention(q[i], dk[:visible], dv[:visible])) < tolerance
    with pytest.raises((vidkv.Error, ValueError)):
        extended.extend(a, 0, k[:0], v[:0])


@pytest.mark.parametrize("settings", ["k1.5-v1.58", "fp16"])
def test_batched_step_equals_per_sequence_calls(rng, settings):
    batched, single = make_cache(settings), make_cache(settings)
    # a 32-token prefill (one segment), then appends: residuals of 8, 68 and 127 tokens, the last
    # flushing (residual_length 128) in the batched step
    lengths = (40, 100, 159)
    data = [random_kv(rng, n + 1, KV_HEADS, HEAD_DIM) for n in lengths]
    ids_b = [batched.create_sequence() for _ in lengths]
    ids_s = [single.create_sequence() for _ in lengths]
    for (k, v), a, b, n in zip(data, ids_b, ids_s, lengths):
        for cache, seq in ((batched, a), (single, b)):
            cache.prefill(seq, 0, k[:32], v[:32])
            for t in range(32, n):
                cache.append(seq, 0, k[t], v[t])
    segments = batched.stats()["segments"]
    step_k = np.stack([k[n] for (k, _), n in zip(data, lengths)])
    step_v = np.stack([v[n] for (_, v), n in zip(data, lengths)])
    batched.append_batch(0, ids_b, step_k, step_v)
    for i, b in enumerate(ids_s):
        single.append(b, 0, step_k[i], step_v[i])
    if settings != "fp16":
        assert batched.stats()["segments"] == segments + 1  # the third sequence flushed
    for a, b in zip(ids_b, ids_s):
        for x, y in zip(batched.dequantize(a, 0), single.dequantize(b, 0)):
            np.testing.assert_array_equal(x, y)
    q = np.stack([realistic_query(rng, k, 4) for k, _ in data])
    out = batched.attention_batch(0, ids_b, q)
    assert out.dtype == np.float32 and out.shape == (len(lengths), 4, HEAD_DIM)
    for i, b in enumerate(ids_s):
        np.testing.assert_allclose(out[i], single.attention(b, 0, q[i]), rtol=1e-5, atol=1e-6)
    with pytest.raises((vidkv.Error, ValueError)):
        batched.attention_batch(0, [ids_b[0], ids_b[0]], q[:2])  # a sequence twice
    with pytest.raises(ValueError):
        batched.append_batch(0, ids_b, step_k[:2], step_v)  # k for 2 sequences, 3 named


def test_quantized_values_stay_near_the_input(rng):
    cache = make_cache("2bit")
    seq = cache.create_sequence()
    k, v = random_kv(rng, 64, KV_HEADS, HEAD_DIM)
    cache.prefill(seq, 0, k, v)
    dk, dv = cache.dequantize(seq, 0)
    # 2-bit per channel in groups of 32 tokens: each value within half a step of its group's range.
    for x, d in ((k, dk), (v, dv)):
        x = x.astype(np.float64).reshape(2, 32, KV_HEADS, HEAD_DIM)
        step = (x.max(axis=1) - x.min(axis=1)) / 3
        err = np.abs(d.astype(np.float64).reshape(x.shape) - x).max(axis=1)
        assert (err <= step / 2 * 1.01 + 1e-2).all()


def test_stats_of_vidkv_keys(rng):
    cache = make_cache("k1.5-v1.58")
    seq = cache.create_sequence()
    k, v = random_kv(rng, 128, KV_HEADS, HEAD_DIM)
    cache.prefill(seq, 1, k, v)
    s = cache.stats()
    assert s["quantized_tokens"] == 128 and s["segments"] == 1 and s["residual_tokens"] == 0
    assert 1.0 < s["key_bits"] < 3.0 and 1.58 < s["value_bits"] < 3.0
    assert s["keys"]["total"] == sum(s["keys"][p] for p in ("codes", "scales", "mins", "maps"))
    assert s["fp16_equivalent_bytes"] == 128 * KV_HEADS * HEAD_DIM * 2 * 2
    assert s["policies"]["vidkv"]["heads"] == LAYERS * KV_HEADS


def test_semantic_token_protection_prefill(rng):
    cache = make_cache("k1.5-v1.58-stp")
    seq = cache.create_sequence()
    k, v = random_kv(rng, 96, KV_HEADS, HEAD_DIM)
    with pytest.raises(vidkv.Error):
        cache.prefill(seq, 0, k, v)  # an STP cache needs STP input
    stp = vidkv.StpInput(first_visual=0, visual_tokens=96, scores=rng.random(96).tolist())
    cache.prefill(seq, 0, k, v, stp=stp)
    q = realistic_query(rng, k, 4)
    dk, dv = cache.dequantize(seq, 0)
    assert attention_error(cache.attention(seq, 0, q), reference_attention(q, dk, dv)) < QUANTIZED_ATTENTION_TOLERANCE
    assert cache.stats()["values"]["maps"] > 0


class ArrayLike:
    """Not an ndarray: only __array__."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None):
        return self.array if dtype is None else self.array.astype(dtype)


def test_array_protocol_and_non_contiguous_inputs(rng):
    cache = make_cache("fp16")
    a, b = cache.create_sequence(), cache.create_sequence()
    k, v = random_kv(rng, 10, KV_HEADS, HEAD_DIM)
    cache.prefill(a, 0, ArrayLike(k), ArrayLike(v))
    # The same values through a transposed (non-contiguous) view.
    kt = np.ascontiguousarray(k.transpose(2, 1, 0)).transpose(2, 1, 0)
    assert not kt.flags.c_contiguous
    cache.prefill(b, 0, kt, v[:, :, :])
    for s in (a, b):
        dk, _ = cache.dequantize(s, 0)
        np.testing.assert_array_equal(dk, k)
    q = rng.standard_normal((4, HEAD_DIM)).astype(np.float16)  # fp16 q widened exactly
    np.testing.assert_array_equal(cache.attention(a, 0, q), cache.attention(a, 0, q.astype(np.float32)))


def test_pytorch_cpu_tensors(rng):
    torch = pytest.importorskip("torch")
    cache = make_cache("k1.5-v1.58")
    a, b = cache.create_sequence(), cache.create_sequence()
    k, v = random_kv(rng, 40, KV_HEADS, HEAD_DIM)
    cache.prefill(a, 0, k, v)
    cache.prefill(b, 0, torch.from_numpy(k), torch.from_numpy(v).float())
    q = torch.randn(4, HEAD_DIM, generator=torch.Generator().manual_seed(1))
    for x, y in zip(cache.dequantize(a, 0), cache.dequantize(b, 0)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(cache.attention(a, 0, q), cache.attention(b, 0, q.numpy()))
    # What NumPy cannot hold is refused naming the argument and why.
    with pytest.raises(ValueError, match=r"^q: expected a NumPy array, .* got Tensor \(RuntimeError: .*dtype"):
        cache.attention(a, 0, q.bfloat16())
    with pytest.raises(ValueError, match=r"^q: .*detach"):
        cache.attention(a, 0, q.clone().requires_grad_())
    assert cache.validation_messages() == []


def test_sequences_are_independent_and_freed(rng):
    cache = make_cache("k1.5-v2")
    a, b = cache.create_sequence(), cache.create_sequence()
    assert cache.sequence_ids() == [a, b]
    k, v = random_kv(rng, 64, KV_HEADS, HEAD_DIM)
    cache.prefill(a, 0, k, v)
    assert cache.tokens(b, 0) == 0
    cache.free_sequence(a)
    assert not cache.has_sequence(a) and cache.has_sequence(b)
    assert cache.stats()["tokens"] == 0


def test_caches_in_threads_give_the_same_results(rng):
    k, v = random_kv(rng, 200, KV_HEADS, HEAD_DIM)
    q = rng.standard_normal((4, HEAD_DIM)).astype(np.float32)

    def run(results, index):
        cache = make_cache("k1.5-v1.58")
        seq = cache.create_sequence()
        cache.prefill(seq, 0, k, v)
        results[index] = cache.attention(seq, 0, q)

    results = [None] * 3
    threads = [threading.Thread(target=run, args=(results, i)) for i in range(2)]
    for t in threads:
        t.start()
    run(results, 2)
    for t in threads:
        t.join()
    for r in results[:2]:
        np.testing.assert_array_equal(r, results[2])


@pytest.mark.parametrize("settings", ["k1.5-v1.58", "fp16"])
def test_fork_and_truncate(rng, settings):
    cache = make_cache(settings)
    seq = cache.create_sequence()
    k, v = random_kv(rng, 150, KV_HEADS, HEAD_DIM)  # 128 quantized + 22 in the residual
    for layer in range(LAYERS):
        cache.prefill(seq, layer, k, v)
    dk, dv = cache.dequantize(seq, 1)
    q = realistic_query(rng, k, 4)
    out = cache.attention(seq, 1, q)
    fork = cache.fork(seq)
    assert fork != seq and cache.tokens(fork, 1) == 150
    cache.free_sequence(seq)
    np.testing.assert_array_equal(cache.attention(fork, 1, q), out)
    fk, fv = cache.dequantize(fork, 1)
    np.testing.assert_array_equal(fk, dk)
    cache.truncate(fork, 100)  # inside the segment: its tail is masked
    fk, fv = cache.dequantize(fork, 1)
    np.testing.assert_array_equal(fk, dk[:100])
    np.testing.assert_array_equal(fv, dv[:100])
    # The float64 reference over the kept (dequantized, fp16) tokens, within the fp16 rounding
    # of the decode.
    assert attention_error(cache.attention(fork, 1, q), reference_attention(q, fk, fv)) < 1e-2
    with pytest.raises(vidkv.Error, match="it holds 100"):
        cache.truncate(fork, 101)
    with pytest.raises(vidkv.Error, match=f"unknown sequence {seq}"):
        cache.fork(seq)
