#!/usr/bin/env python3
"""Load generator for `lasr serve` (make bench-serve): loopback only, bounded in
requests and in time. Starts the server itself, sends the sample files from N
concurrent clients for each N (each client on one kept-alive connection, waiting
for each answer before its next upload), and prints a markdown table of throughput
(seconds of audio per second of wall time), p50/p99 latency and failures; the same
files through `lasr transcribe` alternating with the 2-client level, so that a drift
in the machine's speed falls on both; and with --soak S the server's peak memory over an
S-second run at 2 clients."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
from lasr_server import Server, multipart  # noqa: E402


def duration(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load(server: Server, model: str, files: list[Path], clients: int, requests: int, seconds: float):
    """`requests` uploads (at most `seconds` of wall time) from `clients` threads, round robin over `files`."""
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    audio = 0.0
    failures: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    # Bodies are built once: the generator's own CPU comes off the cores the server runs on.
    payloads = [(f, *multipart({"model": model}, {"file": (f.name, f.read_bytes())}), duration(f)) for f in files]

    def client():
        nonlocal issued, audio
        # One connection per client, kept while the server keeps it (http.client reopens it when told to close).
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
        while True:
            with lock:
                if issued >= requests or time.monotonic() > deadline:
                    return
                f, body, content_type, d = payloads[issued % len(payloads)]
                issued += 1
            t0 = time.monotonic()
            try:
                conn.request("POST", "/v1/audio/transcriptions", body=body, headers={"Content-Type": content_type})
                response = conn.getresponse()
                status, _ = response.status, response.read()
            except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
                status = 0
                conn.close()
            elapsed = time.monotonic() - t0
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                    audio += d
                else:
                    key = f"{status}"
                    failures[key] = failures.get(key, 0) + 1

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return {"clients": clients, "ok": len(latencies), "failed": sum(failures.values()), "failures": failures,
            "audio_s": audio, "wall_s": wall, "throughput": audio / wall if wall else 0,
            "p50": statistics.median(latencies) if latencies else float("nan"), "p99": p(0.99)}


def cli(binary: Path, model: Path, files: list[Path], repeats: int) -> dict:
    """The same files through `lasr transcribe` (default --jobs: one per core), `repeats` times over."""
    listed = [str(f) for f in files] * repeats
    t0 = time.monotonic()
    subprocess.run([str(binary), "transcribe", "--model", str(model), *listed], check=True, capture_output=True)
    wall = time.monotonic() - t0
    audio = sum(duration(f) for f in files) * repeats
    return {"audio_s": audio, "wall_s": wall, "throughput": audio / wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", action="append", required=True, help="model directory (repeat for several)")
    ap.add_argument("--files", default="audio", help="directory of sample audio")
    ap.add_argument("--clients", default="1,2,4,8")
    ap.add_argument("--requests", type=int, action="append",
                    help="uploads per concurrency level, for each --model in turn (the last for the rest; default 24)")
    ap.add_argument("--seconds", type=float, default=300, help="wall-time bound per level")
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="alternating lasr transcribe / 2-client pairs per model")
    ap.add_argument("--soak", type=float, default=0, help="seconds of load at 2 clients for peak memory (first model)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    files = sorted(Path(args.files).glob("*.wav"))
    binary = Path(os.environ.get("LASR_BIN", ".build/release/lasr"))
    os.environ["LASR_BIN"] = str(binary)
    results = {"load": os.getloadavg(), "models": {}}
    counts = args.requests or [24]
    for index, model_dir in enumerate(map(Path, args.model)):
        name = model_dir.name
        requests = counts[min(index, len(counts) - 1)]
        repeats = max(1, requests // len(files))
        server = Server("--queue", str(args.queue), models=[model_dir])
        rows = []
        try:
            load(server, name, files[:1], 1, 1, args.seconds)  # warm-up: first recognizers, page cache
            for c in map(int, args.clients.split(",")):
                rows.append(load(server, name, files, c, requests, args.seconds))
                print(f"{name} clients={c}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
            # The machine's speed drifts (a shared VM: 15 % within minutes, seen), so the
            # comparison alternates: lasr transcribe, then 2 clients, `rounds` times; the
            # ratio of each pair, and their median, are what is reported.
            pairs = []
            for _ in range(args.rounds):
                reference = cli(binary, model_dir, files, repeats)
                two = load(server, name, files, 2, requests, args.seconds)
                pairs.append({"cli": reference, "server": two, "ratio": two["throughput"] / reference["throughput"]})
                print(f"{name} pair: lasr transcribe {reference['throughput']:.2f}, 2 clients {two['throughput']:.2f}",
                      file=sys.stderr, flush=True)
            soak = None
            if args.soak and model_dir == Path(args.model[0]):
                samples = []
                sampler_done = threading.Event()

                def sample():
                    while not sampler_done.wait(10):
                        samples.append(rss_kib(server.proc.pid))

                t = threading.Thread(target=sample)
                t.start()
                soak = load(server, name, files, 2, 10**9, args.soak)
                sampler_done.set()
                t.join()
                soak["rss_kib_samples"] = samples
                soak["peak_kib"] = rss_kib(server.proc.pid, "VmHWM")
                print(f"{name} soak: {json.dumps(soak)}", file=sys.stderr, flush=True)
            peak = rss_kib(server.proc.pid, "VmHWM")
        finally:
            server.stop()
        results["models"][name] = {"rows": rows, "soak": soak, "peak_kib": peak, "pairs": pairs}
    results["load_after"] = os.getloadavg()

    print(f"load average before: {results['load'][0]:.2f}, after: {results['load_after'][0]:.2f}")
    for name, r in results["models"].items():
        print(f"\n{name}\n\n| clients | requests ok | failed | audio s/s | p50 s | p99 s |\n|---|---|---|---|---|---|")
        for row in r["rows"]:
            print(f"| {row['clients']} | {row['ok']} | {row['failed']} | {row['throughput']:.2f} | {row['p50']:.2f} | {row['p99']:.2f} |")
        print("\n| round | lasr transcribe, audio s/s | then 2 clients, audio s/s | ratio |\n|---|---|---|---|")
        for i, pair in enumerate(r["pairs"], 1):
            print(f"| {i} | {pair['cli']['throughput']:.2f} | {pair['server']['throughput']:.2f} | {pair['ratio']:.3f} |")
        if r["pairs"]:
            print(f"\n2 clients: {100 * statistics.median(p['ratio'] for p in r['pairs']):.1f} % of lasr transcribe "
                  f"(the median of {len(r['pairs'])} alternating pairs; the server aims for at least 85 %); "
                  f"{sum(p['server']['failed'] for p in r['pairs'])} failed")
        print(f"\nserver peak RSS: {r['peak_kib'] / 1024:.0f} MiB")
        if r["soak"]:
            s = r["soak"]
            print(f"soak {s['wall_s']:.0f} s at 2 clients: {s['ok']} ok, {s['failed']} failed, RSS every 10 s (MiB): "
                  + " ".join(f"{k / 1024:.0f}" for k in s["rss_kib_samples"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    failed = sum(row["failed"] for r in results["models"].values() for row in r["rows"] + [p["server"] for p in r["pairs"]])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
