#include "bench/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace vidkv::bench {
namespace {

constexpr double kWidth = 1000, kMinHeight = 470;
constexpr double kPanelWidth = 400, kPanelHeight = 300;
constexpr double kPanelTop = 60, kPanelLeft[2] = {80, 570};
// Colour-blind-friendly palette (Okabe-Ito), cycled.
constexpr const char* kColours[] = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7",
                                    "#F0E442"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-2)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points[2];  // (tokens, MB), (tokens, ms)
};

std::string panel(int index, const std::vector<Series>& series, double x_max, const std::string& y_title) {
  double y_max = 0;
  for (const auto& s : series)
    for (const auto& p : s.points[index]) y_max = std::max(y_max, p.second);
  const double x_step = nice_step(std::max(x_max, 1.0) / 5), y_step = nice_step(std::max(y_max, 1e-9) / 5);
  const double x_top = std::ceil(std::max(x_max, 1.0) / x_step) * x_step;
  const double y_top = std::ceil(std::max(y_max, 1e-9) / y_step) * y_step;
  const double left = kPanelLeft[index], top = kPanelTop, bottom = top + kPanelHeight;
  auto px = [&](double x) { return left + kPanelWidth * x / x_top; };
  auto py = [&](double y) { return bottom - kPanelHeight * y / y_top; };
  std::string s;
  s += "<g class=\"panel\">\n";
  s += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(kPanelWidth) + "\" height=\"" +
       num(kPanelHeight) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (double x = 0; x <= x_top + x_step / 2; x += x_step) {
    s += "<line x1=\"" + num(px(x)) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(px(x)) + "\" y2=\"" +
         num(bottom + 5) + "\" stroke=\"#000\"/>\n";
    s += "<text x=\"" + num(px(x)) + "\" y=\"" + num(bottom + 20) + "\" text-anchor=\"middle\">" + tick_label(x) +
         "</text>\n";
  }
  for (double y = 0; y <= y_top + y_step / 2; y += y_step) {
    s += "<line x1=\"" + num(left - 5) + "\" y1=\"" + num(py(y)) + "\" x2=\"" + num(left + kPanelWidth) +
         "\" y2=\"" + num(py(y)) + "\" stroke=\"#ddd\"/>\n";
    s += "<text x=\"" + num(left - 8) + "\" y=\"" + num(py(y) + 4) + "\" text-anchor=\"end\">" + tick_label(y) +
         "</text>\n";
  }
  s += "<text x=\"" + num(left + kPanelWidth / 2) + "\" y=\"" + num(bottom + 42) +
       "\" text-anchor=\"middle\">context length (tokens)</text>\n";
  s += "<text transform=\"translate(" + num(left - 55) + "," + num(top + kPanelHeight / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(y_title) + "</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& pts = series[i].points[index];
    if (pts.empty()) continue;
    const char* colour = kColours[i % (sizeof kColours / sizeof *kColours)];
    std::string line;
    for (const auto& p : pts) line += num(px(p.first)) + "," + num(py(p.second)) + " ";
    if (pts.size() > 1)
      s += "<polyline points=\"" + line + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    for (const auto& p : pts)
      s += "<circle cx=\"" + num(px(p.first)) + "\" cy=\"" + num(py(p.second)) + "\" r=\"3.5\" fill=\"" + colour +
           "\"><title>" + xml_escape(series[i].name) + ": " + tick_label(p.first) + " tokens, " +
           tick_label(p.second) + "</title></circle>\n";
  }
  s += "</g>\n";
  return s;
}

}  // namespace

double nice_step(double raw) {
  if (!(raw > 0) || !std::isfinite(raw)) return 1.0;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw * (1 - 1e-12)) return m * power;
  return 10 * power;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
        else out += c;
    }
  }
  return out;
}

std::string memory_decode_svg(const std::vector<SizeResults>& sizes, const std::string& title) {
  std::vector<Series> series;
  std::map<std::string, size_t> index;
  double x_max = 0;
  for (const auto& size : sizes)
    for (const auto& r : size.results) {
      if (!r.reached(Stage::stored)) continue;
      // One line per preset, and per sparsity with per-head policies.
      auto [it, added] = index.emplace(r.label(), series.size());
      if (added) series.push_back({r.label(), {}});
      Series& s = series[it->second];
      s.points[0].push_back({double(r.tokens), r.bytes / 1e6});
      if (r.reached(Stage::timed)) s.points[1].push_back({double(r.tokens), r.decode_ms});
      x_max = std::max(x_max, double(r.tokens));
    }
  for (auto& s : series)
    for (auto& pts : s.points) std::sort(pts.begin(), pts.end());

  // Room for the legend's rows of four under the panels.
  const double height = std::max(kMinHeight, kPanelTop + kPanelHeight + 75 + 20.0 * double((series.size() + 3) / 4) + 10);
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" + num(height) +
         "\" viewBox=\"0 0 " + num(kWidth) + " " + num(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  svg += "<text x=\"" + num(kWidth / 2) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">" + xml_escape(title) +
         "</text>\n";
  svg += panel(0, series, x_max, "memory, all layers (MB)");
  svg += panel(1, series, x_max, "decode attention, one layer (ms)");
  // Legend under the panels, in rows of four.
  for (size_t i = 0; i < series.size(); ++i) {
    const double x = kPanelLeft[0] + 230.0 * double(i % 4), y = kPanelTop + kPanelHeight + 75 + 20.0 * double(i / 4);
    const char* colour = kColours[i % (sizeof kColours / sizeof *kColours)];
    svg += "<line x1=\"" + num(x) + "\" y1=\"" + num(y - 4) + "\" x2=\"" + num(x + 24) + "\" y2=\"" + num(y - 4) +
           "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + num(x + 30) + "\" y=\"" + num(y) + "\">" + xml_escape(series[i].name) + "</text>\n";
  }
  if (series.empty())
    svg += "<text x=\"" + num(kWidth / 2) + "\" y=\"" + num(height / 2) +
           "\" text-anchor=\"middle\">no preset was measured</text>\n";
  svg += "</svg>\n";
  return svg;
}

}  // namespace vidkv::bench
