#include "aco_disasm.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <string_view>

namespace vidkv::info {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// A label line: one token ending in ':' made of letters, digits, '_' and '.'.
bool is_label(const std::string& line, std::string& name) {
  if (line.size() < 2 || line.back() != ':') return false;
  name = line.substr(0, line.size() - 1);
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return !name.empty();
}

// An instruction's first word: lower-case letters, digits and '_', with a '_' after the first
// letters ("v_add_f32", "ds_load_b32", "buffer_load_b128").
bool is_mnemonic(const std::string& word) {
  if (word.size() < 3 || !std::islower(static_cast<unsigned char>(word[0]))) return false;
  for (char c : word) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return word.find('_') != std::string::npos;
}

}  // namespace

bool returns_data(const std::string& m) {
  // Stores (ds_store / ds_write, s_store), cache controls and atomics without "_rtn" return nothing:
  // a wait after them alone is not a round trip of a load (the counter also counts them, but
  // nothing waits for their data).
  if (starts_with(m, "ds_store") || starts_with(m, "ds_write") || starts_with(m, "s_store") ||
      starts_with(m, "s_buffer_store") || starts_with(m, "s_dcache")) {
    return false;
  }
  if (starts_with(m, "ds_load") || starts_with(m, "ds_read") || starts_with(m, "s_load") ||
      starts_with(m, "s_buffer_load")) {
    return true;
  }
  return m.find("_rtn") != std::string::npos || m.find("permute") != std::string::npos ||
         m.find("swizzle") != std::string::npos || starts_with(m, "ds_append") || starts_with(m, "ds_consume");
}

bool fp32_one_pass(const std::string& m) {
  // "v_add_f32" and its encodings "v_add_f32_e32" / "_e64"; not "v_add_f32_dpp"-like variants
  std::string_view op = m;
  if (op.size() > 4 && (op.ends_with("_e32") || op.ends_with("_e64"))) op.remove_suffix(4);
  // (v_mac / v_mad: GCN's names of the fp32 multiply-add, so that the count means the same there)
  static const char* const ops[] = {"v_fma_f32",  "v_fmac_f32", "v_fmamk_f32", "v_fmaak_f32",  "v_mac_f32",
                                    "v_mad_f32",  "v_madmk_f32", "v_madak_f32", "v_mul_f32",   "v_add_f32",
                                    "v_sub_f32",  "v_subrev_f32", "v_min_f32",  "v_max_f32",   "v_mul_legacy_f32",
                                    "v_mul_dx9_zero_f32"};
  for (const char* o : ops)
    if (op == o) return true;
  return false;
}

const char* instr_class_name(InstrClass c) noexcept {
  switch (c) {
    case InstrClass::valu: return "valu";
    case InstrClass::salu: return "salu";
    case InstrClass::smem: return "smem";
    case InstrClass::vmem: return "vmem";
    case InstrClass::lds: return "lds";
    case InstrClass::waitcnt: return "waitcnt";
    case InstrClass::branch: return "branch";
    case InstrClass::other: return "other";
  }
  return "?";
}

InstrClass classify(const std::string& m) {
  if (starts_with(m, "v_")) return InstrClass::valu;
  if (starts_with(m, "ds_")) return InstrClass::lds;
  if (starts_with(m, "buffer_") || starts_with(m, "global_") || starts_with(m, "flat_") ||
      starts_with(m, "scratch_") || starts_with(m, "tbuffer_")) {
    return InstrClass::vmem;
  }
  if (starts_with(m, "s_waitcnt") || starts_with(m, "s_wait_")) return InstrClass::waitcnt;
  if (starts_with(m, "s_load_") || starts_with(m, "s_buffer_load_") || starts_with(m, "s_store_") ||
      starts_with(m, "s_buffer_store_") || starts_with(m, "s_dcache_")) {
    return InstrClass::smem;
  }
  if (m == "s_branch" || starts_with(m, "s_cbranch_") || m == "s_endpgm" || starts_with(m, "s_setpc") ||
      starts_with(m, "s_swappc")) {
    return InstrClass::branch;
  }
  if (m == "s_barrier" || m == "s_nop" || starts_with(m, "s_sendmsg") || starts_with(m, "s_inst_prefetch") ||
      starts_with(m, "s_delay_alu") || starts_with(m, "s_clause") || starts_with(m, "s_code_end") ||
      starts_with(m, "s_sleep") || starts_with(m, "s_set_inst_prefetch")) {
    return InstrClass::other;
  }
  if (starts_with(m, "s_")) return InstrClass::salu;
  return InstrClass::other;
}

Disassembly parse_disassembly(const std::string& text) {
  Disassembly d;
  d.blocks.push_back(Block{});
  std::istringstream in(text);
  std::string raw;
  bool vm_pending = false, lgkm_pending = false;
  while (std::getline(in, raw)) {
    std::string line = raw;
    for (const char* sep : {";", "//"}) {
      const size_t c = line.find(sep);
      if (c != std::string::npos) line.resize(c);
    }
    line = trim(line);
    if (line.empty()) continue;
    std::string label;
    if (is_label(line, label)) {
      // A label right at the start (or after another label with no code) opens no empty block.
      Block& last = d.blocks.back();
      const bool empty = last.label.empty() && d.instructions == 0;
      if (empty) {
        last.label = label;
      } else {
        d.blocks.push_back(Block{});
        d.blocks.back().label = label;
      }
      continue;
    }
    std::istringstream words(line);
    std::string mnemonic;
    words >> mnemonic;
    if (!is_mnemonic(mnemonic)) continue;
    const InstrClass c = classify(mnemonic);
    Block& b = d.blocks.back();
    b.counts[size_t(c)] += 1;
    d.static_counts[size_t(c)] += 1;
    if (c == InstrClass::valu && fp32_one_pass(mnemonic)) b.fp32_valu += 1;
    ++d.instructions;
    // A wait is a serial round trip when loads of its kind were issued since the last such wait
    // (in program order): the first of "lgkmcnt(6) .. lgkmcnt(0)" after seven LDS loads waits for
    // the first load, the others for loads already on their way.
    if (c == InstrClass::vmem && mnemonic.find("load") != std::string::npos) vm_pending = true;
    if ((c == InstrClass::lds || c == InstrClass::smem) && returns_data(mnemonic)) lgkm_pending = true;
    if (c == InstrClass::waitcnt) {
      // gfx9-11 "s_waitcnt vmcnt(0) lgkmcnt(0)"; gfx12 "s_wait_loadcnt", "s_wait_dscnt", "s_wait_kmcnt".
      const bool vm = line.find("vmcnt") != std::string::npos || line.find("loadcnt") != std::string::npos;
      const bool lgkm = line.find("lgkmcnt") != std::string::npos || line.find("dscnt") != std::string::npos ||
                        line.find("kmcnt") != std::string::npos;
      if (vm && vm_pending) {
        ++b.vm_waits;
        vm_pending = false;
      }
      if (lgkm && lgkm_pending) {
        ++b.lgkm_waits;
        lgkm_pending = false;
      }
    }
    if (c == InstrClass::branch && mnemonic != "s_endpgm") {
      std::string target;
      while (words >> target) {
        if (!target.empty() && target.back() == ',') target.pop_back();
      }
      if (!target.empty()) b.branch_targets.push_back(target);
    }
  }
  // Back edges: a branch in block i to the label of block j <= i makes j..i a loop.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < d.blocks.size(); ++i) {
    if (!d.blocks[i].label.empty()) index[d.blocks[i].label] = i;
  }
  std::map<size_t, size_t> loops;  // header -> last block
  for (size_t i = 0; i < d.blocks.size(); ++i) {
    for (const std::string& t : d.blocks[i].branch_targets) {
      auto it = index.find(t);
      if (it == index.end() || it->second > i) continue;
      size_t& last = loops[it->second];
      last = std::max(last, i);
    }
  }
  for (const auto& [first, last] : loops) d.loops.push_back({first, last});
  return d;
}

}  // namespace vidkv::info
