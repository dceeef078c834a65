// SPDX-License-Identifier: MIT
// bench-kv-mmkv: the MMKV v1.3.3 side of bench-kv. One workload per
// invocation, in the process that bench-kv forks for it, so that MMKV
// (C++, fetched and built by scripts/fetch-mmkv.sh, not a dependency of
// the project) runs interleaved with the C peers in the same run.
//
// Not built by meson: scripts/bench.sh compiles it with
//   g++ -O2 -std=c++17 -Ibuild-mmkv/src/MMKV/Core bench/bench-kv-mmkv.cpp
//       build-mmkv/build/libcore.a -lz -lpthread
// and gives bench-kv its path (--mmkv PATH or $BENCH_KV_MMKV).
//
// Usage: bench-kv-mmkv single|multi DIR WORKLOAD ARGS...
//   create                   open (creating) the store and close it
//   set-int32 N              k0..k(N-1) = i
//   set-string N             k0..k(N-1) = the 100-byte string of i
//   get-string N ORDER       N getString() in the order of the file ORDER
//                            (N native uint32 indexes), each value checked
//   open KEY                 mmkvWithID() + one getString(KEY)
//   mp-write FIRST COUNT FD  open, print "ready", read one byte from FD,
//                            set k(FIRST).. to int32 i, print "done"
//   verify N                 check that k0..k(N-1) hold int32 i
// Each prints one line of key=value words on stdout ("ns=" the timed
// part, in ns); "error=..." and exit status 1 on failure. The store is
// the MMKV id "kv" in DIR (files DIR/kv and DIR/kv.crc); the
// initializeMMKV() call is not timed (an app makes it once per process).
// With $BENCH_KV_MMKV_LOG set, MMKV logs to stderr (e.g. CRC failures).
#include <MMKV.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

constexpr size_t VALUE_LEN = 100;

uint64_t now_ns() {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

[[noreturn]] void fail(const char *what) {
        std::printf("error=%s\n", what);
        std::fflush(stdout);
        std::exit(1);
}

unsigned parse(const char *s) {
        char *end;
        unsigned long v;

        errno = 0;
        v = std::strtoul(s, &end, 10);
        if (errno || end == s || *end || v > 100000000)
                fail("bad-number");
        return unsigned(v);
}

std::vector<std::string> make_keys(unsigned first, unsigned n) {
        std::vector<std::string> keys;

        keys.reserve(n);
        for (unsigned i = 0; i < n; i++)
                keys.push_back("k" + std::to_string(first + i));
        return keys;
}

// The 100-byte value of key i: 8 decimal digits of i, then 'v's; the
// same bytes as bench-kv.c's fill_value().
void fill_value(char *v, unsigned i) {
        for (int d = 7; d >= 0; d--, i /= 10)
                v[d] = char('0' + i % 10);
}

MMKV *open_store(const std::string &dir, MMKVMode mode) {
        std::string root = dir;
        MMKV *kv = MMKV::mmkvWithID("kv", mode, nullptr, &root);

        if (!kv)
                fail("mmkvWithID");
        return kv;
}

void set_int32(MMKV *kv, unsigned n) {
        std::vector<std::string> keys = make_keys(0, n);
        uint64_t t0 = now_ns();

        for (unsigned i = 0; i < n; i++)
                if (!kv->set(int32_t(i), keys[i]))
                        fail("set");
        std::printf("ns=%llu\n", (unsigned long long) (now_ns() - t0));
}

void set_string(MMKV *kv, unsigned n) {
        std::vector<std::string> keys = make_keys(0, n);
        std::string value(VALUE_LEN, 'v');
        uint64_t t0 = now_ns();

        for (unsigned i = 0; i < n; i++) {
                fill_value(&value[0], i);
                if (!kv->set(value, keys[i]))
                        fail("set");
        }
        std::printf("ns=%llu\n", (unsigned long long) (now_ns() - t0));
}

std::vector<uint32_t> read_order(const char *path, unsigned n) {
        std::vector<uint32_t> order(n);
        FILE *f = std::fopen(path, "rb");

        if (!f || std::fread(order.data(), sizeof(uint32_t), n, f) != n)
                fail("order-file");
        std::fclose(f);
        for (uint32_t i : order)
                if (i >= n)
                        fail("order-file");
        return order;
}

void get_string(MMKV *kv, unsigned n, const char *order_path) {
        std::vector<std::string> keys = make_keys(0, n);
        std::vector<uint32_t> order = read_order(order_path, n);
        std::string value;
        char want[8];
        unsigned bad = 0;
        uint64_t t0 = now_ns();

        for (unsigned i = 0; i < n; i++) {
                uint32_t k = order[i];

                fill_value(want, k);
                if (!kv->getString(keys[k], value) || value.size() != VALUE_LEN ||
                    std::memcmp(value.data(), want, sizeof(want)) != 0)
                        bad++;
        }
        std::printf("ns=%llu bad=%u\n", (unsigned long long) (now_ns() - t0), bad);
}

void open_get(const std::string &dir, MMKVMode mode, const char *key) {
        std::string value;
        uint64_t t0 = now_ns();
        MMKV *kv = open_store(dir, mode);
        bool found = kv->getString(key, value);
        uint64_t t1 = now_ns();

        std::printf("ns=%llu bad=%u keys=%zu\n", (unsigned long long) (t1 - t0),
                    !found || value.size() != VALUE_LEN, kv->count());
        kv->close();
}

void mp_write(MMKV *kv, unsigned first, unsigned count, int go_fd) {
        std::vector<std::string> keys = make_keys(first, count);
        char c;

        std::printf("ready\n");
        std::fflush(stdout);
        if (read(go_fd, &c, 1) != 1)
                fail("go-pipe");
        for (unsigned i = 0; i < count; i++)
                if (!kv->set(int32_t(first + i), keys[i]))
                        fail("set");
        std::printf("done\n");
        std::fflush(stdout);
}

void verify(MMKV *kv, unsigned n) {
        std::vector<std::string> keys = make_keys(0, n);
        unsigned missing = 0, wrong = 0;

        for (unsigned i = 0; i < n; i++) {
                bool has = false;
                int32_t v = kv->getInt32(keys[i], 0, &has);

                if (!has)
                        missing++;
                else if (v != int32_t(i))
                        wrong++;
        }
        std::printf("missing=%u wrong=%u keys=%zu\n", missing, wrong, kv->count());
}

// stdout is for results: bench-kv reads it.
void log_to_stderr(MMKVLogLevel level, const char *file, int line, const char *function, MMKVLog_t message) {
        std::fprintf(stderr, "mmkv[%d] %d %s:%d %s: %s\n", int(getpid()), int(level), file, line, function,
                     message.c_str());
}

} // namespace

int main(int argc, char **argv) {
        if (argc < 4) {
                std::fprintf(stderr, "usage: %s single|multi DIR WORKLOAD ARGS... (see the source)\n", argv[0]);
                return 2;
        }
        std::string mode_name = argv[1], dir = argv[2], w = argv[3];
        MMKVMode mode = mode_name == "multi" ? MMKV_MULTI_PROCESS : MMKV_SINGLE_PROCESS;

        if (mode_name != "single" && mode_name != "multi")
                fail("bad-mode");
        if (std::getenv("BENCH_KV_MMKV_LOG"))
                MMKV::initializeMMKV(dir, MMKVLogInfo, log_to_stderr);
        else
                MMKV::initializeMMKV(dir, MMKVLogNone);
        if (w == "open" && argc == 5) {
                open_get(dir, mode, argv[4]);
                return 0;
        }

        MMKV *kv = open_store(dir, mode);

        if (w == "create" && argc == 4)
                std::printf("ok\n");
        else if (w == "set-int32" && argc == 5)
                set_int32(kv, parse(argv[4]));
        else if (w == "set-string" && argc == 5)
                set_string(kv, parse(argv[4]));
        else if (w == "get-string" && argc == 6)
                get_string(kv, parse(argv[4]), argv[5]);
        else if (w == "mp-write" && argc == 7)
                mp_write(kv, parse(argv[4]), parse(argv[5]), int(parse(argv[6])));
        else if (w == "verify" && argc == 5)
                verify(kv, parse(argv[4]));
        else
                fail("bad-workload");
        kv->close();
        return 0;
}
