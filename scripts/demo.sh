#!/bin/sh
# The README's first command: install what the demo needs and is missing
# (a compiler, meson, ninja, pkg-config: nothing of the test suite's),
# build in build-demo/, run the demo. Says what it does as it goes.
set -eu
cd "$(dirname "$0")/.."

echo "demo.sh: checking for a compiler, meson, ninja and pkg-config (apt-get installs what is missing)"
./scripts/install-deps.sh --demo
if [ ! -f build-demo/build.ninja ]; then
        echo "demo.sh: configuring the build in build-demo/ (meson)"
        meson setup build-demo -Dtests=disabled >/dev/null
fi
echo "demo.sh: building libashm, ashmd, the ashm tool and the demo (ninja; a minute on a small machine)"
ninja -C build-demo >/dev/null
echo "demo.sh: running build-demo/examples/ashm-demo"
echo
exec ./build-demo/examples/ashm-demo
