# A shell session an outsider would type against a VFIO machine (QEMU's edu at
# 0000:01:00.0): coreutils' ls/stat/test/find/du/wc over the mock's /dev and /sys, a
# mock fd held by the shell.  (The guest has no iommufd: /dev/vfio/devices is left out.)
ls /dev/vfio | grep -v '^devices$'
stat -c '%F %a %U' /dev/vfio/vfio
stat -L -c '%F' /sys/bus/pci/devices/0000:01:00.0
stat -c '%F %s %b' /sys/bus/pci/devices/0000:01:00.0
stat -c '%s %b %B %o' /sys/bus/pci/devices/0000:01:00.0/config /sys/bus/pci/devices/0000:01:00.0/vendor /dev/vfio/vfio
cat /sys/bus/pci/devices/0000:01:00.0/vendor /sys/bus/pci/devices/0000:01:00.0/device
basename "$(readlink /sys/bus/pci/devices/0000:01:00.0/driver)"
basename "$(readlink /sys/bus/pci/devices/0000:01:00.0/iommu_group)"
ls /sys/bus/pci/devices/0000:01:00.0/ | grep -c resource
test -r /dev/vfio/vfio && echo readable
test -x /dev/vfio/vfio || echo not-executable
find /dev/vfio -maxdepth 1 -type c | sort
exec 5<>/dev/vfio/vfio
ls -l /proc/$$/fd/5 | sed 's/.*-> //'
stat -c '%s' /proc/$$/fd/5
exec 5>&-
wc -c < /sys/bus/pci/devices/0000:01:00.0/config
du -s /sys/bus/pci/devices/0000:01:00.0/config | cut -f1
