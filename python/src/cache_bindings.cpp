// vidkv.Cache: the C++ vidkv::Cache with NumPy arrays in and out. Device work runs with the GIL
// released; a mutex per cache keeps its calls from overlapping (cache.hpp: one thread at a time).
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "devices.hpp"
#include "vidkv/cache.hpp"
#include "vidkv/presets.hpp"

namespace py = pybind11;

namespace vidkv::python {
namespace {

// A preset name, a configuration string, or a dict (its repr is the Python literal the
// configuration grammar reads). Unused keys are reported as a Python warning.
CacheSettings settings_from(const py::handle& settings) {
  std::string text;
  if (py::isinstance<py::str>(settings)) {
    text = settings.cast<std::string>();
  } else if (py::isinstance<py::dict>(settings)) {
    text = py::repr(settings).cast<std::string>();
  } else {
    throw py::value_error("settings: expected a preset name, a configuration string or a dict");
  }
  CacheSettings parsed = parse_settings(text);
  if (!parsed.ignored_keys.empty()) {
    std::string keys;
    for (const auto& key : parsed.ignored_keys) keys += (keys.empty() ? "" : ", ") + key;
    PyErr_WarnEx(PyExc_UserWarning, ("vidkv ignores these settings keys: " + keys).c_str(), 1);
  }
  return parsed;
}

py::dict part_dict(const CachePartBytes& part) {
  py::dict d;
  d["codes"] = part.codes;
  d["scales"] = part.scales;
  d["mins"] = part.mins;
  d["maps"] = part.maps;
  d["total"] = part.total();
  return d;
}

py::dict stats_dict(const CacheStats& s) {
  py::dict d;
  d["sequences"] = s.sequences;
  d["tokens"] = s.tokens;
  d["quantized_tokens"] = s.quantized_tokens;
  d["residual_tokens"] = s.residual_tokens;
  d["segments"] = s.segments;
  d["keys"] = part_dict(s.keys);
  d["values"] = part_dict(s.values);
  d["residual_bytes"] = s.residual_bytes;
  d["residual_capacity_bytes"] = s.residual_capacity_bytes;
  d["key_bits"] = s.key_bits;
  d["value_bits"] = s.value_bits;
  d["fp16_equivalent_bytes"] = s.fp16_equivalent_bytes;
  d["nonfinite_inputs"] = s.nonfinite_inputs;
  py::dict policies;
  const char* names[3] = {"vidkv", "full", "window"};
  for (int i = 0; i < 3; ++i) {
    py::dict p;
    p["heads"] = s.policies[i].heads;
    p["tokens"] = s.policies[i].tokens;
    p["bytes"] = s.policies[i].bytes;
    p["fp16_equivalent_bytes"] = s.policies[i].fp16_equivalent_bytes;
    policies[names[i]] = p;
  }
  d["policies"] = policies;
  return d;
}

class PyCache {
 public:
  PyCache(uint32_t layers, uint32_t kv_heads, uint32_t q_heads, uint32_t head_dim, const py::handle& settings,
          uint32_t max_tokens, const py::object& device) {
    const CacheSettings parsed = settings_from(settings);
    context_ = context_for(device);
    py::gil_scoped_release release;
    cache_ = std::make_unique<Cache>(context_, CacheGeometry{layers, kv_heads, q_heads, head_dim}, parsed, max_tokens);
  }
  PyCache(std::shared_ptr<rt::Context> context, std::unique_ptr<Cache> cache)
      : context_(std::move(context)), cache_(std::move(cache)) {}

  static std::unique_ptr<PyCache> load(const std::string& path, const py::object& device) {
    auto context = context_for(device);
    std::unique_ptr<Cache> cache;
    {
      py::gil_scoped_release release;
      cache = Cache::load(path, context);
    }
    return std::make_unique<PyCache>(std::move(context), std::move(cache));
  }

  // Runs f on the cache without the GIL, one call at a time.
  template <class F>
  auto run(F&& f) {
    py::gil_scoped_release release;
    std::lock_guard lock(mutex_);
    return f(*cache_);
  }

  const CacheGeometry& geometry() const { return cache_->geometry(); }

  void prefill(uint32_t sequence, uint32_t layer, const py::handle& k, const py::handle& v,
               const std::optional<CacheStpInput>& stp) {
    const auto& g = geometry();
    std::vector<Axis> k_shape{{"tokens", -1}, {"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    auto keys = to_fp16(k, "k", k_shape);
    std::vector<Axis> v_shape{{"tokens", k_shape[0].extent}, {"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    auto values = to_fp16(v, "v", v_shape);
    const auto tokens = uint32_t(k_shape[0].extent);
    run([&](Cache& c) {
      if (stp) {
        c.prefill(sequence, layer, keys, values, tokens, *stp);
      } else {
        c.prefill(sequence, layer, keys, values, tokens);
      }
    });
  }

  void append(uint32_t sequence, uint32_t layer, const py::handle& k, const py::handle& v) {
    const auto& g = geometry();
    std::vector<Axis> k_shape{{"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    std::vector<Axis> v_shape = k_shape;
    auto key = to_fp16(k, "k", k_shape);
    auto value = to_fp16(v, "v", v_shape);
    run([&](Cache& c) { c.append(sequence, layer, key, value); });
  }

  py::array attention(uint32_t sequence, uint32_t layer, const py::handle& q, float scale) {
    const auto& g = geometry();
    std::vector<Axis> q_shape{{"q_heads", g.q_heads}, {"head_dim", g.head_dim}};
    auto query = to_fp32(q, "q", q_shape);
    auto out = run([&](Cache& c) { return c.attention(sequence, layer, query, scale); });
    return fp32_array(std::move(out), {py::ssize_t(g.q_heads), py::ssize_t(g.head_dim)});
  }

  void extend(uint32_t sequence, uint32_t layer, const py::handle& k, const py::handle& v) {
    const auto& g = geometry();
    std::vector<Axis> k_shape{{"tokens", -1}, {"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    auto keys = to_fp16(k, "k", k_shape);
    std::vector<Axis> v_shape{{"tokens", k_shape[0].extent}, {"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    auto values = to_fp16(v, "v", v_shape);
    const auto tokens = uint32_t(k_shape[0].extent);
    run([&](Cache& c) { c.extend(sequence, layer, keys, values, tokens); });
  }

  py::array attention_causal(uint32_t sequence, uint32_t layer, const py::handle& q, float scale) {
    const auto& g = geometry();
    std::vector<Axis> q_shape{{"tokens", -1}, {"q_heads", g.q_heads}, {"head_dim", g.head_dim}};
    auto query = to_fp32(q, "q", q_shape);
    const auto tokens = uint32_t(q_shape[0].extent);
    auto out = run([&](Cache& c) { return c.attention_causal(sequence, layer, query, tokens, scale); });
    return fp32_array(std::move(out), {py::ssize_t(tokens), py::ssize_t(g.q_heads), py::ssize_t(g.head_dim)});
  }

  // Batched decode: entry i of k, v (fp16 [count, kv_heads, head_dim]) or q (fp32 [count, q_heads,
  // head_dim]) belongs to sequences[i].
  void append_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const py::handle& k, const py::handle& v) {
    const auto& g = geometry();
    const auto count = py::ssize_t(sequences.size());
    std::vector<Axis> shape{{"sequences", count}, {"kv_heads", g.kv_heads}, {"head_dim", g.head_dim}};
    auto keys = to_fp16(k, "k", shape);
    auto values = to_fp16(v, "v", shape);
    run([&](Cache& c) { c.append_batch(layer, sequences, keys, values); });
  }

  py::array attention_batch(uint32_t layer, const std::vector<uint32_t>& sequences, const py::handle& q, float scale) {
    const auto& g = geometry();
    const auto count = py::ssize_t(sequences.size());
    std::vector<Axis> shape{{"sequences", count}, {"q_heads", g.q_heads}, {"head_dim", g.head_dim}};
    auto query = to_fp32(q, "q", shape);
    auto out = run([&](Cache& c) { return c.attention_batch(layer, sequences, query, scale); });
    return fp32_array(std::move(out), {count, py::ssize_t(g.q_heads), py::ssize_t(g.head_dim)});
  }

  py::tuple dequantize(uint32_t sequence, uint32_t layer) {
    const auto& g = geometry();
    std::vector<uint16_t> keys, values;
    const uint32_t tokens = run([&](Cache& c) {
      c.dequantize(sequence, layer, keys, values);
      return c.tokens(sequence, layer);
    });
    const std::vector<py::ssize_t> shape{py::ssize_t(tokens), py::ssize_t(g.kv_heads), py::ssize_t(g.head_dim)};
    return py::make_tuple(fp16_array(std::move(keys), shape), fp16_array(std::move(values), shape));
  }

  std::vector<std::string> validation_messages() const { return python::validation_messages(*context_); }

 private:
  std::shared_ptr<rt::Context> context_;
  std::unique_ptr<Cache> cache_;
  std::mutex mutex_;
};

}  // namespace

void bind_cache(py::module_& m) {
  py::class_<CacheStpInput>(m, "StpInput",
                            "Semantic token protection input of a prefill (cache.hpp CacheStpInput): the visual "
                            "tokens [first_visual, first_visual + visual_tokens) of the prefill, with one score "
                            "each (the top fraction p keeps 2-bit values) or an explicit increasing list of "
                            "protected positions.")
      .def(py::init([](uint32_t first_visual, uint32_t visual_tokens, std::optional<std::vector<float>> scores,
                       std::optional<std::vector<uint32_t>> protected_tokens) {
             CacheStpInput in;
             in.first_visual = first_visual;
             in.visual_tokens = visual_tokens;
             if (scores) in.scores = std::move(*scores);
             if (protected_tokens) in.protected_tokens = std::move(*protected_tokens);
             return in;
           }),
           py::arg("first_visual") = 0, py::arg("visual_tokens") = 0, py::arg("scores") = py::none(),
           py::arg("protected_tokens") = py::none())
      .def_readwrite("first_visual", &CacheStpInput::first_visual)
      .def_readwrite("visual_tokens", &CacheStpInput::visual_tokens)
      .def_readwrite("scores", &CacheStpInput::scores)
      .def_readwrite("protected_tokens", &CacheStpInput::protected_tokens);

  py::class_<PyCache>(m, "Cache",
                      "A VidKV-quantized KV cache on a Vulkan device (cache.hpp). K and V are "
                      "[tokens, kv_heads, head_dim], q and attention outputs [q_heads, head_dim]; inputs "
                      "are fp16 or fp32 (rounded to fp16 to nearest even) NumPy arrays, objects with "
                      "__array__ or CPU DLPack tensors.")
      .def(py::init<uint32_t, uint32_t, uint32_t, uint32_t, const py::handle&, uint32_t, const py::object&>(),
           py::arg("layers"), py::arg("kv_heads"), py::arg("q_heads"), py::arg("head_dim"), py::arg("settings"),
           py::arg("max_tokens"), py::arg("device") = py::none(),
           "settings: a preset name (vidkv.presets()), the original's configuration string, or that "
           "configuration as a dict. device: None (VIDKV_DEVICE or the default), an index or a name substring.")
      .def("create_sequence", [](PyCache& self) { return self.run([](Cache& c) { return c.create_sequence(); }); })
      .def(
          "free_sequence", [](PyCache& self, uint32_t s) { self.run([&](Cache& c) { c.free_sequence(s); }); },
          py::arg("sequence"))
      .def(
          "has_sequence", [](PyCache& self, uint32_t s) { return self.run([&](Cache& c) { return c.has_sequence(s); }); },
          py::arg("sequence"))
      .def(
          "fork", [](PyCache& self, uint32_t s) { return self.run([&](Cache& c) { return c.fork_sequence(s); }); },
          py::arg("sequence"),
          "A new sequence holding what `sequence` holds: its quantized segments shared (freed with their last "
          "user), its residual copied (Cache::fork_sequence).")
      .def(
          "truncate",
          [](PyCache& self, uint32_t s, uint32_t tokens) { self.run([&](Cache& c) { c.truncate_sequence(s, tokens); }); },
          py::arg("sequence"), py::arg("tokens"),
          "Keeps the first `tokens` tokens of every layer; a cut inside a quantized segment masks its tail "
          "(Cache::truncate_sequence).")
      .def("sequence_ids", [](PyCache& self) { return self.run([](Cache& c) { return c.sequence_ids(); }); })
      .def(
          "tokens",
          [](PyCache& self, uint32_t s, uint32_t l) { return self.run([&](Cache& c) { return c.tokens(s, l); }); },
          py::arg("sequence"), py::arg("layer"))
      .def(
          "segment_count",
          [](PyCache& self, uint32_t s, uint32_t l) { return self.run([&](Cache& c) { return c.segment_count(s, l); }); },
          py::arg("sequence"), py::arg("layer"))
      .def("prefill", &PyCache::prefill, py::arg("sequence"), py::arg("layer"), py::arg("k"), py::arg("v"),
           py::arg("stp") = py::none(),
           "Stores a prompt's K and V, [tokens, kv_heads, head_dim]; once per (sequence, layer), before any "
           "append. stp: a vidkv.StpInput, required exactly for STP settings.")
      .def("append", &PyCache::append, py::arg("sequence"), py::arg("layer"), py::arg("k"), py::arg("v"),
           "Stores one decoded token's K and V, [kv_heads, head_dim] each.")
      .def("attention", &PyCache::attention, py::arg("sequence"), py::arg("layer"), py::arg("q"),
           py::arg("scale") = 0.0f,
           "Decode attention of q [q_heads, head_dim] over the layer's tokens, straight from the packed "
           "cache; scale 0 means 1/sqrt(head_dim). Returns float32 [q_heads, head_dim].")
      .def("extend", &PyCache::extend, py::arg("sequence"), py::arg("layer"), py::arg("k"), py::arg("v"),
           "Stores many tokens' K and V, [tokens, kv_heads, head_dim] each, at any time (a follow-up "
           "prompt): bit for bit what that many appends store, in one submission.")
      .def("attention_causal", &PyCache::attention_causal, py::arg("sequence"), py::arg("layer"), py::arg("q"),
           py::arg("scale") = 0.0f,
           "Causal attention of the layer's newest tokens: q [tokens, q_heads, head_dim]; query i attends "
           "over positions up to L - tokens + i. Returns float32 [tokens, q_heads, head_dim].")
      .def("append_batch", &PyCache::append_batch, py::arg("layer"), py::arg("sequences"), py::arg("k"),
           py::arg("v"),
           "One decode step's K and V for many sequences, [len(sequences), kv_heads, head_dim] each (entry i "
           "belongs to sequences[i]): bit for bit what one append per sequence stores, in one pass.")
      .def("attention_batch", &PyCache::attention_batch, py::arg("layer"), py::arg("sequences"), py::arg("q"),
           py::arg("scale") = 0.0f,
           "Attention of one new token for many sequences: q [len(sequences), q_heads, head_dim]; one set of "
           "dispatches and one reduction. Returns float32 [len(sequences), q_heads, head_dim].")
      .def("dequantize", &PyCache::dequantize, py::arg("sequence"), py::arg("layer"),
           "The layer's K and V as stored, decoded: float16 [tokens, kv_heads, head_dim] each.")
      .def("stats", [](PyCache& self) { return stats_dict(self.run([](Cache& c) { return c.stats(); })); })
      .def(
          "save",
          [](PyCache& self, const std::string& path, std::optional<uint32_t> sequence) {
            self.run([&](Cache& c) { sequence ? c.save(path, *sequence) : c.save(path); });
          },
          py::arg("path"), py::arg("sequence") = py::none(),
          "Writes every sequence, or one, to a file (docs/cache-format.md).")
      .def_static("load", &PyCache::load, py::arg("path"), py::arg("device") = py::none(),
                  "A new cache holding a saved file's sequences under their saved ids.")
      .def(
          "load_sequences",
          [](PyCache& self, const std::string& path) { return self.run([&](Cache& c) { return c.load_sequences(path); }); },
          py::arg("path"), "Adds a saved file's sequences (same geometry and settings); returns their new ids.")
      .def(
          "serialize_sequence",
          [](PyCache& self, uint32_t sequence) {
            const std::vector<uint8_t> bytes = self.run([&](Cache& c) { return c.serialize_sequence(sequence); });
            return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
          },
          py::arg("sequence"),
          "One sequence as bytes in the saved-cache format, to move it to another process or machine.")
      .def(
          "deserialize_sequence",
          [](PyCache& self, const py::bytes& data) {
            const std::string bytes = data;  // a copy the device work can read without the GIL
            return self.run([&](Cache& c) {
              return c.deserialize_sequence(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
            });
          },
          py::arg("data"), "Adds the sequence serialize_sequence's bytes hold; returns its new id.")
      .def("validation_messages", &PyCache::validation_messages,
           "Validation-layer messages of this cache's device context (VIDKV_VALIDATION=1); [] when clean.")
      .def_property_readonly("layers", [](const PyCache& self) { return self.geometry().layers; })
      .def_property_readonly("kv_heads", [](const PyCache& self) { return self.geometry().kv_heads; })
      .def_property_readonly("q_heads", [](const PyCache& self) { return self.geometry().q_heads; })
      .def_property_readonly("head_dim", [](const PyCache& self) { return self.geometry().head_dim; })
      .def_property_readonly("max_tokens", [](PyCache& self) { return self.run([](Cache& c) { return c.max_tokens(); }); })
      .def_property_readonly("settings", [](PyCache& self) { return self.run([](Cache& c) { return c.settings().name; }); },
                             "The settings' name (a preset's, or one built from the fields).")
      .def("describe", [](PyCache& self) { return self.run([](Cache& c) { return describe(c.settings()); }); });
}

}  // namespace vidkv::python
