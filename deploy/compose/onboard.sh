#!/usr/bin/env bash
# The operator's step after `docker compose up`: register the three merchant nodes at the
# exchange, each signed with the operator key, then list the registry. Safe to run again: a
# merchant already registered is left alone.
#
#   deploy/compose/onboard.sh
#
# Here the operator key sits in the exchange's volume, where `coalition exchange init` wrote it;
# in production it is kept offline and this runs on the operator's own machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
compose=(docker compose -f compose.yaml)

echo "waiting for the exchange to serve…"
for attempt in $(seq 60); do
  if "${compose[@]}" exec -T exchange grpc-health-check 127.0.0.1:50050; then
    break
  fi
  [ "$attempt" -lt 60 ] || { echo "the exchange is not serving: docker compose logs exchange" >&2; exit 1; }
  sleep 2
done

# The operator service's own command is `coalition operator list` (compose.yaml).
registered=$("${compose[@]}" run --rm -T operator)

onboard() {  # merchant-id "display name": the node's endpoint is its service name in compose
  if grep -q "^$1 " <<<"$registered"; then
    echo "$1 is already onboarded"
    return
  fi
  # The exchange and the operator key: the operator service's COALITION_OPERATOR__* variables.
  "${compose[@]}" run --rm -T operator coalition operator onboard \
    --node-config "/data/$1/node.toml" --endpoint "$1:50051" --name "$2" \
    --fen-per-point 1 --fee-bps 150
}

onboard tea-house "Tea House"
onboard noodle-bar "Noodle Bar"
onboard hair-salon "Hair Salon"

"${compose[@]}" run --rm -T operator
