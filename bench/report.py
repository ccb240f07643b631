#!/usr/bin/env python3
"""Aggregates the runs of bench/run.sh into one JSON file and prints markdown tables.

    python3 bench/report.py RUNS.jsonl OUT.json < meta.json

RUNS.jsonl holds one bench-load result per line, extended by run.sh with the target, the
phase (saturation | open | rss), the round, the load percentage and the proxy's CPU per
request. Figures over rounds are medians (min–max shown for throughput). The markdown goes
to stdout; the JSON keeps every run as well.

`python3 bench/report.py --table OUT.json` prints the tables of an earlier result again.
"""

import json
import statistics
import sys

TARGETS = ["direct", "nginx", "njs", "translate", "shadow", "action", "passthrough"]
LABELS = {
    "direct": "direct (bench-upstream)",
    "nginx": "nginx proxy_pass",
    "njs": "nginx + njs translate `PUT /User/1001` (what a team would build)",
    "translate": "gateway translate `PUT /User/1001`",
    "shadow": "gateway shadow (legacy + v4 copy)",
    "action": "gateway action API `updatechangepassword`",
    "passthrough": "gateway legacy mode (plain proxy)",
}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def aggregate(runs, meta):
    present = [t for t in TARGETS if any(r["target"] == t for r in runs)]
    out = {"targets": {}}
    for t in present:
        sat = [r for r in runs if r["target"] == t and r["phase"] == "saturation"]
        rss = [r for r in runs if r["target"] == t and r["phase"] == "rss"]
        rps = [r["rps"] for r in sat]
        entry = {
            "saturation": {
                "rps_median": median(rps),
                "rps_min": min(rps) if rps else None,
                "rps_max": max(rps) if rps else None,
                "rps_rounds": rps,
                "p50_us": median([r["latency_us"]["p50"] for r in sat]),
                "p99_us": median([r["latency_us"]["p99"] for r in sat]),
                "errors": sum(r["non_2xx"] + r["io_errors"] for r in sat),
            },
            "cpu_us_per_req": median([r["proxy_cpu_us_per_req"] for r in sat]),
            "upstream_cpu_us_per_req": median([r["upstream_cpu_us_per_req"] for r in sat]),
            "open": {},
            "rss_phase": {
                "connections": rss[0]["connections"] if rss else None,
                "rss_max_kb": rss[0].get("proxy_rss_max_during_kb") if rss else None,
                "rps": rss[0]["rps"] if rss else None,
                "p99_us": rss[0]["latency_us"]["p99"] if rss else None,
                "errors": sum(r["non_2xx"] + r["io_errors"] for r in rss),
            },
            "peak_rss_kb": meta.get("peak_rss_kb", {}).get(t),
        }
        for pct in meta["settings"]["loads_pct"]:
            op = [r for r in runs if r["target"] == t and r["phase"] == "open" and r["load_pct"] == pct]
            if not op:
                continue
            rate = op[0]["target_rate"]
            kept = median([r["rps"] for r in op])
            entry["open"][str(pct)] = {
                "rate": rate,
                "achieved_rps": kept,
                # Fell behind the schedule: answers in the window below 97 % of the rate, or
                # answers still missing after the grace period.
                "overloaded": any(
                    r["rps"] < 0.97 * rate or r["unfinished"] > 0 for r in op
                ),
                "p50_us": median([r["latency_us"]["p50"] for r in op]),
                "p99_us": median([r["latency_us"]["p99"] for r in op]),
                "p999_us": median([r["latency_us"]["p999"] for r in op]),
                "max_us": max(r["latency_us"]["max"] for r in op),
                "send_lag_mean_us": median([r["send_lag_us"]["mean"] for r in op]),
                "cpu_us_per_req": median([r["proxy_cpu_us_per_req"] for r in op]),
                "errors": sum(r["non_2xx"] + r["io_errors"] for r in op),
            }
        out["targets"][t] = entry

    tg = out["targets"]
    # Added latency: the target's percentile minus the direct upstream's at the same rate.
    if "direct" in tg:
        for t, e in tg.items():
            for pct, o in e["open"].items():
                d = tg["direct"]["open"].get(pct)
                if d:
                    for q in ("p50", "p99", "p999"):
                        o[f"added_{q}_us"] = round(o[f"{q}_us"] - d[f"{q}_us"], 1)

    def rps(t):
        return tg.get(t, {}).get("saturation", {}).get("rps_median")

    def cpu(t):
        return tg.get(t, {}).get("cpu_us_per_req")

    out["ratios"] = {
        "throughput": {
            "translate/nginx": ratio(rps("translate"), rps("nginx")),
            "translate/direct": ratio(rps("translate"), rps("direct")),
            "action/nginx": ratio(rps("action"), rps("nginx")),
            "action/direct": ratio(rps("action"), rps("direct")),
            "passthrough/nginx": ratio(rps("passthrough"), rps("nginx")),
            "njs/nginx": ratio(rps("njs"), rps("nginx")),
            "translate/njs": ratio(rps("translate"), rps("njs")),
            "action/njs": ratio(rps("action"), rps("njs")),
            "shadow/translate": ratio(rps("shadow"), rps("translate")),
            "shadow/nginx": ratio(rps("shadow"), rps("nginx")),
            "nginx/direct": ratio(rps("nginx"), rps("direct")),
        },
        "cpu_per_request": {
            "translate/nginx": ratio(cpu("translate"), cpu("nginx")),
            "action/nginx": ratio(cpu("action"), cpu("nginx")),
            "shadow/translate": ratio(cpu("shadow"), cpu("translate")),
            "passthrough/nginx": ratio(cpu("passthrough"), cpu("nginx")),
            "njs/nginx": ratio(cpu("njs"), cpu("nginx")),
            "translate/njs": ratio(cpu("translate"), cpu("njs")),
        },
    }

    goals = []
    r = out["ratios"]["throughput"]["translate/nginx"]
    goals.append({"goal": "translated throughput ≥ nginx proxy_pass (ratio ≥ 1.0)",
                  "value": r, "met": r is not None and r >= 1.0,
                  # The same ratio from CPU per request (1 core's capacity), which the
                  # neighbours on a shared machine disturb far less than req/s.
                  "value_by_cpu": ratio(cpu("nginx"), cpu("translate"))})
    t50 = tg.get("translate", {}).get("open", {}).get("50")
    n50 = tg.get("nginx", {}).get("open", {}).get("50")
    if t50 and n50 and "added_p99_us" in t50:
        diff = round(t50["added_p99_us"] - n50["added_p99_us"], 1)
        goals.append({"goal": "added p99 at 50 % load within 1 ms of nginx's",
                      "value_us": diff, "overloaded": t50["overloaded"],
                      "met": diff <= 1000 and not t50["overloaded"]})
    else:
        goals.append({"goal": "added p99 at 50 % load within 1 ms of nginx's", "met": None})
    prss = tg.get("translate", {}).get("rss_phase", {}).get("rss_max_kb")
    conns = meta["settings"]["rss_connections"]
    goals.append({"goal": f"peak RSS < 30 MB (MiB) at {conns} connections (translate)",
                  "value_mb": round(prss / 1024, 1) if prss else None,
                  "met": prss is not None and prss < 30 * 1024})
    s = out["ratios"]["throughput"]["shadow/translate"]
    goals.append({"goal": "shadow ≥ 90 % of translate throughput",
                  "value": s, "met": s is not None and s >= 0.9})
    out["goals"] = goals
    return out


def fmt(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ms(us):
    return "–" if us is None else f"{us / 1000:.2f}"


def tables(res):
    tg = res["targets"]
    s = res["settings"]
    m = res["machine"]
    lines = []
    lines.append(f"Load benchmark, {res['date']} — {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
                 f"{m['rustc']}, {m['nginx']}; load average at start {res['loadavg_start']} "
                 f"(shared machine). Proxy on cores {s['proxy_cpu']} ({s.get('cores', 1)} worker(s): nginx "
                 f"worker processes, gateway --workers), upstream and load generator on cores "
                 f"{s['load_cpu']}. {s['rounds']} "
                 f"interleaved rounds × {s['seconds']} s per run, {s['connections']} keep-alive "
                 f"connections.")
    lines.append("")
    # The ×njs column (nginx + njs doing the same translation) only where njs was measured.
    njs = tg.get("njs", {}).get("saturation", {}).get("rps_median")
    njs_col = " ×njs |" if "njs" in tg else ""
    lines.append("| target | saturated req/s (median, min–max) | ×nginx |" + njs_col + " ×direct | proxy CPU µs/req | "
                 f"req/s per core (10⁶ ÷ CPU µs) | RSS MiB at {s['rss_connections']} conns | peak RSS MiB (run) |")
    lines.append("|---|---:|---:|" + ("---:|" if njs_col else "") + "---:|---:|---:|---:|---:|")
    nginx = tg.get("nginx", {}).get("saturation", {}).get("rps_median")
    direct = tg.get("direct", {}).get("saturation", {}).get("rps_median")
    for t, e in tg.items():
        sat = e["saturation"]
        peak = e["peak_rss_kb"]
        at = e["rss_phase"].get("rss_max_kb")
        cap = 1e6 / e["cpu_us_per_req"] if e["cpu_us_per_req"] else None
        njs_cell = f" {fmt(ratio(sat['rps_median'], njs), 2)} |" if njs_col else ""
        lines.append(
            f"| {LABELS[t]} | {fmt(sat['rps_median'])} ({fmt(sat['rps_min'])}–{fmt(sat['rps_max'])}) "
            f"| {fmt(ratio(sat['rps_median'], nginx), 2)} |{njs_cell} {fmt(ratio(sat['rps_median'], direct), 2)} "
            f"| {fmt(e['cpu_us_per_req'], 1)} | {fmt(cap)} "
            f"| {fmt(at / 1024 if at else None, 1)} | {fmt(peak / 1024 if peak else None, 1)} |")
    if "njs" in tg and "translate" in tg:
        r = res.get("ratios", {})
        lines.append("")
        lines.append(
            "Against what a team would otherwise build (nginx + njs doing the same translation): "
            f"gateway translate {fmt(r.get('throughput', {}).get('translate/njs'), 2)}× njs's req/s, "
            f"{fmt(ratio(tg['njs'].get('cpu_us_per_req'), tg['translate'].get('cpu_us_per_req')), 2)}× "
            "by proxy CPU µs per request (njs's ÷ the gateway's); njs itself "
            f"{fmt(r.get('throughput', {}).get('njs/nginx'), 2)}× nginx proxy_pass.")
    lines.append("")
    loads = [str(p) for p in s["loads_pct"]]
    head = "| target | " + " | ".join(
        f"{p} % ({fmt(next((e['open'][p]['rate'] for e in tg.values() if p in e['open']), None))} req/s) p50 / p99 / p99.9 ms"
        for p in loads) + " | added p99 vs direct @ 50 % (ms) |"
    lines.append(head)
    lines.append("|---|" + "---:|" * (len(loads) + 1))
    for t, e in tg.items():
        cells = []
        for p in loads:
            o = e["open"].get(p)
            if not o:
                cells.append("–")
                continue
            c = f"{ms(o['p50_us'])} / {ms(o['p99_us'])} / {ms(o['p999_us'])}"
            if o["overloaded"]:
                c += f" ⚠ overloaded (kept {fmt(o['achieved_rps'])} req/s)"
            cells.append(c)
        o50 = e["open"].get("50", {})
        added = o50.get("added_p99_us")
        lines.append(f"| {LABELS[t]} | " + " | ".join(cells) + f" | {ms(added) if t != 'direct' else '–'} |")
    lines.append("")
    lines.append("| project target | measured | met |")
    lines.append("|---|---:|:---:|")
    for g in res["goals"]:
        if "value" in g:
            v = fmt(g["value"], 2) if g["value"] is not None else "–"
            if g.get("value_by_cpu") is not None:
                v += f" (by CPU µs/req: {fmt(g['value_by_cpu'], 2)})"
        elif "value_us" in g:
            v = f"{g['value_us'] / 1000:+.2f} ms" + (" (overloaded)" if g.get("overloaded") else "")
        elif "value_mb" in g:
            v = f"{fmt(g['value_mb'], 1)} MiB"
        else:
            v = "–"
        met = {True: "yes", False: "**no**", None: "–"}[g["met"]]
        lines.append(f"| {g['goal']} | {v} | {met} |")
    sh = res.get("shadow_report")
    if sh and sh.get("rows"):
        row = sh["rows"][0]
        lines.append("")
        lines.append(f"Shadow copies over the whole run: {row.get('compared', 0):,} compared "
                     f"({row.get('matched', 0):,} matched, {row.get('differing', 0):,} differing), "
                     f"{row.get('dropped', 0):,} dropped by the concurrency/queue bound, "
                     f"{row.get('v4_errors', 0):,} v4 errors.")
    return "\n".join(lines)


def progress_line(runs_path):
    """One line about the last run, for the console while the benchmark runs."""
    r = json.loads(open(runs_path).read().splitlines()[-1])
    lat = r["latency_us"]
    rate = r["target_rate"] or "-"
    return (f"  {r['target']:<9} {r['phase']:<10} c={r['connections']:<3} rate={rate!s:<7} "
            f"req/s={r['rps']:<9} p50={lat['p50']}us p99={lat['p99']}us p99.9={lat['p999']}us "
            f"cpu/req={r['proxy_cpu_us_per_req']}us non2xx={r['non_2xx']} io_err={r['io_errors']} "
            f"unfinished={r['unfinished']}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--line":
        print(progress_line(sys.argv[2]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(tables(json.load(open(sys.argv[2]))))
        return
    runs_path, out_path = sys.argv[1], sys.argv[2]
    meta = json.load(sys.stdin)
    runs = [json.loads(line) for line in open(runs_path) if line.strip()]
    res = dict(meta)
    res.update(aggregate(runs, meta))
    res["runs"] = runs
    with open(out_path, "w") as f:
        json.dump(res, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(tables(res))


if __name__ == "__main__":
    main()
