// serialize_cache_file: contents to bytes, in the layout of docs/cache-format.md. Every field is
// little-endian and fixed-width; each section ends with the CRC-32C of its tag, length and payload.
// It writes what it is given without judging it (the parser is the one place that checks), so
// tests can build invalid files with it.
#include <bit>

#include "saved_cache/cache_file_format.hpp"
#include "vidkv/cache_file.hpp"

namespace vidkv {
namespace {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(uint8_t(v >> (8 * i)));
  }
  void f64(double v) { u64(std::bit_cast<uint64_t>(v)); }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void text(const std::string& s) {
    u32(uint32_t(s.size()));
    bytes(s.data(), s.size());
  }
  // Arrays of little-endian words: a plain copy on little-endian hosts.
  template <typename T>
  void words(const std::vector<T>& v) {
    if constexpr (std::endian::native == std::endian::little) {
      bytes(v.data(), v.size() * sizeof(T));
    } else {
      for (T w : v) {
        for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(uint8_t(uint64_t(w) >> (8 * i)));
      }
    }
  }

  void begin_section(const char (&tag)[4]) {
    section_start_ = out_.size();
    bytes(tag, 4);
    u64(0);  // payload length, patched by end_section
  }
  void end_section() {
    const uint64_t payload = out_.size() - section_start_ - 12;
    for (int i = 0; i < 8; ++i) out_[section_start_ + 4 + i] = uint8_t(payload >> (8 * i));
    u32(crc32c(out_.data() + section_start_, out_.size() - section_start_));
    ++sections_;
  }

  size_t size() const { return out_.size(); }
  uint32_t sections() const { return sections_; }
  std::vector<uint8_t>& result() { return out_; }

 private:
  std::vector<uint8_t> out_;
  size_t section_start_ = 0;
  uint32_t sections_ = 0;
};

// Version 3: the per-head policy spec (its score_source is not part of the configuration).
void write_policies(Writer& w, const HeadPolicySpec& h) {
  using namespace cache_file;
  const uint8_t kind = !h.heads.empty() ? kPoliciesList : !h.scores.empty() ? kPoliciesScores : kPoliciesNone;
  w.u8(kind);
  w.u8(code_of(h.low));
  w.u8(code_of(h.high));
  w.u8(0);  // reserved
  w.u32(h.sink);
  w.u32(h.recent);
  w.f64(h.sparsity);
  if (kind == kPoliciesList) {
    w.u32(uint32_t(h.heads.size()));
    for (HeadPolicy p : h.heads) w.u8(code_of(p));
  } else if (kind == kPoliciesScores) {
    w.u32(uint32_t(h.scores.size()));
    for (const HeadScore& s : h.scores) {
      w.u32(s.layer);
      w.u32(s.head);
      w.f64(s.score);
    }
  } else {
    w.u32(0);
  }
}

void write_head(Writer& w, const CacheFileContents& c) {
  using namespace cache_file;
  const CacheSettings& s = c.settings;
  w.begin_section(kTagHead);
  w.text(c.library_version);
  w.u32(c.geometry.layers);
  w.u32(c.geometry.kv_heads);
  w.u32(c.geometry.q_heads);
  w.u32(c.geometry.head_dim);
  w.u32(c.max_tokens);
  w.text(s.name);
  w.u8(code_of(s.key_mode));
  w.u8(code_of(s.value_mode));
  w.u8(code_of(s.keys.scope));
  w.u8(code_of(s.keys.fft));
  w.u8(code_of(s.ternary));
  w.u8(s.trits_base3 ? 1 : 0);
  w.u8(s.stp ? 1 : 0);
  w.u8(0);  // reserved
  w.f64(s.keys.nbits);
  w.f64(s.stp_ratio);
  w.u32(s.group_size);
  w.u32(s.keys.group_size);
  w.u32(s.residual_length);
  w.u32(uint32_t(c.sequences.size()));
  if (c.format_version >= 3) write_policies(w, s.head_policies);
  w.end_section();
}

void write_layer(Writer& w, uint32_t version, uint32_t index, const CacheFileLayer& l) {
  w.begin_section(cache_file::kTagLayer);
  w.u32(index);
  w.u32((l.prefilled ? cache_file::kLayerPrefilled : 0) | (l.appended ? cache_file::kLayerAppended : 0));
  w.u32(l.quantized);
  w.u32(l.residual);
  w.u32(uint32_t(l.segments.size()));
  w.u32(uint32_t(l.channels.size()));
  w.words(l.channels);
  for (const CacheFileSegment& s : l.segments) {
    w.u32(s.tokens);
    if (version >= 2) {
      // Version 1 segments have no flags or protected count (and cannot be STP segments).
      w.u32(s.stp ? kCacheFileSegmentStp : 0);
      w.u32(s.protected_count);
    }
    w.u32(uint32_t(s.arrays.size()));
    for (const CacheFileArray& a : s.arrays) {
      w.u32(uint32_t(a.id));
      w.u64(a.bytes.size());
      w.bytes(a.bytes.data(), a.bytes.size());
    }
  }
  // The residual's length follows from the count and the geometry: no length field to trust.
  w.words(l.residual_keys);
  w.words(l.residual_values);
  if (l.mixed) {
    // Version 3, a layer with full or window heads: its token count, then their stores, whose
    // lengths follow from the count, the policies and the geometry.
    w.u32(l.count);
    w.words(l.full_keys);
    w.words(l.full_values);
    w.words(l.window_keys);
    w.words(l.window_values);
  }
  w.end_section();
}

}  // namespace

std::vector<uint8_t> serialize_cache_file(const CacheFileContents& c) {
  Writer w;
  w.bytes(cache_file::kMagic, sizeof cache_file::kMagic);
  w.u32(c.format_version);
  write_head(w, c);
  for (const CacheFileSequence& seq : c.sequences) {
    w.begin_section(cache_file::kTagSequence);
    w.u32(seq.id);
    w.u32(uint32_t(seq.layers.size()));
    w.end_section();
    for (uint32_t i = 0; i < seq.layers.size(); ++i) write_layer(w, c.format_version, i, seq.layers[i]);
  }
  // The end section records the file's length and section count, so a file cut at a section
  // boundary, or with sections added or lost, is told apart from a whole one.
  const uint64_t end_payload = 8 + 4;
  const uint64_t total = w.size() + cache_file::kSectionOverhead + end_payload;
  w.begin_section(cache_file::kTagEnd);
  w.u64(total);
  w.u32(w.sections() + 1);
  w.end_section();
  return std::move(w.result());
}

}  // namespace vidkv
