#pragma once
// The terminal report: per context length, what was sampled and one row per preset; the per-kernel
// GPU time table of the whole run.
#include <cstdio>
#include <vector>

#include "bench/results.hpp"
#include "bench/run_profile.hpp"

namespace vidkv::bench {

void print_size_table(std::FILE* out, const SizeResults& size, uint32_t queries, uint32_t runs);
void print_kernel_table(std::FILE* out, const std::vector<KernelTotal>& kernels, uint64_t dropped);

}  // namespace vidkv::bench
