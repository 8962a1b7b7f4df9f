#!/bin/sh
# The `default` namespace the coalition worker and `coalition settle` use, once the frontend
# answers (temporal CLI from the official temporalio/admin-tools image).
set -eu
address=${TEMPORAL_ADDRESS:-temporal:7233}
namespace=${DEFAULT_NAMESPACE:-default}

tries=0
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "temporal at $address is not healthy" >&2; exit 1; }
  sleep 2
done
temporal operator namespace describe -n "$namespace" --address "$address" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$namespace" --retention 720h --address "$address"
echo "namespace $namespace ready"
