# shellcheck shell=bash
# Sourced by scripts/start.sh and tests/cluster/local_cluster.sh: is a TCP port on this machine
# taken, and by whom. Pure bash and /proc, so it works before any package is installed.

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_holder PORT: prints "NAME (pid PID)" of the process listening on PORT (any address, IPv4
# or IPv6), or "an unknown process" when /proc does not say (another user's or namespace's).
port_holder() {
  local hex inodes inode fd pid name
  hex=$(printf '%04X' "$1")
  # /proc/net/tcp{,6}: local_address is ADDR:PORT in hex, st 0A is LISTEN, field 10 the inode.
  inodes=$(awk -v port="$hex" '$4 == "0A" { split($2, a, ":"); if (a[2] == port) print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  for inode in $inodes; do
    fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" -print -quit 2>/dev/null)
    if [ -n "$fd" ]; then
      pid=${fd#/proc/}
      pid=${pid%%/*}
      name=$(cat "/proc/$pid/comm" 2>/dev/null || echo unknown)
      echo "$name (pid $pid)"
      return 0
    fi
  done
  echo "an unknown process"
}
