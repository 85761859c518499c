#!/usr/bin/env bash
# r3wan: emulates a WAN link between two network namespaces on this machine.
#
#   r3wan.sh up NAME [--rtt MS] [--rate RATE] [--nfq PATH]
#   r3wan.sh down NAME
#   r3wan.sh exec NAME a|b COMMAND...
#
# "up" creates namespaces r3wan-NAME-a (10.231.0.1) and r3wan-NAME-b (10.231.0.2) joined
# by a veth pair. RATE (e.g. 100mbit; default unlimited) is a TBF qdisc on both ends. The
# round-trip time is added by r3-nfq-delay (tools/wan/nfq_delay.cpp) holding every packet
# for RTT/2 on the RECEIVING side of each end (raw PREROUTING -> NFQUEUE): this kernel has
# no netem, and delaying on the sender's OUTPUT would let TCP small queues throttle the
# flow. Nothing outside the two namespaces is touched. Needs root, ip, tc and iptables.
set -euo pipefail

state_root=/run/r3wan
addr_a=10.231.0.1
addr_b=10.231.0.2

die() {
	echo "r3wan: $*" >&2
	exit 1
}

check_name() {
	[[ $1 =~ ^[a-z0-9]{1,8}$ ]] || die "NAME must be 1-8 lowercase letters or digits (interface names are short)"
}

ns() { echo "r3wan-$1-$2"; }

down() {
	local name=$1 dir="$state_root/$1" pid
	for f in "$dir"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		# Only our own delay programs: check the command line before signalling.
		if grep -q "r3-nfq-delay" "/proc/$pid/cmdline" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$f"
	done
	# Deleting a namespace takes its veth end, qdiscs and iptables rules with it.
	for side in a b; do
		ip netns del "$(ns "$name" "$side")" 2>/dev/null || true
	done
	rm -rf "$dir"
}

up() {
	local name=$1
	shift
	local rtt=0 rate="" nfq=${R3_NFQ_DELAY:-}
	while [ $# -gt 0 ]; do
		case $1 in
		--rtt) rtt=$2; shift 2 ;;
		--rate) rate=$2; shift 2 ;;
		--nfq) nfq=$2; shift 2 ;;
		*) die "unknown option '$1'" ;;
		esac
	done
	[[ $rtt =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--rtt takes milliseconds, not '$rtt'"
	[ -z "$rate" ] || [[ $rate =~ ^[0-9]+(kbit|mbit|gbit)$ ]] || die "--rate takes e.g. 100mbit, not '$rate'"
	if [ "$rtt" != 0 ]; then
		[ -n "$nfq" ] && [ -x "$nfq" ] || die "--rtt needs the r3-nfq-delay program (--nfq PATH or R3_NFQ_DELAY)"
	fi
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"

	down "$name"
	mkdir -p "$state_root/$name"
	local a b
	a=$(ns "$name" a)
	b=$(ns "$name" b)
	ip netns add "$a"
	ip netns add "$b"
	ip link add "r3w${name}a" netns "$a" type veth peer name "r3w${name}b" netns "$b"
	ip -n "$a" addr add "$addr_a/24" dev "r3w${name}a"
	ip -n "$b" addr add "$addr_b/24" dev "r3w${name}b"
	for side in a b; do
		ip -n "$(ns "$name" $side)" link set lo up
		ip -n "$(ns "$name" $side)" link set "r3w${name}$side" up
		if [ -n "$rate" ]; then
			tc -n "$(ns "$name" $side)" qdisc add dev "r3w${name}$side" root tbf rate "$rate" burst 256kb latency 100ms
		fi
		if [ "$rtt" != 0 ]; then
			local half
			half=$(awk "BEGIN { print $rtt / 2 }")
			ip netns exec "$(ns "$name" $side)" iptables -t raw -A PREROUTING -i "r3w${name}$side" \
				-j NFQUEUE --queue-num 0 --queue-bypass
			ip netns exec "$(ns "$name" $side)" "$nfq" 0 "$half" 2>"$state_root/$name/$side.log" &
			echo $! >"$state_root/$name/$side.pid"
		fi
	done
	# The delay programs report once they own their queue; until then packets would pass
	# undelayed (--queue-bypass).
	if [ "$rtt" != 0 ]; then
		for side in a b; do
			for _ in $(seq 50); do
				grep -q "delay" "$state_root/$name/$side.log" 2>/dev/null && break
				sleep 0.1
			done
			grep -q "delay" "$state_root/$name/$side.log" || die "r3-nfq-delay did not start: $(cat "$state_root/$name/$side.log")"
		done
	fi
	echo "r3wan: $name up: $a ($addr_a) <-> $b ($addr_b), rtt ${rtt} ms, rate ${rate:-unlimited}"
}

[ $# -ge 2 ] || die "usage: r3wan.sh up NAME [--rtt MS] [--rate RATE] [--nfq PATH] | down NAME | exec NAME a|b CMD..."
cmd=$1
name=$2
check_name "$name"
shift 2
case $cmd in
up) up "$name" "$@" ;;
down) down "$name" ;;
exec)
	side=${1:-}
	[[ $side == a || $side == b ]] || die "exec NAME a|b COMMAND..."
	shift
	exec ip netns exec "$(ns "$name" "$side")" "$@"
	;;
*) die "unknown command '$cmd'" ;;
esac
