"""Network-emulated scenarios: robot and workers in Linux network namespaces joined by veth
pairs, each direction shaped with tc tbf, driven by bandwidth, load and fault schedules."""
