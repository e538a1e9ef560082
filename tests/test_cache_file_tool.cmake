# The vidkv-cache tool end to end (ctest cache_tool): compress a tiny K/V dump written with
# write_npy into a saved cache, inspect it, the fuzzer's seeds (an STP cache, a version 1 file), and
# damaged files, which must fail with exit status 1 and a message naming the damage. Variables:
# TOOL (vidkv-cache), DATA (vidkv_cache_tool_data), WORK (a scratch directory).
foreach(var TOOL DATA WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "test_cache_file_tool.cmake needs -D${var}=...")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# Runs the command; its exit status must be `want_rc` and its output must match `regex`.
function(expect want_rc regex)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "$ ${ARGN}\n${out}${err}")
  if(NOT rc STREQUAL "${want_rc}")
    message(FATAL_ERROR "exit status ${rc}, expected ${want_rc}: ${ARGN}")
  endif()
  if(NOT "${out}${err}" MATCHES "${regex}")
    message(FATAL_ERROR "output does not match '${regex}': ${ARGN}")
  endif()
endfunction()

expect(0 "vidkv-cache [0-9]+\\.[0-9]+\\.[0-9]+" "${TOOL}" --version)
expect(0 "inspect" "${TOOL}" --help)
expect(2 "usage" "${TOOL}" frobnicate)
expect(2 "required" "${TOOL}" compress --kv "${WORK}/dump")

expect(0 "" "${DATA}" dump "${WORK}/dump")
expect(0 "saved: .*sequence 1" "${TOOL}" compress --kv "${WORK}/dump" --preset k1.5-v1.58 -o "${WORK}/c.vkv")
expect(0 "every CRC-32C checksum matches.*k1\\.5-v1\\.58.*2 layers, 2 KV heads, 2 query heads, head_dim 64.*max_tokens 70.*id 1: 70 tokens per layer"
       "${TOOL}" inspect "${WORK}/c.vkv" --layers)
# The original's configuration text and a larger max_tokens.
expect(0 "saved" "${TOOL}" compress --kv "${WORK}/dump" -o "${WORK}/d.vkv" --max-tokens 1000 --q-heads 4
       --preset "{'backend': 'QuantizedCacheVLM', 'nbits': [1.5, 2], 'q_group_size': 32, 'residual_length': 128}")
expect(0 "k1\\.5-v2.*4 query heads.*max_tokens 1000" "${TOOL}" inspect "${WORK}/d.vkv")
expect(1 "above --max-tokens 64" "${TOOL}" compress --kv "${WORK}/dump" --preset 2bit -o "${WORK}/e.vkv" --max-tokens 64)
expect(1 "unknown preset" "${TOOL}" compress --kv "${WORK}/dump" --preset k3 -o "${WORK}/e.vkv")

# The fuzzer's seeds: an STP cache shows its protected counts per sequence and per segment; a
# cache with per-head policies its heads per layer and per policy; version 1 and 2 files are still
# read.
expect(0 "" "${DATA}" corpus "${WORK}/corpus")
expect(0 "format version 3.*32 tokens protected \\(STP\\) in 2 segments.*layer 0: 200 tokens, segments \\[64 \\(STP: 32 protected\\)\\+128\\].*layer 1: 32 tokens, segments \\[32 \\(STP: 0 protected\\)\\]"
       "${TOOL}" inspect "${WORK}/corpus/k1.5-v1.58-stp.vkv" --layers)
expect(0 "format version 3.*heads: explicit list \\(6: 1 vidkv, 2 full, 3 window \\(sink 2, recent 6\\)\\).*id 1: 35 tokens per layer.*layer 0: 35 tokens, segments \\[32\\], residual 3, prefilled, appended; heads: 1 vidkv, 1 full, 1 window \\(holding 8 tokens\\).*layer 1: 35 tokens, segments \\[\\], residual 0, prefilled, appended; heads: 0 vidkv, 1 full, 2 window.*policies:.*vidkv +1 heads.*full +2 heads +70 tokens.*window +3 heads +24 tokens"
       "${TOOL}" inspect "${WORK}/corpus/k1.5-v1.58-heads.vkv" --layers)
expect(0 "format version 1.*k1\\.5-v1\\.58" "${TOOL}" inspect "${WORK}/corpus/format1-k1.5-v1.58.vkv")
expect(0 "format version 2.*k1\\.5-v1\\.58" "${TOOL}" inspect "${WORK}/corpus/format2-k1.5-v1.58.vkv")

# Damage: a byte inside the first layer section, the tail cut off, not a cache file at all.
expect(0 "" "${DATA}" flip "${WORK}/c.vkv" "${WORK}/flipped.vkv" 300)
expect(1 "checksum mismatch in section LAYR" "${TOOL}" inspect "${WORK}/flipped.vkv")
expect(0 "" "${DATA}" cut "${WORK}/c.vkv" "${WORK}/cut.vkv" 1000)
expect(1 "truncated" "${TOOL}" inspect "${WORK}/cut.vkv")
expect(1 "wrong magic" "${TOOL}" inspect "${WORK}/dump/k_0.npy")
expect(1 "cannot open" "${TOOL}" inspect "${WORK}/absent.vkv")
file(REMOVE_RECURSE "${WORK}")
