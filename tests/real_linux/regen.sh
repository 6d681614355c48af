#!/bin/sh
# Regenerate the golden files: run every probe on real Linux 7.2 (QEMU guest, as root).
# usage: tests/real_linux/regen.sh [PROBE...]     (default: all probes)
# The VFIO probes run on the guest's vfio-pci devices and are named explicitly:
#   tests/real_linux/regen.sh vfio_container vfio_device vfio_dmabuf pci_caps vfio_config \
#     vfio_irqs
# The RDMA probes run on the guest's rxe0:
#   tests/real_linux/regen.sh uverbs_ioctl uverbs_write uverbs_objects rdma_nldev
set -eu
here=$(cd "$(dirname "$0")" && pwd)
run=${REAL_LINUX_RUN:-/work/shared/tools/real-linux/run}
cd "$here"
if [ $# -eq 0 ]; then set -- fd_table udmabuf dma_buf_fops proc_debugfs lifetime poll sync_file netlink rtnetlink generic_file dev_ioctl; fi
for p in "$@"; do
  "$run" "probes/$p.py" > "golden/$p.jsonl"
  echo "golden/$p.jsonl: $(wc -l < "golden/$p.jsonl") steps"
done
