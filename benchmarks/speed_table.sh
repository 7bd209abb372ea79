#!/usr/bin/env bash
# The speed tables of docs/speed.md: examples/benchmark.py, one process per id (single mode and the env's share
# of SB3 PPO CPU time; vector mode for the ids with a native vector env), all in parallel; each process
# interleaves CartPole-v1 and its env, so the ratios depend little on the other processes. Needs one free
# core per process (17) for steady wall times. Writes $SPEED_JSON (default /tmp/bench/speed.json) and prints
# the Markdown rows.
#   bash benchmarks/speed_table.sh                 # 17 processes at once (a 16-core machine)
#   SPEED_JOBS=1 bash benchmarks/speed_table.sh    # one after another (a 2-core machine)
ids="FaaSTrainGym-v1 faas_gym/Autoscaling-v0 faas_gym/AutoscalingBursty-v0 faas_gym/AutoscalingDay-v0 lwmecps_gym/Placement-v0 lwmecps_gym/PlacementNormalized-v0 lwmecps_gym/Scaling-v0 lwmecps_gym/ScalingHard-v0 marllb_env/LoadBalance-v0 marllb_env/LoadBalanceHard-v0 marllb_env/LoadBalancePaper-v0 marllb_env/LoadBalanceTrace-v0"
mkdir -p /tmp/bench && rm -f /tmp/bench/*.json /tmp/bench/*.log
# compile and cache the numba kernels once before the parallel runs
python -c "
import gymnasium as gym, lwmecps_gym, faas_gym, marllb_env
for i in ('lwmecps_gym/Scaling-v0', 'faas_gym/Autoscaling-v0', 'marllb_env/LoadBalance-v0'):
    e = gym.make(i); e.reset(seed=0); e.step(e.action_space.sample())
" || exit 1
# one job per line: output name, then the benchmark's arguments; SPEED_JOBS processes at a time
# (default: all at once, for a machine with a free core per job; SPEED_JOBS=1 on a small machine)
jobs=$(
  i=0
  for id in $ids; do echo "s$i $id --mode single ppo"; i=$((i+1)); done
  echo "p marllb_env.parallel_env --mode single"
  for id in lwmecps_gym/Scaling-v0 faas_gym/Autoscaling-v0 faas_gym/AutoscalingDay-v0 FaaSTrainGym-v1; do
    echo "v$i $id --mode vector --num-envs 1 4 16 64 256 1024"; i=$((i+1))
  done
)
echo "$jobs" | xargs -P "${SPEED_JOBS:-17}" -L 1 sh -c \
  'name=$0; python examples/benchmark.py "$@" --out /tmp/bench/$name.json > /tmp/bench/$name.log 2>&1'
tail -n 3 /tmp/bench/*.log | grep -i "error\|Traceback" 
python - <<'EOF'
import glob, json, os
rows = []
for f in sorted(glob.glob("/tmp/bench/*.json")):
    rows += json.load(open(f))
json.dump(rows, open(os.environ.get("SPEED_JSON", "/tmp/bench/speed.json"), "w"), indent=1)
for r in rows:
    if r["mode"] == "ppo":
        print(f"| {r['id']} | ppo share | {100 * r['env_share']:.1f}% |")
    else:
        print(f"| {r['id']} | {r['mode']} | {r['num_envs']} | {r['steps_s']:,.0f} | {r['cartpole_steps_s']:,.0f} | {r['ratio_cpu']:.3f} | {r['ratio_wall']:.3f} |")
EOF
