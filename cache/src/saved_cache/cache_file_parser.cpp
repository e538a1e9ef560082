// parse_cache_file: the one place that judges a saved cache (docs/cache-format.md). Host only: the
// device upload (cache_save_load.cpp) runs only on what this has accepted. Nothing in a file is
// trusted: every read is bounded by the section it is in, every section by the file, every count
// and length is checked against what the geometry and settings imply before anything is copied,
// and nothing is sized from a length field before that length has been found to fit in the file.
#include <algorithm>
#include <bit>
#include <cstring>
#include <set>
#include <string>

#include "saved_cache/cache_file_format.hpp"
#include "vidkv/cache_file.hpp"

namespace vidkv {
namespace {

std::string hex32(uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s += digits[(v >> (4 * i)) & 0xFu];
  return s;
}

// A tag as text: printable bytes as they are, others as \xNN.
std::string tag_text(const uint8_t* t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    if (t[i] >= 0x20 && t[i] < 0x7F) {
      s += char(t[i]);
    } else {
      static const char digits[] = "0123456789abcdef";
      s += "\\x";
      s += digits[t[i] >> 4];
      s += digits[t[i] & 0xF];
    }
  }
  return s;
}

class Parser;

// Reads the payload of one section, never past its end; offsets in messages are file offsets.
class Cursor {
 public:
  Cursor(const Parser& parser, const uint8_t* file, uint64_t begin, uint64_t end, std::string what)
      : parser_(parser), file_(file), pos_(begin), end_(end), what_(std::move(what)) {}

  uint64_t remaining() const { return end_ - pos_; }
  const std::string& what() const { return what_; }
  [[noreturn]] void fail(const std::string& message) const;

  const uint8_t* take(uint64_t n, const char* field) {
    if (n > remaining()) {
      fail(std::string(field) + " at offset " + std::to_string(pos_) + " needs " + std::to_string(n) +
           " bytes; the section has " + std::to_string(remaining()) + " left");
    }
    const uint8_t* p = file_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8(const char* field) { return *take(1, field); }
  uint32_t u32(const char* field) {
    const uint8_t* p = take(4, field);
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  }
  uint64_t u64(const char* field) {
    const uint8_t* p = take(8, field);
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
  }
  double f64(const char* field) { return std::bit_cast<double>(u64(field)); }
  // A length-prefixed string of printable ASCII, at most `limit` bytes.
  std::string text(const char* field, uint32_t limit) {
    const uint32_t n = u32(field);
    if (n > limit) fail(std::string(field) + " of " + std::to_string(n) + " bytes (at most " + std::to_string(limit) + ")");
    const uint8_t* p = take(n, field);
    for (uint32_t i = 0; i < n; ++i) {
      if (p[i] < 0x20 || p[i] >= 0x7F) fail(std::string(field) + " holds a byte that is not printable ASCII");
    }
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  // `count` little-endian words of type T.
  template <typename T>
  std::vector<T> words(uint64_t count, const char* field) {
    if (count > remaining() / sizeof(T)) {
      fail(std::string(field) + " of " + std::to_string(count) + " x " + std::to_string(sizeof(T)) +
           " bytes; the section has " + std::to_string(remaining()) + " left");
    }
    const uint8_t* p = take(count * sizeof(T), field);
    std::vector<T> out(count);
    if constexpr (std::endian::native == std::endian::little) {
      if (count > 0) std::memcpy(out.data(), p, count * sizeof(T));
    } else {
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t v = 0;
        for (size_t b = sizeof(T); b-- > 0;) v = v << 8 | p[i * sizeof(T) + b];
        out[i] = T(v);
      }
    }
    return out;
  }
  void finish() const {
    if (remaining() != 0) fail(std::to_string(remaining()) + " unread bytes at the end of its payload");
  }

 private:
  const Parser& parser_;
  const uint8_t* file_;
  uint64_t pos_, end_;
  std::string what_;
};

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw Error(ErrorCode::corrupt_data, "cache file " + name_ + ": " + message);
  }

  CacheFileContents parse() {
    read_file_header();
    CacheFileContents c;
    c.format_version = version_;
    const uint32_t sequences = read_head(c);
    std::set<uint32_t> ids;
    for (uint32_t i = 0; i < sequences; ++i) {
      // No reserve from the file's count: each sequence must first be found in the file.
      c.sequences.push_back(read_sequence(c, i, sequences, ids));
    }
    read_end();
    return c;
  }

 private:
  void read_file_header() {
    const size_t magic = sizeof cache_file::kMagic;
    if (std::memcmp(data_, cache_file::kMagic, std::min(size_, magic)) != 0) {
      fail("not a vidkv cache file (wrong magic; a cache file starts with \"VKVCACHE\")");
    }
    if (size_ < cache_file::kFileHeaderBytes) {
      fail("truncated: " + std::to_string(size_) + " bytes, shorter than the " +
           std::to_string(cache_file::kFileHeaderBytes) + "-byte file header");
    }
    const uint8_t* p = data_ + magic;
    const uint32_t version = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    if (version < kCacheFileOldestFormatVersion || version > kCacheFileFormatVersion) {
      const std::string oldest = std::to_string(kCacheFileOldestFormatVersion);
      const std::string newest = std::to_string(kCacheFileFormatVersion);
      const std::string reads = kCacheFileOldestFormatVersion == kCacheFileFormatVersion ? "version " + newest
                                : kCacheFileOldestFormatVersion + 1 == kCacheFileFormatVersion
                                    ? "versions " + oldest + " and " + newest
                                    : "versions " + oldest + " to " + newest;
      fail("format version " + std::to_string(version) + " is not supported (this library reads " + reads + ")");
    }
    version_ = version;
    pos_ = cache_file::kFileHeaderBytes;
  }

  // The next section, which must carry `tag`: header and length bounded by the file, CRC checked
  // before anything in it is read.
  Cursor section(const char (&tag)[4], const std::string& what) {
    const uint64_t at = pos_;
    const uint64_t left = size_ - at;
    if (left == 0) fail("truncated: the file ends at offset " + std::to_string(at) + " where " + what + " should begin");
    if (left < 12) {
      fail("truncated: " + what + " at offset " + std::to_string(at) + " needs a 12-byte header; " +
           std::to_string(left) + " bytes remain");
    }
    const uint8_t* h = data_ + at;
    uint64_t length = 0;
    for (int i = 11; i >= 4; --i) length = length << 8 | h[i];
    if (length > left - 12 || left - 12 - length < 4) {
      fail("truncated or corrupt: " + what + " at offset " + std::to_string(at) + " claims a payload of " +
           std::to_string(length) + " bytes plus a 4-byte checksum; " + std::to_string(left - 12) +
           " bytes remain in the file");
    }
    const uint8_t* c = h + 12 + length;
    const uint32_t stored = uint32_t(c[0]) | uint32_t(c[1]) << 8 | uint32_t(c[2]) << 16 | uint32_t(c[3]) << 24;
    const uint32_t computed = crc32c(h, 12 + length);
    if (stored != computed) {
      fail("checksum mismatch in " + what + " at offset " + std::to_string(at) + " (stored " + hex32(stored) +
           ", computed " + hex32(computed) + "): the file is damaged");
    }
    if (std::memcmp(h, tag, 4) != 0) {
      fail("expected " + what + " at offset " + std::to_string(at) + ", found a section tagged '" + tag_text(h) + "'");
    }
    pos_ = at + 12 + length + 4;
    ++sections_;
    return Cursor(*this, data_, at + 12, at + 12 + length, what);
  }

  uint32_t read_head(CacheFileContents& c) {
    using namespace cache_file;
    Cursor in = section(kTagHead, "section HEAD");
    c.library_version = in.text("library version", kMaxVersionBytes);
    CacheGeometry& g = c.geometry;
    g.layers = in.u32("layers");
    g.kv_heads = in.u32("kv_heads");
    g.q_heads = in.u32("q_heads");
    g.head_dim = in.u32("head_dim");
    c.max_tokens = in.u32("max_tokens");
    CacheSettings& s = c.settings;
    s.name = in.text("settings name", kMaxNameBytes);
    const uint8_t key_mode = in.u8("key mode"), value_mode = in.u8("value mode"), scope = in.u8("channel scope"),
                  fft = in.u8("fft layout"), ternary = in.u8("ternary scale"), trits = in.u8("trits_base3"),
                  stp = in.u8("stp"), reserved = in.u8("reserved byte");
    s.keys.nbits = in.f64("key nbits");
    s.stp_ratio = in.f64("stp ratio");
    s.group_size = in.u32("group_size");
    s.keys.group_size = in.u32("key group_size");
    s.residual_length = in.u32("residual_length");
    const uint32_t sequences = in.u32("sequence count");
    if (version_ >= 3) read_policies(in, c);  // earlier versions hold none: every head the preset
    in.finish();

    auto enum_field = [&](auto parsed, uint8_t code, const char* field) {
      if (!parsed) in.fail(std::string(field) + " code " + std::to_string(code) + " is not known");
      return *parsed;
    };
    s.key_mode = enum_field(key_mode_of(key_mode), key_mode, "key mode");
    s.value_mode = enum_field(value_mode_of(value_mode), value_mode, "value mode");
    s.keys.scope = enum_field(scope_of(scope), scope, "channel scope");
    s.keys.fft = enum_field(fft_of(fft), fft, "fft layout");
    s.ternary = enum_field(ternary_of(ternary), ternary, "ternary scale");
    if (trits > 1 || stp > 1) in.fail("trits_base3 " + std::to_string(trits) + " / stp " + std::to_string(stp) + " is not 0 or 1");
    if (reserved != 0) in.fail("reserved byte is " + std::to_string(reserved) + ", not 0");
    s.trits_base3 = trits == 1;
    s.stp = stp == 1;
    check_geometry(in, c);
    try {
      validate(s);
    } catch (const Error& e) {
      in.fail(std::string("settings: ") + e.what());
    }
    const bool fp16_keys = s.key_mode == CacheSettings::KeyMode::fp16;
    if (fp16_keys != (s.value_mode == CacheSettings::ValueMode::fp16)) {
      in.fail(std::string("keys ") + key_mode_name(s.key_mode) + " with values " + value_mode_name(s.value_mode) +
              ": a cache stores both in fp16 or neither");
    }
    // The policies against the geometry (list length, every head scored once, ...): what the
    // cache's constructor resolves. Its allocations are bounded by the list the file holds.
    try {
      heads_ = cache_file_layer_heads(g, s);
    } catch (const Error& e) {
      in.fail(std::string("head policies: ") + e.what());
    }
    return sequences;
  }

  // Version 3: the per-head policy spec at the end of HEAD. Entries are counted before anything
  // is sized from their count: a list has layers x kv_heads of them (each head once), and they
  // must be in the section.
  void read_policies(Cursor& in, CacheFileContents& c) {
    using namespace cache_file;
    HeadPolicySpec& h = c.settings.head_policies;
    const uint8_t kind = in.u8("head policy kind"), low = in.u8("low head policy"), high = in.u8("high head policy"),
                  reserved = in.u8("head policy reserved byte");
    h.sink = in.u32("window sink");
    h.recent = in.u32("window recent");
    h.sparsity = in.f64("sparsity");
    const uint32_t entries = in.u32("head policy entries");
    if (kind > kPoliciesScores) in.fail("head policy kind " + std::to_string(kind) + " is not known");
    if (reserved != 0) in.fail("head policy reserved byte is " + std::to_string(reserved) + ", not 0");
    auto policy = [&](uint8_t code, const std::string& field) {
      const std::optional<HeadPolicy> p = policy_of(code);
      if (!p) in.fail(field + " code " + std::to_string(code) + " is not known (0 vidkv, 1 full, 2 window)");
      return *p;
    };
    h.low = policy(low, "low head policy");
    h.high = policy(high, "high head policy");
    const CacheGeometry& g = c.geometry;
    const uint64_t heads = uint64_t(g.layers) * g.kv_heads;  // the geometry is read, not yet checked
    if (kind == kPoliciesNone && entries != 0) {
      in.fail(std::to_string(entries) + " head policy entries with kind 0 (none)");
    }
    if (kind != kPoliciesNone && entries != heads) {
      in.fail(std::to_string(entries) + " head policy entries; the geometry has " + std::to_string(g.layers) +
              " layers x " + std::to_string(g.kv_heads) + " KV heads = " + std::to_string(heads) +
              " (one entry per head)");
    }
    if (kind == kPoliciesList) {
      const uint8_t* codes = in.take(entries, "head policy list");
      h.heads.reserve(entries);
      for (uint32_t i = 0; i < entries; ++i) {
        const std::optional<HeadPolicy> p = policy_of(codes[i]);
        if (!p) {
          policy(codes[i], "head policy " + std::to_string(i) + " (layer " + std::to_string(i / g.kv_heads) +
                               ", head " + std::to_string(i % g.kv_heads) + ")");
        }
        h.heads.push_back(*p);
      }
    } else if (kind == kPoliciesScores) {
      if (entries > in.remaining() / kScoreEntryBytes) {
        in.fail(std::to_string(entries) + " head scores of " + std::to_string(kScoreEntryBytes) +
                " bytes; the section has " + std::to_string(in.remaining()) + " left");
      }
      h.scores.reserve(entries);
      for (uint32_t i = 0; i < entries; ++i) {
        HeadScore score;
        score.layer = in.u32("head score layer");
        score.head = in.u32("head score head");
        score.score = in.f64("head score");
        h.scores.push_back(score);
      }
    }
  }

  // Bounds that keep every size below 2^64 and match what a cache can be: the cache itself checks
  // the exact limits (head_dim a multiple of 16 in 64..256, at most 16 query heads per KV head) when it is created.
  static void check_geometry(const Cursor& in, const CacheFileContents& c) {
    const CacheGeometry& g = c.geometry;
    auto field = [&](const char* name, uint32_t v, uint32_t lo, uint32_t hi) {
      if (v < lo || v > hi) {
        in.fail(std::string(name) + " " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
      }
    };
    field("layers", g.layers, 1, 1u << 16);
    field("kv_heads", g.kv_heads, 1, 1u << 12);
    field("head_dim", g.head_dim, 2, 1u << 14);
    field("max_tokens", c.max_tokens, 1, UINT32_MAX);
    if (g.head_dim % 2 != 0) in.fail("head_dim " + std::to_string(g.head_dim) + " is odd");
    if (g.q_heads == 0 || g.q_heads % g.kv_heads != 0 || g.q_heads / g.kv_heads > 64) {
      in.fail("q_heads " + std::to_string(g.q_heads) + " is not a multiple of kv_heads " +
              std::to_string(g.kv_heads) + " with at most 64 query heads per KV head");
    }
  }

  CacheFileSequence read_sequence(const CacheFileContents& c, uint32_t index, uint32_t count,
                                  std::set<uint32_t>& ids) {
    const std::string where = "sequence " + std::to_string(index) + " of " + std::to_string(count);
    Cursor in = section(cache_file::kTagSequence, "section SEQN (" + where + ")");
    CacheFileSequence seq;
    seq.id = in.u32("sequence id");
    const uint32_t layers = in.u32("layer count");
    in.finish();
    if (seq.id == 0) in.fail("sequence id 0 (ids start at 1)");
    if (!ids.insert(seq.id).second) in.fail("sequence id " + std::to_string(seq.id) + " appears twice");
    if (layers != c.geometry.layers) {
      in.fail(std::to_string(layers) + " layers; the geometry has " + std::to_string(c.geometry.layers));
    }
    for (uint32_t l = 0; l < layers; ++l) {
      seq.layers.push_back(read_layer(c, l, "section LAYR (" + where + ", id " + std::to_string(seq.id) +
                                                ", layer " + std::to_string(l) + ")"));
    }
    return seq;
  }

  CacheFileLayer read_layer(const CacheFileContents& c, uint32_t index, const std::string& what) {
    const CacheGeometry& g = c.geometry;
    const CacheSettings& s = c.settings;
    Cursor in = section(cache_file::kTagLayer, what);
    CacheFileLayer l;
    const uint32_t stored_index = in.u32("layer index");
    if (stored_index != index) in.fail("holds layer " + std::to_string(stored_index));
    const uint32_t flags = in.u32("flags");
    if (flags & ~(cache_file::kLayerPrefilled | cache_file::kLayerAppended)) {
      in.fail("unknown flag bits " + hex32(flags));
    }
    l.prefilled = flags & cache_file::kLayerPrefilled;
    l.appended = flags & cache_file::kLayerAppended;
    l.quantized = in.u32("quantized tokens");
    l.residual = in.u32("residual tokens");
    const uint32_t segments = in.u32("segment count");
    const uint32_t entries = in.u32("channel table entries");

    const bool fp16 = s.key_mode == CacheSettings::KeyMode::fp16;
    // A mixed layer's preset part holds its preset heads only (possibly none).
    const CacheFileLayerHeads heads = heads_[index];
    l.mixed = heads.mixed();
    const CacheGeometry part = cache_file_part_geometry(g, heads.preset);
    const uint64_t tokens = uint64_t(l.quantized) + l.residual;
    if (tokens > c.max_tokens) {
      in.fail(std::to_string(tokens) + " tokens exceed max_tokens " + std::to_string(c.max_tokens));
    }
    // A mixed layer's count comes after its residual: checked there.
    if (!l.mixed) check_written(in, l, tokens);
    if (heads.preset == 0 && (tokens != 0 || segments != 0)) {
      in.fail("no preset heads (every head of the layer is full or window) but " + std::to_string(segments) +
              " segments and " + std::to_string(tokens) + " tokens in them and the residual");
    }
    const uint64_t capacity = fp16 ? c.max_tokens : uint64_t(s.residual_length) - 1;
    if (l.residual > capacity) {
      in.fail(std::to_string(l.residual) + " residual tokens; at most " + std::to_string(capacity) +
              (fp16 ? " (max_tokens)" : " (a residual of residual_length tokens is flushed)"));
    }
    if (fp16 && (segments != 0 || l.quantized != 0)) {
      in.fail("fp16 settings with " + std::to_string(segments) + " segments and " + std::to_string(l.quantized) +
              " quantized tokens");
    }
    // The channel table exists from the first segment on.
    const uint64_t want_entries = segments > 0 ? cache_file_channel_table_entries(part, s) : 0;
    if (entries != want_entries) {
      in.fail(std::to_string(entries) + " channel table entries with " + std::to_string(segments) +
              " segments; " + std::to_string(want_entries) + " expected");
    }
    l.channels = in.words<uint32_t>(entries, "channel table");
    if (entries > 0) check_channel_table(in, c, l.channels);

    uint64_t segment_tokens = 0;
    for (uint32_t i = 0; i < segments; ++i) {
      l.segments.push_back(read_segment(in, c, part, i, l.prefilled, segment_tokens));
    }
    if (segment_tokens != l.quantized) {
      in.fail("segments hold " + std::to_string(segment_tokens) + " tokens; the layer says " +
              std::to_string(l.quantized) + " quantized");
    }
    const uint64_t halves = uint64_t(l.residual) * part.kv_heads * g.head_dim;
    l.residual_keys = in.words<uint16_t>(halves, "residual keys");
    l.residual_values = in.words<uint16_t>(halves, "residual values");
    if (l.mixed) read_stores(in, c, heads, tokens, l);
    in.finish();
    return l;
  }

  static void check_written(const Cursor& in, const CacheFileLayer& l, uint64_t tokens) {
    if ((tokens > 0) != (l.prefilled || l.appended)) {
      in.fail(std::to_string(tokens) + " tokens with prefilled " + std::to_string(l.prefilled) + " and appended " +
              std::to_string(l.appended) + " (a layer holds tokens exactly when it was prefilled or appended to)");
    }
  }

  // A mixed layer's token count and its full and window heads' fp16 stores; their lengths follow
  // from the count, which is checked first.
  static void read_stores(Cursor& in, const CacheFileContents& c, const CacheFileLayerHeads& heads,
                          uint64_t part_tokens, CacheFileLayer& l) {
    const HeadPolicySpec& h = c.settings.head_policies;
    l.count = in.u32("layer token count");
    if (l.count > c.max_tokens) {
      in.fail("token count " + std::to_string(l.count) + " exceeds max_tokens " + std::to_string(c.max_tokens));
    }
    // Every token goes to every head: the preset part holds them all when it has heads.
    if (heads.preset > 0 && l.count != part_tokens) {
      in.fail("token count " + std::to_string(l.count) + "; its preset heads hold " + std::to_string(part_tokens) +
              " (quantized + residual)");
    }
    check_written(in, l, l.count);
    const uint64_t D = c.geometry.head_dim;
    const uint64_t window = std::min<uint64_t>(l.count, uint64_t(h.sink) + h.recent);
    l.full_keys = in.words<uint16_t>(uint64_t(l.count) * heads.full * D, "full keys");
    l.full_values = in.words<uint16_t>(uint64_t(l.count) * heads.full * D, "full values");
    l.window_keys = in.words<uint16_t>(window * heads.window * D, "window keys");
    l.window_values = in.words<uint16_t>(window * heads.window * D, "window values");
  }

  // Per unit (head, or the layer for scope layer): the anomalous channels then the normal ones,
  // each list strictly increasing, together every channel once. The attention indexes the keys
  // with these numbers, so anything else could read out of bounds on the device.
  static void check_channel_table(const Cursor& in, const CacheFileContents& c, const std::vector<uint32_t>& table) {
    const uint32_t D = c.geometry.head_dim;
    KeySpec ks = c.settings.keys;
    if (c.settings.key_mode != CacheSettings::KeyMode::vidkv) ks.nbits = 2.0;
    const uint32_t k = anomalous_channel_count(ks, D);
    std::vector<uint8_t> seen(D);
    for (size_t unit = 0; unit * D < table.size(); ++unit) {
      std::fill(seen.begin(), seen.end(), 0);
      const uint32_t* row = table.data() + unit * D;
      for (uint32_t i = 0; i < D; ++i) {
        const bool increasing = i == 0 || i == k || row[i] > row[i - 1];
        if (row[i] >= D || seen[row[i]] || !increasing) {
          in.fail("channel table unit " + std::to_string(unit) + " entry " + std::to_string(i) + " is channel " +
                  std::to_string(row[i]) + "; each unit lists its " + std::to_string(k) + " anomalous and " +
                  std::to_string(D - k) + " normal channels in increasing order, every channel of " +
                  std::to_string(D) + " once");
        }
        seen[row[i]] = 1;
      }
    }
  }

  // `part`: the geometry of the layer's preset part (kv_heads = its preset heads).
  CacheFileSegment read_segment(Cursor& in, const CacheFileContents& c, const CacheGeometry& part, uint32_t index,
                                bool prefilled, uint64_t& layer_tokens) {
    const std::string seg = "segment " + std::to_string(index);
    CacheFileSegment s;
    s.tokens = in.u32("segment tokens");
    uint32_t flags = 0;
    if (version_ >= 2) {
      flags = in.u32("segment flags");
      s.protected_count = in.u32("protected token count");
    }
    const uint32_t count = in.u32("segment array count");
    layer_tokens += s.tokens;
    if (layer_tokens > c.max_tokens) {
      in.fail(seg + " brings the layer to " + std::to_string(layer_tokens) + " tokens, above max_tokens " +
              std::to_string(c.max_tokens));
    }
    if (flags & ~kCacheFileSegmentStp) in.fail(seg + ": unknown flag bits " + hex32(flags));
    s.stp = flags & kCacheFileSegmentStp;
    // The cache protects tokens only in a prefill's segment, which is a layer's first.
    if (s.stp && (index != 0 || !prefilled)) {
      in.fail(seg + " is marked STP; only a layer's prefill segment (segment 0 of a prefilled layer) protects "
                    "tokens");
    }
    // Checks the protected count (multiple of group_size, at most the tokens) before any size is
    // computed from it.
    std::vector<CacheFileArraySpec> specs;
    try {
      specs = cache_file_segment_arrays(part, c.settings, s.tokens, s.stp, s.protected_count);
    } catch (const Error& e) {
      in.fail(seg + ": " + e.what());
    }
    if (count != specs.size()) {
      in.fail(seg + " has " + std::to_string(count) + " arrays; the settings give " + std::to_string(specs.size()));
    }
    std::vector<bool> found(specs.size(), false);
    for (uint32_t a = 0; a < count; ++a) {
      const uint32_t id = in.u32("array id");
      const uint64_t length = in.u64("array length");
      size_t which = specs.size();
      for (size_t i = 0; i < specs.size(); ++i) {
        if (uint32_t(specs[i].id) == id) which = i;
      }
      if (which == specs.size()) {
        in.fail(seg + ": array id " + std::to_string(id) + " (" + cache_file_array_name(CacheFileArrayId(id)) +
                ") does not belong to a segment of these settings");
      }
      const char* name = cache_file_array_name(specs[which].id);
      if (found[which]) in.fail(seg + ": array " + name + " appears twice");
      // One order only, the table's: a file has exactly one form, the one the writer makes.
      if (which != a) {
        in.fail(seg + ": array " + name + " at position " + std::to_string(a) + "; " +
                cache_file_array_name(specs[a].id) + " belongs there");
      }
      if (length != specs[which].bytes) {
        in.fail(seg + ": array " + name + " holds " + std::to_string(length) + " bytes; " +
                std::to_string(s.tokens) + " tokens of this geometry and settings give " +
                std::to_string(specs[which].bytes));
      }
      const uint8_t* p = in.take(length, name);
      s.arrays.push_back({specs[which].id, std::vector<uint8_t>(p, p + length)});
      found[which] = true;
    }
    // count == specs.size(), each in its place: every array was found.
    if (s.stp) check_protected_tokens(in, seg, s);
    return s;
  }

  // The device's token map is rebuilt from this list (index in its part, per token), and the
  // attention and decode index tokens with it: positions strictly increasing, inside the segment.
  static void check_protected_tokens(const Cursor& in, const std::string& seg, const CacheFileSegment& s) {
    const std::vector<uint32_t> list = cache_file_protected_tokens(s);
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i] >= s.tokens) {
        in.fail(seg + ": protected token " + std::to_string(i) + " is position " + std::to_string(list[i]) +
                ", outside the segment's " + std::to_string(s.tokens) + " tokens");
      }
      if (i > 0 && list[i] <= list[i - 1]) {
        in.fail(seg + ": protected token " + std::to_string(i) + " is position " + std::to_string(list[i]) +
                ", not above the previous " + std::to_string(list[i - 1]) +
                " (the positions are strictly increasing)");
      }
    }
  }

  void read_end() {
    const uint64_t at = pos_;
    Cursor in = section(cache_file::kTagEnd, "section END!");
    const uint64_t length = in.u64("file length");
    const uint32_t sections = in.u32("section count");
    in.finish();
    if (sections != sections_) {
      in.fail("records " + std::to_string(sections) + " sections; the file holds " + std::to_string(sections_));
    }
    if (length != pos_) in.fail("records a file of " + std::to_string(length) + " bytes; it ends at " + std::to_string(pos_));
    if (pos_ != size_) {
      fail(std::to_string(size_ - pos_) + " bytes follow the end section (at offset " + std::to_string(at) + ")");
    }
  }

  const uint8_t* data_;
  size_t size_;
  std::string name_;
  uint64_t pos_ = 0;
  uint32_t sections_ = 0;
  uint32_t version_ = kCacheFileFormatVersion;  // the file's, once its header is read
  std::vector<CacheFileLayerHeads> heads_;        // per layer, from the policies in HEAD
};

void Cursor::fail(const std::string& message) const { parser_.fail(what_ + ": " + message); }

}  // namespace

CacheFileContents parse_cache_file(const uint8_t* bytes, size_t size, const std::string& name) {
  if (bytes == nullptr && size > 0) throw Error(ErrorCode::invalid_argument, "parse_cache_file: null bytes");
  static const uint8_t empty = 0;
  return Parser(bytes ? bytes : &empty, size, name).parse();
}

}  // namespace vidkv
