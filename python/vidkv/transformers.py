"""A vidkv cache in the shape of Hugging Face transformers' Cache (PyTorch tensors).

    from vidkv.transformers import VidKVCache
    cache = VidKVCache.from_config(model.config, "k1.5-v1.58", max_tokens=8192)
    out = model.generate(**inputs, past_key_values=cache, max_new_tokens=64)

update() stores a layer's new keys and values and returns all of the layer's keys and values
decoded, as transformers' QuantizedCache does, so any attention implementation works unchanged.
attention() computes decode attention straight from the packed cache for callers that can use it.
transformers itself is not imported: this follows its documented Cache interface.
"""
import torch

from . import Cache

__all__ = ["VidKVCache"]


def _host(tensor):
    """A CPU tensor vidkv reads (fp16 or fp32): bfloat16 and float64 go through float32."""
    tensor = tensor.detach()
    if tensor.dtype not in (torch.float16, torch.float32):
        tensor = tensor.to(torch.float32)
    return tensor.cpu().contiguous()


class VidKVCache:
    """One vidkv sequence per batch row, every layer of a model.

    settings: a preset name (vidkv.presets()), the original's configuration string or dict.
    update(key_states, value_states, layer_idx): tensors [batch, kv_heads, new_tokens, head_dim];
    the first call for a layer is its prefill, later calls extend it. The C++ cache has no
    multi-token extend yet, so later calls append their new tokens one by one (each goes to the
    fp16 residual; every residual_length tokens are quantized into a new segment).
    """

    is_compileable = False

    def __init__(self, settings, layers, kv_heads, q_heads, head_dim, max_tokens, batch_size=1, device=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.cache = Cache(layers, kv_heads, q_heads, head_dim, settings, max_tokens, device=device)
        self.layers, self.kv_heads, self.q_heads, self.head_dim = layers, kv_heads, q_heads, head_dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.sequences = [self.cache.create_sequence() for _ in range(batch_size)]
        self._stored = [False] * layers

    @classmethod
    def from_config(cls, config, settings, max_tokens, batch_size=1, device=None):
        """From a transformers model config (a multimodal one's text_config is used)."""
        if hasattr(config, "get_text_config"):
            config = config.get_text_config()
        elif not hasattr(config, "num_hidden_layers") and hasattr(config, "text_config"):
            config = config.text_config
        q_heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or q_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // q_heads
        return cls(settings, config.num_hidden_layers, kv_heads, q_heads, head_dim, max_tokens,
                   batch_size=batch_size, device=device)

    def _check(self, name, states, layer_idx):
        if not 0 <= layer_idx < self.layers:
            raise ValueError(f"layer_idx must be in [0, {self.layers}), got {layer_idx}")
        expected = (self.batch_size, self.kv_heads, self.head_dim)
        if states.dim() != 4 or (states.shape[0], states.shape[1], states.shape[3]) != expected or states.shape[2] < 1:
            raise ValueError(
                f"{name}: expected shape [batch={self.batch_size}, kv_heads={self.kv_heads}, new_tokens, "
                f"head_dim={self.head_dim}], got {tuple(states.shape)}")

    def update(self, key_states, value_states, layer_idx, cache_kwargs=None):
        """Stores the new tokens and returns (keys, values) of every token of the layer, decoded,
        [batch, kv_heads, tokens, head_dim] in key_states' dtype and device.

        cache_kwargs may hold "vidkv_stp": a vidkv.StpInput, or a list of one per batch row, for
        the prefill of a cache with semantic token protection.
        """
        self._check("key_states", key_states, layer_idx)
        self._check("value_states", value_states, layer_idx)
        if key_states.shape != value_states.shape:
            raise ValueError(f"value_states: expected the shape of key_states {tuple(key_states.shape)}, "
                             f"got {tuple(value_states.shape)}")
        stp = (cache_kwargs or {}).get("vidkv_stp")
        if stp is not None and not isinstance(stp, (list, tuple)):
            stp = [stp] * self.batch_size
        # [batch, kv_heads, tokens, dim] -> per row [tokens, kv_heads, dim], vidkv's layout.
        keys = _host(key_states.transpose(1, 2))
        values = _host(value_states.transpose(1, 2))
        for row, seq in enumerate(self.sequences):
            if not self._stored[layer_idx]:
                self.cache.prefill(seq, layer_idx, keys[row], values[row], None if stp is None else stp[row])
            else:
                for t in range(keys.shape[1]):
                    self.cache.append(seq, layer_idx, keys[row, t], values[row, t])
        self._stored[layer_idx] = True
        return self.dequantize(layer_idx, dtype=key_states.dtype, device=key_states.device)

    def dequantize(self, layer_idx, dtype=torch.float16, device="cpu"):
        """Every token of the layer decoded, (keys, values) [batch, kv_heads, tokens, head_dim]."""
        ks, vs = [], []
        for seq in self.sequences:
            k, v = self.cache.dequantize(seq, layer_idx)
            ks.append(torch.from_numpy(k).transpose(0, 1))
            vs.append(torch.from_numpy(v).transpose(0, 1))
        return (torch.stack(ks).to(device=device, dtype=dtype),
                torch.stack(vs).to(device=device, dtype=dtype))

    def attention(self, query_states, layer_idx, scaling=None):
        """Decode attention straight from the packed cache: query_states [batch, q_heads, 1,
        head_dim] (one new token per row, which attends to every stored token: no mask needed)
        -> [batch, q_heads, 1, head_dim] in the query's dtype and device. scaling None means
        1/sqrt(head_dim)."""
        expected = (self.batch_size, self.q_heads, 1, self.head_dim)
        if tuple(query_states.shape) != expected:
            raise ValueError(f"query_states: expected shape [batch={self.batch_size}, q_heads={self.q_heads}, 1, "
                             f"head_dim={self.head_dim}] (one decode token), got {tuple(query_states.shape)}")
        q = _host(query_states[:, :, 0, :])
        scale = 0.0 if scaling is None else float(scaling)
        out = [torch.from_numpy(self.cache.attention(seq, layer_idx, q[row], scale))
               for row, seq in enumerate(self.sequences)]
        return torch.stack(out).unsqueeze(2).to(device=query_states.device, dtype=query_states.dtype)

    def get_seq_length(self, layer_idx=0):
        """Tokens stored in the layer (0 before its first update)."""
        return self.cache.tokens(self.sequences[0], layer_idx) if self._stored[layer_idx] else 0

    def get_max_cache_shape(self):
        return self.max_tokens

    def get_max_length(self):
        return self.max_tokens

    def get_usable_length(self, new_seq_length, layer_idx=0):
        return self.get_seq_length(layer_idx)

    @property
    def seen_tokens(self):
        return self.get_seq_length(0)

    def __len__(self):
        """Layers that hold tokens, as transformers' caches count them."""
        return sum(self._stored)

    def stats(self):
        return self.cache.stats()

    def reset(self):
        """Frees every sequence and starts empty ones (a new prompt)."""
        for seq in self.sequences:
            self.cache.free_sequence(seq)
        self.sequences = [self.cache.create_sequence() for _ in range(self.batch_size)]
        self._stored = [False] * self.layers

    def reorder_cache(self, beam_idx):
        raise NotImplementedError("vidkv caches cannot be reordered (beam search) yet")
