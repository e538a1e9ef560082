#pragma once
// A GPU cost model of the decode step (docs/gpu.md): from ACO's disassembly of each attention
// kernel (aco_disasm.hpp) and the loop trip counts of the geometry, the instructions each wave
// executes; from public figures of named GPUs, each dispatch's time as the largest of a bandwidth
// bound, an instruction-issue bound and a latency bound; dispatches with no barrier between them
// share one stage, and each stage pays a fixed barrier overhead.
#include <map>
#include <string>
#include <vector>

#include "aco_disasm.hpp"
#include "common/json.hpp"
#include "pipelines.hpp"
#include "vidkv/gpu_attention.hpp"
#include "vidkv/runtime/device_info.hpp"

namespace vidkv::info {

// Public figures of a GPU (docs/gpu.md gives the sources) and the rates the model assumes.
struct GpuSpec {
  std::string name;
  std::string code;             // the compiled code it is predicted from: "gfx11", "gfx10.3", "gfx9"; "" = any AMD
  double units = 0;             // compute units (AMD) / streaming multiprocessors (NVIDIA)
  double clock_ghz = 0;
  double bandwidth_gbs = 0;     // DRAM
  double schedulers = 0;        // per unit: SIMDs (AMD) or warp schedulers (NVIDIA), each issuing one
                                // instruction of one wave per clock
  double simd_lanes = 32;       // lanes a scheduler's vector ALU does per clock: a VALU instruction
                                // of a wave of W lanes takes W / simd_lanes clocks
  double native_wave = 0;       // lanes of the GPU's own waves (NVIDIA warps: 32), or 0: the compiled
                                // code's wave size. AMD waves of 64 run as two warps there.
  bool shared_issue = false;    // every instruction class takes the same issue slots (NVIDIA: no
                                // separate scalar unit); else VALU, SALU, LDS and VMEM issue apart
  double lds_per_clock = 1;     // LDS instructions per unit per clock
  double vmem_per_clock = 1;    // vector memory instructions per unit per clock
  double memory_latency_ns = 0; // a load that misses the caches
  double lds_latency_ns = 0;
  double max_waves_per_scheduler = 0;  // occupancy ceiling when the driver reports none
  double dispatch_us = 0;       // per stage of dispatches behind one barrier (docs/gpu.md: the drain,
                                // cache flush and launch a compute-to-compute barrier costs)
  bool wave64_fp32_one_pass = false;  // RDNA3: a wave64 fp32 fma/mul/add/sub/min/max instruction
                                      // (fp32_one_pass) takes one pass of its SIMD, the others two
};
const std::vector<GpuSpec>& gpu_specs();

// One loop of a kernel's disassembly, in order of its header: its trip count per entry.
struct LoopTrip {
  const char* what;  // the source loop it is (for whoever updates the table)
  double trips;
};
// What the trip counts depend on: the geometry and the tokens of one workgroup's split.
struct KernelShape {
  uint32_t dim = 128, ratio = 7, split = 256, tokens = 256;  // tokens: of this workgroup (<= split)
  uint32_t anomalous = 64, streams = 64, workgroup = 64;
  uint32_t slots = 1;               // attention_reduce: partial slots
  uint32_t wave = 64;               // the compiled wave size
  bool subgroup_reduce = false;     // attention_fp16's constant 4: softmax reductions within subgroups first
  double protected_fraction = 0.2;  // attention_vidkv[stp]: share of protected tokens (STP's p)
};
// The table of loop trip counts per kernel: "attention_fp16", "attention_query", "attention_reduce",
// "attention_vidkv[trits]", "[b2_channel]", "[b2_token]", "[stp]" (kernel_key). Error(invalid_argument)
// for a kernel it lacks.
std::vector<LoopTrip> loop_trips(const std::string& kernel, const KernelShape& shape);
// The table's key of a pipeline: its shader (without _sg8), and for attention_vidkv the value mode
// of its specialization constant 6 (counting the workgroup size as 0).
std::string kernel_key(const rt::PipelineRecord& record);

// Instructions one wave executes: each block's counts times the trips of the loops holding it.
// Throws Error(invalid_argument) "model: kernel structure changed, table needs updating" when the
// disassembly has another number of loops than `trips`.
struct WaveCost {
  ClassCounts counts{};
  double vm_waits = 0, lgkm_waits = 0;
  double fp32_valu = 0;  // of counts[valu]: fp32_one_pass instructions
  double total() const;
};
WaveCost wave_cost(const Disassembly& code, const std::vector<LoopTrip>& trips, const std::string& label);

// One dispatch: its workgroups, waves per workgroup, the work of each, and the bytes it moves.
struct DispatchWork {
  std::string label;
  double workgroups = 0;
  double waves_per_workgroup = 1;
  double wave_lanes = 32;     // lanes of each of those waves
  WaveCost per_wave;          // of an average wave
  WaveCost slowest_wave;      // the longest serial chain
  double bytes = 0;
  double waves_per_scheduler = 0;  // occupancy the driver reports (0: GpuSpec's ceiling)
  bool after_barrier = true;  // false: recorded right after the previous dispatch with no barrier
                              // between them (it may overlap it: the same stage)
};
struct DispatchTime {
  double bandwidth_us = 0, issue_us = 0, latency_us = 0, total_us = 0;  // total = max + dispatch_us
  double gpu_issue_us = 0;  // the issue bound had the dispatch every unit and scheduler of the GPU
};
DispatchTime dispatch_time(const GpuSpec& gpu, const DispatchWork& work);
// Dispatches with no barrier between them (one stage) run side by side: their bytes share the DRAM
// (bandwidth bounds add), their instructions share the GPU's issue slots (the sum of gpu_issue_us,
// but never less than the slowest one's own issue bound), their serial chains overlap (the longest
// one); the stage pays dispatch_us once. One dispatch alone: dispatch_time's own numbers.
DispatchTime stage_time(const GpuSpec& gpu, const std::vector<DispatchTime>& dispatches);

struct ModelEntry {
  std::string gpu, preset, code_from;
  uint32_t tokens = 0;
  double predicted_ms = 0, fp16_predicted_ms = 0, speedup_vs_fp16 = 0, bandwidth_fraction = 0;
  double bytes = 0;
  std::vector<std::pair<std::string, DispatchTime>> dispatches;  // each alone (total: as its own stage)
  std::vector<std::pair<std::string, DispatchTime>> stages;      // "a + b" for dispatches sharing one
  // Per cached token and KV head in the quantized attention kernel (the issue's "per token").
  ClassCounts per_token{};
};
struct KernelSummary {
  std::string label;
  std::string kernel;          // kernel_key
  uint32_t wave = 0;           // the compiled wave size
  ClassCounts static_counts{};
  size_t loops = 0;
  // Executed by the whole workgroup of a full split, per cached token (and its KV head); empty
  // (all 0) for kernels that are not per token.
  ClassCounts per_token{};
  double fp32_valu_per_token = 0;  // of per_token[valu]: fp32_one_pass instructions
  // Serial round trips (memory, LDS/scalar) of one wave of a full split (query, reduce: of the
  // table's default shape), what the latency bound multiplies.
  double vm_round_trips = 0, lgkm_round_trips = 0;
  std::string error;           // why the model could not price it (a stale loop table)
};
struct ModelResult {
  std::string device_code;  // "gfx11", ... of the device the pipelines were compiled for; "" if not AMD/ACO
  std::string note;         // why there is no model, when there is none
  std::vector<KernelSummary> kernels;
  std::vector<ModelEntry> entries;
};

// The ACO target of a RADV device from its name ("... (RADV NAVI21)" -> "gfx10.3"), or "".
std::string aco_code_of(const rt::DeviceInfo& device);
// The model for fp16 and k1.5-v1.58 at 8192 and 32768 tokens on every GpuSpec whose code matches
// the device's (H100: from any AMD wave32 code, an approximation).
ModelResult run_model(const rt::DeviceInfo& device, const std::vector<PipelineReport>& reports,
                      const AttentionGeometry& geometry);
json::Value model_json(const ModelResult& model);     // the entries
json::Value kernels_json(const ModelResult& model);   // the per-kernel summaries
void print_model(const ModelResult& model);

}  // namespace vidkv::info
