#include "gpu_model.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "vidkv/error.hpp"
#include "vidkv/presets.hpp"

namespace vidkv::info {

const std::vector<GpuSpec>& gpu_specs() {
  // Public figures (docs/gpu.md); latencies are typical measured values, not vendor figures. The
  // last field, 4 us, is the stated cost of a stage behind a compute-to-compute barrier (the wait
  // for the previous stage's last wave, the cache writeback and invalidate, the next launch and its
  // waves' ramp-up), not a measurement (docs/gpu.md).
  static const std::vector<GpuSpec> specs = [] {
    std::vector<GpuSpec> v(4);
    // RDNA3: 96 CUs of 2 SIMD32, 2.5 GHz boost, 960 GB/s GDDR6. Dual issue (VOPD) is already in
    // ACO's code as v_dual_* instructions (wave32 only), each counted once.
    // A wave64 fp32 fma/mul/add/sub/min/max takes one pass on both fp32 ALUs of a SIMD (AMD: "Wave64
    // natively can access the new ALUs for 2x execution rates"); other VALU instructions two.
    v[0] = {"RX 7900 XTX", "gfx11", 96, 2.5, 960, 2, 32, 0, false, 1, 1, 350, 30, 16, 4, true};
    // RDNA2: 80 CUs of 2 SIMD32, 2.25 GHz, 512 GB/s (its 128 MB Infinity Cache is not modelled).
    v[1] = {"RX 6900 XT", "gfx10.3", 80, 2.25, 512, 2, 32, 0, false, 1, 1, 350, 30, 16, 4};
    // GCN5: 64 CUs of 4 SIMD16 (a wave64 VALU instruction takes 4 clocks), 1.55 GHz, 484 GB/s.
    v[2] = {"RX Vega 64", "gfx9", 64, 1.55, 484, 4, 16, 0, false, 1, 1, 400, 40, 10, 4};
    // H100 SXM: 132 SMs of 4 schedulers with 32 fp32 lanes each, 3.35 TB/s HBM3; clock from fp32
    // 67 TFLOPS = 132 SMs x 128 lanes x 2 x 1.98 GHz. fp16 (non-tensor, 134 TFLOPS) is half2 at
    // the same issue rate: it would halve the VALU count only of code written with packed fp16,
    // which these kernels are not. Predicted from AMD's code: an approximation (docs/gpu.md).
    v[3] = {"H100 SXM", "", 132, 1.98, 3350, 4, 32, 32, true, 1, 1, 480, 15, 16, 4};
    return v;
  }();
  return specs;
}

// ---------------------------------------------------------------------------------------------
// Loop trip counts per kernel (read from ACO's code for gfx1100 and navi21, Mesa 22.3.6). One row
// per loop that ACO leaves in the code (the unrolled ones are gone), in the order of the loop
// headers in the disassembly, which is the order of the source; a nested loop follows its outer
// loop. `trips` is iterations per entry into the loop, for a wave whose workgroup handles
// `s.tokens` tokens (the trips of the wave's busiest lane, lane 0). When a kernel changes, dump its
// code (vidkv-info --pipelines --dump-asm DIR), find the loops (a branch back to an earlier label)
// and rewrite its rows: a different number of loops than rows is reported as an error, never
// guessed.
// attention_fp16, attention_reduce (portable redesign, commit 829b2eb) and attention_vidkv (its
// redesign, merges 6484935 and e64baf7: the query transformed inside the kernel, keys and values
// staged per 64-token chunk, every load of a staging phase issued before the first wait).
// attention_query: the subgroup-of-8 path's query transform (not created on a GPU any more; kept
// for its captured fixture).
// ---------------------------------------------------------------------------------------------
namespace {

double ceil_div(double a, double b) { return std::ceil(a / b); }

// attention.glsl's attention_tree over `count` entries: `for (cur = count; cur > 1; cur = ceil(cur
// / 2))` (ceil(log2 count) steps, none for one entry), each holding `for (i = lid; i < RATIO * (cur -
// half); i += WG)`, whose trips lane 0 takes are averaged over the steps (the model multiplies
// nested trips).
void tree_rows(std::vector<LoopTrip>& t, const KernelShape& s, const char* outer, double count) {
  double steps = 0, inner = 0;
  for (double cur = count; cur > 1;) {
    const double half = std::ceil(cur / 2);
    inner += ceil_div(s.ratio * (cur - half), s.workgroup);
    cur = half;
    ++steps;
  }
  t.push_back({outer, steps});
  t.push_back({"  tree step pairs, i += WG over RATIO * (cur - half)", steps > 0 ? inner / steps : 1});
}

// attention.glsl's split_softmax: a strided pass over the split's scores (all RATIO heads at once:
// the [[unroll]] head loop is gone), a tree, the exp-and-sum pass, a tree. The tree runs over one
// value per subgroup when SUBGROUP_REDUCE (attention_fp16's constant 4; one entry, no steps, for a
// wave64 workgroup of 64), else over all WG invocations.
void softmax_rows(std::vector<LoopTrip>& t, const KernelShape& s) {
  const double strided = ceil_div(s.tokens, 2.0 * s.workgroup);  // two tokens per step
  const double entries = s.subgroup_reduce ? ceil_div(s.workgroup, s.wave) : double(s.workgroup);
  t.push_back({"split_softmax: max, t = lid; t < n; t += 2 WG", strided});
  tree_rows(t, s, "attention_tree (max): cur > 1, cur = ceil(cur / 2)", entries);
  t.push_back({"split_softmax: exp and sum, t = lid; t < n; t += 2 WG", strided});
  tree_rows(t, s, "attention_tree (sum): cur > 1, cur = ceil(cur / 2)", entries);
}

// attention_vidkv.comp (portable, after its redesign, as of merge e64baf7) up to the value phase:
// transform_query (attention_vidkv_query.glsl), score_split in chunks of CT = 64 tokens, each in
// passes of CP = 64 key indices (anomalous channels, then streams), the softmax.
void vidkv_score_rows(std::vector<LoopTrip>& t, const KernelShape& s) {
  const double ks = s.anomalous + s.streams, normal = s.dim - s.anomalous, cp = 64, ct = 64;
  const double cparts = s.workgroup / 16.0;  // WG / (CG x 8) invocations per (group, head)
  // A pass's share of [lo, hi) of the key indices, averaged over the passes: the fold loops
  // (CPARTS apart, 4 per step; lane 0's part) and their remainders, the score loops of SU indices
  // and their remainders.
  const double passes = ceil_div(ks, cp), su = 8;  // su: score_pass's SU
  enum Share { fold_steps, fold_rest, score_steps, score_rest };
  auto per_pass = [&](double lo, double hi, Share what) {
    double sum = 0;
    for (double i0 = 0; i0 < ks; i0 += cp) {
      const double begin = std::max(i0, lo), len = std::max(0.0, std::min(i0 + cp, hi) - begin);
      const double lane0 = ceil_div(len, cparts);  // lane 0's indices
      sum += what == fold_steps ? std::floor(lane0 / 4)
             : what == fold_rest ? std::fmod(lane0, 4)
             : what == score_steps ? std::floor(len / su) : std::fmod(len, su);
    }
    return passes > 0 ? sum / passes : 0;
  };
  // Bins of the query's DFT: N (full spectrum, 2N streams) or N / 2 + 1 (half, N streams).
  const double bins = s.streams >= 2 * normal ? normal : std::floor(normal / 2) + 1;
  // (the query's loads, channel indices then q, are unrolled: no loop)
  t.push_back({"transform_query: twiddles, k = lid; k < N; k += WG", ceil_div(normal, s.workgroup)});
  if (normal > 0) {
    // one invocation per bin for all RATIO heads; QU = 4 channels' loads per step
    const double qu = 4;
    t.push_back({"transform_query: bins, f = lid; f < BINS; f += WG", ceil_div(bins, s.workgroup)});
    t.push_back({"  dft_bin: QU channels per step, n + QU <= N", std::floor(normal / qu)});
    t.push_back({"  dft_bin: the rest, n < N", std::fmod(normal, qu)});
  }
  t.push_back({"score_split: chunks, c0 < n; c0 += CT", ceil_div(s.tokens, ct)});
  t.push_back({"  passes, i0 < KS; i0 += CP", passes});
  t.push_back({"    fold_coefficients: anomalous, j += 4 CPARTS", per_pass(0, s.anomalous, fold_steps)});
  t.push_back({"    fold_coefficients: anomalous, the rest", per_pass(0, s.anomalous, fold_rest)});
  t.push_back({"    fold_coefficients: streams, i += 4 CPARTS", per_pass(s.anomalous, ks, fold_steps)});
  t.push_back({"    fold_coefficients: streams, the rest", per_pass(s.anomalous, ks, fold_rest)});
  t.push_back({"    score_pass: anomalous, SU per step", per_pass(0, s.anomalous, score_steps)});
  t.push_back({"    score_pass: anomalous, the rest", per_pass(0, s.anomalous, score_rest)});
  t.push_back({"    score_pass: streams, SU per step", per_pass(s.anomalous, ks, score_steps)});
  t.push_back({"    score_pass: streams, the rest", per_pass(s.anomalous, ks, score_rest)});
  softmax_rows(t, s);
}

// channel_values over `count` groups: chunks of CG = 2 groups and the chunk's groups (trit_chunk /
// b2_channel_chunk: both sum through the subset-sum tables, their owned channels and nibbles unrolled).
void channel_value_rows(std::vector<LoopTrip>& t, const char* what, double count) {
  const double chunks = ceil_div(count, 2);
  t.push_back({what, chunks});
  t.push_back({"  groups of the chunk, gl < cg", chunks > 0 ? count / chunks : 0});
}

}  // namespace

std::vector<LoopTrip> loop_trips(const std::string& kernel, const KernelShape& s) {
  std::vector<LoopTrip> t;
  const double groups = s.tokens / 32.0;
  if (kernel == "attention_fp16") {
    // TPL tokens per invocation in the score phase (4, 2 or 1: what divides SPLIT into WG-sized
    // steps); ROWS row groups of DIM / 8 invocations in the value phase, VIF rows in flight each.
    const double tpl = s.split % (4 * s.workgroup) == 0 ? 4 : (s.split % (2 * s.workgroup) == 0 ? 2 : 1);
    const double rows = std::max(1.0, std::floor(s.workgroup / (s.dim / 8.0))), vif = 4;
    t.push_back({"scores: t0 < n, t0 += WG * TPL", ceil_div(s.tokens, s.workgroup * tpl)});
    t.push_back({"  16-byte key words, w0 < DIM / 8, w0 += 2 (two words unrolled)", s.dim / 16.0});
    softmax_rows(t, s);
    t.push_back({"values: b0 = g; b0 < n; b0 += 2 ROWS VIF (g = 0)", ceil_div(s.tokens, 2 * rows * vif)});
    t.push_back({"row-group sums: k = ROWS - 1 .. 1", rows - 1});
  } else if (kernel == "attention_query") {
    t.push_back({"anomalous channels, j += WG", ceil_div(s.dim, s.workgroup)});
    t.push_back({"streams, s += WG", ceil_div(s.streams, s.workgroup)});
    // (with no streams the inner loop is gone; the outer one stays, never entered)
    if (s.streams > 0) t.push_back({"  DFT sum over the normal channels", double(s.dim - s.anomalous)});
  } else if (kernel == "attention_reduce") {
    // Workgroup (query head, 32 channels): LANES = WG / 8 slot lanes, 4 slots per step each.
    const double lanes = s.workgroup / 8.0, unroll = 4;
    t.push_back({"max over slots, i = lid; i < slots; i += WG", ceil_div(s.slots, s.workgroup)});
    t.push_back({"max tree, cur = WG; cur > 1; cur = ceil(cur / 2)", std::ceil(std::log2(double(s.workgroup)))});
    t.push_back({"slots, first = lane; first < slots; first += LANES * 4 (lane 0)", ceil_div(s.slots, lanes * unroll)});
    // (the sum over the LANES slot lanes is unrolled)
  } else if (kernel == "attention_vidkv[trits]") {
    vidkv_score_rows(t, s);
    channel_value_rows(t, "channel_values (trits): chunks of 2 groups", groups);
  } else if (kernel == "attention_vidkv[b2_channel]") {
    vidkv_score_rows(t, s);
    channel_value_rows(t, "channel_values (2 bits per channel): chunks of 2 groups", groups);
  } else if (kernel == "attention_vidkv[b2_token]") {
    vidkv_score_rows(t, s);
    // kivi_chunk: KU tokens per step over the chunk's tokens (owned channels unrolled inside)
    const double chunks = ceil_div(s.tokens, 64), ku = std::ceil(s.dim / double(s.workgroup)) >= 4 ? 2 : 4;
    t.push_back({"kivi_values: chunks, c0 < n; c0 += CT", chunks});
    t.push_back({"  kivi_chunk: t0 < cg * 32; t0 += KU", chunks > 0 ? ceil_div(groups * 32 / chunks, ku) : 0});
  } else if (kernel == "attention_vidkv[stp]") {
    // The part groups a split touches: its tokens of each part, plus one group at each edge.
    const double high = std::ceil(s.tokens * s.protected_fraction / 32.0) + 1, low = std::ceil(groups * (1 - s.protected_fraction)) + 1;
    vidkv_score_rows(t, s);
    t.push_back({"stp_values: clear the part slots, i += WG over RATIO * (SPLIT + 96)", ceil_div(s.ratio * (s.split + 96.0), s.workgroup)});
    t.push_back({"stp_values: tokens to part slots, t += WG", ceil_div(s.tokens, s.workgroup)});
    channel_value_rows(t, "channel_values (trits, other tokens): chunks of 2 part groups", low);
    channel_value_rows(t, "channel_values (2 bits, protected): chunks of 2 part groups", high);
  } else {
    throw Error(ErrorCode::invalid_argument, "model: no loop table for " + kernel);
  }
  return t;
}

std::string kernel_key(const rt::PipelineRecord& record) {
  std::string name = record.name;
  const size_t sg8 = name.find("_sg8");
  if (sg8 != std::string::npos) name.erase(sg8, 4);
  if (name != "attention_vidkv" || record.specialization.empty()) return name;
  // vidkv_desc: workgroup size, D, ratio, split, k, streams, mode (then, portable shader only, the
  // spectrum layout and the channel scope).
  static const char* modes[] = {"trits", "b2_channel", "b2_token", "stp"};
  if (record.specialization.size() < 7) return name + "[?]";
  const uint32_t mode = record.specialization[6];
  return name + "[" + (mode < 4 ? modes[mode] : "?") + "]";
}

double WaveCost::total() const {
  double t = 0;
  for (size_t c = 0; c < kInstrClasses; ++c) t += counts[c];
  return t;
}

WaveCost wave_cost(const Disassembly& code, const std::vector<LoopTrip>& trips, const std::string& label) {
  if (code.loops.size() != trips.size()) {
    throw Error(ErrorCode::invalid_argument,
                "model: kernel structure changed, table needs updating: " + label + " has " +
                    std::to_string(code.loops.size()) + " loop(s) in its disassembly, the trip-count table (" +
                    "tools/info/gpu_model.cpp, loop_trips) expects " + std::to_string(trips.size()));
  }
  WaveCost cost;
  for (size_t b = 0; b < code.blocks.size(); ++b) {
    double times = 1;
    for (size_t l = 0; l < code.loops.size(); ++l) {
      if (code.loops[l].first <= b && b <= code.loops[l].last) times *= trips[l].trips;
    }
    const Block& block = code.blocks[b];
    for (size_t c = 0; c < kInstrClasses; ++c) cost.counts[c] += times * block.counts[c];
    cost.vm_waits += times * block.vm_waits;
    cost.lgkm_waits += times * block.lgkm_waits;
    cost.fp32_valu += times * block.fp32_valu;
  }
  return cost;
}

DispatchTime dispatch_time(const GpuSpec& gpu, const DispatchWork& w) {
  DispatchTime t;
  t.bandwidth_us = w.bytes / (gpu.bandwidth_gbs * 1e3);  // GB/s = 1e3 bytes per us
  const double waves = w.workgroups * w.waves_per_workgroup;
  // Units that get work, and the schedulers of each that have a wave to issue from.
  const double busy_units = std::min(gpu.units, std::max(1.0, w.workgroups));
  const double waves_per_unit = std::ceil(waves / busy_units);
  const double busy_schedulers = std::min(gpu.schedulers, waves_per_unit);
  const auto& c = w.per_wave.counts;
  auto total = [&](InstrClass k) { return waves * c[size_t(k)]; };
  const double valu_clocks = std::max(1.0, w.wave_lanes / gpu.simd_lanes);  // per VALU instruction
  // RDNA3 runs a wave64's fp32 arithmetic in one pass (both fp32 ALUs of the SIMD), the rest in two.
  const bool one_pass = gpu.wave64_fp32_one_pass && w.wave_lanes == 64;
  auto valu_issue = [&] {
    if (!one_pass) return total(InstrClass::valu) * valu_clocks;
    const double fp32 = waves * w.per_wave.fp32_valu;
    return (total(InstrClass::valu) - fp32) * valu_clocks + fp32 * (valu_clocks / 2);
  };
  // Clocks to issue every wave's instructions on `units` units with `schedulers` busy in each.
  auto issue_clocks = [&](double units, double schedulers) {
    const double issue_slots = units * schedulers;  // wave instructions per clock
    if (gpu.shared_issue) {
      const double all = valu_issue() + total(InstrClass::salu) + total(InstrClass::smem) +
                         total(InstrClass::vmem) + total(InstrClass::lds) + total(InstrClass::branch);
      return all / issue_slots;
    }
    return std::max({valu_issue() / issue_slots,
                     (total(InstrClass::salu) + total(InstrClass::smem) + total(InstrClass::branch)) / issue_slots,
                     total(InstrClass::lds) / (units * gpu.lds_per_clock),
                     total(InstrClass::vmem) / (units * gpu.vmem_per_clock)});
  };
  const double clocks = issue_clocks(busy_units, busy_schedulers);
  t.gpu_issue_us = issue_clocks(gpu.units, gpu.schedulers) / (gpu.clock_ghz * 1e3);
  t.issue_us = clocks / (gpu.clock_ghz * 1e3);
  // Latency: each wave waits out its memory round trips one after another; the waves resident at
  // once hide each other's, so only the rounds of waves beyond what the GPU holds add up.
  const double per_scheduler = w.waves_per_scheduler > 0 ? w.waves_per_scheduler : gpu.max_waves_per_scheduler;
  const double resident = gpu.units * gpu.schedulers * per_scheduler;
  const double rounds = std::ceil(waves / resident);
  const double chain_ns = w.slowest_wave.vm_waits * gpu.memory_latency_ns + w.slowest_wave.lgkm_waits * gpu.lds_latency_ns;
  t.latency_us = rounds * chain_ns / 1e3;
  t.total_us = std::max({t.bandwidth_us, t.issue_us, t.latency_us}) + gpu.dispatch_us;
  return t;
}

DispatchTime stage_time(const GpuSpec& gpu, const std::vector<DispatchTime>& dispatches) {
  if (dispatches.size() == 1) return dispatches.front();
  DispatchTime t;
  double shared_issue = 0;
  for (const DispatchTime& d : dispatches) {
    t.bandwidth_us += d.bandwidth_us;
    t.issue_us = std::max(t.issue_us, d.issue_us);
    shared_issue += d.gpu_issue_us;
    t.gpu_issue_us += d.gpu_issue_us;
    t.latency_us = std::max(t.latency_us, d.latency_us);
  }
  t.issue_us = std::max(t.issue_us, shared_issue);
  t.total_us = std::max({t.bandwidth_us, t.issue_us, t.latency_us}) + gpu.dispatch_us;
  return t;
}

std::string aco_code_of(const rt::DeviceInfo& device) {
  if (device.driver_name.find("radv") == std::string::npos && device.name.find("RADV") == std::string::npos) return "";
  std::string n = device.name;
  for (char& ch : n) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  struct Family {
    const char* marker;
    const char* code;
  };
  static const Family families[] = {
      {"GFX12", "gfx12"},    {"NAVI4", "gfx12"},    {"GFX11", "gfx11"},  {"NAVI3", "gfx11"},
      {"PHOENIX", "gfx11"},  {"NAVI2", "gfx10.3"},  {"GFX103", "gfx10.3"}, {"VANGOGH", "gfx10.3"},
      {"REMBRANDT", "gfx10.3"}, {"NAVI1", "gfx10"}, {"VEGA", "gfx9"},    {"RAVEN", "gfx9"},
      {"RENOIR", "gfx9"},    {"ARCTURUS", "gfx9"},  {"ALDEBARAN", "gfx9"}, {"GFX9", "gfx9"},
  };
  for (const Family& f : families) {
    if (n.find(f.marker) != std::string::npos) return f.code;
  }
  return "amd";
}

namespace {

struct Kernel {
  Disassembly code;
  uint32_t wave = 64;
  double waves_per_scheduler = 0;
  std::string key;
  const PipelineReport* report = nullptr;
};

// The kernel `key` that preset `preset` uses.
const Kernel& find_kernel(const std::vector<Kernel>& kernels, const std::string& key, const std::string& preset) {
  for (const Kernel& k : kernels) {
    const auto& p = k.report->presets;
    if (k.key == key && std::find(p.begin(), p.end(), preset) != p.end()) return k;
  }
  throw Error(ErrorCode::invalid_argument, "model: no " + key + " pipeline of preset " + preset + " was created");
}

constexpr uint32_t kResidual = 128;  // fp16 residual tokens of a VidKV step (CacheSettings default)

// The shape a pipeline was made for, from its specialization constants (gpu_attention.cpp's
// *_desc: workgroup size first; fp16 and vidkv: D, ratio, split; fp16 then subgroup reductions;
// vidkv then k, streams, mode; query: D, ratio, k, streams; reduce: D).
KernelShape shape_of(const Kernel& k) {
  const auto& c = k.report->record.specialization;
  KernelShape s;
  auto at = [&](size_t i, uint32_t fallback) { return i < c.size() ? c[i] : fallback; };
  s.workgroup = at(0, 64);
  s.dim = at(1, 128);
  s.wave = k.wave;
  if (k.key == "attention_fp16" || k.key.rfind("attention_vidkv", 0) == 0) {
    s.ratio = at(2, 1);
    s.split = s.tokens = at(3, 256);
  }
  if (k.key == "attention_fp16") s.subgroup_reduce = at(4, 0) != 0;
  if (k.key.rfind("attention_vidkv", 0) == 0) {
    s.anomalous = at(4, 0);
    s.streams = at(5, 0);
  }
  if (k.key == "attention_query") {
    s.ratio = at(2, 1);
    s.anomalous = at(3, 0);
    s.streams = at(4, 0);
  }
  return s;
}

WaveCost scaled(const WaveCost& c, double f) {
  WaveCost out;
  for (size_t i = 0; i < kInstrClasses; ++i) out.counts[i] = c.counts[i] * f;
  out.vm_waits = c.vm_waits * f;
  out.lgkm_waits = c.lgkm_waits * f;
  out.fp32_valu = c.fp32_valu * f;
  return out;
}

DispatchWork new_work(const GpuSpec& gpu, const Kernel& k, const std::string& label, double bytes) {
  DispatchWork w;
  w.label = label;
  const double workgroup = shape_of(k).workgroup;
  // On a GPU with its own wave width (NVIDIA), a compiled wave of 64 lanes is two warps, each
  // executing every instruction.
  w.wave_lanes = gpu.native_wave > 0 ? gpu.native_wave : k.wave;
  w.waves_per_workgroup = std::ceil(workgroup / w.wave_lanes);
  w.waves_per_scheduler = gpu.native_wave > 0 ? 0 : k.waves_per_scheduler;
  w.bytes = bytes;
  return w;
}

// A split kernel over `tokens`: full splits plus one partial one, each priced by its own trips.
DispatchWork split_dispatch(const GpuSpec& gpu, const Kernel& k, const std::string& label, const AttentionGeometry& g,
                            uint32_t tokens, double bytes) {
  DispatchWork w = new_work(gpu, k, label, bytes);
  KernelShape shape = shape_of(k);
  const uint32_t full = tokens / shape.split, rest = tokens % shape.split;
  const double splits = full + (rest ? 1 : 0);
  w.workgroups = splits * g.kv_heads;
  WaveCost sum;
  for (uint32_t part = 0; part < 2; ++part) {
    const uint32_t n = part == 0 ? shape.split : rest, count = part == 0 ? full : (rest ? 1 : 0);
    if (count == 0) continue;
    shape.tokens = n;
    const WaveCost c = wave_cost(k.code, loop_trips(k.key, shape), k.key);
    for (size_t i = 0; i < kInstrClasses; ++i) sum.counts[i] += count * c.counts[i];
    sum.vm_waits += count * c.vm_waits;
    sum.lgkm_waits += count * c.lgkm_waits;
    sum.fp32_valu += count * c.fp32_valu;
    if (part == 0 || w.slowest_wave.vm_waits == 0) w.slowest_wave = c;
  }
  w.per_wave = scaled(sum, 1.0 / splits);
  return w;
}

// A kernel of `workgroups` alike workgroups: attention_query (one per query head), attention_reduce
// (one per query head and 32 channels).
DispatchWork head_dispatch(const GpuSpec& gpu, const Kernel& k, const std::string& label, double workgroups,
                           uint32_t slots, double bytes) {
  DispatchWork w = new_work(gpu, k, label, bytes);
  KernelShape shape = shape_of(k);
  shape.slots = slots;
  w.workgroups = workgroups;
  w.per_wave = wave_cost(k.code, loop_trips(k.key, shape), k.key);
  w.slowest_wave = w.per_wave;
  return w;
}

DispatchWork no_barrier(DispatchWork w) {
  w.after_barrier = false;
  return w;
}

double partial_bytes(const AttentionGeometry& g, double slots) { return slots * g.q_heads * (g.dim + 2) * 4.0; }

}  // namespace

ModelResult run_model(const rt::DeviceInfo& device, const std::vector<PipelineReport>& reports,
                      const AttentionGeometry& g) {
  ModelResult result;
  result.device_code = aco_code_of(device);
  if (result.device_code.empty()) {
    result.note = "no model: " + device.name + " is not a RADV device (the model reads ACO's disassembly)";
    return result;
  }
  std::vector<Kernel> kernels;
  for (const auto& r : reports) {
    const std::string text = assembly_text(r.record);
    if (text.empty() || r.record.executables.empty() || r.record.name.rfind("attention_", 0) != 0) continue;
    Kernel k;
    k.code = parse_disassembly(text);
    k.wave = std::max(1u, r.record.executables.front().subgroup_size);
    k.waves_per_scheduler = std::max(0.0, statistic(r.record.executables.front(), "Subgroups per SIMD"));
    k.key = kernel_key(r.record);
    k.report = &r;
    kernels.push_back(std::move(k));
  }
  if (kernels.empty()) {
    result.note = "no model: the driver gave no \"Assembly\" representation";
    return result;
  }
  // Per kernel: its loops, and for the split kernels the instructions per cached token of a full split.
  for (const Kernel& k : kernels) {
    KernelSummary sum{k.report->label, k.key, k.wave, k.code.static_counts, k.code.loops.size(), {}, 0, 0, 0, ""};
    try {
      const KernelShape shape = shape_of(k);
      const WaveCost c = wave_cost(k.code, loop_trips(k.key, shape), k.key);
      sum.vm_round_trips = c.vm_waits;
      sum.lgkm_round_trips = c.lgkm_waits;
      if (k.key != "attention_query" && k.key != "attention_reduce") {
        const double waves = std::ceil(double(shape.workgroup) / k.wave);
        for (size_t i = 0; i < kInstrClasses; ++i) sum.per_token[i] = c.counts[i] * waves / shape.split;
        sum.fp32_valu_per_token = c.fp32_valu * waves / shape.split;
      }
    } catch (const Error& e) {
      sum.error = e.what();
    }
    result.kernels.push_back(sum);
  }

  const CacheSettings settings = preset("k1.5-v1.58");
  const uint32_t D = g.dim;
  const double fp16_token_bytes = 2.0 * g.kv_heads * D * 2;  // K and V halves per token
  const Kernel& f16 = find_kernel(kernels, "attention_fp16", "fp16");
  const Kernel& reduce = find_kernel(kernels, "attention_reduce", "fp16");
  const Kernel& trits = find_kernel(kernels, "attention_vidkv[trits]", settings.name);
  const Kernel& residual = find_kernel(kernels, "attention_fp16", settings.name);
  const double split = shape_of(trits).split;
  const double reduce_groups = double(g.q_heads) * (D / 32);  // GpuAttention::record_reduce

  for (const GpuSpec& gpu : gpu_specs()) {
    if (!gpu.code.empty() && gpu.code != result.device_code) continue;
    for (uint32_t tokens : {8192u, 32768u}) {
      // fp16: attention_fp16 over every token, then the reduction.
      const uint32_t fp16_slots = uint32_t(std::ceil(tokens / double(shape_of(f16).split)));
      const std::vector<DispatchWork> fp16_step = {
          split_dispatch(gpu, f16, "attention_fp16", g, tokens, tokens * fp16_token_bytes + partial_bytes(g, fp16_slots)),
          head_dispatch(gpu, reduce, "attention_reduce", reduce_groups, fp16_slots,
                        partial_bytes(g, fp16_slots) + g.q_heads * D * 4.0)};
      // k1.5-v1.58: the packed segment of tokens - 128 (each workgroup transforms its query heads
      // itself: the portable path has no attention_query dispatch) and, with no barrier between them,
      // the fp16 residual; then the reduction.
      const uint32_t quantized = tokens - kResidual;
      const StorageBreakdown keys = settings_key_storage(settings, {g.kv_heads, quantized, D});
      const StorageBreakdown values = settings_value_storage(settings, {g.kv_heads, quantized, D});
      const double packed = double(keys.total_bytes() + values.total_bytes());
      const double splits = std::ceil(quantized / split);
      const uint32_t slots = uint32_t(splits) + 1;
      const std::vector<DispatchWork> step = {
          split_dispatch(gpu, trits, "attention_vidkv[trits]", g, quantized,
                         packed + partial_bytes(g, splits) + splits * (g.q_heads + g.kv_heads) * D * 4.0),
          no_barrier(split_dispatch(gpu, residual, "attention_fp16[residual]", g, kResidual,
                                    kResidual * fp16_token_bytes + partial_bytes(g, 1))),
          head_dispatch(gpu, reduce, "attention_reduce", reduce_groups, slots, partial_bytes(g, slots) + g.q_heads * D * 4.0)};
      // Consecutive dispatches with no barrier between them form one stage (stage_time); a step is
      // the sum of its stages.
      auto price = [&](const std::vector<DispatchWork>& works, ModelEntry& e, double& bw_us) {
        double total = 0;
        bw_us = 0;
        for (size_t first = 0; first < works.size();) {
          size_t end = first + 1;
          while (end < works.size() && !works[end].after_barrier) ++end;
          std::vector<DispatchTime> times;
          std::string label;
          for (size_t i = first; i < end; ++i) {
            const DispatchTime t = dispatch_time(gpu, works[i]);
            e.dispatches.emplace_back(works[i].label, t);
            times.push_back(t);
            label += (i > first ? " + " : "") + works[i].label;
            e.bytes += works[i].bytes;
          }
          const DispatchTime stage = stage_time(gpu, times);
          e.stages.emplace_back(label, stage);
          total += stage.total_us;
          bw_us += stage.bandwidth_us;
          first = end;
        }
        return total / 1e3;
      };
      ModelEntry fp16_entry, vidkv_entry;
      double fp16_bw = 0, vidkv_bw = 0;
      const double fp16_ms = price(fp16_step, fp16_entry, fp16_bw);
      const double vidkv_ms = price(step, vidkv_entry, vidkv_bw);
      fp16_entry.gpu = vidkv_entry.gpu = gpu.name;
      fp16_entry.code_from = vidkv_entry.code_from = result.device_code;
      fp16_entry.tokens = vidkv_entry.tokens = tokens;
      fp16_entry.preset = "fp16";
      vidkv_entry.preset = settings.name;
      fp16_entry.predicted_ms = fp16_entry.fp16_predicted_ms = fp16_ms;
      fp16_entry.speedup_vs_fp16 = 1.0;
      fp16_entry.bandwidth_fraction = fp16_bw / 1e3 / fp16_ms;
      vidkv_entry.predicted_ms = vidkv_ms;
      vidkv_entry.fp16_predicted_ms = fp16_ms;
      vidkv_entry.speedup_vs_fp16 = fp16_ms / vidkv_ms;
      vidkv_entry.bandwidth_fraction = vidkv_bw / 1e3 / vidkv_ms;
      // Per cached token and KV head, in the compiled code's waves.
      const double vidkv_waves = step[0].workgroups * std::ceil(shape_of(trits).workgroup / double(trits.wave));
      const double fp16_waves = fp16_step[0].workgroups * std::ceil(shape_of(f16).workgroup / double(f16.wave));
      for (size_t i = 0; i < kInstrClasses; ++i) {
        vidkv_entry.per_token[i] = step[0].per_wave.counts[i] * vidkv_waves / (double(g.kv_heads) * quantized);
        fp16_entry.per_token[i] = fp16_step[0].per_wave.counts[i] * fp16_waves / (double(g.kv_heads) * tokens);
      }
      result.entries.push_back(std::move(fp16_entry));
      result.entries.push_back(std::move(vidkv_entry));
    }
  }
  return result;
}

}  // namespace vidkv::info
