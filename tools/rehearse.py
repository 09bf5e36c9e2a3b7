"""Rehearse deploy/k8s on one machine: replicas, a Service, and the Operator's Prometheus.

No cluster runs here, so this plays one, from the manifests themselves
(``tools.cluster``: each pod a process on 127.0.0.1, a round-robin Service, a real
Prometheus scraping every replica as the ServiceMonitor makes the Operator do, with the
rendered PrometheusRule's rules)::

    python -m tools.rehearse --replicas 3

The tool then sends traffic, stops one replica and starts it again, and restarts every
replica in turn (SIGTERM, wait for ready), printing what Prometheus and the dashboard see.
``tests/deploy/test_rehearsal.py`` runs the same steps and checks them.

With ``--drill`` it plays the model-monitoring drill instead (``tools.drill``): normal
traffic with its true labels, drifted traffic, then wrong labels, printing what the drift
and quality alerts' expressions select after each (docs/model_monitoring.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from tools import drill
from tools.cluster import Cluster, Replica, Sent, get_status, scraped, wait_for
from tools.servers import PROMETHEUS

__all__ = ["Cluster", "Replica", "Sent", "get_status", "main", "scraped", "wait_for"]


def spread(cluster: Cluster, requests: int) -> Sent:
    """Traffic through the Service; what each replica got, and what Prometheus counted."""
    sent = cluster.drive(requests, seed=1)
    total = cluster.wait_scraped()
    print(f"sent {sum(sent.statuses.values())} requests, per replica {dict(sent.by_replica)}")
    print(f"passengers: {sent.passengers} sent, {total:.0f} in Prometheus")
    return sent


def outage(cluster: Cluster, requests: int, sent: Sent) -> None:
    """Stop the last replica, see Prometheus notice, start it again and send more traffic."""
    victim = cluster.replicas[-1]
    cluster.stop_replica(victim)
    down = 'up{job="fastapi_app"} == 0'
    found = wait_for(down, lambda: cluster.query(down))
    print(f"stopped {victim.pod}: {down} selects {[s['metric']['instance'] for s in found]}")
    cluster.start_replica(victim)
    cluster.drive(requests, seed=2, sent=sent)
    cluster.wait_scraped()


def rolling_restart(cluster: Cluster, sent: Sent) -> None:
    """Restart every replica in turn while a client keeps sending; count what was lost."""
    print("rolling restart ...")
    stop = threading.Event()
    client = threading.Thread(target=cluster.drive, args=(10_000, 3, sent, stop))
    client.start()
    try:
        cluster.rolling_restart()
    finally:
        stop.set()
        client.join()
    print(f"{len(sent.failed)} requests lost, {sent.refused_then_retried} refused and retried")


def story(cluster: Cluster, requests: int) -> None:
    """Traffic, one replica out and back, a rolling restart."""
    sent = spread(cluster, requests)
    outage(cluster, requests, sent)
    rolling_restart(cluster, sent)


def parser() -> argparse.ArgumentParser:
    """The command line: ``python -m tools.rehearse --help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, choices=range(2, 6))
    parser.add_argument("--requests", type=int, default=300, help="per traffic phase")
    parser.add_argument("--app", help="module:app to run (default: the Deployment's)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument(
        "--drill", action="store_true", help="play the model-monitoring drill instead"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if shutil.which(PROMETHEUS) is None:
        print(f"{PROMETHEUS} not found: apt-get install prometheus", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="titanic-rehearsal-"))
    try:
        with drill.store(args.drill, workdir) as env:
            cluster = Cluster(workdir, args.replicas, args.app, env=env)
            with cluster.running():
                assert cluster.prometheus is not None
                served = cluster.app or " ".join(cluster.spec["command"])
                print(f"{args.replicas} replicas of {served} and Prometheus at")
                print(f"    {cluster.prometheus.url} (job fastapi_app, one target per replica)")
                if args.drill:
                    drill.play(cluster, print)
                else:
                    story(cluster, args.requests)
                if args.keep:
                    print(f"Prometheus' data, its configuration and the replicas' logs: {workdir}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
