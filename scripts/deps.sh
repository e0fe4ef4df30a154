#!/usr/bin/env bash
# Installs the Debian packages caravan needs to build, test, demo and bench.
# As root: installs what is missing (apt-get update first). Otherwise: prints
# the exact command to run. Used by `make deps`, `make demo` and .ci/run.
set -euo pipefail

packages=(
  build-essential pkg-config          # cc, make, pkg-config for libcares/libcurl
  erlang-nox erlang-dev               # the VM, and ei (erl_interface) for the C side
  erlang-common-test erlang-eunit erlang-dialyzer erlang-ssl erlang-src
  erlang-edoc                         # docs chunks in the beams (IEx h, doctest)
  erlang-proper                       # stateful property tests of the cluster core
  rebar3
  libcmocka-dev                       # C unit tests
  libc-ares-dev libjsmn-dev libcurl4-openssl-dev   # discovery (DNS, JSON, HTTP)
  bind9 bind9-dnsutils                # a real DNS server and nsupdate/dig for tests
  elixir                              # the Mix release example and its test
  clang libclang-rt-14-dev valgrind   # fuzzing, sanitizers, leak checks
  openssl iproute2 procps             # test certificates, namespaces, pgrep
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
# Packages such as bind9 start their service on install. Tests start their
# own servers on high ports and must find none running, so forbid service
# starts for the duration of the install (policy-rc.d exit 101 = "not allowed").
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: done"
