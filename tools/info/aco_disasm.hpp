#pragma once
// Reading ACO's disassembly (RADV's "Assembly" internal representation, VK_KHR_pipeline_executable_
// properties): each instruction classified by what unit issues it, grouped into basic blocks at
// the labels, and the loops found from the back edges (a branch to a label at or before the
// branch). The GPU model (gpu_model.hpp) multiplies each block by its loops' trip counts.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vidkv::info {

enum class InstrClass {
  valu,     // v_* (vector ALU; a gfx11 v_dual_* pair is one issue)
  salu,     // s_* not listed below (scalar ALU)
  smem,     // s_load_*, s_buffer_load_*, s_store_* (scalar memory)
  vmem,     // buffer_*, global_*, flat_*, scratch_* (vector memory)
  lds,      // ds_* (shared memory)
  waitcnt,  // s_waitcnt* (waits for memory: the serial round trips)
  branch,   // s_branch, s_cbranch_*, s_setpc/s_endpgm
  other,    // s_barrier, s_nop, s_sendmsg, ... (no issue cost counted)
};
constexpr size_t kInstrClasses = 8;
const char* instr_class_name(InstrClass c) noexcept;  // "valu", "salu", ...

// The class of one mnemonic (the instruction's first word).
InstrClass classify(const std::string& mnemonic);
// Whether an LDS or scalar-memory instruction returns data (loads, atomics "_rtn", permutes): only
// those make the next wait of their counter a round trip.
bool returns_data(const std::string& mnemonic);
// Whether a VALU instruction is fp32 arithmetic that RDNA3 runs for a whole wave64 in one pass on
// the second fp32 ALU of each SIMD (fma, mul, add, sub, min, max; also GCN's mac / mad, so that the
// count means the same on gfx9; docs/gpu.md): integer, conversion, bit-field and transcendental
// instructions take two passes there, as on RDNA2.
bool fp32_one_pass(const std::string& mnemonic);

using ClassCounts = std::array<double, kInstrClasses>;

struct Block {
  std::string label;          // "" for the code before the first label
  ClassCounts counts{};       // instructions of each class in the block
  // Serial round trips: waits (s_waitcnt) for vector memory loads / for LDS or scalar memory
  // loads, counted once per batch of loads issued since the previous wait of that kind (stores
  // between them do not make a wait one).
  uint32_t vm_waits = 0;
  uint32_t lgkm_waits = 0;
  double fp32_valu = 0;       // of counts[valu]: fp32_one_pass instructions
  std::vector<std::string> branch_targets;
};

// A loop: blocks [first, last] (indices into Disassembly::blocks), from its header to the block of
// its last back edge; several back edges to one header are one loop.
struct Loop {
  size_t first = 0;
  size_t last = 0;
};

struct Disassembly {
  std::vector<Block> blocks;
  std::vector<Loop> loops;  // ordered by header (first), outer loops before the loops they hold
  ClassCounts static_counts{};
  size_t instructions = 0;
};

// Parses the text. Lines are "label:" (a block starts), an instruction ("mnemonic operands",
// optionally followed by "; encoding" or "// comment"), or anything else (ignored). Recognizes
// ACO's "BB12:" labels and LLVM-style ".LBB0_12:" ones.
Disassembly parse_disassembly(const std::string& text);

}  // namespace vidkv::info
