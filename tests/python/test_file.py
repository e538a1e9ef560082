"""Saved caches: save and load back (bit for bit), load_sequences, damaged and missing files."""
import numpy as np
import pytest

import vidkv
from conftest import random_kv

KV_HEADS, HEAD_DIM = 2, 64


def filled_cache(rng, settings="k1.5-v1.58"):
    cache = vidkv.Cache(2, KV_HEADS, 4, HEAD_DIM, settings, 512)
    seqs = [cache.create_sequence() for _ in range(2)]
    for s, tokens in zip(seqs, (150, 70)):
        for layer in range(2):
            k, v = random_kv(rng, tokens, KV_HEADS, HEAD_DIM)
            cache.prefill(s, layer, k, v)
    return cache, seqs


def same_contents(a, sa, b, sb, q):
    for layer in range(2):
        assert a.tokens(sa, layer) == b.tokens(sb, layer)
        for x, y in zip(a.dequantize(sa, layer), b.dequantize(sb, layer)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(a.attention(sa, layer, q), b.attention(sb, layer, q))


@pytest.mark.parametrize("settings", ["k1.5-v1.58", "kivi", "fp16"])
def test_saved_cache_loads_back_bit_for_bit(tmp_path, rng, settings):
    cache, seqs = filled_cache(rng, settings)
    path = str(tmp_path / "video.vkv")
    cache.save(path)
    loaded = vidkv.Cache.load(path)
    assert loaded.sequence_ids() == seqs and loaded.settings == cache.settings and loaded.max_tokens == 512
    assert loaded.stats() == cache.stats()
    q = rng.standard_normal((4, HEAD_DIM)).astype(np.float32)
    for s in seqs:
        same_contents(cache, s, loaded, s, q)
    # Later appends (across a flush for the 150-token sequence) agree too.
    for _ in range(110):
        k, v = random_kv(rng, 1, KV_HEADS, HEAD_DIM)
        cache.append(seqs[0], 1, k[0], v[0])
        loaded.append(seqs[0], 1, k[0], v[0])
    same_contents(cache, seqs[0], loaded, seqs[0], q)


def test_one_sequence_saved_and_added_to_another_cache(tmp_path, rng):
    cache, seqs = filled_cache(rng)
    path = str(tmp_path / "one.vkv")
    cache.save(path, sequence=seqs[1])
    other = vidkv.Cache(2, KV_HEADS, 4, HEAD_DIM, "k1.5-v1.58", 512)
    first = other.create_sequence()
    ids = other.load_sequences(path)
    assert len(ids) == 1 and ids[0] != first
    same_contents(cache, seqs[1], other, ids[0], rng.standard_normal((4, HEAD_DIM)).astype(np.float32))


def test_sequence_bytes_move_between_caches(tmp_path, rng):
    cache, seqs = filled_cache(rng)
    data = cache.serialize_sequence(seqs[0])
    assert isinstance(data, bytes)
    path = str(tmp_path / "same.vkv")
    cache.save(path, sequence=seqs[0])
    with open(path, "rb") as f:
        assert f.read() == data  # the bytes are the saved-cache format
    other = vidkv.Cache(2, KV_HEADS, 4, HEAD_DIM, "k1.5-v1.58", 512)
    moved = other.deserialize_sequence(data)
    same_contents(cache, seqs[0], other, moved, rng.standard_normal((4, HEAD_DIM)).astype(np.float32))
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    with pytest.raises(vidkv.Error) as e:
        other.deserialize_sequence(bytes(damaged))
    assert e.value.kind == "corrupt_data" and "sequence bytes" in str(e.value)
    assert other.sequence_ids() == [moved]
    with pytest.raises(vidkv.Error) as e:
        cache.serialize_sequence(999)
    assert "unknown sequence 999" in str(e.value)


def test_damaged_missing_and_mismatched_files(tmp_path, rng):
    cache, _ = filled_cache(rng)
    path = tmp_path / "c.vkv"
    cache.save(str(path))
    data = bytearray(path.read_bytes())
    data[100] ^= 0x10
    damaged = tmp_path / "damaged.vkv"
    damaged.write_bytes(bytes(data))
    with pytest.raises(vidkv.Error) as e:
        vidkv.Cache.load(str(damaged))
    assert e.value.kind == "corrupt_data"
    with pytest.raises(vidkv.Error) as e:
        vidkv.Cache.load(str(tmp_path / "missing.vkv"))
    assert e.value.kind == "io_error"
    other = vidkv.Cache(2, KV_HEADS, 4, HEAD_DIM, "kivi", 512)
    with pytest.raises(vidkv.Error) as e:
        other.load_sequences(str(path))
    assert e.value.kind == "invalid_argument" and other.sequence_ids() == []
