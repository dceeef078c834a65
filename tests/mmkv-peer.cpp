// SPDX-License-Identifier: MIT
/*
 * mmkv-peer: real Tencent MMKV (core v1.3.3, scripts/fetch-mmkv.sh) on
 * the other side of `ashm kv import-mmkv` / `export-mmkv`. tests/
 * test-mmkv.sh runs it; tests/meson.build builds it when -Dmmkv_dir names
 * a directory where fetch-mmkv.sh built MMKV.
 *
 *   write DIR ID              write the fixed set of keys below in
 *                             <DIR>/<ID> (+ .crc), every type, with
 *                             overwrites, a deletion and enough churn to
 *                             make MMKV grow and rewrite the file; print
 *                             the live keys as `read` prints them
 *   write-crypt DIR ID KEY    a few keys in a store encrypted with KEY
 *   write-expire DIR ID       a store with key expiration on: keys that
 *                             never expire and one that has expired
 *                             (sleeps 2 s); prints the live keys
 *   read DIR ID KEY=TYPE...   print "KEY<TAB>TYPE<TAB>VALUE" per key, or
 *                             VALUE "(missing)" and exit 1 at the end
 *   keys DIR ID               print the number of keys, then each key
 *   set DIR ID KEY TYPE VALUE set one key (MMKV appending to a file)
 *
 * TYPE: bool int32 int64 uint64 float double string bytes. VALUE as
 * `ashm kv STORE get` prints it: bool true/false, integers in decimal,
 * floats and doubles in the fewest digits that read back the same,
 * strings as they are, bytes in lower-case hex.
 */
#include <MMKV.h>

#include <cinttypes>
#include <cstdarg>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

using mmkv::MMBuffer;

namespace {

struct Entry {
        std::string key, type, value;
};

std::vector<Entry> g_written;

void usage() {
        fprintf(stderr, "usage: mmkv-peer write|write-crypt|write-expire|read|keys|set DIR ID [...]\n");
        exit(2);
}

std::string hex(const void *p, size_t n) {
        static const char digits[] = "0123456789abcdef";
        std::string s;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = static_cast<const unsigned char *>(p)[i];
                s += digits[c >> 4];
                s += digits[c & 15];
        }
        return s;
}

std::vector<unsigned char> unhex(const std::string &s) {
        std::vector<unsigned char> v;
        for (size_t i = 0; i + 1 < s.size(); i += 2)
                v.push_back(static_cast<unsigned char>(std::stoi(s.substr(i, 2), nullptr, 16)));
        return v;
}

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...) {
        char buf[64];
        va_list ap;
        va_start(ap, f);
        vsnprintf(buf, sizeof(buf), f, ap);
        va_end(ap);
        return buf;
}

// The fewest significant digits that read back as the same value.
std::string real(double v, bool single) {
        char buf[64];
        for (int prec = 1; prec <= (single ? 9 : 17); prec++) {
                snprintf(buf, sizeof(buf), "%.*g", prec, v);
                if (single ? strtof(buf, nullptr) == (float) v : strtod(buf, nullptr) == v)
                        break;
        }
        return buf;
}

MMKV *open_store(const char *dir, const char *id, std::string *crypt_key = nullptr) {
        std::string root = dir;
        MMKV::initializeMMKV(root, MMKVLogNone);
        MMKV *kv = MMKV::mmkvWithID(id, MMKV_SINGLE_PROCESS, crypt_key, &root);
        if (!kv) {
                fprintf(stderr, "mmkv-peer: cannot open %s/%s\n", dir, id);
                exit(1);
        }
        return kv;
}

// Set key from its printed form; remembers what it set for `write`.
bool set_typed(MMKV *kv, const std::string &key, const std::string &type, const std::string &value) {
        bool ok;
        if (type == "bool")
                ok = kv->set(value == "true", key);
        else if (type == "int32")
                ok = kv->set(static_cast<int32_t>(strtol(value.c_str(), nullptr, 10)), key);
        else if (type == "int64")
                ok = kv->set(static_cast<int64_t>(strtoll(value.c_str(), nullptr, 10)), key);
        else if (type == "uint64")
                ok = kv->set(static_cast<uint64_t>(strtoull(value.c_str(), nullptr, 10)), key);
        else if (type == "float")
                ok = kv->set(strtof(value.c_str(), nullptr), key);
        else if (type == "double")
                ok = kv->set(strtod(value.c_str(), nullptr), key);
        else if (type == "string")
                ok = kv->set(value, key);
        else if (type == "bytes") {
                auto v = unhex(value);
                ok = kv->set(MMBuffer(v.data(), v.size(), mmkv::MMBufferNoCopy), key);
        } else {
                fprintf(stderr, "mmkv-peer: unknown type %s\n", type.c_str());
                exit(2);
        }
        if (!ok) {
                fprintf(stderr, "mmkv-peer: set %s failed\n", key.c_str());
                exit(1);
        }
        for (auto &e : g_written)
                if (e.key == key) {
                        e = { key, type, value };
                        return ok;
                }
        g_written.push_back({ key, type, value });
        return ok;
}

void forget(MMKV *kv, const std::string &key) {
        kv->removeValueForKey(key);
        for (auto it = g_written.begin(); it != g_written.end(); ++it)
                if (it->key == key) {
                        g_written.erase(it);
                        return;
                }
}

void print_written() {
        for (auto &e : g_written)
                printf("%s\t%s\t%s\n", e.key.c_str(), e.type.c_str(), e.value.c_str());
}

// The printed form of the value of key as type, or "" when missing.
bool get_typed(MMKV *kv, const std::string &key, const std::string &type, std::string &out) {
        bool has = false;
        if (type == "bool")
                out = kv->getBool(key, false, &has) ? "true" : "false";
        else if (type == "int32")
                out = fmt("%" PRId32, kv->getInt32(key, 0, &has));
        else if (type == "int64")
                out = fmt("%" PRId64, kv->getInt64(key, 0, &has));
        else if (type == "uint64")
                out = fmt("%" PRIu64, kv->getUInt64(key, 0, &has));
        else if (type == "float")
                out = real(kv->getFloat(key, 0, &has), true);
        else if (type == "double")
                out = real(kv->getDouble(key, 0, &has), false);
        else if (type == "string")
                has = kv->getString(key, out);
        else if (type == "bytes") {
                MMBuffer b;
                has = kv->getBytes(key, b);
                out = has ? hex(b.getPtr(), b.length()) : "";
        } else {
                fprintf(stderr, "mmkv-peer: unknown type %s\n", type.c_str());
                exit(2);
        }
        return has;
}

void write_fixed(MMKV *kv) {
        set_typed(kv, "bool_true", "bool", "true");
        set_typed(kv, "bool_false", "bool", "false");
        set_typed(kv, "i32_zero", "int32", "0");
        set_typed(kv, "i32_small", "int32", "7");
        set_typed(kv, "i32_pos", "int32", "300");
        set_typed(kv, "i32_max", "int32", fmt("%d", INT32_MAX));
        set_typed(kv, "i32_neg", "int32", "-42");
        set_typed(kv, "i32_min", "int32", fmt("%d", INT32_MIN));
        set_typed(kv, "i64_big", "int64", "1700000000123");
        set_typed(kv, "i64_neg", "int64", "-9000000000");
        set_typed(kv, "u64_max", "uint64", fmt("%" PRIu64, UINT64_MAX));
        set_typed(kv, "f_pi", "float", "3.14159");
        set_typed(kv, "f_tenth", "float", "0.1");
        set_typed(kv, "f_neg", "float", "-2.5");
        set_typed(kv, "d_e", "double", "2.718281828459045");
        set_typed(kv, "d_big", "double", "1e+300");
        set_typed(kv, "d_neg", "double", "-0.125");
        set_typed(kv, "s_hello", "string", "hello");
        set_typed(kv, "s_empty", "string", "");
        set_typed(kv, "s_utf8", "string", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
        set_typed(kv, "s_long", "string", std::string(300, 'x'));
        set_typed(kv, "b_bin", "bytes", "00ff108001");
        set_typed(kv, "b_empty", "bytes", "");
        // Overwritten with another type, and deleted: the last record wins.
        set_typed(kv, "ow", "int32", "1");
        set_typed(kv, "gone", "int32", "5");
        // Churn: 400 keys written twice make MMKV grow the 4 KiB file
        // several times and rewrite it (full write-back) on the way.
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 400; i++)
                        set_typed(kv, fmt("fill_%03d", i), "string",
                                  fmt("round %d value %03d ", round, i) + std::string(40, 'a' + i % 26));
        set_typed(kv, "ow", "string", "final");
        forget(kv, "gone");
}

int cmd_read(MMKV *kv, int argc, char **argv) {
        int missing = 0;
        for (int i = 0; i < argc; i++) {
                std::string arg = argv[i];
                auto eq = arg.rfind('=');
                if (eq == std::string::npos)
                        usage();
                std::string key = arg.substr(0, eq), type = arg.substr(eq + 1), value;
                if (get_typed(kv, key, type, value))
                        printf("%s\t%s\t%s\n", key.c_str(), type.c_str(), value.c_str());
                else {
                        printf("%s\t%s\t(missing)\n", key.c_str(), type.c_str());
                        missing++;
                }
        }
        return missing ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) {
        if (argc < 4)
                usage();
        std::string cmd = argv[1];
        const char *dir = argv[2], *id = argv[3];
        int ret = 0;

        if (cmd == "write") {
                MMKV *kv = open_store(dir, id);
                write_fixed(kv);
                kv->sync(MMKV_SYNC);
                fprintf(stderr, "mmkv-peer: %zu keys, %zu of %zu bytes used\n", kv->count(), kv->actualSize(),
                        kv->totalSize());
                print_written();
        } else if (cmd == "write-crypt" && argc == 5) {
                std::string key = argv[4];
                MMKV *kv = open_store(dir, id, &key);
                set_typed(kv, "secret_string", "string", "attack at dawn");
                set_typed(kv, "secret_int", "int32", "1234");
                kv->sync(MMKV_SYNC);
                print_written();
        } else if (cmd == "write-expire") {
                MMKV *kv = open_store(dir, id);
                kv->enableAutoKeyExpire(MMKV::ExpireNever);
                set_typed(kv, "keep_string", "string", "stays");
                set_typed(kv, "keep_int", "int32", "-7");
                if (!kv->set(std::string("soon gone"), "expiring", 1))
                        return 1;
                sleep(2);
                kv->sync(MMKV_SYNC);
                print_written();
        } else if (cmd == "read") {
                ret = cmd_read(open_store(dir, id), argc - 4, argv + 4);
        } else if (cmd == "keys") {
                MMKV *kv = open_store(dir, id);
                auto keys = kv->allKeys();
                printf("%zu\n", kv->count());
                for (auto &k : keys)
                        printf("%s\n", k.c_str());
        } else if (cmd == "set" && argc == 7) {
                MMKV *kv = open_store(dir, id);
                set_typed(kv, argv[4], argv[5], argv[6]);
                kv->sync(MMKV_SYNC);
        } else
                usage();
        MMKV::onExit();
        return ret;
}
