# Each scavenge of `mallet serve` at 16 and at 32 MiB semi-spaces: bytes survived (what it copies) and its pause, from --trace-gc-nvp.
# Private redis-server on port 64531 (killed by its PID at the end). README "Trigger latency".
set -e
cd /work/wt/latency
RP=64531
redis-server --port $RP --save '' --appendonly no --daemonize yes --pidfile /tmp/gcnvp-redis.pid >/dev/null
sleep 0.5
RULES=$(mktemp -d)/rules.yml
node --import tsx -e "import {benchRules} from './bench/support/serveProcess.ts'; console.log(benchRules('$(dirname $RULES)'))" >/dev/null
for variant in "--max-semi-space-size=16" "--max-semi-space-size=32 --min-semi-space-size=32"; do
  PORT=$((RP+1))
  env REDIS_URL=redis://127.0.0.1:$RP PORT=$PORT HOST=127.0.0.1 MALLET_DRAIN_PASSWORD=bench-drain-password MALLET_RULES=$(dirname $RULES)/rules.yml MALLET_KEY_PREFIX=gcnvp MALLET_QUEUE_PREFIX=gcnvp LOG_LEVEL=warn WEB_CONCURRENCY=1 \
    node $variant --trace-gc-nvp bin/mallet.js serve > /tmp/gcnvp-out.txt 2>&1 &
  SP=$!
  for i in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
  BENCH_DRAIN_PASSWORD=bench-drain-password BENCH_CONNECTIONS=32 node --import tsx bench/support/drainLoad.ts http://127.0.0.1:$PORT 3 >/dev/null
  : > /tmp/gcnvp-out.txt
  R=$(BENCH_DRAIN_PASSWORD=bench-drain-password BENCH_CONNECTIONS=32 node --import tsx bench/support/drainLoad.ts http://127.0.0.1:$PORT 8 200)
  cp /tmp/gcnvp-out.txt "/tmp/gcnvp-$(echo $variant | cut -c3-30).txt"
  kill $SP; wait $SP || true
  echo "$variant $R"
  grep -a "gc=s " /tmp/gcnvp-out.txt | tr -d "\\0" | python3 -c "
import sys
rows=[dict(kv.split('=',1) for kv in l.split() if '=' in kv) for l in sys.stdin]
n=len(rows); sv=sorted(int(r['new_space_survived']) for r in rows); pr=sorted(int(r['promoted']) for r in rows)
ps=sorted(round(float(r['pause'])) for r in rows)
print(f'  scavenges {n}; survived per scavenge median {sv[n//2]/1024:.0f} KiB, promoted median {pr[n//2]/1024:.0f} KiB; pauses (wall ms) {ps}')
"
done
kill $(cat /tmp/gcnvp-redis.pid)
