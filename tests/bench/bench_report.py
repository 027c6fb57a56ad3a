"""Reporting for bench.py: ours as a ratio of each baseline, the figures
printed as they come and as a summary table, the Markdown tables of
docs/benchmarks.md, and the machine they were measured on.
"""

import os
import re
import subprocess

# The servers ours is compared with, in the order the tables show them.
BASELINES = ["callback", "sync"]


def fmt_rate(x):
    return f"{x:,.0f}"


def add_ratios(point, servers):
    if "ours" not in servers:
        return
    ours = point["ours"]
    for base in BASELINES:
        if base not in servers:
            continue
        other = point[base]
        ratios = {
            "calls_per_second": ours["calls_per_second"] / other["calls_per_second"],
            "messages_per_second": ours["messages_per_second"] / other["messages_per_second"],
            "p99": ours["p99_us"] / other["p99_us"],
        }
        if ours["server_cpu_us_per_call"] and other["server_cpu_us_per_call"]:
            ratios["server_cpu_per_call"] = (ours["server_cpu_us_per_call"] /
                                             other["server_cpu_us_per_call"])
        if "h2load_calls_per_second" in ours and "h2load_calls_per_second" in other:
            ratios["h2load_calls_per_second"] = (ours["h2load_calls_per_second"] /
                                                 other["h2load_calls_per_second"])
        ours.setdefault("ratio_to", {})[base] = ratios


def print_point(key, point, servers):
    print(f"\n{key}: {point['title']}")
    print(f"  {'server':<9}{'calls/s':>10}{'msgs/s':>11}{'p50 us':>9}"
          f"{'p99 us':>9}{'p99.9 us':>10}{'CPU us/call':>12}{'peak RSS':>10}"
          f"{'h2load/s':>10}")
    for name in servers:
        r = point[name]
        cpu = r["server_cpu_us_per_call"]
        print(f"  {name:<9}{fmt_rate(r['calls_per_second']):>10}"
              f"{fmt_rate(r['messages_per_second']):>11}{r['p50_us']:>9.0f}"
              f"{r['p99_us']:>9.0f}{r['p99_9_us']:>10.0f}"
              f"{(f'{cpu:.1f}' if cpu else '-'):>12}"
              f"{r['server_peak_rss_kib'] / 1024:>8.1f}Mi"
              f"{fmt_rate(r['h2load_calls_per_second']) if 'h2load_calls_per_second' in r else '-':>10}")
    for base, ratios in point.get("ours", {}).get("ratio_to", {}).items():
        parts = [f"calls {ratios['calls_per_second']:.2f}x",
                 f"msgs {ratios['messages_per_second']:.2f}x",
                 f"p99 {ratios['p99']:.2f}x"]
        if "server_cpu_per_call" in ratios:
            parts.append(f"CPU/call {ratios['server_cpu_per_call']:.2f}x")
        if "h2load_calls_per_second" in ratios:
            parts.append(f"h2load {ratios['h2load_calls_per_second']:.2f}x")
        print(f"  ours / {base}: " + ", ".join(parts))


def print_table(results, servers):
    """The summary: one line per scenario, ours against each baseline."""
    bases = [b for b in BASELINES if b in servers]
    if "ours" not in servers or not bases:
        return
    header = f"{'scenario':<11}{'ours calls/s':>13}{'ours msgs/s':>13}"
    for b in bases:
        header += f"{'x ' + b + ' msgs':>16}{'x ' + b + ' CPU':>15}{'x ' + b + ' p99':>15}"
    print(header)
    for key, point in results["scenarios"].items():
        ours = point["ours"]
        line = (f"{key:<11}{fmt_rate(ours['calls_per_second']):>13}"
                f"{fmt_rate(ours['messages_per_second']):>13}")
        for b in bases:
            r = ours["ratio_to"][b]
            cpu = r.get("server_cpu_per_call")
            line += (f"{r['messages_per_second']:>15.2f}x"
                     f"{(f'{cpu:.2f}x' if cpu else '-'):>15}"
                     f"{r['p99']:>14.2f}x")
        print(line)


def format_markdown(results, servers):
    """The results as Markdown tables, for docs/benchmarks.md."""
    out = []
    m = results["machine"]
    a = results["settings"]
    out.append(f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, kernel "
               f"{m['kernel']}, gRPC {m.get('grpc', '?')}. Command: "
               f"`tests/bench/bench.py --build {a['build']} --rounds {a['rounds']} "
               f"--seconds {a['seconds']:g} --warmup {a['warmup']:g}"
               f"{' --replicas' if a['replicas'] else ''}`.\n")
    out.append("| scenario | server | calls/s | msgs/s | p50 µs | p99 µs | "
               "p99.9 µs | CPU µs/call | peak RSS MiB | h2load calls/s |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, point in results["scenarios"].items():
        for name in servers:
            r = point[name]
            cpu = r["server_cpu_us_per_call"]
            h2 = r.get("h2load_calls_per_second")
            out.append(
                f"| {key} | {name} | {r['calls_per_second']:,.0f} | "
                f"{r['messages_per_second']:,.0f} | {r['p50_us']:,.0f} | "
                f"{r['p99_us']:,.0f} | {r['p99_9_us']:,.0f} | "
                f"{cpu:.1f} | {r['server_peak_rss_kib'] / 1024:.1f} | "
                f"{f'{h2:,.0f}' if h2 else '-'} |")
    if "ours" in servers:
        out.append("")
        out.append("Ours as a multiple of each baseline (messages/s and h2load: "
                   "higher is better; CPU per call and p99: lower is better):\n")
        out.append("| scenario | baseline | msgs/s | h2load | CPU/call | p99 |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: |")
        for key, point in results["scenarios"].items():
            for base, r in point["ours"].get("ratio_to", {}).items():
                h2 = r.get("h2load_calls_per_second")
                cpu = r.get("server_cpu_per_call")
                out.append(f"| {key} | {base} | {r['messages_per_second']:.2f}x | "
                           f"{f'{h2:.2f}x' if h2 else '-'} | "
                           f"{f'{cpu:.2f}x' if cpu else '-'} | {r['p99']:.2f}x |")
    if "idle_streams" in results:
        idle = results["idle_streams"]
        out.append("")
        out.append(f"Idle RouteChat streams ({idle['streams']:,}, 20 connections), "
                   "server RSS in MiB:\n")
        out.append("| server | before | open | after | KiB per stream |")
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for name in servers:
            r = idle[name]
            out.append(f"| {name} | {r['rss_before_kib'] / 1024:.1f} | "
                       f"{r['rss_open_kib'] / 1024:.1f} | "
                       f"{r['rss_after_kib'] / 1024:.1f} | "
                       f"{r['kib_per_stream']:.1f} |")
    if "large_db" in results:
        large = results["large_db"]
        out.append("")
        out.append(f"Our server on a generated database of {large['features']:,} "
                   "features against the built-in 100 (ListFeatures of a small "
                   "rectangle, one call in flight):\n")
        out.append("| database | start-up s | RSS MiB | peak RSS MiB | features "
                   "per call | p50 µs | p99 µs |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key in ("builtin", "large"):
            x = large[key]
            out.append(f"| {key} | {x['startup_seconds']:.2f} | "
                       f"{x['rss_kib'] / 1024:.1f} | {x['peak_rss_kib'] / 1024:.1f} | "
                       f"{x['features_per_call']:.1f} | {x['p50_us']:.0f} | "
                       f"{x['p99_us']:.0f} |")
    if "replicas" in results:
        out.append("")
        out.append("Replicas (GetFeature, 256 in flight over 8 connections, the "
                   "client on both cores):\n")
        out.append("| layout | calls/s | vs one | replica CPU shares |")
        out.append("| --- | ---: | ---: | --- |")
        for layout, r in results["replicas"].items():
            ratio = r.get("ratio_to_one")
            out.append(f"| {layout} | {r['calls_per_second']:,.0f} | "
                       f"{f'{ratio:.2f}x' if ratio else '-'} | "
                       f"{r['replica_cpu_shares']} |")
    return "\n".join(out) + "\n"


def machine_facts():
    facts = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            facts["cpu"] = m.group(1) if m else "unknown"
    except OSError:
        pass
    facts["kernel"] = os.uname().release
    try:
        facts["grpc"] = subprocess.run(
            ["pkg-config", "--modversion", "grpc++"], stdout=subprocess.PIPE,
            text=True).stdout.strip()
    except OSError:
        pass
    return facts
