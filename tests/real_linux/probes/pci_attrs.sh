#!/bin/sh
# The generic sysfs attributes of the guest's vfio-pci device behind a root port (QEMU's
# edu at 0000:01:00.0, as tests/pci/pci_testing.py's GUEST topology models it), by path,
# one "name=value" line each (a multi-line value joined with "|"); then the errors of a
# few writes (bash's "write error: <strerror>").
d=/sys/bus/pci/devices/0000:01:00.0
for f in irq enable numa_node local_cpus local_cpulist msi_bus dma_mask_bits \
         consistent_dma_mask_bits d3cold_allowed power_state broken_parity_status \
         ari_enabled uevent; do
	printf '%s=' "$f"
	tr '\n' '|' < "$d/$f"
	echo
done
echo "subsystem=$(readlink $d/subsystem)"
bash -c "echo 1 > $d/enable" 2>&1 | sed 's/^.*echo: //'
bash -c "echo junk > $d/numa_node" 2>&1 | sed 's/^.*echo: //'
bash -c "echo 7 > $d/numa_node" 2>&1 | sed 's/^.*echo: //'
bash -c "echo junk > $d/uevent" 2>&1 | sed 's/^.*echo: //'
bash -c "echo change > $d/uevent" 2>&1 | sed 's/^.*echo: //'
bash -c "echo x > $d/msi_bus" 2>&1 | sed 's/^.*echo: //'
echo done
