"""Reporting for bench.py: ours as a ratio of each baseline, the figures
printed as they come and as a summary table, the Markdown tables of
docs/benchmarks.md, and the machine they were measured on.
"""

import os
import re
import statistics
import subprocess

# The servers ours is compared with, in the order the tables show them.
BASELINES = ["callback", "sync", "go"]
# From this share of its core on, the load generator may be what limits a
# point: the server can have had room left, so calls/s understate it.
LOAD_BOUND_SHARE = 0.9


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
            h2load_paired = paired_ratios(ours.get("h2load_rounds", []),
                                          other.get("h2load_rounds", []))
            if h2load_paired:
                ratios["h2load_paired_rounds"] = h2load_paired
        if (ours.get("h2load_server_cpu_us_per_call") and
                other.get("h2load_server_cpu_us_per_call")):
            ratios["h2load_server_cpu_per_call"] = (
                ours["h2load_server_cpu_us_per_call"] /
                other["h2load_server_cpu_us_per_call"])
        if load_bound(ours) or load_bound(other):
            ratios["load_bound"] = True
        paired = paired_ratios(ours.get("rounds_calls_per_second", []),
                               other.get("rounds_calls_per_second", []))
        if paired:
            ratios["paired_rounds"] = paired
        ours.setdefault("ratio_to", {})[base] = ratios


def paired_ratios(ours, other):
    """Ours over the baseline round by round: the servers alternate, so
    round i of each ran seconds apart, under the same neighbours.
    The spread says how far one run's ratio of medians can be trusted."""
    if len(ours) < 2 or len(ours) != len(other) or not all(other):
        return None
    ratios = [a / b for a, b in zip(ours, other)]
    return {"median": statistics.median(ratios), "low": min(ratios),
            "high": max(ratios)}


def fmt_h2load(ratios):
    """Ours over a baseline under h2load: the ratio of the medians, round
    by round when the rounds pair up, and the servers' CPU per call when
    it was read."""
    text = f"{ratios['h2load_calls_per_second']:.2f}x"
    if "h2load_paired_rounds" in ratios:
        text += f", round by round {fmt_paired(ratios['h2load_paired_rounds'])}"
    if "h2load_server_cpu_per_call" in ratios:
        text += f", h2load CPU/call {ratios['h2load_server_cpu_per_call']:.2f}x"
    return text


def fmt_h2load_cpu(r):
    """A server's CPU microseconds per call under h2load and its share of
    its core then, or '-' (no h2load for the point, or results made before
    they were read)."""
    cpu = r.get("h2load_server_cpu_us_per_call")
    if cpu is None:
        return "-"
    return f"{cpu:.1f} ({r['h2load_server_cpu_share'] * 100:.0f}%)"


def fmt_paired(paired):
    return (f"{paired['median']:.2f}x ({paired['low']:.2f}-{paired['high']:.2f}x)"
            if paired else "-")


REDIS_LAYOUTS = [("memory_1", "in-process store, 1 replica"),
                 ("redis_1", "Redis, 1 replica"),
                 ("memory_2", "in-process store, 2 replicas"),
                 ("redis_2", "Redis, 2 replicas")]


def add_redis_ratios(redis_chat):
    """Redis against the in-process store, at each replica count: messages/s
    and p99, the servers' CPU per call, and the servers' plus Redis's."""
    for replicas in (1, 2):
        memory = redis_chat[f"memory_{replicas}"]
        redis = redis_chat[f"redis_{replicas}"]
        cpu = memory["server_cpu_us_per_call"]
        redis["ratio_to_memory"] = {
            "messages_per_second": (redis["messages_per_second"] /
                                    memory["messages_per_second"]),
            "p50": redis["p50_us"] / memory["p50_us"],
            "p99": redis["p99_us"] / memory["p99_us"],
            "server_cpu_per_call": redis["server_cpu_us_per_call"] / cpu,
            "total_cpu_per_call": (redis["server_cpu_us_per_call"] +
                                   redis["redis_cpu_us_per_call"]) / cpu,
        }
    for store in ("memory", "redis"):
        two = redis_chat[f"{store}_2"]
        two["ratio_to_one"] = (two["messages_per_second"] /
                               redis_chat[f"{store}_1"]["messages_per_second"])


def print_redis_chat(redis_chat):
    print(f"  {'layout':<10}{'calls/s':>9}{'msgs/s':>10}{'p50 us':>9}"
          f"{'p99 us':>9}{'reply p50':>11}{'reply p99':>11}"
          f"{'srv CPU us/call':>17}{'Redis CPU us/call':>19}{'keys':>7}")
    for key, _ in REDIS_LAYOUTS:
        r = redis_chat[key]
        redis_cpu = r["redis_cpu_us_per_call"]
        print(f"  {key:<10}{fmt_rate(r['calls_per_second']):>9}"
              f"{fmt_rate(r['messages_per_second']):>10}{r['p50_us']:>9.0f}"
              f"{r['p99_us']:>9.0f}{r['reply_p50_us']:>11.0f}"
              f"{r['reply_p99_us']:>11.0f}{r['server_cpu_us_per_call']:>17.1f}"
              f"{(f'{redis_cpu:.1f}' if redis_cpu is not None else '-'):>19}"
              f"{r['redis_keys'] if r['redis_keys'] is not None else '-':>7}")
    for replicas in (1, 2):
        x = redis_chat[f"redis_{replicas}"]["ratio_to_memory"]
        print(f"  redis / memory, {replicas} replica{'s' if replicas > 1 else ''}: "
              f"msgs {x['messages_per_second']:.2f}x, p50 {x['p50']:.2f}x, "
              f"p99 {x['p99']:.2f}x, server CPU/call "
              f"{x['server_cpu_per_call']:.2f}x, server + Redis CPU/call "
              f"{x['total_cpu_per_call']:.2f}x")
    for store in ("memory", "redis"):
        print(f"  {store}: 2 replicas / 1: "
              f"{redis_chat[f'{store}_2']['ratio_to_one']:.2f}x msgs")


def load_bound(r):
    return r.get("load_cpu_share", 0) >= LOAD_BOUND_SHARE


def fmt_load(r):
    """The load generator's share of its core, or '-' in results made
    before it was measured."""
    share = r.get("load_cpu_share")
    return "-" if share is None else f"{share * 100:.0f}%"


def fmt_switches(r):
    """The server's context switches per call, or '-' in results made
    before they were counted."""
    switches = r.get("server_switches_per_call")
    return "-" if switches is None else f"{switches:.2f}"


def name_width(servers):
    """Width of the column that names the servers, for any of them."""
    return max([9] + [len(name) + 1 for name in servers])


def print_point(key, point, servers):
    print(f"\n{key}: {point['title']}")
    width = name_width(servers)
    print(f"  {'server':<{width}}{'calls/s':>10}{'msgs/s':>11}{'p50 us':>9}"
          f"{'p99 us':>9}{'p99.9 us':>10}{'CPU us/call':>12}"
          f"{'switches/call':>14}{'load CPU':>9}{'peak RSS':>10}{'h2load/s':>10}"
          f"{'h2load CPU':>14}")
    for name in servers:
        r = point[name]
        cpu = r["server_cpu_us_per_call"]
        print(f"  {name:<{width}}{fmt_rate(r['calls_per_second']):>10}"
              f"{fmt_rate(r['messages_per_second']):>11}{r['p50_us']:>9.0f}"
              f"{r['p99_us']:>9.0f}{r['p99_9_us']:>10.0f}"
              f"{(f'{cpu:.1f}' if cpu else '-'):>12}"
              f"{fmt_switches(r):>14}{fmt_load(r):>9}"
              f"{r['server_peak_rss_kib'] / 1024:>8.1f}Mi"
              f"{fmt_rate(r['h2load_calls_per_second']) if 'h2load_calls_per_second' in r else '-':>10}"
              f"{fmt_h2load_cpu(r):>14}")
    for base, ratios in point.get("ours", {}).get("ratio_to", {}).items():
        parts = [f"calls {ratios['calls_per_second']:.2f}x",
                 f"msgs {ratios['messages_per_second']:.2f}x",
                 f"p99 {ratios['p99']:.2f}x"]
        if "server_cpu_per_call" in ratios:
            parts.append(f"CPU/call {ratios['server_cpu_per_call']:.2f}x")
        if "h2load_calls_per_second" in ratios:
            parts.append(f"h2load {fmt_h2load(ratios)}")
        if "paired_rounds" in ratios:
            parts.append("calls round by round " + fmt_paired(ratios["paired_rounds"]))
        print(f"  ours / {base}: " + ", ".join(parts))
        if ratios.get("load_bound"):
            print(f"  load-bound: the load generator used {LOAD_BOUND_SHARE:.0%} "
                  "or more of its core, so the servers may have had room "
                  "left; CPU/call compares them")


def print_table(results, servers):
    """The summary: one line per scenario, ours against each baseline."""
    bases = [b for b in BASELINES if b in servers]
    if "ours" not in servers or not bases:
        return
    key_width = max([11] + [len(key) + 1 for key in results["scenarios"]])
    header = f"{'scenario':<{key_width}}{'ours calls/s':>13}{'ours msgs/s':>13}"
    for b in bases:
        header += f"{'x ' + b + ' msgs':>16}{'x ' + b + ' CPU':>15}{'x ' + b + ' p99':>15}"
    print(header)
    for key, point in results["scenarios"].items():
        ours = point["ours"]
        line = (f"{key:<{key_width}}{fmt_rate(ours['calls_per_second']):>13}"
                f"{fmt_rate(ours['messages_per_second']):>13}")
        for b in bases:
            r = ours["ratio_to"][b]
            cpu = r.get("server_cpu_per_call")
            line += (f"{r['messages_per_second']:>15.2f}x"
                     f"{(f'{cpu:.2f}x' if cpu else '-'):>15}"
                     f"{r['p99']:>14.2f}x")
        if any(ours["ratio_to"][b].get("load_bound") for b in bases):
            line += "  load-bound"
        print(line)


def command_line(a):
    """The bench.py command that gives these settings (defaults left out)."""
    words = [f"tests/bench/bench.py --build {a['build']} --rounds {a['rounds']} "
             f"--seconds {a['seconds']:g} --warmup {a['warmup']:g}"]
    if a.get("only"):
        words.append(f"--only {a['only']}")
    if a.get("servers", "ours,callback,sync") != "ours,callback,sync":
        words.append(f"--servers {a['servers']}")
    if a.get("no_h2load"):
        words.append("--no-h2load")
    if a.get("idle_streams", 10000) != 10000:
        words.append(f"--idle-streams {a['idle_streams']}")
    if a.get("large_db", 1000000) != 1000000:
        words.append(f"--large-db {a['large_db']}")
    if a.get("replicas"):
        words.append("--replicas")
    if a.get("redis"):
        words.append("--redis")
    return " ".join(words)


def format_markdown(results, servers):
    """The results as Markdown tables, for docs/benchmarks.md."""
    out = []
    m = results["machine"]
    a = results["settings"]
    # Loopback traffic follows the kernel's TCP congestion control: under
    # BBR our load generator's uploads were held to a few dozen segments
    # in flight (docs/benchmarks.md, run T), so runs made under different
    # ones are not compared.
    congestion = m.get("tcp_congestion_control")
    congestion = f", TCP congestion control {congestion}" if congestion else ""
    out.append(f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, kernel "
               f"{m['kernel']}{congestion}, gRPC {m.get('grpc', '?')}. Command: "
               f"`{command_line(a)}`.\n")
    out.append("| scenario | server | calls/s | msgs/s | p50 µs | p99 µs | "
               "p99.9 µs | CPU µs/call | switches/call | load CPU | "
               "peak RSS MiB | h2load calls/s | h2load CPU µs/call (core) |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
               "| ---: | ---: | ---: |")
    for key, point in results["scenarios"].items():
        for name in servers:
            r = point[name]
            cpu = r["server_cpu_us_per_call"]
            h2 = r.get("h2load_calls_per_second")
            out.append(
                f"| {key} | {name} | {r['calls_per_second']:,.0f} | "
                f"{r['messages_per_second']:,.0f} | {r['p50_us']:,.0f} | "
                f"{r['p99_us']:,.0f} | {r['p99_9_us']:,.0f} | "
                f"{cpu:.1f} | {fmt_switches(r)} | {fmt_load(r)} | "
                f"{r['server_peak_rss_kib'] / 1024:.1f} | "
                f"{f'{h2:,.0f}' if h2 else '-'} | {fmt_h2load_cpu(r)} |")
    if any(point["ours"].get("ratio_to") for point in results["scenarios"].values()
           if "ours" in point):
        out.append("")
        out.append("Ours as a multiple of each baseline (messages/s and h2load: "
                   "higher is better; CPU per call and p99: lower is better; "
                   "calls/s round by round: the median and range of ours over "
                   "the baseline in each round; load-bound: the load generator "
                   f"used {LOAD_BOUND_SHARE:.0%} or more of its core for either "
                   "server, which may then have had room left):\n")
        out.append("| scenario | baseline | msgs/s | h2load | CPU/call | p99 | "
                   "calls/s round by round | load-bound |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for key, point in results["scenarios"].items():
            for base, r in point["ours"].get("ratio_to", {}).items():
                h2 = r.get("h2load_calls_per_second")
                cpu = r.get("server_cpu_per_call")
                out.append(f"| {key} | {base} | {r['messages_per_second']:.2f}x | "
                           f"{fmt_h2load(r) if h2 else '-'} | "
                           f"{f'{cpu:.2f}x' if cpu else '-'} | {r['p99']:.2f}x | "
                           f"{fmt_paired(r.get('paired_rounds'))} | "
                           f"{'yes' if r.get('load_bound') else 'no'} |")
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
    if "startup" in results:
        out.append("")
        out.append("Start-up, from exec to the first answered GetFeature "
                   "(median of each server's runs, servers alternating):\n")
        out.append("| server | median ms | runs ms |")
        out.append("| --- | ---: | --- |")
        for name, r in results["startup"].items():
            runs = " ".join(f"{t:.1f}" for t in r["runs_ms"])
            out.append(f"| {name} | {r['median_ms']:.1f} | {runs} |")
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
    if "redis_chat" in results:
        out.append("")
        out.append(format_redis_markdown(results["redis_chat"]))
    return "\n".join(out) + "\n"


def format_redis_markdown(redis_chat):
    """RouteChat with the notes in the process against in Redis."""
    out = ["RouteChat of 100 notes over 10 locations, 16 streams (`" +
           " ".join(redis_chat["client_flags"]) + "`); CPU in µs per call "
           "(one call is 100 notes):\n",
           "| layout | calls/s | msgs/s | p50 µs | p99 µs | reply p50 µs | "
           "reply p99 µs | server CPU | Redis CPU | Redis keys |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, title in REDIS_LAYOUTS:
        r = redis_chat[key]
        redis_cpu = r["redis_cpu_us_per_call"]
        out.append(f"| {title} | {r['calls_per_second']:,.0f} | "
                   f"{r['messages_per_second']:,.0f} | {r['p50_us']:,.0f} | "
                   f"{r['p99_us']:,.0f} | {r['reply_p50_us']:,.0f} | "
                   f"{r['reply_p99_us']:,.0f} | "
                   f"{r['server_cpu_us_per_call']:,.0f} | "
                   f"{f'{redis_cpu:,.0f}' if redis_cpu is not None else '-'} | "
                   f"{'-' if r['redis_keys'] is None else format(r['redis_keys'], ',')} |")
    out += ["", "Redis as a multiple of the in-process store (msgs/s: higher "
            "is better; the rest: lower is better):\n",
            "| replicas | msgs/s | p50 | p99 | server CPU/call | "
            "server + Redis CPU/call |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for replicas in (1, 2):
        x = redis_chat[f"redis_{replicas}"]["ratio_to_memory"]
        out.append(f"| {replicas} | {x['messages_per_second']:.2f}x | "
                   f"{x['p50']:.2f}x | {x['p99']:.2f}x | "
                   f"{x['server_cpu_per_call']:.2f}x | "
                   f"{x['total_cpu_per_call']:.2f}x |")
    return "\n".join(out)


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
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            facts["tcp_congestion_control"] = f.read().strip()
    except OSError:
        pass
    try:
        facts["grpc"] = subprocess.run(
            ["pkg-config", "--modversion", "grpc++"], stdout=subprocess.PIPE,
            text=True).stdout.strip()
    except OSError:
        pass
    return facts
