#!/usr/bin/python3
"""Router benchmark: `mlops-worker route` in front of `mlops-worker serve`, against the backend
called directly and nginx as a reverse proxy in front of the same backend, all measured in the
same run, as ratios (machines are noisy, absolute numbers are not comparable between runs).

1. Overhead: wrk POSTing the same inference body to the backend directly, through the router and
   through nginx (proxy_pass to an upstream with keepalive), at 64 and 1 connections, for the
   fixture MLP and serve.py's wide MLP (256-2048-2048-16, whose compute dominates). nginx is a
   reference, not a target: it shows what any proxy costs when wrk, the proxy and the worker share
   the machine's cores. Targets: router throughput >= 0.8x direct at c=64 (both models); at c=1,
   the router's p50 minus the direct p50 under 100 us (the fixture MLP).
2. Weight changes: two backends serving the fixture MLP; PUT /admin/routes moving 100% of the
   traffic to the other one, then requests on a kept-alive connection until one is answered by it
   (X-Mlops-Backend), repeated; the time from starting the PUT to that answer, p50/p99/max.
   Target: p99 and max under 10 ms. Every request started after the PUT's answer must go to the
   new backend (else an error). Again, as many changes as fit, while wrk loads the router at c=16
   for up to 5 s (target on the p99 only).

    tests/bench/router.py [--smoke] [--check] [--json] [--duration S] [--changes N]
                          [--device cpu|cuda] [--worker build/mlops-worker]

--smoke: 1 s wrk runs, no warm-up, 20 weight changes; targets printed but never enforced.
--check: exit 1 when a target is missed (without it the table is only printed).
--json: one JSON document with every row on stdout; the table goes to stderr.
--device cuda: the backends on CUDA (the router and nginx only forward).
Errors (non-2xx answers, socket errors, a process that does not start, a request routed by a table
already replaced) always fail. Without wrk or nginx it is skipped with exit code 77 (ctest's
SKIP_RETURN_CODE). The helpers (processes, wrk, the table, the wide MLP) are serve.py's."""
import argparse
import concurrent.futures
import http.client
import json
import math
import os
import pathlib
import secrets
import select
import shlex
import statistics
import sys
import tempfile
import time

from serve import (MLP, MLP_REQUEST, BenchError, Processes, Table, measure, request, find_tools, run_wrk,
                   save_wide_mlp, start_nginx, start_or_skip, start_until_ready, start_worker)

HERE = pathlib.Path(__file__).resolve().parent
SWITCH_LOAD_CONNECTIONS = 16


# The router and nginx in front of a backend -------------------------------------------------------

def routes_table(model, backends, weights):
    """The routing table's JSON: backends is [(name, Server)], weights [int] in the same order."""
    return json.dumps({"model": model, "backends": [
        {"name": name, "url": server.url, "version": "1", "weight": weight}
        for (name, server), weight in zip(backends, weights)]})


def start_router(processes, worker, folder, model, backends, weights, token):
    """`mlops-worker route` on a free port; returns once /v2/health/ready answers 200."""
    folder.mkdir(parents=True, exist_ok=True)
    routes = folder / "routes.json"
    routes.write_text(routes_table(model, backends, weights))
    token_file = folder / "admin.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    port_file = folder / "router.port"
    port_file.unlink(missing_ok=True)
    log = folder / "router.log"
    argv = [str(worker), "route", "--routes", str(routes), "--admin-token-file", str(token_file), "--port", "0",
            "--port-file", str(port_file)]
    return start_until_ready(processes, argv, port_file, log, "mlops-worker route")


# nginx as a reverse proxy, keeping connections to the backend alive as the router does (without
# that, nginx would connect once per request).
NGINX_PROXY_SITE = """  upstream backend {{
    server {backend};
    keepalive 64;
    keepalive_requests 100000;
  }}
  server {{
    listen 127.0.0.1:PORT;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}"""


def start_nginx_proxy(processes, nginx, folder, backend, probe):
    """nginx in the foreground as a reverse proxy to `backend` (a Server); ready once `probe`
    (a path) answers 200 through it."""
    site = NGINX_PROXY_SITE.format(backend=backend.url.removeprefix("http://"))
    return start_nginx(processes, nginx, folder, site, probe)


# 1. Overhead --------------------------------------------------------------------------------------

def same_answer(what, url, body, expected):
    status, answer = request(url, "POST", json.dumps(body))
    if status != 200 or answer != expected:
        raise BenchError(f"{what} answered POST {url} with {status} and {answer[:300]!r}, not 200 and "
                         f"{expected[:300]!r} as the backend does")


def overhead(args, processes, table, model, path, body, added_latency):
    """added_latency: rows of p50 through a proxy minus direct at c=1, with the router's target (for the wide
    MLP they drown in the noise of its compute)."""
    folder = args.folder / model
    folder.mkdir()
    backend = start_worker(processes, args.worker, folder, model, path, args.device)
    router = start_router(processes, args.worker, folder, model, [("b1", backend)], [100], secrets.token_hex(16))
    nginx = start_nginx_proxy(processes, args.nginx, folder, backend, "/v2/health/ready")
    infer = f"/v2/models/{model}/infer"
    status, expected = request(backend.url + infer, "POST", json.dumps(body))
    if status != 200:
        raise BenchError(f"POST {backend.url + infer} answered {status}: {expected[:500]!r}")
    same_answer("the router", router.url + infer, body, expected)
    same_answer("nginx", nginx.url + infer, body, expected)
    for connections in (64, 1):
        # Interleaved, so that a drift of the machine spreads over the three.
        direct = measure(args, backend.url + infer, body, connections)
        ours = measure(args, router.url + infer, body, connections)
        proxy = measure(args, nginx.url + infer, body, connections)
        c = f"c={connections}"
        if connections == 64:
            table.row(f"router {model} {c} throughput", "req/s", ours.rate, "direct", direct.rate, target=0.8,
                      higher_is_better=True)
            table.row(f"nginx {model} {c} throughput", "req/s", proxy.rate, "direct", direct.rate)
            table.row(f"router {model} {c} p50 latency", "ms", ours.p50_ms, "direct", direct.p50_ms)
            table.row(f"nginx {model} {c} p50 latency", "ms", proxy.p50_ms, "direct", direct.p50_ms)
        else:
            table.row(f"router {model} {c} p50 latency", "ms", ours.p50_ms, "direct", direct.p50_ms)
            table.row(f"nginx {model} {c} p50 latency", "ms", proxy.p50_ms, "direct", direct.p50_ms)
            if added_latency:
                table.row(f"router {model} {c} p50 added", "us", (ours.p50_ms - direct.p50_ms) * 1000, "", None,
                          target=100.0, absolute=True)
                table.row(f"nginx {model} {c} p50 added", "us", (proxy.p50_ms - direct.p50_ms) * 1000, "", None)
    for server in (nginx, router, backend):
        processes.stop(server.process)


# 2. Weight changes --------------------------------------------------------------------------------

class Switcher:
    """Two kept-alive connections to the router: one for PUT /admin/routes, one for inference."""

    def __init__(self, router, token, backends):
        host, port = router.url.removeprefix("http://").split(":")
        self.admin = http.client.HTTPConnection(host, int(port), timeout=10)
        self.client = http.client.HTTPConnection(host, int(port), timeout=10)
        self.admin_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.backends = backends
        self.infer_body = json.dumps(MLP_REQUEST)
        self.stale = []  # (change, backend) of requests started after the PUT's answer that the old backend took
        self.current = 0  # index of the backend with the whole share

    def close(self):
        self.admin.close()
        self.client.close()

    def infer(self):
        self.client.request("POST", "/v2/models/mlp/infer", body=self.infer_body,
                            headers={"Content-Type": "application/json"})
        answer = self.client.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise BenchError(f"POST /v2/models/mlp/infer through the router answered {answer.status}: {body[:300]!r}")
        return answer.getheader("X-Mlops-Backend")

    def put_answer(self):
        answer = self.admin.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise BenchError(f"PUT /admin/routes answered {answer.status}: {body[:300]!r}")
        return time.perf_counter()

    def change(self, number):
        """Moves the whole share to the other backend; (ms from starting the PUT to the first answer by
        the new backend, ms from starting the PUT to its answer)."""
        target = 1 - self.current
        weights = [100 if i == target else 0 for i in range(2)]
        name = self.backends[target][0]
        payload = routes_table("mlp", self.backends, weights)
        start = time.perf_counter()
        self.admin.request("PUT", "/admin/routes", body=payload, headers=self.admin_headers)
        answered = None  # when the PUT's answer was seen
        first = None
        while first is None:
            if answered is None and select.select([self.admin.sock], [], [], 0)[0]:
                answered = self.put_answer()
            after_answer = answered is not None
            backend = self.infer()
            if backend == name:
                first = time.perf_counter()
            elif after_answer:
                self.stale.append((number, backend))
            if time.perf_counter() - start > 10:
                raise BenchError(f"10 s after PUT /admin/routes moving every request to {name}, {backend} still "
                                 "answers")
        if answered is None:
            answered = self.put_answer()
        # Requests that start after the answer: all to the new backend.
        for _ in range(2):
            backend = self.infer()
            if backend != name:
                self.stale.append((number, backend))
        self.current = target
        return (first - start) * 1000, (answered - start) * 1000


def nearest_rank(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def switch_rows(table, label, samples, max_target):
    """p50/p99/max of the time to the first answer by the new backend, and the PUT's own p50."""
    effect = [first for first, _ in samples]
    n = f"(n={len(samples)})"
    table.row(f"switch {label} p50 {n}", "ms", statistics.median(effect), "", None)
    table.row(f"switch {label} p99 {n}", "ms", nearest_rank(effect, 0.99), "", None, target=10.0, absolute=True)
    table.row(f"switch {label} max {n}", "ms", max(effect), "", None, target=10.0 if max_target else None,
              absolute=True)
    table.row(f"switch {label} PUT answered p50", "ms", statistics.median(put for _, put in samples), "", None)


def weight_changes(args, processes, table):
    folder = args.folder / "switch"
    backends = []
    for name in ("b1", "b2"):
        (folder / name).mkdir(parents=True)
        backends.append((name, start_worker(processes, args.worker, folder / name, "mlp", MLP, args.device)))
    for name, backend in backends:
        # A fresh worker's first inference is slower (allocations): not the router's time.
        status, answer = request(f"{backend.url}/v2/models/mlp/infer", "POST", json.dumps(MLP_REQUEST))
        if status != 200:
            raise BenchError(f"POST {backend.url}/v2/models/mlp/infer answered {status}: {answer[:500]!r}")
    token = secrets.token_hex(16)
    router = start_router(processes, args.worker, folder, "mlp", backends, [100, 0], token)
    switcher = Switcher(router, token, backends)
    try:
        switcher.infer()  # both connections open before the clock runs
        samples = [switcher.change(i) for i in range(args.changes)]
        switch_rows(table, "idle", samples, max_target=True)
        # Again under wrk through the router, as many changes as fit while wrk runs.
        url = f"{router.url}/v2/models/mlp/infer"
        duration = max(2, min(5, args.duration))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            load = pool.submit(run_wrk, args, url, MLP_REQUEST, SWITCH_LOAD_CONNECTIONS, duration, True)
            time.sleep(0.3)  # wrk connects
            loaded = []
            while time.monotonic() - started < duration - 0.3 and not load.done():
                loaded.append(switcher.change(len(samples) + len(loaded)))
            result = load.result()
        if not loaded:
            raise BenchError("wrk ended before any weight change under load")
        # Under load a request also waits behind wrk's in the router and the worker, and any process
        # may lose its core for a scheduler slice: the max is shown, the target is on the p99.
        switch_rows(table, f"c={SWITCH_LOAD_CONNECTIONS}", loaded, max_target=False)
        table.row(f"switch c={SWITCH_LOAD_CONNECTIONS} wrk throughput", "req/s", result.rate, "", None)
    finally:
        switcher.close()
    if switcher.stale:
        shown = ", ".join(f"change {number}: {backend}" for number, backend in switcher.stale[:10])
        raise BenchError(f"{len(switcher.stale)} requests started after PUT /admin/routes answered went to the "
                         f"backend it took the traffic from ({shown})")
    for server in (router, *(server for _, server in backends)):
        processes.stop(server.process)


# Main ---------------------------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed (not with --smoke)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, smoke 1)")
    parser.add_argument("--changes", type=int, help="weight changes without load (default 200, smoke 20)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--worker", default=str(HERE.parent.parent / "build" / "mlops-worker"))
    args = parser.parse_args()
    args.worker = pathlib.Path(args.worker).resolve()
    duration_given, changes_given = args.duration is not None, args.changes is not None
    if args.duration is None:
        args.duration = 1 if args.smoke else 10
    args.duration = max(1, args.duration)  # wrk takes whole seconds
    args.changes = max(1, args.changes if changes_given else (20 if args.smoke else 200))
    args.warmup = 0 if args.smoke else min(2, max(1, args.duration // 5))
    find_tools(args)
    command = [sys.executable, str(HERE / "router.py")] + (["--smoke"] if args.smoke else []) + \
        (["--check"] if args.check else []) + (["--json"] if args.json else []) + \
        (["--duration", str(args.duration)] if duration_given else []) + \
        (["--changes", str(args.changes)] if changes_given else []) + \
        (["--device", args.device] if args.device != "cpu" else []) + ["--worker", str(args.worker)]
    args.command = shlex.join(command)
    return args


def main():
    args = parse_args()
    start_or_skip("router.py", args)
    table = Table(sys.stderr if args.json else sys.stdout)
    processes = Processes(None)  # no `mlops serve start` here
    began = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-bench-router.") as temp:
            args.folder = pathlib.Path(temp)
            print(f"router benchmark on {os.cpu_count()} cores (wrk, proxy and worker share them), backends on "
                  f"{args.device}, {args.duration} s wrk runs, {args.changes} weight changes"
                  f"{' (smoke: targets not enforced)' if args.smoke else ''}; ratio is value/baseline\n"
                  f"reproduce: {args.command}", file=table.out)
            table.header()
            try:
                overhead(args, processes, table, "mlp", MLP, MLP_REQUEST, added_latency=True)
                wide = args.folder / "wide.onnx"
                overhead(args, processes, table, "wide", wide, save_wide_mlp(wide), added_latency=False)
                weight_changes(args, processes, table)
            finally:
                processes.close()
    except BenchError as error:
        sys.exit(f"router.py: error: {error}")
    except KeyboardInterrupt:
        sys.exit("router.py: interrupted; every process it started is stopped")
    print(f"{time.monotonic() - began:.0f} s", file=table.out)
    if args.json:
        json.dump({"device": args.device, "cores": os.cpu_count(), "duration_s": args.duration,
                   "changes": args.changes, "smoke": args.smoke, "command": args.command, "rows": table.rows,
                   "missed": table.missed}, sys.stdout, indent=2)
        print()
    if table.missed and args.check and not args.smoke:
        sys.exit(f"router.py: missed targets: {', '.join(table.missed)}")


if __name__ == "__main__":
    main()
