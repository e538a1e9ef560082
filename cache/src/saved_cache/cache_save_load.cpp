// Cache::save / load / load_sequences: the device side of saved caches. Saving reads every array a
// sequence holds back from the device into the host structure of cache_file.hpp and writes it;
// loading parses and checks the whole file on the host first (parse_cache_file), then checks it
// against the cache, uploads every sequence into new device buffers set aside, and only then adds
// them: a file that fails anywhere leaves the cache exactly as it was.
//
// Semantic token protection: an STP segment is saved as its two value parts and the sorted list of
// protected positions; loading rebuilds the split and the token map from that list through the
// same code that builds them at prefill (prepare_stp_values), so the device state is the one the
// prefill made.
//
// Per-head policies: a mixed layer's preset part is saved over its preset heads (part_heads), and
// its full and window stores' live contents with its token count; loading rebuilds the layer as
// make_sequence() does and allocates the stores as the first write would (prepare_routes).
#include <algorithm>
#include <string>

#include "sequence_cache/cache_internal.hpp"
#include "vidkv/cache_file.hpp"
#include "vidkv/version.hpp"

namespace vidkv {

using cache_detail::Layer;
using cache_detail::Segment;
using cache_detail::Sequence;

namespace {

// The device buffer that holds array `id` of a segment: with cache_file_segment_arrays, the one
// place to extend when segments gain arrays.
std::unique_ptr<rt::Buffer>& segment_buffer(Segment& s, CacheFileArrayId id) {
  switch (id) {
    case CacheFileArrayId::key_anomalous_codes: return s.key_anomalous.codes;
    case CacheFileArrayId::key_anomalous_scales: return s.key_anomalous.scales;
    case CacheFileArrayId::key_anomalous_mins: return s.key_anomalous.mins;
    case CacheFileArrayId::key_stream_codes: return s.key_normal.codes;
    case CacheFileArrayId::key_stream_scales: return s.key_normal.scales;
    case CacheFileArrayId::value_codes: return s.values.codes;
    case CacheFileArrayId::value_scales: return s.values.scales;
    case CacheFileArrayId::value_mins: return s.values.mins;
    case CacheFileArrayId::value_high_codes: return s.values_high.codes;
    case CacheFileArrayId::value_high_scales: return s.values_high.scales;
    case CacheFileArrayId::value_high_mins: return s.values_high.mins;
    case CacheFileArrayId::stp_protected_tokens: break;  // host data: the split, not a buffer
  }
  throw Error(ErrorCode::invalid_argument,
              "cache: array id " + std::to_string(uint32_t(id)) + " has no place in a device segment");
}

template <typename T>
std::vector<T> download(const rt::Buffer& buffer, uint64_t count) {
  std::vector<T> out(count);
  if (count > 0) buffer.download(out.data(), count * sizeof(T));
  return out;
}

std::vector<uint8_t> little_endian(const std::vector<uint32_t>& words) {
  std::vector<uint8_t> out;
  out.reserve(words.size() * 4);
  for (uint32_t w : words) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(w >> (8 * i)));
  }
  return out;
}

std::unique_ptr<rt::Buffer> upload(const std::shared_ptr<rt::Context>& ctx, const void* data, uint64_t bytes) {
  auto buffer = cache_detail::new_buffer(ctx, bytes);
  if (bytes > 0) buffer->upload(data, bytes);
  return buffer;
}

// The geometry of a layer's preset part: every head, or a mixed layer's preset heads.
CacheGeometry part_geometry(const Cache::Impl& m, const Layer& l) {
  return cache_file_part_geometry(m.geometry, m.part_heads(l));
}

// A mixed layer's full and window stores, live contents only: `count` tokens of the full heads,
// the window's held slots in slot order.
void save_stores(const Cache::Impl& m, const Layer& l, CacheFileLayer& f) {
  const cache_detail::HeadRoute& r = m.routes[l.index];
  const uint64_t D = m.geometry.head_dim;
  f.mixed = true;
  f.count = l.count;
  const uint64_t full = uint64_t(l.count) * r.full.size() * D;
  const uint64_t window = uint64_t(std::min(l.count, m.window_capacity())) * r.window.size() * D;
  if (full > 0) {
    f.full_keys = download<uint16_t>(*l.full_keys, full);
    f.full_values = download<uint16_t>(*l.full_values, full);
  }
  if (window > 0) {
    f.window_keys = download<uint16_t>(*l.window_keys, window);
    f.window_values = download<uint16_t>(*l.window_values, window);
  }
}

CacheFileLayer save_layer(const Cache::Impl& m, const Layer& l) {
  CacheFileLayer f;
  f.prefilled = l.prefilled;
  f.appended = l.appended;
  f.quantized = l.quantized;
  f.residual = l.residual;
  const CacheGeometry part = part_geometry(m, l);
  if (l.channels) f.channels = download<uint32_t>(*l.channels, cache_file_channel_table_entries(part, m.settings));
  for (const cache_detail::SegmentRef& ref : l.segments) {
    const Segment& s = *ref;
    CacheFileSegment fs;
    fs.tokens = s.tokens;
    fs.stp = s.stp;
    fs.protected_count = s.stp ? uint32_t(s.split.protected_tokens.size()) : 0;
    for (const CacheFileArraySpec& spec :
         cache_file_segment_arrays(part, m.settings, s.tokens, fs.stp, fs.protected_count)) {
      if (spec.id == CacheFileArrayId::stp_protected_tokens) {
        fs.arrays.push_back({spec.id, little_endian(s.split.protected_tokens)});
        continue;
      }
      const auto& buffer = segment_buffer(const_cast<Segment&>(s), spec.id);
      fs.arrays.push_back({spec.id, download<uint8_t>(*buffer, spec.bytes)});
    }
    f.segments.push_back(std::move(fs));
  }
  const uint64_t halves = uint64_t(l.residual) * part.kv_heads * part.head_dim;
  if (halves > 0) {
    f.residual_keys = download<uint16_t>(*l.residual_keys, halves);
    f.residual_values = download<uint16_t>(*l.residual_values, halves);
  }
  if (l.mixed) save_stores(m, l, f);
  return f;
}

CacheFileContents save_header(const Cache::Impl& m) {
  CacheFileContents c;
  c.library_version = VIDKV_VERSION_STRING;
  c.geometry = m.geometry;
  c.settings = m.settings;
  c.max_tokens = m.max_tokens;
  return c;
}

CacheFileSequence save_sequence(const Cache::Impl& m, uint32_t id, const Sequence& seq) {
  // The format holds whole segments only: a segment whose tail truncate_sequence masked would come
  // back with its masked tokens visible. Refused before anything is written.
  for (size_t i = 0; i < seq.layers.size(); ++i) {
    for (const cache_detail::SegmentRef& ref : seq.layers[i].segments) {
      if (!ref.masked()) continue;
      throw Error(ErrorCode::invalid_argument,
                  "cache: sequence " + std::to_string(id) + " layer " + std::to_string(i) +
                      " was truncated inside a quantized segment (" + std::to_string(ref.visible) + " of its " +
                      std::to_string(ref->tokens) +
                      " tokens kept): the saved-cache format holds whole segments only, so a sequence with a "
                      "masked segment cannot be saved or serialized");
    }
  }
  CacheFileSequence f;
  f.id = id;
  for (const Layer& l : seq.layers) f.layers.push_back(save_layer(m, l));
  return f;
}

// A mixed layer's full and window stores, allocated as prepare_routes allocates them at a layer's
// first write (full: max_tokens slots, window: sink + recent), holding the file's live contents.
void upload_stores(Cache::Impl& m, const CacheFileLayer& f, Layer& l) {
  const cache_detail::HeadRoute& r = m.routes[l.index];
  l.count = f.count;
  if (!(f.prefilled || f.appended)) return;  // nothing written: allocated at the first write
  auto store = [&](std::unique_ptr<rt::Buffer>& buffer, const std::vector<uint16_t>& data, uint64_t bytes) {
    buffer = cache_detail::new_buffer(m.ctx, bytes);
    if (!data.empty()) buffer->upload(data.data(), data.size() * 2);
  };
  if (!r.full.empty()) {
    store(l.full_keys, f.full_keys, m.full_store_bytes(l));
    store(l.full_values, f.full_values, m.full_store_bytes(l));
  }
  if (!r.window.empty()) {
    store(l.window_keys, f.window_keys, m.window_store_bytes(l));
    store(l.window_values, f.window_values, m.window_store_bytes(l));
  }
}

// New device buffers holding one layer of a parsed file (checked by the parser and
// check_fits): nothing of the cache is touched but its scratch (an STP segment makes sure the
// decode's gather buffer exists, as its prefill does). `l` comes from make_sequence(): it knows
// its index and, in a mixed layer, its preset heads.
Layer upload_layer(Cache::Impl& m, const CacheFileLayer& f, Layer l) {
  // The file's policies are the cache's (same settings and geometry): the same layers are mixed.
  if (f.mixed != l.mixed) {
    throw Error(ErrorCode::corrupt_data, "cache: saved layer " + std::to_string(l.index) + " is " +
                                             (f.mixed ? "" : "not ") + "mixed; the cache's policies say otherwise");
  }
  const CacheGeometry stored = part_geometry(m, l);
  l.prefilled = f.prefilled;
  l.appended = f.appended;
  l.quantized = f.quantized;
  l.residual = f.residual;
  if (!f.channels.empty()) l.channels = upload(m.ctx, f.channels.data(), f.channels.size() * 4);
  for (const CacheFileSegment& fs : f.segments) {
    Segment s;
    s.tokens = fs.tokens;
    s.heads = stored.kv_heads;  // all heads, or a mixed layer's preset heads
    if (fs.stp) {
      // The split as the prefill made it (other tokens: the complement, increasing), then the
      // buffers, token map and value byte counts exactly as prepare_segment allocates them.
      const TokenSplit split =
          reference::split_from_list(cache_file_protected_tokens(fs), fs.tokens, m.settings.group_size);
      m.prepare_stp_values(s, split);
    }
    const auto specs = cache_file_segment_arrays(stored, m.settings, fs.tokens, fs.stp, fs.protected_count);
    for (const CacheFileArray& a : fs.arrays) {
      const auto spec = std::find_if(specs.begin(), specs.end(), [&](const auto& x) { return x.id == a.id; });
      if (spec->role == CacheFileRole::tokens) continue;  // rebuilt above
      std::unique_ptr<rt::Buffer>& slot = segment_buffer(s, a.id);
      if (slot && slot->size() >= a.bytes.size()) {
        if (!a.bytes.empty()) slot->upload(a.bytes.data(), a.bytes.size());
      } else {
        slot = upload(m.ctx, a.bytes.data(), a.bytes.size());
      }
      // prepare_stp_values has counted an STP segment's values (with its token map).
      if (spec->part == CacheFilePart::values && fs.stp) continue;
      CachePartBytes& part = spec->part == CacheFilePart::keys ? s.key_bytes : s.value_bytes;
      (spec->role == CacheFileRole::codes ? part.codes : spec->role == CacheFileRole::scales ? part.scales : part.mins) +=
          a.bytes.size();
    }
    // What the cache does not keep (the streams' and trits' mins, an empty key part) is a
    // placeholder the attention binds but never reads.
    for (gpu::DevicePacked* part : {&s.key_anomalous, &s.key_normal, &s.values}) {
      for (auto* slot : {&part->codes, &part->scales, &part->mins}) {
        if (!*slot) *slot = cache_detail::new_buffer(m.ctx, 16);
      }
    }
    l.segments.push_back({std::make_shared<const Segment>(std::move(s)), fs.tokens});
  }
  if ((f.prefilled || f.appended) && stored.kv_heads > 0) {
    // The residual as the cache allocates it at a layer's first write: its full capacity (none
    // in a mixed layer without preset heads).
    const uint64_t capacity = uint64_t(m.residual_capacity()) * m.part_token_bytes(l);
    l.residual_keys = cache_detail::new_buffer(m.ctx, capacity);
    l.residual_values = cache_detail::new_buffer(m.ctx, capacity);
    if (f.residual > 0) {
      l.residual_keys->upload(f.residual_keys.data(), f.residual_keys.size() * 2);
      l.residual_values->upload(f.residual_values.data(), f.residual_values.size() * 2);
    }
  }
  if (l.mixed) upload_stores(m, f, l);
  return l;
}

std::string geometry_text(const CacheGeometry& g) {
  return "layers " + std::to_string(g.layers) + ", kv_heads " + std::to_string(g.kv_heads) + ", q_heads " +
         std::to_string(g.q_heads) + ", head_dim " + std::to_string(g.head_dim);
}

// A parsed file must describe the same cache layout as `m` and fit its max_tokens. `source` names
// it in messages ("cache file 'x.vkv'", "sequence bytes").
void check_fits(const Cache::Impl& m, const CacheFileContents& c, const std::string& source) {
  const CacheGeometry& a = c.geometry;
  const CacheGeometry& b = m.geometry;
  if (a.layers != b.layers || a.kv_heads != b.kv_heads || a.q_heads != b.q_heads || a.head_dim != b.head_dim) {
    throw Error(ErrorCode::invalid_argument, source + " has geometry " + geometry_text(a) +
                                                 "; this cache has " + geometry_text(b));
  }
  if (!same_configuration(c.settings, m.settings)) {
    throw Error(ErrorCode::invalid_argument, source + " has settings " + describe(c.settings) +
                                                 "; this cache has " + describe(m.settings));
  }
  for (const CacheFileSequence& s : c.sequences) {
    for (size_t l = 0; l < s.layers.size(); ++l) {
      const CacheFileLayer& f = s.layers[l];
      const uint64_t tokens = f.mixed ? f.count : uint64_t(f.quantized) + f.residual;
      if (tokens > m.max_tokens) {
        throw Error(ErrorCode::invalid_argument, source + ": sequence " + std::to_string(s.id) +
                                                     " layer " + std::to_string(l) + " holds " + std::to_string(tokens) +
                                                     " tokens, above this cache's max_tokens " +
                                                     std::to_string(m.max_tokens));
      }
    }
  }
}

std::vector<Sequence> upload_sequences(Cache::Impl& m, const CacheFileContents& c) {
  std::vector<Sequence> out;
  for (const CacheFileSequence& f : c.sequences) {
    // Layers as a new sequence's (index, mixed, preset heads), then the file's contents.
    Sequence fresh = m.make_sequence();
    Sequence s;
    for (size_t i = 0; i < f.layers.size(); ++i) {
      s.layers.push_back(upload_layer(m, f.layers[i], std::move(fresh.layers[i])));
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

void Cache::save(const std::string& path) const {
  const Impl& m = *impl_;
  CacheFileContents c = save_header(m);
  for (const auto& [id, seq] : m.sequences) c.sequences.push_back(save_sequence(m, id, seq));
  write_cache_file(path, serialize_cache_file(c));
}

void Cache::save(const std::string& path, uint32_t sequence) const {
  const Impl& m = *impl_;
  const Sequence& seq = m.sequence(sequence);  // throws naming an unknown id
  CacheFileContents c = save_header(m);
  c.sequences.push_back(save_sequence(m, sequence, seq));
  write_cache_file(path, serialize_cache_file(c));
}

std::unique_ptr<Cache> Cache::load(const std::string& path, std::shared_ptr<rt::Context> context) {
  const CacheFileContents c = read_cache_file(path);
  std::unique_ptr<Cache> cache;
  try {
    cache = std::make_unique<Cache>(std::move(context), c.geometry, c.settings, c.max_tokens);
  } catch (const Error& e) {
    // The same code: name the file in front of the constructor's message, without its code twice.
    std::string message = e.what();
    const std::string code = std::string(error_code_name(e.code())) + ": ";
    if (message.rfind(code, 0) == 0) message.erase(0, code.size());
    throw Error(e.code(), "cache file '" + path + "': " + message);
  }
  Impl& m = *cache->impl_;
  std::vector<Sequence> loaded = upload_sequences(m, c);
  // The sequences keep the ids they were saved with; new ones continue after the largest.
  for (size_t i = 0; i < loaded.size(); ++i) {
    m.sequences.emplace(c.sequences[i].id, std::move(loaded[i]));
    m.next_id = std::max(m.next_id, c.sequences[i].id + 1);
  }
  return cache;
}

std::vector<uint32_t> Cache::load_sequences(const std::string& path) {
  return add_sequences(read_cache_file(path), "cache file '" + path + "'");
}

std::vector<uint32_t> Cache::add_sequences(const CacheFileContents& c, const std::string& source) {
  Impl& m = *impl_;
  check_fits(m, c, source);
  std::vector<Sequence> loaded = upload_sequences(m, c);
  // Commit: new ids, as create_sequence gives them. Only host memory can fail from here; undo then.
  std::vector<uint32_t> ids;
  try {
    for (Sequence& s : loaded) {
      const uint32_t id = create_sequence();
      ids.push_back(id);
      m.sequences.at(id) = std::move(s);
    }
  } catch (...) {
    for (uint32_t id : ids) m.sequences.erase(id);
    throw;
  }
  return ids;
}

std::vector<uint8_t> Cache::serialize_sequence(uint32_t sequence) const {
  const Impl& m = *impl_;
  const Sequence& seq = m.sequence(sequence);  // throws naming an unknown id
  CacheFileContents c = save_header(m);
  c.sequences.push_back(save_sequence(m, sequence, seq));
  return serialize_cache_file(c);
}

uint32_t Cache::deserialize_sequence(const uint8_t* bytes, size_t size) {
  if (bytes == nullptr && size > 0) throw Error(ErrorCode::invalid_argument, "sequence bytes: null pointer");
  const std::string source = "sequence bytes";
  const CacheFileContents c = parse_cache_file(bytes, size, source);
  if (c.sequences.size() != 1) {
    throw Error(ErrorCode::invalid_argument, source + " hold " + std::to_string(c.sequences.size()) +
                                                 " sequences; deserialize_sequence takes one (use load_sequences "
                                                 "for a saved cache)");
  }
  return add_sequences(c, source).front();
}

std::vector<uint32_t> Cache::sequence_ids() const {
  std::vector<uint32_t> ids;
  for (const auto& entry : impl_->sequences) ids.push_back(entry.first);
  return ids;
}

}  // namespace vidkv
