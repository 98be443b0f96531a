"""Load test of ``polymodal serve`` on the demo model: N concurrent clients for S seconds, with and
without dynamic batching, and one client alone; ``--sigterm`` stops the server during the load.

Starts the service (a subprocess on a free loopback port; nothing else is ever addressed) on the
demo model (``polymodal demo`` writes it; run here when ``--model`` is missing), sends the rows of
the av-digits test table (image and clip as multipart uploads) from asyncio clients sharing one
httpx pool, and prints requests/s and p50/p99 latency per mode, with failed requests (any answer
but 200, any transport error) and the server's own count of requests accepted and answered.

    .venv/bin/polymodal demo --data-dir ../shared/data        # once: polymodal-demo/
    .venv/bin/python bench/serve_load.py --clients 100 --seconds 60
    .venv/bin/python bench/serve_load.py --clients 4 --seconds 3          # a quick look
    .venv/bin/python bench/serve_load.py --clients 50 --seconds 20 --sigterm

``--sigterm``: SIGTERM halfway through; every request the server accepted must get its answer
(lost = accepted − answered to the clients, must be 0); requests sent after the SIGTERM that
were refused, or found their kept-alive connection closed, were not taken by the server (its
own count says so) and are counted apart. Exits 1 on a failed or lost request.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

MAX_CLIENTS, MAX_SECONDS = 1000, 600


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, *options: str) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _port()
    process = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "serve", str(model), "--port", str(port),
                                *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"error: polymodal serve exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("error: polymodal serve did not start within two minutes")


def stop_server(process: subprocess.Popen) -> dict:
    """SIGTERM, wait, and the counts the server logs when it stops."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        err = process.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        err = process.communicate()[1]
    found = re.search(r"(\d+) requests accepted, (\d+) answered; predict: (\d+) requests in (\d+) forward passes", err)
    if not found:
        return {"log": err[-1500:]}
    accepted, answered, predicted, passes = map(int, found.groups())
    return {"accepted": accepted, "answered": answered, "predict_requests": predicted, "passes": passes}


def payloads(table: Path, model_columns: dict[str, str], n: int = 64) -> list[tuple[dict, list]]:
    """Up to ``n`` requests from the table: the row's values, its image and audio as file parts."""
    import pandas as pd

    frame = pd.read_csv(table).head(n)
    out = []
    for record in frame.to_dict("records"):
        row, files = {}, []
        for column, role in model_columns.items():
            value = record.get(column)
            if value is None or (isinstance(value, float) and value != value):
                continue
            if role in ("image", "audio"):
                path = Path(str(value))
                files.append((column, (path.name, (path if path.is_absolute() else table.parent / path).read_bytes())))
            else:
                row[column] = value
        out.append(({"rows": json.dumps([row])}, files))
    return out


async def load(url: str, name: str, requests: list, clients: int, seconds: float, stop_at: float | None = None,
               process: subprocess.Popen | None = None) -> dict:
    """``clients`` loops posting predict requests for ``seconds``; latencies of the 200s, and the rest."""
    import httpx

    latencies: list[float] = []
    failed: dict[str, int] = {}
    refused = 0
    # One connection pool per client: a pool shared by many connections scans all of them on
    # every request (httpcore), which made the load generator, not the server, the bottleneck.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    pool = [httpx.AsyncClient(base_url=url, limits=limits, timeout=120) for _ in range(clients)]
    async with contextlib.AsyncExitStack() as stack:
        for c in pool:
            await stack.enter_async_context(c)
        deadline = time.perf_counter() + seconds
        stopped = [float("inf")]

        def stop() -> None:
            stopped[0] = time.perf_counter()
            process.send_signal(signal.SIGTERM)

        if stop_at is not None:
            asyncio.get_running_loop().call_later(stop_at, stop)

        async def one_client(k: int) -> None:
            nonlocal refused
            n, client = k, pool[k]
            while time.perf_counter() < deadline:
                data, files = requests[n % len(requests)]
                n += clients
                start = time.perf_counter()
                try:
                    response = await client.post(f"/v1/models/{name}/predict", data=data, files=files)
                except httpx.ConnectError:  # nobody listening: the stopped server took no request
                    refused += 1
                    if stop_at is not None:
                        return
                    continue
                except httpx.HTTPError as exc:
                    if start >= stopped[0]:  # sent on a kept-alive connection the stopping server closed
                        refused += 1          # (whether it took it is in its own count: see "lost")
                        return
                    failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                    continue
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    failed[str(response.status_code)] = failed.get(str(response.status_code), 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*[one_client(k) for k in range(clients)])
        elapsed = time.perf_counter() - began
    latencies.sort()
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000) if latencies else (lambda q: float("nan"))
    return {"ok": len(latencies), "failed": failed, "refused": refused, "seconds": elapsed,
            "rps": len(latencies) / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("polymodal-demo"), help="model directory (default: the demo's)")
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "polymodal" / "av-digits" / "test.csv",
                        help="rows to send (default: the av-digits test table that polymodal demo builds)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--demo-epochs", type=int, default=None, help="when the model is missing: polymodal demo --epochs")
    parser.add_argument("--sigterm", action="store_true", help="stop the server halfway through the load")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not (1 <= args.clients <= MAX_CLIENTS and 0 < args.seconds <= MAX_SECONDS):
        print(f"error: --clients must be 1..{MAX_CLIENTS} and --seconds 0..{MAX_SECONDS}", file=sys.stderr)
        return 2
    if not (args.model / "manifest.json").is_file():
        demo = [sys.executable, "-m", "polymodal.cli", "demo", "--out", str(args.model)]
        if args.demo_epochs:
            demo += ["--epochs", str(args.demo_epochs)]
        print(f"no model in {args.model}: running {' '.join(demo[2:])}", file=sys.stderr)
        subprocess.run(demo, check=True)
    if not args.data.is_file():
        print(f"error: {args.data} not found; `polymodal demo` builds it, or pass --data TABLE", file=sys.stderr)
        return 2
    from polymodal.modeldir import load_model

    fitted = load_model(args.model)
    columns = {c: fitted.schema.roles.get(c, p.modality) for p in fitted.preprocessors.values() for c in p.columns}
    requests = payloads(args.data, columns)
    name = args.model.resolve().name
    batching = ["--max-batch", str(args.max_batch), "--batch-wait-ms", str(args.batch_wait_ms)]
    modes = ([("sigterm", batching, args.clients)] if args.sigterm else
             [("batching", batching, args.clients), ("no batching", ["--no-batching"], args.clients),
              ("one client", batching, 1)])
    figures, bad = [], 0
    for mode, options, clients in modes:
        process, url = start_server(args.model, *options)
        got = asyncio.run(load(url, name, requests, clients, args.seconds,
                               stop_at=args.seconds / 2 if mode == "sigterm" else None, process=process))
        got.update(mode=mode, clients=clients, server=stop_server(process))
        server = got["server"]
        got["lost"] = (server["accepted"] - 1 - got["ok"]) if "accepted" in server else None  # 1: the /health check
        bad += sum(got["failed"].values()) + (got["lost"] or 0) + (got["lost"] is None)
        figures.append(got)
    print(f"{'mode':<12}{'clients':>8}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}"
          f"{'lost':>6}{'rows/pass':>11}")
    for f in figures:
        server = f["server"]
        per_pass = server["predict_requests"] / max(1, server["passes"]) if "passes" in server else float("nan")
        print(f"{f['mode']:<12}{f['clients']:>8}{f['ok']:>10}{f['rps']:>9.1f}{f['p50_ms']:>9.1f}{f['p99_ms']:>9.1f}"
              f"{sum(f['failed'].values()):>8}{str(f['lost']):>6}{per_pass:>11.1f}")
        if f["failed"]:
            print(f"  failed: {f['failed']}")
        if f["mode"] == "sigterm":
            print(f"  server: {server.get('accepted')} accepted, {server.get('answered')} answered; clients got "
                  f"{f['ok']} answers (+1 health check); {f['refused']} sent after the SIGTERM were refused or "
                  "found their connection closed")
        if "log" in server:
            print(f"  server log: {server['log']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(f"failed or lost requests: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
