#!/bin/sh
# Regenerate the goldens of the supervisor's C probes (tests/supervisor/c/*.c): build them
# with the guest's cc and run them on real Linux 7.2 (QEMU guest, as root).
# usage: tests/real_linux/regen_c.sh [PROBE...]     (default: fdops forkexec mmapfork pollprobe selectprobe udmabuf_selftest scmprobe cloneprobe epollprobe vfioshare verbsshare)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../supervisor/c" && pwd)
run=${REAL_LINUX_RUN:-/work/shared/tools/real-linux/run}
if [ $# -eq 0 ]; then set -- fdops forkexec mmapfork pollprobe selectprobe udmabuf_selftest scmprobe cloneprobe epollprobe vfioshare verbsshare; fi
for p in "$@"; do
  "$run" --sh "cd \$TMPDIR && cc -pthread -I $src -o $p $src/$p.c && ./$p" > "$here/golden/c_$p.txt"
  echo "golden/c_$p.txt: $(wc -l < "$here/golden/c_$p.txt") lines"
done
