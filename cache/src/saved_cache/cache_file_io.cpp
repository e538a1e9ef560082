// Reading and writing saved-cache files as whole byte arrays (cache_file.hpp). Writes go to a
// temporary file beside the target and are renamed over it only when complete, so a failed or
// interrupted save never leaves a half-written file under the caller's name.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#ifdef _WIN32
#include <io.h>
#define fsync _commit
#define fileno _fileno
#else
#include <unistd.h>
#endif

#include "vidkv/cache_file.hpp"

namespace vidkv {
namespace {

Error io_error(const std::string& what, const std::string& path, int err) {
  return Error(ErrorCode::io_error, what + " '" + path + "': " + std::strerror(err));
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

CacheFileContents read_cache_file(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw io_error("cannot open cache file", path, errno);
  if (std::fseek(f.get(), 0, SEEK_END) != 0) throw io_error("cannot seek in cache file", path, errno);
  const long size = std::ftell(f.get());
  if (size < 0) throw io_error("cannot tell the size of cache file", path, errno);
  std::rewind(f.get());
  // The file's own size is the one allocation made before parsing; every length inside it is
  // then checked against this buffer.
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    throw io_error("cannot read cache file", path, std::ferror(f.get()) ? errno : EIO);
  }
  return parse_cache_file(bytes.data(), bytes.size(), "'" + path + "'");
}

void write_cache_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temporary = path + ".partial";
  {
    File f(std::fopen(temporary.c_str(), "wb"));
    if (!f) throw io_error("cannot create", temporary, errno);
    const bool written = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
    // fsync before the rename: after a crash the name then holds either the old or the whole new file.
    const bool flushed = written && std::fflush(f.get()) == 0 && fsync(fileno(f.get())) == 0;
    if (!flushed) {
      const int err = errno;
      f.reset();
      std::remove(temporary.c_str());
      throw io_error("cannot write", temporary, err);
    }
    if (std::fclose(f.release()) != 0) {
      const int err = errno;
      std::remove(temporary.c_str());
      throw io_error("cannot close", temporary, err);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    throw io_error("cannot rename " + temporary + " to", path, err);
  }
}

}  // namespace vidkv
