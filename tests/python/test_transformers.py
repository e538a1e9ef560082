"""vidkv.transformers.VidKVCache against transformers' documented Cache interface, driven by a
small random attention model in PyTorch (transformers itself is not needed)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from vidkv.transformers import VidKVCache  # noqa: E402

import vidkv  # noqa: E402
from conftest import QUANTIZED_ATTENTION_TOLERANCE, attention_error  # noqa: E402

HIDDEN, Q_HEADS, KV_HEADS, HEAD_DIM, LAYERS, BATCH = 96, 4, 2, 64, 2, 2


def attend(q, k, v):
    """Causal attention of the last q.shape[2] positions: q [B, Hq, T, D], k/v [B, Hkv, L, D]."""
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)  # transformers' repeat_kv
    v = v.repeat_interleave(groups, dim=1)
    t, length = q.shape[2], k.shape[2]
    scores = q @ k.transpose(2, 3) / math.sqrt(q.shape[3])
    future = torch.arange(length)[None, :] > torch.arange(length - t, length)[:, None]
    scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class TinyAttention(torch.nn.Module):
    def __init__(self, layer_idx, generator):
        super().__init__()
        self.layer_idx = layer_idx
        self.proj = [torch.randn(HIDDEN, n * HEAD_DIM, generator=generator) / math.sqrt(HIDDEN)
                     for n in (Q_HEADS, KV_HEADS, KV_HEADS)]
        self.out = torch.randn(Q_HEADS * HEAD_DIM, HIDDEN, generator=generator) / math.sqrt(Q_HEADS * HEAD_DIM)

    def heads(self, x, w, n):
        return (x @ w).view(x.shape[0], x.shape[1], n, HEAD_DIM).transpose(1, 2)

    def forward(self, x, cache, checks):
        q = self.heads(x, self.proj[0], Q_HEADS)
        k = self.heads(x, self.proj[1], KV_HEADS)
        v = self.heads(x, self.proj[2], KV_HEADS)
        keys, values = cache.update(k, v, self.layer_idx)
        assert keys.dtype == x.dtype and keys.shape == (BATCH, KV_HEADS, cache.get_seq_length(self.layer_idx), HEAD_DIM)
        out = attend(q, keys, values)
        # The same layer over the vidkv cache's own decode of each sequence: identical.
        decoded = [cache.cache.dequantize(s, self.layer_idx) for s in cache.sequences]
        dk = torch.stack([torch.from_numpy(k_).transpose(0, 1) for k_, _ in decoded]).to(x.dtype)
        dv = torch.stack([torch.from_numpy(v_).transpose(0, 1) for _, v_ in decoded]).to(x.dtype)
        assert torch.equal(attend(q, dk, dv), out)
        checks["same"] += 1
        if q.shape[2] == 1:  # decode: attention straight from the packed cache agrees (conftest's tolerance)
            packed = cache.attention(q, self.layer_idx)
            assert packed.shape == q.shape and packed.dtype == q.dtype
            for b in range(BATCH):
                ref = attend(q[b:b + 1].double(), dk[b:b + 1].double(), dv[b:b + 1].double())[0, :, 0]
                assert attention_error(packed[b, :, 0].numpy(), ref.numpy()) < QUANTIZED_ATTENTION_TOLERANCE
            checks["packed"] += 1
        b, h, t, d = out.shape
        return out.transpose(1, 2).reshape(b, t, h * d) @ self.out


def run_model(settings, prompt, steps, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    layers = [TinyAttention(i, generator) for i in range(LAYERS)]
    cache = VidKVCache(settings, LAYERS, KV_HEADS, Q_HEADS, HEAD_DIM, max_tokens=512, batch_size=BATCH)
    checks = {"same": 0, "packed": 0}
    x = torch.randn(BATCH, prompt, HIDDEN, generator=generator).to(dtype)
    outputs = []
    for step in range(steps + 1):
        for layer in layers:
            x = layer(x, cache, checks)
        outputs.append(x[:, -1:])
        x = x[:, -1:] / x[:, -1:].norm(dim=-1, keepdim=True) * math.sqrt(HIDDEN)  # the next token's input
        assert cache.get_seq_length() == prompt + step
        assert cache.get_seq_length(LAYERS - 1) == prompt + step
    assert checks == {"same": LAYERS * (steps + 1), "packed": LAYERS * steps}
    return torch.cat(outputs, dim=1), cache


@pytest.mark.parametrize("settings", ["k1.5-v1.58", "kivi", "fp16"])
def test_prefill_and_decode_steps(settings):
    out, cache = run_model(settings, prompt=45, steps=4)
    assert torch.isfinite(out).all()
    assert len(cache) == LAYERS and cache.stats()["sequences"] == BATCH


def test_fp16_settings_match_unquantized_attention():
    """With the fp16 preset the cache only rounds K and V to fp16: the model's output stays within
    fp16 rounding of a cache-free run."""
    out, _ = run_model("fp16", prompt=20, steps=3)

    class PlainCache:
        def __init__(self):
            self.kv = {}

        def update(self, k, v, layer_idx):
            k, v = k.half().float(), v.half().float()
            if layer_idx in self.kv:
                k = torch.cat([self.kv[layer_idx][0], k], dim=2)
                v = torch.cat([self.kv[layer_idx][1], v], dim=2)
            self.kv[layer_idx] = (k, v)
            return k, v

    generator = torch.Generator().manual_seed(0)
    layers = [TinyAttention(i, generator) for i in range(LAYERS)]
    x = torch.randn(BATCH, 20, HIDDEN, generator=generator)
    plain, reference = PlainCache(), []
    for _ in range(4):
        for layer in layers:
            q = layer.heads(x, layer.proj[0], Q_HEADS)
            k, v = plain.update(layer.heads(x, layer.proj[1], KV_HEADS), layer.heads(x, layer.proj[2], KV_HEADS),
                                layer.layer_idx)
            o = attend(q, k, v)
            x = o.transpose(1, 2).reshape(BATCH, -1, Q_HEADS * HEAD_DIM) @ layer.out
        reference.append(x[:, -1:])
        x = x[:, -1:] / x[:, -1:].norm(dim=-1, keepdim=True) * math.sqrt(HIDDEN)
    torch.testing.assert_close(out, torch.cat(reference, dim=1), rtol=1e-5, atol=1e-5)


def test_half_precision_inputs_come_back_in_their_dtype():
    cache = VidKVCache("k1.5-v1.58", 1, KV_HEADS, Q_HEADS, HEAD_DIM, max_tokens=128)
    k, v = torch.randn(1, KV_HEADS, 33, HEAD_DIM), torch.randn(1, KV_HEADS, 33, HEAD_DIM)
    keys, values = cache.update(k.half(), v.half(), 0)
    assert keys.dtype == values.dtype == torch.float16 and keys.shape == (1, KV_HEADS, 33, HEAD_DIM)
    more_keys, _ = cache.update(k[:, :, :1].bfloat16(), v[:, :, :1].bfloat16(), 0)
    assert more_keys.dtype == torch.bfloat16 and more_keys.shape == (1, KV_HEADS, 34, HEAD_DIM)
    assert torch.equal(more_keys[:, :, :33], keys.bfloat16())


def test_from_config_and_shape_errors():
    config = SimpleNamespace(num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2, hidden_size=512)
    cache = VidKVCache.from_config(config, "k1.5-v1.58", max_tokens=128)
    assert (cache.layers, cache.q_heads, cache.kv_heads, cache.head_dim) == (3, 8, 2, 64)
    vlm = SimpleNamespace(text_config=config)
    assert VidKVCache.from_config(vlm, "fp16", 64, batch_size=2).batch_size == 2
    assert cache.get_seq_length() == 0 and len(cache) == 0
    with pytest.raises(ValueError, match=r"key_states: expected shape \[batch=1, kv_heads=2, new_tokens, head_dim=64\]"):
        cache.update(torch.zeros(1, 8, 4, 64), torch.zeros(1, 8, 4, 64), 0)
    with pytest.raises(ValueError, match="layer_idx"):
        cache.update(torch.zeros(1, 2, 4, 64), torch.zeros(1, 2, 4, 64), 3)
    with pytest.raises(ValueError, match="one decode token"):
        cache.attention(torch.zeros(1, 8, 2, 64), 0)
    keys, _ = cache.update(torch.randn(1, 2, 4, 64), torch.randn(1, 2, 4, 64), 0)
    assert keys.shape == (1, 2, 4, 64) and cache.get_seq_length() == 4
    cache.reset()
    assert cache.get_seq_length() == 0


def test_stp_prefill_through_cache_kwargs():
    cache = VidKVCache("k1.5-v1.58-stp", 1, KV_HEADS, Q_HEADS, HEAD_DIM, max_tokens=256)
    k, v = torch.randn(1, KV_HEADS, 64, HEAD_DIM), torch.randn(1, KV_HEADS, 64, HEAD_DIM)
    stp = vidkv.StpInput(first_visual=0, visual_tokens=64, protected_tokens=list(range(32)))
    keys, values = cache.update(k, v, 0, cache_kwargs={"vidkv_stp": stp})
    assert keys.shape == (1, KV_HEADS, 64, HEAD_DIM)
    assert cache.stats()["values"]["maps"] > 0
    np.testing.assert_array_equal(values[0].transpose(0, 1).numpy().astype(np.float16),
                                  cache.cache.dequantize(cache.sequences[0], 0)[1])
