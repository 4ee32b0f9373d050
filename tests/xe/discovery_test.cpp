// Render-node discovery: what is looked at and what the "no Xe device"
// error says, on directories made for the test and on this machine.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "runtime/backends/xe/xe_backend.hpp"
#include "runtime/backends/xe/xe_discovery.hpp"

namespace {

using xesvm::Error;
namespace xe = xesvm::xe;

// A temporary directory, removed (with the entries the test made) at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/xesvm-xe-dri-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    for (const std::string& f : files_) ::unlink(f.c_str());
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string add_file(const std::string& name) {
    std::string f = path_ + "/" + name;
    int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
    files_.push_back(f);
    return f;
  }
  std::string add_symlink(const std::string& name, const std::string& target) {
    std::string f = path_ + "/" + name;
    if (::symlink(target.c_str(), f.c_str()) == 0) files_.push_back(f);
    return f;
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(XeDiscovery, MissingDirectoryIsReported) {
  xe::Discovery d = xe::discover_render_nodes("/nonexistent/xesvm/dri");
  EXPECT_FALSE(d.dir_exists);
  EXPECT_TRUE(d.nodes.empty());
  EXPECT_FALSE(d.first_xe().has_value());
  EXPECT_EQ(d.describe(),
            "looked for a render node with DRM driver \"xe\" in /nonexistent/xesvm/dri: /nonexistent/xesvm/dri "
            "does not exist");
}

TEST(XeDiscovery, DirectoryWithoutRenderNodes) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.add_file("card0");
  xe::Discovery d = xe::discover_render_nodes(dir.path());
  EXPECT_TRUE(d.dir_exists);
  EXPECT_TRUE(d.nodes.empty());
  EXPECT_NE(d.describe().find("no render node (renderD*) there"), std::string::npos) << d.describe();
}

TEST(XeDiscovery, NodesThatAreNotDrmDevicesAreListedWithTheReason) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string plain = dir.add_file("renderD128");
  const std::string null_dev = dir.add_symlink("renderD129", "/dev/null");
  xe::Discovery d = xe::discover_render_nodes(dir.path());
  ASSERT_EQ(d.nodes.size(), 2u);
  EXPECT_EQ(d.nodes[0].path, plain);
  EXPECT_TRUE(d.nodes[0].driver.empty());
  EXPECT_NE(d.nodes[0].problem.find("not a DRM device"), std::string::npos) << d.nodes[0].problem;
  EXPECT_EQ(d.nodes[1].path, null_dev);
  EXPECT_NE(d.nodes[1].problem.find("DRM_IOCTL_VERSION failed"), std::string::npos) << d.nodes[1].problem;
  EXPECT_FALSE(d.first_xe().has_value());
  const std::string text = d.describe();
  EXPECT_NE(text.find("found " + plain + " (not a DRM device"), std::string::npos) << text;
  EXPECT_NE(text.find(null_dev), std::string::npos) << text;
}

TEST(XeDiscovery, OpenWithoutXeNodeSaysWhatWasLookedForAndFound) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.add_file("renderD128");
  try {
    xe::open_xe_backend("", dir.path(), xe::XeOptions{});
    FAIL() << "opened an Xe backend without an Xe node";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("no Xe render node"), std::string::npos) << m;
    EXPECT_NE(m.find("DRM driver \"xe\""), std::string::npos) << m;
    EXPECT_NE(m.find(dir.path() + "/renderD128"), std::string::npos) << m;
  }
}

TEST(XeDiscovery, NamedNodeThatIsNotXeIsRefused) {
  try {
    xe::open_xe_backend("/dev/null");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("/dev/null is not an Xe render node"), std::string::npos) << e.what();
  }
  try {
    xe::open_xe_backend("/nonexistent/renderD128");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open: ENOENT"), std::string::npos) << e.what();
  }
}

TEST(XeDiscovery, ThisMachineWithoutDevDri) {
  struct stat st {};
  if (::stat("/dev/dri", &st) == 0)
    GTEST_SKIP() << "this machine has /dev/dri; the case without it cannot be shown here";
  xe::Discovery d = xe::discover_render_nodes();
  EXPECT_FALSE(d.dir_exists);
  try {
    xesvm::open_xe_backend("");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Error::Code::kUnsupported);
    EXPECT_EQ(std::string(e.what()),
              "xe: no Xe render node: looked for a render node with DRM driver \"xe\" in /dev/dri: /dev/dri does "
              "not exist");
  }
}

}  // namespace
