#include "bench/trace_writer.hpp"

#include "common/json.hpp"

namespace vidkv::bench {
namespace {

json::Value thread_name(int tid, const std::string& name) {
  json::Value m = json::Value::object();
  m.set("name", "thread_name");
  m.set("ph", "M");
  m.set("pid", 1);
  m.set("tid", tid);
  json::Value args = json::Value::object();
  args.set("name", name);
  m.set("args", args);
  return m;
}

}  // namespace

std::string trace_json(const std::vector<TraceEvent>& events, const std::string& device_name) {
  json::Value list = json::Value::array();
  list.push_back(thread_name(0, "host"));
  list.push_back(thread_name(1, "GPU: " + device_name));
  for (const TraceEvent& e : events) {
    json::Value o = json::Value::object();
    o.set("name", e.name);
    o.set("cat", e.category);
    o.set("ph", "X");
    o.set("pid", 1);
    o.set("tid", e.thread);
    o.set("ts", e.start_us);
    o.set("dur", e.duration_us);
    list.push_back(o);
  }
  json::Value root = json::Value::object();
  root.set("traceEvents", list);
  root.set("displayTimeUnit", "ms");
  json::Value other = json::Value::object();
  other.set("note", "GPU events are device timestamps placed on the host clock at the end of the host phase that "
                    "recorded them (each phase is a synchronous cache call)");
  root.set("otherData", other);
  return json::write(root, false);
}

}  // namespace vidkv::bench
