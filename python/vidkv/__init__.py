"""vidkv: sub-2-bit KV-cache quantization of video LLMs (VidKV, arXiv 2503.16257) on Vulkan compute.

    import numpy as np, vidkv
    cache = vidkv.Cache(layers=28, kv_heads=4, q_heads=28, head_dim=128,
                        settings="k1.5-v1.58", max_tokens=40000)
    seq = cache.create_sequence()
    cache.prefill(seq, 0, k, v)            # [tokens, kv_heads, head_dim], fp16 or fp32
    cache.append(seq, 0, k1, v1)           # [kv_heads, head_dim]
    out = cache.attention(seq, 0, q)       # q, out: [q_heads, head_dim]
    k_all, v_all = cache.dequantize(seq, 0)

vidkv.transformers.VidKVCache wraps a cache in the shape of Hugging Face transformers' Cache.
Errors from the library are vidkv.Error, with .kind (e.g. "invalid_argument") and .message.
"""
from ._vidkv import (  # noqa: F401
    Cache,
    Error,
    StpInput,
    __version__,
    describe,
    presets,
    validation_messages,
)

__all__ = ["Cache", "Error", "StpInput", "describe", "presets", "validation_messages", "__version__"]
