#pragma once
// --plot: a hand-written SVG with two panels against context length (tokens), one line per
// preset: memory of the whole cache (MB, all layers) and decode attention time of one layer (ms).
// Axes with ticks and labels, a legend, a title naming the device.
#include <string>
#include <vector>

#include "bench/results.hpp"

namespace vidkv::bench {

std::string memory_decode_svg(const std::vector<SizeResults>& sizes, const std::string& title);

// Text safe inside SVG/XML content and attribute values.
std::string xml_escape(const std::string& text);

// 1, 2 or 5 times a power of ten, at least `raw` (the tick step of an axis).
double nice_step(double raw);

}  // namespace vidkv::bench
