#include "bench/options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::bench {
namespace {

Error bad(const std::string& message) { return Error(ErrorCode::invalid_argument, message); }

uint64_t parse_unsigned(const std::string& option, const std::string& text, uint64_t min, uint64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    throw bad(option + " " + text + ": not a non-negative integer");
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min || v > max)
    throw bad(option + " " + text + ": outside " + std::to_string(min) + ".." + std::to_string(max));
  return v;
}

double parse_double(const std::string& option, const std::string& text, double min, double max) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < min || v > max)
    throw bad(option + " " + text + ": not a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return v;
}

// "268435456", "256M", "256MiB", "1G" (K, M, G binary); at least 1 KiB, at most 1 TiB.
uint64_t parse_bytes(const std::string& option, const std::string& text) {
  const size_t digits = text.find_first_not_of("0123456789");
  std::string unit = digits == std::string::npos ? "" : text.substr(digits);
  if (unit.size() == 3 && unit.substr(1) == "iB") unit = unit.substr(0, 1);
  const uint64_t scale = unit.empty() ? 1 : unit == "K" ? 1ull << 10 : unit == "M" ? 1ull << 20 : unit == "G" ? 1ull << 30 : 0;
  if (digits == 0 || scale == 0) throw bad(option + " " + text + ": a byte count such as 268435456, 256M or 1G");
  const uint64_t bytes = parse_unsigned(option, text.substr(0, digits), 1, (1ull << 40) / scale) * scale;
  if (bytes < 1024) throw bad(option + " " + text + ": at least 1K");
  return bytes;
}

std::vector<std::string> split_list(const std::string& option, const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) throw bad(option + " '" + text + "': empty item in the comma list");
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

// Sparsities: each in [0, 1) (1 would leave no head its high policy, and the cache refuses it).
std::vector<double> parse_sparsities(const std::string& option, const std::string& text) {
  std::vector<double> out;
  for (const auto& item : split_list(option, text)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (end != item.c_str() + item.size() || !(v >= 0.0 && v < 1.0))
      throw bad(option + " " + item + ": not a number in [0, 1)");
    out.push_back(v);
  }
  return out;
}

std::string parse_policy(const std::string& option, const std::string& text, const char* other) {
  if (text != "vidkv" && text != other) throw bad(option + " " + text + ": " + other + " or vidkv");
  return text;
}

std::vector<uint32_t> parse_sizes(const std::string& option, const std::string& text, uint64_t max) {
  std::vector<uint32_t> sizes;
  for (const auto& item : split_list(option, text)) sizes.push_back(uint32_t(parse_unsigned(option, item, 1, max)));
  return sizes;
}

}  // namespace

std::string usage_text() {
  return R"(usage: vidkv-bench [options]
Quantizes a video LLM's KV cache with each preset on the default Vulkan device (VIDKV_DEVICE) and
reports effective bits, memory, reconstruction and attention error, prefill time and decode
attention time beside the fp16 shader and a copy bandwidth measured in the same run.

workload (default: the built-in video KV generator, LLaVA-OneVision-7B geometry)
  --model NAME            llava-ov-7b (1-D RoPE) or qwen2.5-vl-7b (multimodal RoPE over frame,
                          row, column); both 28 layers, 4 KV heads, 28 query heads, head_dim 128
  --frames LIST           frames of video, e.g. 32 or 8,16,32,64 for a sweep (default 32)
  --tokens LIST           total context lengths instead (visual + text), e.g. 2048,8192
  --tokens-per-frame N    visual tokens per frame (default 196, a 14 x 14 grid)
  --text-tokens N         prompt tokens after the video (default 32)
  --rope-base X           RoPE base (default 1e6, the models'; 10000 for older models)
  --frame-correlation X   AR(1) coefficient between a patch and the same patch one frame
                          earlier (default 0.9)
  --seed N                generator seed (default 1); the same seed gives the same data
  --layers N              layers to use (default: all)
  --kv DIR                a dump instead: k_<layer>.npy and v_<layer>.npy, each
                          [tokens, kv_heads, head_dim], fp16 or fp32 (README: writing them)
  --q-heads N             query heads (default: the model's 28; 7 per KV head for a dump)
  --first-visual N        dump: position of the first visual token (default 0)
  --visual-tokens N       dump: number of visual tokens (default: all but --text-tokens)

what is measured
  --preset LIST           presets or configuration strings, comma-separated (default
                          fp16,2bit,kivi,k1.5-v2,k1.5-v1.58,k1.5-v1.58-stp)
  --error-layers N        layers whose reconstruction and attention error are measured, spread
                          evenly over the depth (default 4; 0 = all); memory always counts all
  --queries N             random queries per sampled layer (default 4)
  --runs N                timed decode rounds after one warm-up (default 7; median reported)
  --cycle-bytes BYTES     each decode round cycles through distinct copies of the timing layer
                          until they exceed this, e.g. 512M (default 256M, 64M on a CPU device:
                          more than a GPU's last-level cache, so decode reads memory)
  --decode-layers N       cycle through exactly N copies instead
  --sequences LIST        batched decode instead, e.g. 1,8,32: per preset and batch size, one
                          decode step of one layer (append + attention) over that many sequences
                          of the first --tokens (or --frames) length, batched against the same
                          work as per-sequence calls and against fp16 batched (wall time per
                          step: median, p99, the steps in which every sequence flushes)

per-head cache policies (RLKV; every preset is measured at each sparsity)
  --head-scores FILE      head scores, CSV "layer,head,score" or JSON (vidkv/head_policy.hpp),
                          one per layer and KV head; "synthetic": deterministic pseudo-random
                          scores, uniform in [0, 1) from --seed, for every layer and KV head
                          (./synthetic for a file of that name)
  --sparsity LIST         fractions s in [0, 1) of heads, the lowest scores over all layers,
                          that take --low-policy, e.g. 0,0.5,0.9 (default 0)
  --low-policy P          window (default) or vidkv (the preset)
  --high-policy P         full (default, fp16 of every token) or vidkv (the preset)
  --window-sink N         window heads keep the first N tokens (default 16)
  --window-recent N       and the newest N (default 64)

output
  --json FILE             everything, as JSON
  --trace FILE            Chrome trace-event JSON (host phases and GPU kernels; open in Perfetto)
  --plot FILE.svg         memory and decode time against context length, one line per preset
  --no-progress           no progress bar (it is drawn only when stderr is a terminal anyway)
  --version, --help
)";
}

BenchOptions parse_options(int argc, const char* const* argv) {
  BenchOptions o;
  bool frames_given = false;
  std::vector<std::string> policy_options;  // given, for the check that --head-scores came too
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw bad(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--version") o.version = true;
    else if (a == "--model") {
      o.model = value();
      if (o.model != "llava-ov-7b" && o.model != "qwen2.5-vl-7b")
        throw bad("--model " + o.model + ": llava-ov-7b or qwen2.5-vl-7b");
    } else if (a == "--frames") {
      o.frames = parse_sizes(a, value(), 4096);
      frames_given = true;
    } else if (a == "--tokens") o.tokens = parse_sizes(a, value(), 1u << 24);
    else if (a == "--tokens-per-frame") o.tokens_per_frame = uint32_t(parse_unsigned(a, value(), 1, 65536));
    else if (a == "--text-tokens") o.text_tokens = uint32_t(parse_unsigned(a, value(), 0, 65536));
    else if (a == "--rope-base") o.rope_base = parse_double(a, value(), 2.0, 1e12);
    else if (a == "--frame-correlation") o.frame_correlation = parse_double(a, value(), 0.0, 0.999);
    else if (a == "--seed") o.seed = parse_unsigned(a, value(), 0, UINT64_MAX);
    else if (a == "--layers") o.layers = uint32_t(parse_unsigned(a, value(), 1, 4096));
    else if (a == "--kv") {
      o.kv_dir = value();
      if (o.kv_dir.empty()) throw bad("--kv needs a directory");
    } else if (a == "--q-heads") o.q_heads = uint32_t(parse_unsigned(a, value(), 1, 4096));
    else if (a == "--first-visual") o.first_visual = int64_t(parse_unsigned(a, value(), 0, 1u << 24));
    else if (a == "--visual-tokens") o.visual_tokens = int64_t(parse_unsigned(a, value(), 1, 1u << 24));
    else if (a == "--preset") {
      // A configuration dictionary holds commas, so it is taken whole as the only item.
      const std::string list = value();
      const size_t first = list.find_first_not_of(" \t\n");
      o.presets = first != std::string::npos && list[first] == '{' ? std::vector<std::string>{list}
                                                                   : split_list(a, list);
      // Checked now, so that a typo fails before minutes of work.
      for (const auto& p : o.presets) (void)parse_settings(p);
    } else if (a == "--error-layers") o.error_layers = uint32_t(parse_unsigned(a, value(), 0, 4096));
    else if (a == "--queries") o.queries = uint32_t(parse_unsigned(a, value(), 1, 256));
    else if (a == "--runs") o.runs = uint32_t(parse_unsigned(a, value(), 1, 1000));
    else if (a == "--decode-layers") o.decode_layers = uint32_t(parse_unsigned(a, value(), 1, 1024));
    else if (a == "--cycle-bytes") o.cycle_bytes = parse_bytes(a, value());
    else if (a == "--head-scores") {
      o.head_scores = value();
      if (o.head_scores.empty()) throw bad("--head-scores needs a file or 'synthetic'");
    } else if (a == "--sparsity") {
      o.sparsity = parse_sparsities(a, value());
      policy_options.push_back(a);
    } else if (a == "--low-policy") {
      o.low_policy = parse_policy(a, value(), "window");
      policy_options.push_back(a);
    } else if (a == "--high-policy") {
      o.high_policy = parse_policy(a, value(), "full");
      policy_options.push_back(a);
    } else if (a == "--window-sink") {
      o.window_sink = uint32_t(parse_unsigned(a, value(), 0, 1u << 24));
      policy_options.push_back(a);
    } else if (a == "--window-recent") {
      o.window_recent = uint32_t(parse_unsigned(a, value(), 0, 1u << 24));
      policy_options.push_back(a);
    } else if (a == "--sequences") o.sequences = parse_sizes(a, value(), 8192);
    else if (a == "--json") o.json_path = value();
    else if (a == "--trace") o.trace_path = value();
    else if (a == "--plot") o.plot_path = value();
    else if (a == "--no-progress") o.progress = false;
    else throw bad("unknown option " + a + " (--help lists them)");
  }
  if (o.decode_layers && o.cycle_bytes) throw bad("--decode-layers and --cycle-bytes both set the decode layer count; use one");
  if (frames_given && !o.tokens.empty()) throw bad("--frames and --tokens are two ways to give sizes; use one");
  if (!o.tokens.empty()) o.frames.clear();
  if (o.kv_dir.empty() && (o.first_visual >= 0 || o.visual_tokens >= 0))
    throw bad("--first-visual and --visual-tokens describe a dump (--kv); the generator knows its video");
  if (!o.kv_dir.empty() && frames_given) throw bad("--frames is for the generator; use --tokens with --kv");
  if (!o.head_policies() && !policy_options.empty())
    throw bad(policy_options.front() + " describes per-head policies: give --head-scores FILE (or synthetic) too");
  if (!o.sequences.empty()) {
    if (o.head_policies()) throw bad("--sequences measures plain caches; it takes no --head-scores");
    if (!o.kv_dir.empty()) throw bad("--sequences measures generated tokens; it takes no --kv");
  }
  if (o.head_policies()) {
    if (o.sparsity.empty()) o.sparsity = {0.0};
    if (o.window_sink + uint64_t(o.window_recent) == 0)
      throw bad("--window-sink 0 and --window-recent 0 leave window heads no tokens");
  }
  return o;
}

}  // namespace vidkv::bench
