#!/bin/sh
# Sample nightly job on node-2; never executed by the agent.
echo "nightly"
