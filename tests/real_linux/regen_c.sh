#!/bin/sh
# Regenerate the goldens of the supervisor's C probes (tests/supervisor/c/*.c): build them
# with the guest's cc and run them on real Linux 7.2 (QEMU guest, as root).
# usage: tests/real_linux/regen_c.sh [PROBE...]     (default: fdops forkexec mmapfork pollprobe selectprobe udmabuf_selftest scmprobe cloneprobe epollprobe vfioshare vfiomsi verbsshare faults mapprot fdcalls pinprobe attrprobe inotifyprobe exitorder badptr spliceprobe newcalls outsider irqloop)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../supervisor/c" && pwd)
run=${REAL_LINUX_RUN:-/work/shared/tools/real-linux/run}
if [ $# -eq 0 ]; then set -- fdops forkexec mmapfork pollprobe selectprobe udmabuf_selftest scmprobe cloneprobe epollprobe vfioshare vfiomsi verbsshare faults mapprot fdcalls pinprobe attrprobe inotifyprobe exitorder badptr spliceprobe newcalls outsider irqloop; fi
for p in "$@"; do
  cmd="./$p"
  if [ "$p" = faults ]; then  # the modes real Linux can run (not those needing a mock driver)
    cmd='for m in closeall killparent iouring abi; do echo "== $m"; ( ./faults $m; true ) 2>/dev/null; sleep 1; done'
  fi
  if [ "$p" = sockblock ] || [ "$p" = sockthreads ] || [ "$p" = spliceprobe ]; then  # the mock NIC's address, on lo
    cmd="ip link set lo up && ip addr add 192.0.2.1/32 dev lo && $cmd"
  fi
  "$run" --sh "cd \$TMPDIR && cc -pthread -I $src -o $p $src/$p.c && $cmd" > "$here/golden/c_$p.txt"
  echo "golden/c_$p.txt: $(wc -l < "$here/golden/c_$p.txt") lines"
done
