#pragma once
// Honest bit accounting (DESIGN section 4): every byte of the quantized store (codes, scales, mins,
// channel and token maps) over the number of quantized values. The fp16 residual is apart.
//
// compact (vidkv's storage):
//   keys    anomalous channels: 2-bit codes, fp16 scale + fp16 min per (channel, group);
//           normal channels: 1-bit codes per coefficient stream (N streams with fft half, 2N with
//           full), fp16 scale per (stream, group), no min (1-bit has none);
//           map: a dim-bit mask of the anomalous channels per head (one per layer, scope layer).
//   values  1.58-bit: trits 5 per byte (ceil(dim * group / 5) bytes per (head, group)) or 2-bit
//           fields, fp16 scale per (channel, group), no min; 2-bit: codes, fp16 scale + min;
//           STP adds a token bitmap of ceil(tokens / 8) bytes per layer.
// original (the authors' code, for comparison): 2-bit fields for trits, full FFT spectrum, fp16
//   scale and fp16 min for every group of every path, int64 channel indices (dim of them per
//   layer) and int64 protected-token indices.
#include <cstdint>

#include "vidkv/export.hpp"
#include "vidkv/quant_spec.hpp"
#include "vidkv/vidkv_keys.hpp"

namespace vidkv {

enum class StorageFormat { compact, original };

struct StorageBreakdown {
  uint64_t code_bytes = 0;
  uint64_t scale_bytes = 0;
  uint64_t min_bytes = 0;
  uint64_t map_bytes = 0;
  uint64_t values = 0;  // quantized values counted
  uint64_t total_bytes() const { return code_bytes + scale_bytes + min_bytes + map_bytes; }
  double bits_per_value() const { return values ? 8.0 * double(total_bytes()) / double(values) : 0.0; }
};

struct ValueStorageSpec {
  QuantBits bits = QuantBits::b1_58;  // b1_58 or b2
  bool trits_base3 = true;            // 5 trits per byte; false: 2-bit fields
  uint32_t group_size = 32;
  uint32_t protected_tokens = 0;      // STP: tokens kept at 2 bits (0: no STP, no token map)
};

VIDKV_API StorageBreakdown key_storage(const KeySpec& spec, const TensorShape& shape, StorageFormat format);
VIDKV_API StorageBreakdown value_storage(const ValueStorageSpec& spec, const TensorShape& shape,
                                         StorageFormat format);

}  // namespace vidkv
