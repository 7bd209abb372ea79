#!/usr/bin/env bash
# The speed tables of docs/speed.md: examples/benchmark.py, one process per id (single mode and the env's share
# of SB3 PPO CPU time; vector mode for the ids with a native vector env), all in parallel; each process
# interleaves CartPole-v1 and its env, so the ratios depend little on the other processes. Needs one free
# core per process (17) for steady wall times. Writes $SPEED_JSON (default /tmp/bench/speed.json) and prints
# the Markdown rows.
#   bash benchmarks/speed_table.sh
ids="FaaSTrainGym-v1 faas_gym/Autoscaling-v0 faas_gym/AutoscalingBursty-v0 faas_gym/AutoscalingDay-v0 lwmecps_gym/Placement-v0 lwmecps_gym/PlacementNormalized-v0 lwmecps_gym/Scaling-v0 lwmecps_gym/ScalingHard-v0 marllb_env/LoadBalance-v0 marllb_env/LoadBalanceHard-v0 marllb_env/LoadBalancePaper-v0 marllb_env/LoadBalanceTrace-v0"
mkdir -p /tmp/bench
# compile and cache the numba kernels once before the parallel runs
python -c "
import gymnasium as gym, lwmecps_gym, faas_gym
for i in ('lwmecps_gym/Scaling-v0', 'faas_gym/Autoscaling-v0'):
    e = gym.make(i); e.reset(seed=0); e.step(e.action_space.sample())
" || exit 1
i=0
for id in $ids; do python examples/benchmark.py $id --mode single ppo --out /tmp/bench/s$i.json > /tmp/bench/s$i.log 2>&1 & i=$((i+1)); done
python examples/benchmark.py marllb_env.parallel_env --mode single --out /tmp/bench/p.json > /tmp/bench/p.log 2>&1 &
for id in lwmecps_gym/Scaling-v0 faas_gym/Autoscaling-v0 faas_gym/AutoscalingDay-v0 FaaSTrainGym-v1; do python examples/benchmark.py $id --mode vector --num-envs 1 4 16 64 256 1024 --out /tmp/bench/v$i.json > /tmp/bench/v$i.log 2>&1 & i=$((i+1)); done
wait
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
