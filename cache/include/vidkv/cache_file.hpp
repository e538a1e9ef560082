#pragma once
// Saved caches (docs/cache-format.md has the layout byte by byte): the host side, with no Vulkan.
// Cache::save writes these files and Cache::load / load_sequences read them (cache.hpp); this
// header gives the same files to tools and tests without a device: parse_cache_file() checks a
// whole file (magic, versions, every section's CRC-32C, every count and length against the
// geometry and settings, channel tables, sequence ids) before it returns anything, and
// serialize_cache_file() writes one.
//
// Per-head policies (settings.head_policies, head_policy.hpp; format version 3): the HEAD section
// stores the policy spec, and each layer whose heads do not all take the preset (a "mixed" layer,
// cache_file_layer_heads) holds its preset part (channel table, segments, residual) over its
// preset heads only, gathered in increasing head order, plus its token count and the fp16 stores
// of its full and window heads.
//
// A segment is a list of arrays, each named by an id (CacheFileArrayId). Which arrays a segment
// holds, and their exact byte lengths, follow from the geometry, the settings, the segment's
// token count and (semantic token protection) its protected-token count
// (cache_file_segment_arrays); a file whose segment lacks one, repeats one, has an unknown id or a
// different length is rejected. Adding an array to segments later is a new id, a line in that
// function and the device mapping in cache/src/saved_cache/cache_save_load.cpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vidkv/cache.hpp"
#include "vidkv/export.hpp"

namespace vidkv {

// The format this library writes (docs/cache-format.md). It reads versions
// kCacheFileOldestFormatVersion..kCacheFileFormatVersion; files of another version are refused
// with Error(corrupt_data) naming the file's version and the ones read. Version 2 added a flags
// word and a protected-token count to every segment (semantic token protection); a version 1
// file reads as one whose segments have neither. Version 3 added the per-head policy spec to HEAD
// and the full and window stores to mixed layers; a version 1 or 2 file reads as one without
// per-head policies.
inline constexpr uint32_t kCacheFileFormatVersion = 3;
inline constexpr uint32_t kCacheFileOldestFormatVersion = 1;

// Array ids of a segment. Stable numbers: they are stored in files.
enum class CacheFileArrayId : uint32_t {
  key_anomalous_codes = 1,   // 2-bit codes of the anomalous key channels (all channels for 2-bit keys)
  key_anomalous_scales = 2,  // fp16, two per 32-bit word
  key_anomalous_mins = 3,
  key_stream_codes = 4,      // 1-bit codes of the FFT coefficient streams
  key_stream_scales = 5,
  value_codes = 6,           // 2-bit codes, or trits 5 per byte for 1.58-bit values
  value_scales = 7,
  value_mins = 8,            // none for 1.58-bit values
  // Semantic token protection (STP segments only; value_codes/value_scales then hold the other
  // tokens' 1.58-bit part, gathered in increasing position):
  value_high_codes = 9,      // the protected tokens' 2-bit values per channel, gathered
  value_high_scales = 10,
  value_high_mins = 11,
  stp_protected_tokens = 12,  // u32 positions within the segment, strictly increasing
};

enum class CacheFilePart { keys, values };
// `tokens`: the protected-token list, from which the device's token map is rebuilt; no byte of
// the device's quantized store (stats count the token map the attention reads instead).
enum class CacheFileRole { codes, scales, mins, tokens };

struct CacheFileArraySpec {
  CacheFileArrayId id;
  CacheFilePart part;
  CacheFileRole role;
  uint64_t bytes;  // exact length in the file and the bytes the device buffer holds
};

// "key_anomalous_codes", ...; "unknown" for an id this library does not know.
VIDKV_API const char* cache_file_array_name(CacheFileArrayId id) noexcept;

// The arrays a segment of `tokens` tokens holds, in file order; empty parts (no anomalous channels
// at nbits 1.0, no streams at nbits 2.0 and for 2-bit keys; an STP segment's protected part when
// it protects no token, its other part when it protects all) have no arrays. The fp16 preset has
// no segments. `stp`: the segment protects `protected_count` tokens (settings.stp only; a multiple
// of group_size, at most `tokens`). Throws Error naming the problem for settings or counts no
// segment can have.
VIDKV_API std::vector<CacheFileArraySpec> cache_file_segment_arrays(const CacheGeometry& geometry,
                                                                    const CacheSettings& settings, uint32_t tokens,
                                                                    bool stp = false, uint32_t protected_count = 0);
// uint32 entries of a layer's channel table: [units][head_dim], units = kv_heads for channel scope
// head, 1 for scope layer (and kv_heads for 2-bit keys, whose table is the identity); 0 for fp16.
VIDKV_API uint64_t cache_file_channel_table_entries(const CacheGeometry& geometry, const CacheSettings& settings);

// The KV heads of one layer by policy (head_policy.hpp): how many take the preset (vidkv), full
// and window. A layer with full or window heads is "mixed".
struct CacheFileLayerHeads {
  uint32_t preset = 0, full = 0, window = 0;
  bool mixed() const { return full + window > 0; }
};
// Per layer, from settings.head_policies resolved against the geometry (every head the preset
// when the spec is uniform). Throws Error(invalid_argument) for a spec that does not resolve.
VIDKV_API std::vector<CacheFileLayerHeads> cache_file_layer_heads(const CacheGeometry& geometry,
                                                                  const CacheSettings& settings);
// The geometry a layer's preset part is stored in: kv_heads = its preset heads. Pass it to
// cache_file_segment_arrays and cache_file_channel_table_entries for a mixed layer's segments.
inline CacheGeometry cache_file_part_geometry(CacheGeometry geometry, uint32_t preset_heads) {
  geometry.kv_heads = preset_heads;
  return geometry;
}

struct CacheFileArray {
  CacheFileArrayId id;
  std::vector<uint8_t> bytes;
};

// Segment flags (format version 2 on).
inline constexpr uint32_t kCacheFileSegmentStp = 1u << 0;  // semantic token protection

struct CacheFileSegment {
  uint32_t tokens = 0;
  // Semantic token protection: the prefill segment of an STP cache (segment 0 of a prefilled
  // layer) keeps `protected_count` tokens' values at 2 bits; their positions are the array
  // stp_protected_tokens. Neither exists in version 1 files.
  bool stp = false;
  uint32_t protected_count = 0;
  std::vector<CacheFileArray> arrays;  // parse_cache_file returns them in cache_file_segment_arrays order
};

// The stp_protected_tokens array of `segment` as positions (empty when it has none). The parser
// has checked them: strictly increasing, each below the segment's tokens, protected_count of them.
VIDKV_API std::vector<uint32_t> cache_file_protected_tokens(const CacheFileSegment& segment);

struct CacheFileLayer {
  bool prefilled = false;  // prefill was called on this layer
  bool appended = false;   // append was called on this layer
  uint32_t quantized = 0;  // tokens in segments
  uint32_t residual = 0;   // fp16 tokens
  std::vector<uint32_t> channels;  // the channel table; empty until the first segment
  std::vector<CacheFileSegment> segments;
  std::vector<uint16_t> residual_keys, residual_values;  // fp16 [residual][part heads][head_dim]
  // A mixed layer (format version 3; the parser sets it from the settings' policies, the writer
  // writes the fields below exactly when it is set). `channels`, `segments` and the residual
  // above hold its preset heads only (part heads: CacheFileLayerHeads::preset, which may be 0:
  // then it has no segments and no residual). Heads in increasing head order throughout.
  bool mixed = false;
  uint32_t count = 0;  // tokens written to the layer: quantized + residual when it has preset heads
  std::vector<uint16_t> full_keys, full_values;  // fp16 [count][full heads][head_dim]
  // fp16 [min(count, sink + recent)][window heads][head_dim]: the window's slots in slot order
  // (slot = position for the first `sink` tokens, then sink + (position - sink) mod recent).
  std::vector<uint16_t> window_keys, window_values;
};

struct CacheFileSequence {
  uint32_t id = 0;  // the id it had in the saved cache (never 0, unique in a file)
  std::vector<CacheFileLayer> layers;
};

struct CacheFileContents {
  // The file's version (parse_cache_file); serialize_cache_file writes this version's layout.
  uint32_t format_version = kCacheFileFormatVersion;
  std::string library_version;  // of the library that wrote the file, e.g. "0.1.0"
  CacheGeometry geometry;
  // Name as saved; ignored_keys and head_policies.score_source are not saved.
  CacheSettings settings;
  uint32_t max_tokens = 0;
  std::vector<CacheFileSequence> sequences;
};

// Checks everything and returns the file's contents. Throws Error(corrupt_data) with a message
// that starts with `name` and names the problem and its byte offset (wrong magic, unsupported
// format version, truncated, checksum mismatch in which section, a count or length that
// disagrees with the geometry, ...). Never reads outside [bytes, bytes + size) and never allocates
// more than the file's own size for what a length field claims.
VIDKV_API CacheFileContents parse_cache_file(const uint8_t* bytes, size_t size, const std::string& name);
// Reads the whole file and parses it; Error(io_error) naming the path when it cannot be read.
VIDKV_API CacheFileContents read_cache_file(const std::string& path);
// The file's bytes. Writes what it is given (tests make invalid files with it); Cache::save only
// hands it what a cache holds.
VIDKV_API std::vector<uint8_t> serialize_cache_file(const CacheFileContents& contents);
// Writes to `path` through a temporary file beside it that is renamed over `path` at the end, so a
// failed write leaves no partial file. Error(io_error) naming the path.
VIDKV_API void write_cache_file(const std::string& path, const std::vector<uint8_t>& bytes);

// What Cache::stats() reports for a cache holding exactly these sequences (host arithmetic over
// the file's arrays; the same numbers after Cache::load), per-head policy figures included.
VIDKV_API CacheStats cache_file_stats(const CacheFileContents& contents);

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every section. `crc` is
// a previous result to continue from (0 to start).
VIDKV_API uint32_t crc32c(const uint8_t* bytes, size_t size, uint32_t crc = 0) noexcept;

}  // namespace vidkv
