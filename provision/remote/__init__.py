"""What talks to nodes: host specs, the transports (ssh, docker, paramiko, local) and the round trip
that runs a node program (provision/node/) on one."""
