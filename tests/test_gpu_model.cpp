// vidkv-info's GPU model (tools/info): ACO disassembly classified and its loops found; instructions
// per wave from loop trip counts, and a mismatch between the loops and the table an explicit error;
// the redesigned fp16 and reduction kernels' trip counts; each bound of dispatch_time and of a stage
// of dispatches without a barrier between them by hand; the JSON keys of the report.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "info/aco_disasm.hpp"
#include "info/gpu_model.hpp"
#include "info/pipelines.hpp"
#include "vidkv/error.hpp"

namespace vidkv::test {
namespace {

using info::InstrClass;

double count(const info::ClassCounts& c, InstrClass k) { return c[size_t(k)]; }

// Two nested loops in ACO's style: BB1 (outer header) .. BB3 (its back edge), BB2 a loop of its own.
const char* kNested = R"(
BB0:
	s_load_dwordx4 s[0:3], s[4:5], 0x0                          ; f4080002 fa000000
	v_mov_b32_e32 v1, 0                                         ; 7e020280
	s_mov_b32 s6, 0                                             ; be860380
BB1:
	s_waitcnt lgkmcnt(0)                                        ; bf89fc07
	buffer_load_dword v2, v0, s[0:3], 0 offen                   ; e0301000 80000200
	s_mov_b32 s7, 0                                             ; be870380
BB2:
	ds_read_b32 v3, v0                                          ; d8d80000 03000000
	s_waitcnt vmcnt(0) lgkmcnt(0)                               ; bf890000
	v_fmac_f32_e32 v1, v2, v3                                   ; 56020702
	s_add_i32 s7, s7, 1                                         ; 81078107
	s_cmp_lt_u32 s7, 8                                          ; bf0a8807
	s_cbranch_scc1 BB2                                          ; bfa1fffa
BB3:
	s_add_i32 s6, s6, 1                                         ; 81068106
	s_cmp_lt_u32 s6, 4                                          ; bf0a8406
	s_cbranch_scc1 BB1                                          ; bfa1fff3
BB4:
	s_barrier                                                   ; bfbd0000
	global_store_dword v0, v1, s[0:1]                           ; dc6a0000 00000100
	s_endpgm                                                    ; bfb00000
)";

TEST(AcoDisassembly, ClassifiesMnemonics) {
  EXPECT_EQ(info::classify("v_dual_fmac_f32"), InstrClass::valu);
  EXPECT_EQ(info::classify("v_pk_fma_f16"), InstrClass::valu);
  EXPECT_EQ(info::classify("s_and_b32"), InstrClass::salu);
  EXPECT_EQ(info::classify("s_load_dwordx8"), InstrClass::smem);
  EXPECT_EQ(info::classify("s_buffer_load_dword"), InstrClass::smem);
  EXPECT_EQ(info::classify("buffer_load_dwordx4"), InstrClass::vmem);
  EXPECT_EQ(info::classify("global_load_b128"), InstrClass::vmem);
  EXPECT_EQ(info::classify("ds_load_b32"), InstrClass::lds);
  EXPECT_EQ(info::classify("s_waitcnt"), InstrClass::waitcnt);
  EXPECT_EQ(info::classify("s_waitcnt_vscnt"), InstrClass::waitcnt);
  EXPECT_EQ(info::classify("s_cbranch_execz"), InstrClass::branch);
  EXPECT_EQ(info::classify("s_branch"), InstrClass::branch);
  EXPECT_EQ(info::classify("s_barrier"), InstrClass::other);
  // RDNA3's one-pass wave64 set: fp32 arithmetic only, in any encoding
  EXPECT_TRUE(info::fp32_one_pass("v_fmac_f32_e32"));
  EXPECT_TRUE(info::fp32_one_pass("v_fma_f32"));
  EXPECT_TRUE(info::fp32_one_pass("v_add_f32_e64"));
  EXPECT_TRUE(info::fp32_one_pass("v_subrev_f32_e32"));
  EXPECT_TRUE(info::fp32_one_pass("v_mac_f32_e32"));  // GCN's name
  EXPECT_FALSE(info::fp32_one_pass("v_fma_mix_f32"));
  EXPECT_FALSE(info::fp32_one_pass("v_add_f32_dpp"));
  EXPECT_FALSE(info::fp32_one_pass("v_add_nc_u32_e32"));
  EXPECT_FALSE(info::fp32_one_pass("v_cvt_f32_u32_e32"));
  EXPECT_FALSE(info::fp32_one_pass("v_exp_f32_e32"));
  EXPECT_FALSE(info::fp32_one_pass("v_pk_fma_f16"));
  const info::Disassembly d = info::parse_disassembly("v_fmac_f32_e32 v1, v2, v3\nv_bfe_u32 v4, v5, 0, 2\nv_mul_f32_e32 v1, v1, v1\n");
  EXPECT_EQ(d.blocks[0].counts[size_t(InstrClass::valu)], 3);
  EXPECT_EQ(d.blocks[0].fp32_valu, 2);
}

TEST(AcoDisassembly, FindsBlocksLoopsAndWaits) {
  const info::Disassembly d = info::parse_disassembly(kNested);
  ASSERT_EQ(d.blocks.size(), 5u);
  EXPECT_EQ(d.blocks[0].label, "BB0");
  EXPECT_EQ(d.instructions, 18u);
  EXPECT_EQ(count(d.static_counts, InstrClass::valu), 2);
  EXPECT_EQ(count(d.static_counts, InstrClass::salu), 6);
  EXPECT_EQ(count(d.static_counts, InstrClass::smem), 1);
  EXPECT_EQ(count(d.static_counts, InstrClass::vmem), 2);
  EXPECT_EQ(count(d.static_counts, InstrClass::lds), 1);
  EXPECT_EQ(count(d.static_counts, InstrClass::waitcnt), 2);
  EXPECT_EQ(count(d.static_counts, InstrClass::branch), 3);
  EXPECT_EQ(count(d.static_counts, InstrClass::other), 1);  // s_barrier
  EXPECT_EQ(d.blocks[1].lgkm_waits, 1u);
  EXPECT_EQ(d.blocks[2].vm_waits, 1u);  // the buffer_load of BB1
  EXPECT_EQ(d.blocks[2].lgkm_waits, 1u);
  ASSERT_EQ(d.loops.size(), 2u);  // outer first (header order)
  EXPECT_EQ(d.loops[0].first, 1u);
  EXPECT_EQ(d.loops[0].last, 3u);
  EXPECT_EQ(d.loops[1].first, 2u);
  EXPECT_EQ(d.loops[1].last, 2u);
}

// A store between two waits does not make the second one a round trip; a load does.
TEST(AcoDisassembly, OnlyLoadsMakeAWaitARoundTrip) {
  const info::Disassembly d = info::parse_disassembly(R"(
BB0:
	ds_load_b32 v1, v0
	ds_load_b32 v2, v0 offset:4
	s_waitcnt lgkmcnt(1)
	ds_store_b32 v3, v1
	s_waitcnt lgkmcnt(1)
	ds_write_b32 v3, v2
	s_waitcnt lgkmcnt(0)
	ds_read_b32 v4, v0
	s_waitcnt lgkmcnt(0)
	s_buffer_load_dword s0, s[4:7], 0x0
	s_waitcnt lgkmcnt(0)
	s_endpgm
)");
  ASSERT_EQ(d.blocks.size(), 1u);
  EXPECT_EQ(d.blocks[0].lgkm_waits, 3u);  // after the two loads, the ds_read, the s_buffer_load
  EXPECT_TRUE(info::returns_data("ds_load_b128"));
  EXPECT_TRUE(info::returns_data("ds_add_rtn_u32"));
  EXPECT_TRUE(info::returns_data("ds_bpermute_b32"));
  EXPECT_FALSE(info::returns_data("ds_store_b32"));
  EXPECT_FALSE(info::returns_data("ds_add_u32"));
}

// ACO's code for attention_query (k 64, streams 64, D 128, ratio 7) on gfx1100, captured with
// RADV_FORCE_FAMILY=gfx1100 vidkv-info --pipelines --dump-asm (Mesa 22.3.6). RADV reported
// "Instructions" = 92 for it.
TEST(AcoDisassembly, CapturedQueryTransformOnGfx1100) {
  std::ifstream in(std::string(VIDKV_TEST_DATA_DIR) + "/aco/attention_query_gfx1100.s");
  ASSERT_TRUE(in) << "fixture missing";
  std::stringstream text;
  text << in.rdbuf();
  const info::Disassembly d = info::parse_disassembly(text.str());
  EXPECT_EQ(d.instructions, 92u);
  EXPECT_EQ(count(d.static_counts, InstrClass::valu), 36);
  EXPECT_EQ(count(d.static_counts, InstrClass::salu), 27);
  EXPECT_EQ(count(d.static_counts, InstrClass::smem), 4);
  EXPECT_EQ(count(d.static_counts, InstrClass::vmem), 4);
  EXPECT_EQ(count(d.static_counts, InstrClass::lds), 2);
  EXPECT_EQ(count(d.static_counts, InstrClass::waitcnt), 9);
  EXPECT_EQ(count(d.static_counts, InstrClass::branch), 9);
  EXPECT_EQ(count(d.static_counts, InstrClass::other), 1);  // s_barrier
  // The channel loop, then the stream loop holding the DFT sum over the normal channels.
  ASSERT_EQ(d.loops.size(), 3u);
  EXPECT_LT(d.loops[0].last, d.loops[1].first);
  EXPECT_LE(d.loops[1].first, d.loops[2].first);
  EXPECT_LE(d.loops[2].last, d.loops[1].last);
  // The model's table matches this structure.
  info::KernelShape shape;
  EXPECT_NO_THROW(info::wave_cost(d, info::loop_trips("attention_query", shape), "attention_query"));
}

// ACO's code for the redesigned attention_reduce (D 128, workgroup 64: one workgroup per query head
// and 32 channels) on gfx1100, captured like the query transform above. RADV reported
// "Instructions" = 229 for it.
TEST(AcoDisassembly, CapturedReductionOnGfx1100) {
  std::ifstream in(std::string(VIDKV_TEST_DATA_DIR) + "/aco/attention_reduce_gfx1100.s");
  ASSERT_TRUE(in) << "fixture missing";
  std::stringstream text;
  text << in.rdbuf();
  const info::Disassembly d = info::parse_disassembly(text.str());
  EXPECT_EQ(d.instructions, 229u);
  // The max over slots, the max tree, the slot loop; the sum over slot lanes is unrolled.
  ASSERT_EQ(d.loops.size(), 3u);
  EXPECT_LT(d.loops[0].last, d.loops[1].first);
  EXPECT_LT(d.loops[1].last, d.loops[2].first);
  info::KernelShape shape;
  shape.slots = 129;  // 32768 tokens: 128 segment splits of 256 and the residual's one
  const std::vector<info::LoopTrip> trips = info::loop_trips("attention_reduce", shape);
  ASSERT_EQ(trips.size(), 3u);
  EXPECT_EQ(trips[0].trips, 3);  // ceil(129 / 64) slots per invocation
  EXPECT_EQ(trips[1].trips, 6);  // 64 -> 32 -> ... -> 1
  EXPECT_EQ(trips[2].trips, 5);  // ceil(129 / 32): 8 slot lanes x 4 slots per step
  // 32 more slots: one more trip of the slot loop (and the max loop's third trip already counted
  // up to 192), so the wave's vector loads grow by exactly the slot loop's own.
  const info::WaveCost c = info::wave_cost(d, trips, "attention_reduce");
  shape.slots = 161;
  const info::WaveCost more = info::wave_cost(d, info::loop_trips("attention_reduce", shape), "attention_reduce");
  double slot_loop_vmem = 0;
  for (size_t b = d.loops[2].first; b <= d.loops[2].last; ++b) slot_loop_vmem += d.blocks[b].counts[size_t(InstrClass::vmem)];
  EXPECT_GE(slot_loop_vmem, 4);  // the 4 slots of a step loaded together
  EXPECT_EQ(count(more.counts, InstrClass::vmem) - count(c.counts, InstrClass::vmem), slot_loop_vmem);
}

// The redesigned attention_fp16's ten loops (gfx1100 and navi21, Mesa 22.3.6), trips by hand for
// the benchmark geometry: 4 tokens per invocation in the score phase, 16-byte key words two at a
// time, the softmax's strided passes and trees, 4 row groups of 16 invocations x 8 rows per step.
TEST(GpuModel, Fp16TripsFollowTheGeometry) {
  info::KernelShape s;
  s.dim = 128;
  s.ratio = 7;
  s.split = s.tokens = 256;
  s.workgroup = s.wave = 64;
  s.subgroup_reduce = true;
  auto trips_of = [](const info::KernelShape& shape) {
    std::vector<double> v;
    for (const info::LoopTrip& t : info::loop_trips("attention_fp16", shape)) v.push_back(t.trips);
    return v;
  };
  // One subgroup per workgroup: its trees have one entry, no steps; the softmax passes take two
  // tokens per step (256 / 128).
  EXPECT_EQ(trips_of(s), (std::vector<double>{1, 8, 2, 0, 1, 2, 0, 1, 8, 3}));
  s.tokens = 128;  // the residual: 128 tokens of a 256-token split
  EXPECT_EQ(trips_of(s), (std::vector<double>{1, 8, 1, 0, 1, 1, 0, 1, 4, 3}));
  s.tokens = 256;
  s.wave = 32;  // two subgroups: one step of 7 pairs
  EXPECT_EQ(trips_of(s), (std::vector<double>{1, 8, 2, 1, 1, 2, 1, 1, 8, 3}));
  s.subgroup_reduce = false;  // a tree over all 64 invocations: 6 steps, 4 + 2 + 1 + 1 + 1 + 1 trips of lane 0
  const std::vector<double> tree = trips_of(s);
  EXPECT_EQ(tree[3], 6);
  EXPECT_DOUBLE_EQ(tree[4], 10.0 / 6);
  s.split = s.tokens = 128;  // a split of 2 x 64 tokens: 2 tokens per invocation, one score step
  s.subgroup_reduce = true;
  EXPECT_EQ(trips_of(s)[0], 1);
  EXPECT_EQ(trips_of(s)[8], 4);
}

// The redesigned portable attention_vidkv (k1.5 keys: 64 anomalous channels, 64 half-spectrum
// streams; trits) has 22 loops on gfx1100 and navi21: the query transform's 4, the score phase's 10
// (chunks of 64 tokens, passes of 64 key indices, the fold and score loops of each half of them and
// their remainders), the softmax's 6, the value chunks and their groups. Trips by hand for a split
// of 256 tokens.
TEST(GpuModel, VidkvTripsFollowTheGeometry) {
  info::KernelShape s;  // D 128, ratio 7, split 256, k 64, streams 64, workgroup 64
  std::vector<double> trips;
  for (const info::LoopTrip& t : info::loop_trips("attention_vidkv[trits]", s)) trips.push_back(t.trips);
  const double tree = 10.0 / 6;  // a tree over 64 entries x 7 heads: 4 + 2 + 1 + 1 + 1 + 1 trips in 6 steps
  EXPECT_EQ(trips, (std::vector<double>{1, 1, 16, 0,  // twiddles; ceil(33 bins / 64); N = 64 in steps of 4, no rest
                                        4, 2,         // 256 / 64 chunks; 128 key indices / 64
                                        2, 0, 2, 0,   // fold: lane 0's 16 indices (4 lanes apart) in 4 steps of 4 in one pass, none in the other
                                        4, 0, 4, 0,   // score: 8 steps of 8 in one pass, none in the other, no rest
                                        2, 6, tree, 2, 6, tree,  // softmax (two tokens per step)
                                        4, 2}));                 // 8 groups in chunks of 2
  // Plain 2-bit keys (128 anomalous channels, no streams): no DFT loops; 2 bits per channel sums
  // through the same subset-sum tables as the trits (no loop of its own).
  s.anomalous = 128;
  s.streams = 0;
  const std::vector<info::LoopTrip> b2 = info::loop_trips("attention_vidkv[b2_channel]", s);
  ASSERT_EQ(b2.size(), 19u);
  EXPECT_EQ(b2[0].trips, 0);   // no twiddles
  EXPECT_EQ(b2[3].trips, 4);   // fold: every pass is anomalous channels, 16 per lane in steps of 4
  EXPECT_EQ(b2[4].trips, 0);
  EXPECT_EQ(b2[5].trips, 0);   // no streams
  EXPECT_EQ(b2[17].trips, 4);  // 8 groups in chunks of 2
  EXPECT_EQ(b2[18].trips, 2);
  // KIVI: the chunk's 64 tokens, 4 per step (2 at head_dim 256, 4 owned channels)
  const std::vector<info::LoopTrip> kivi = info::loop_trips("attention_vidkv[b2_token]", s);
  ASSERT_EQ(kivi.size(), 19u);
  EXPECT_EQ(kivi[17].trips, 4);
  EXPECT_EQ(kivi[18].trips, 16);
  s.dim = 256;
  EXPECT_EQ(info::loop_trips("attention_vidkv[b2_token]", s).back().trips, 32);
}

TEST(GpuModel, KernelKeyNamesTheValueMode) {
  rt::PipelineRecord r;
  r.name = "attention_vidkv";
  r.specialization = {64, 128, 7, 256, 64, 64, 0, 0, 0};  // portable: mode, then spectrum and scope
  EXPECT_EQ(info::kernel_key(r), "attention_vidkv[trits]");
  r.specialization = {64, 128, 7, 256, 64, 64, 3, 1, 1};
  EXPECT_EQ(info::kernel_key(r), "attention_vidkv[stp]");
  r.name = "attention_vidkv_sg8";
  r.specialization = {64, 128, 7, 1024, 64, 64, 1};  // subgroup-of-8 shader: mode last
  EXPECT_EQ(info::kernel_key(r), "attention_vidkv[b2_channel]");
  r.name = "attention_fp16";
  r.specialization = {64, 128, 7, 256, 1};
  EXPECT_EQ(info::kernel_key(r), "attention_fp16");
}

TEST(GpuModel, StageOfDispatchesWithoutABarrierSharesTheGpu) {
  info::GpuSpec gpu{"test", "", 10, 1.0, 100, 2, 32, 0, false, 1, 1, 500, 50, 8, 4};
  info::DispatchTime a, b;
  a.bandwidth_us = 10;
  a.issue_us = 30;  // on its own units
  a.gpu_issue_us = 12;
  a.latency_us = 20;
  a.total_us = 34;
  b.bandwidth_us = 1;
  b.issue_us = 8;  // 4 workgroups on 4 of the 10 units
  b.gpu_issue_us = 2;
  b.latency_us = 25;
  b.total_us = 29;
  const info::DispatchTime one = info::stage_time(gpu, {a});
  EXPECT_DOUBLE_EQ(one.total_us, a.total_us);  // alone: its own time
  const info::DispatchTime t = info::stage_time(gpu, {a, b});
  EXPECT_DOUBLE_EQ(t.bandwidth_us, 11);    // the bytes share the DRAM
  EXPECT_DOUBLE_EQ(t.issue_us, 30);        // the slowest one's own issue bound (12 + 2 GPU-wide is less)
  EXPECT_DOUBLE_EQ(t.latency_us, 25);      // the chains overlap
  EXPECT_DOUBLE_EQ(t.total_us, 30 + 4);    // one overhead for the stage, not 34 + 29
  a.issue_us = 10;
  a.gpu_issue_us = 10;
  b.gpu_issue_us = 8;  // together they fill the whole GPU's issue slots
  EXPECT_DOUBLE_EQ(info::stage_time(gpu, {a, b}).issue_us, 18);
}

TEST(GpuModel, WaveCostMultipliesEachBlockByItsLoops) {
  const info::Disassembly d = info::parse_disassembly(kNested);
  const info::WaveCost c = info::wave_cost(d, {{"outer", 4}, {"inner", 8}}, "nested");
  // BB2 runs 32 times, BB1 and BB3 4 times, BB0 and BB4 once.
  EXPECT_EQ(count(c.counts, InstrClass::valu), 1 + 32);
  EXPECT_EQ(count(c.counts, InstrClass::salu), 1 + 4 + 32 * 2 + 4 * 2);
  EXPECT_EQ(count(c.counts, InstrClass::lds), 32);
  EXPECT_EQ(count(c.counts, InstrClass::vmem), 4 + 1);
  EXPECT_EQ(c.vm_waits, 32);
  EXPECT_EQ(c.lgkm_waits, 4 + 32);  // BB1 waits for the s_load of BB0, BB2 for its ds_read
}

TEST(GpuModel, ALoopCountUnlikeTheTableIsAnError) {
  const info::Disassembly d = info::parse_disassembly(kNested);
  try {
    info::wave_cost(d, {{"only one", 4}}, "attention_vidkv[trits]");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("kernel structure changed, table needs updating"), std::string::npos) << what;
    EXPECT_NE(what.find("attention_vidkv[trits] has 2 loop(s)"), std::string::npos) << what;
  }
}

TEST(GpuModel, DispatchTimeIsTheLargestBoundPlusOverhead) {
  info::GpuSpec gpu{"test", "", 10, 1.0, 100, 2, 32, 0, false, 1, 1, 500, 50, 8, 4};
  info::DispatchWork w;
  w.workgroups = 20;
  w.waves_per_workgroup = 2;  // 40 waves, 4 per unit, 2 schedulers busy per unit
  w.per_wave.counts[size_t(InstrClass::valu)] = 1000;
  w.per_wave.counts[size_t(InstrClass::lds)] = 100;
  w.slowest_wave.vm_waits = 10;
  w.slowest_wave.lgkm_waits = 20;
  w.bytes = 1e6;
  const info::DispatchTime t = info::dispatch_time(gpu, w);
  EXPECT_DOUBLE_EQ(t.bandwidth_us, 10.0);                  // 1e6 B / 100 GB/s
  EXPECT_DOUBLE_EQ(t.issue_us, 40 * 1000 / 20.0 / 1e3);    // 40000 VALU over 20 issue slots at 1 GHz
  EXPECT_DOUBLE_EQ(t.latency_us, (10 * 500 + 20 * 50) / 1e3);  // one round: 160 wave slots hold all 40
  EXPECT_DOUBLE_EQ(t.total_us, 10.0 + 4);
  EXPECT_DOUBLE_EQ(t.gpu_issue_us, 40 * 1000 / 20.0 / 1e3);  // 10 units x 2 schedulers: all of them busy already
  // NVIDIA-style: every class shares the issue slots.
  gpu.shared_issue = true;
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).issue_us, 40 * 1100 / 20.0 / 1e3);
  // More waves than the GPU holds: the latency chain repeats per round.
  w.workgroups = 200;  // 400 waves, 160 resident
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).latency_us, 3 * 6.0);
  // Waves of 64 lanes on SIMD32: each VALU instruction takes two clocks.
  gpu.shared_issue = false;
  w.workgroups = 20;
  w.wave_lanes = 64;
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).issue_us, 2 * 40 * 1000 / 20.0 / 1e3);
  // RDNA3: the wave64's fp32 arithmetic (600 of the 1000) takes one pass, the rest two; wave32 and
  // GPUs without the second fp32 ALU are unchanged.
  w.per_wave.fp32_valu = 600;
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).issue_us, 2 * 40 * 1000 / 20.0 / 1e3);
  gpu.wave64_fp32_one_pass = true;
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).issue_us, 40 * (2 * 400 + 600) / 20.0 / 1e3);
  w.wave_lanes = 32;
  EXPECT_DOUBLE_EQ(info::dispatch_time(gpu, w).issue_us, 40 * 1000 / 20.0 / 1e3);
  w.wave_lanes = 64;
  gpu.wave64_fp32_one_pass = false;
  w.per_wave.fp32_valu = 0;
  // Two workgroups of one wave: 2 units with one busy scheduler each, against all 20 GPU-wide.
  w.workgroups = 2;
  w.waves_per_workgroup = 1;
  const info::DispatchTime small = info::dispatch_time(gpu, w);
  EXPECT_DOUBLE_EQ(small.issue_us, 2 * 2 * 1000 / 2.0 / 1e3);
  EXPECT_DOUBLE_EQ(small.gpu_issue_us, 2 * 2 * 1000 / 20.0 / 1e3);
}

TEST(GpuModel, AcoTargetFromTheDeviceName) {
  rt::DeviceInfo d;
  d.driver_name = "radv";
  d.name = "Null hardware (RADV NAVI21)";
  EXPECT_EQ(info::aco_code_of(d), "gfx10.3");
  d.name = "AMD Radeon RX 7900 XTX (RADV NAVI31)";
  EXPECT_EQ(info::aco_code_of(d), "gfx11");
  d.name = "Null hardware (RADV GFX1100)";
  EXPECT_EQ(info::aco_code_of(d), "gfx11");
  d.name = "Null hardware (RADV VEGA10)";
  EXPECT_EQ(info::aco_code_of(d), "gfx9");
  d.driver_name = "llvmpipe";
  d.name = "llvmpipe (LLVM 15.0.6, 256 bits)";
  EXPECT_EQ(info::aco_code_of(d), "");
}

TEST(GpuModel, PipelineJsonHasTheIssuesKeys) {
  info::PipelineReport r;
  r.label = "attention_vidkv[trits]";
  r.presets = {"k1.5-v1.58"};
  r.record.name = "attention_vidkv";
  r.record.specialization = {64, 128, 7, 256, 64, 64, 0};
  rt::PipelineExecutable e;
  e.subgroup_size = 32;
  e.statistics = {{"VGPRs", "", false, false, 96}, {"Spilled VGPRs", "", false, false, 0},
                  {"Spilled SGPRs", "", false, false, 2}};
  r.record.executables = {e};
  const json::Value j = info::pipeline_json(r);
  EXPECT_EQ(j["name"].as_string(), "attention_vidkv[trits]");
  EXPECT_EQ(j["stats"]["VGPRs"].as_number(), 96);
  EXPECT_EQ(j["spills"].as_number(), 2);
  EXPECT_EQ(j["subgroup_size"].as_number(), 32);
  r.record.executables.clear();
  EXPECT_TRUE(info::pipeline_json(r)["spills"].is_null());  // not reported: null, not 0

  info::ModelResult m;
  info::ModelEntry entry;
  entry.gpu = "RX 7900 XTX";
  entry.preset = "k1.5-v1.58";
  entry.tokens = 8192;
  m.entries = {entry};
  const json::Value model = info::model_json(m);
  ASSERT_EQ(model.size(), 1u);
  for (const char* key : {"gpu", "preset", "tokens", "predicted_ms", "fp16_predicted_ms", "speedup_vs_fp16",
                          "bandwidth_fraction", "dispatches", "stages"}) {
    EXPECT_TRUE(model[0].contains(key)) << key;
  }
}

}  // namespace
}  // namespace vidkv::test
