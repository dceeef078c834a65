# SPDX-License-Identifier: MIT
"""Print where this interpreter finds pure-Python packages installed
under the prefix given as the argument (used by python/meson.build)."""
import sys
import sysconfig

prefix = sys.argv[1].rstrip("/") or "/"
schemes = sysconfig.get_scheme_names()
if prefix == "/usr" and "deb_system" in schemes:
    print(sysconfig.get_paths("deb_system")["purelib"])
elif prefix == "/usr/local" and "posix_local" in schemes:
    print(sysconfig.get_paths("posix_local")["purelib"])
else:
    print(sysconfig.get_paths("posix_prefix", vars={"base": prefix, "platbase": prefix})["purelib"])
