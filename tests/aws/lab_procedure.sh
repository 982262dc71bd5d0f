#!/usr/bin/env bash
# The lab's own shell procedure (the etcd bootstrapping lab, /work/shared/seeds: "Bootstrapping
# the etcd Cluster"), run against tests/aws/emulator.py with awscli. The lab's lines are kept as
# they are; only what must differ on a test host is changed, each change marked CHANGED:
#   - the metadata address 169.254.169.254 is $IMDS (the emulator's endpoint of this instance);
#   - `aws` goes to the emulator (--endpoint-url; Debian 12's awscli 2.9 predates
#     AWS_ENDPOINT_URL);
#   - $INSTANCES, which the lab uses but never sets, is the InService ids it found;
#   - the waits are shorter (LAB_SLEEP_UNIT seconds instead of 3).
# Prints ASG_NAME=..., then ETCD_INITIAL_CLUSTER=...; exits 1 if the group did not stabilize.
set -euo pipefail
: "${IMDS:?IMDS=http://127.0.0.x:port of the metadata service of this instance}"
: "${ENDPOINT:?ENDPOINT=the Query API URL of the emulator}"
LAB_SLEEP_UNIT=${LAB_SLEEP_UNIT:-0.2}

aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }  # CHANGED: the emulator

INTERNAL_IP=$(curl -sS --retry 3 "$IMDS"/latest/meta-data/local-ipv4)  # CHANGED: $IMDS
EC2_INSTANCE_ID=$(curl -sS --retry 3 "$IMDS"/latest/meta-data/instance-id)
HOSTNAME=$(curl -sS --retry 3 "$IMDS"/latest/meta-data/local-hostname)
echo "INTERNAL_IP=$INTERNAL_IP EC2_INSTANCE_ID=$EC2_INSTANCE_ID HOSTNAME=$HOSTNAME"

# Get ASG name the instance belong to
# shellcheck disable=SC2086  # the lab's line as the lab wrote it (unquoted words)
ASG_NAME=$(aws autoscaling describe-auto-scaling-instances --instance-ids $EC2_INSTANCE_ID --query AutoScalingInstances[0].AutoScalingGroupName --out text)
echo "ASG_NAME=$ASG_NAME"

# Create query string to get all inService instances and desired state
QUERY="AutoScalingGroups[?AutoScalingGroupName==\`$ASG_NAME\`].{size:DesiredCapacity,instances:Instances[?LifecycleState==\`InService\`].InstanceId}"
DESIRED_SIZE=0
ACTUAL_SIZE=0

# Wait until ASG launch all instances with retry and back-off strategy
# shellcheck disable=SC2006  # the lab's line as the lab wrote it (backticks)
for i in `seq 1 10`
do
  # Query all inService instances and desired state and get desired number of instances
  # shellcheck disable=SC2086  # the lab's line as the lab wrote it (unquoted words)
  ASG_DATA=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-name $ASG_NAME --query $QUERY  --output text)
  DESIRED_SIZE=$(echo "$ASG_DATA" | head -1)
  ACTUAL_SIZE=$(echo "$ASG_DATA" | grep -ci instance || true)  # CHANGED: grep -c exits 1 on 0
  # go out of cycle if the number of instances match the desired state
  # shellcheck disable=SC2086  # the lab's line as the lab wrote it (unquoted words)
  test  $ACTUAL_SIZE -eq $DESIRED_SIZE && break
  # otherwise wait and try again
  echo "wait till all instances are InService"
  sleep "$(awk -v i="$i" -v u="$LAB_SLEEP_UNIT" "BEGIN { print i * u }")"  # CHANGED: shorter
done

# Final test that ASG has been stabilized (because there are two exits from 'for' loop)
# shellcheck disable=SC2086  # the lab's line as the lab wrote it (unquoted words)
test  $ACTUAL_SIZE -eq $DESIRED_SIZE || (echo "ASG hasn't stabilized"; exit 1)

INSTANCES=$(echo "$ASG_DATA" | awk '/^INSTANCES/ { print $2 }')  # CHANGED: the lab never sets it

# shellcheck disable=SC2086  # the lab's line; $INSTANCES must split into one id a word
ETCD_INITIAL_CLUSTER=$(aws ec2 describe-instances --instance-ids $INSTANCES --query 'Reservations[].Instances[].[InstanceId,PrivateIpAddress]' --output text | sort | awk '{ printf("%s=https://%s:2380,", $1, $2) }' | sed 's/,$//g')
echo "ETCD_INITIAL_CLUSTER=$ETCD_INITIAL_CLUSTER"
