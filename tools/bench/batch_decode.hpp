#pragma once
// --sequences: batched decode. Per preset and batch size, one decode step of one layer (append +
// attention) over that many sequences of the same context length, timed three ways: the batch
// calls (Cache::append_batch + attention_batch: one submission each), the same work as
// per-sequence calls (append + attention for each sequence), and the fp16 preset's batch calls.
// Every sequence is prefilled to the same length, so all of them flush their residual in the same
// step (the worst case a batch meets). After a residual's worth of untimed appends (a flush among
// them: every pipeline is made) and two untimed steps, residual_length steps are timed, one of
// them the flush.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "vidkv/runtime/context.hpp"

namespace vidkv::bench {

struct BatchDecodeGeometry {
  uint32_t kv_heads = 4, q_heads = 28, head_dim = 128;
  uint32_t tokens = 2048;  // each sequence's context before the steps
};

struct BatchDecodeResult {
  std::string preset;
  uint32_t sequences = 0, tokens = 0, steps = 0;
  std::string error;  // why it was not measured, or empty
  // Wall time of one step (host calls, submission and wait included), median and p99
  // (nearest rank) over the steps; the mean of the steps in which the sequences flushed (one).
  double step_ms = 0, step_p99_ms = 0, flush_step_ms = 0;
  double unbatched_step_ms = 0, unbatched_step_p99_ms = 0, unbatched_flush_step_ms = 0;
  double fp16_step_ms = 0;  // the fp16 preset's batched median step
  double speedup_vs_unbatched() const { return step_ms > 0 ? unbatched_step_ms / step_ms : 0; }
  double speedup_vs_fp16() const { return step_ms > 0 ? fp16_step_ms / step_ms : 0; }
};

// Throws vidkv::Error only for what stops the whole run; a preset that fails keeps its error.
std::vector<BatchDecodeResult> measure_batch_decode(const std::shared_ptr<rt::Context>& ctx,
                                                    const BatchDecodeGeometry& geometry,
                                                    const std::vector<std::string>& presets,
                                                    const std::vector<uint32_t>& sequences, uint64_t seed);
void print_batch_table(std::FILE* out, const std::vector<BatchDecodeResult>& results);
// results[] {preset, sequences, tokens, steps, step_ms, step_p99_ms, flush_step_ms,
// unbatched_step_ms, unbatched_step_p99_ms, unbatched_flush_step_ms, fp16_step_ms,
// speedup_vs_unbatched, speedup_vs_fp16, error}.
json::Value batch_results_json(const std::vector<BatchDecodeResult>& results);

}  // namespace vidkv::bench
