"""Figures from the raw rounds, the Markdown the README takes, and the chart."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONDITION_LABELS = {"loopback": "loopback", "latency": "+30 ms (token, Graph)"}
API_KEYS = ("api", "api_reuse_port", "api_redis")


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _rounds(results: dict[str, Any], key: str, condition: str) -> list[dict[str, Any]]:
    target = results["targets"].get(key)
    return list(target["rounds"].get(condition, [])) if target else []


def _ratios(
    results: dict[str, Any], top: str, bottom: str, condition: str, metric: str = "rps"
) -> dict[str, float]:
    """Per-round ratios of two configurations measured in the same round."""
    pairs = zip(_rounds(results, top, condition), _rounds(results, bottom, condition), strict=False)
    return spread([a[metric] / b[metric] for a, b in pairs if b[metric]])


def _per_target(results: dict[str, Any], condition: str, metric: str) -> dict[str, Any]:
    return {
        key: spread([r[metric] for r in target["rounds"].get(condition, [])])
        for key, target in results["targets"].items()
    }


def figures(results: dict[str, Any]) -> dict[str, Any]:
    conditions = [
        c for c in CONDITION_LABELS if any(c in t["rounds"] for t in results["targets"].values())
    ]
    out: dict[str, Any] = {"conditions": conditions}
    for condition in conditions:
        steady = [r for key in API_KEYS for r in _rounds(results, key, condition)]
        warmups = {
            key: t["warmups"].get(condition, {})
            for key, t in results["targets"].items()
            if t["warmups"]
        }
        out[condition] = {
            "api_over_bare": _ratios(results, "api", "bare", condition),
            "api_reuse_port_over_bare": _ratios(results, "api_reuse_port", "bare", condition),
            "bare_over_api_server_cpu": _ratios(
                results, "bare", "api", condition, "server_cpu_ms_per_request"
            ),
            "api_over_naive": _ratios(results, "api", "naive", condition),
            "api_reuse_port_over_api": _ratios(results, "api_reuse_port", "api", condition),
            "api_redis_over_api": _ratios(results, "api_redis", "api", condition),
            "steady_state": {
                "requests": sum(r["requests"] for r in steady),
                "users": results["plan"]["users"],
                "token_calls": sum(r["calls"]["token"] for r in steady),
                "key_fetches": sum(r["calls"]["keys"] for r in steady),
                "metadata_fetches": sum(r["calls"]["openid-configuration"] for r in steady),
                "non_200": sum(
                    sum(n for s, n in r["statuses"].items() if s != "200") + r["socket_errors"]
                    for r in steady
                ),
            },
            "warmup_token_calls_per_user": {
                key: w.get("token_calls_per_user") for key, w in warmups.items()
            },
            "rps": _per_target(results, condition, "rps"),
            "p50_ms": _per_target(results, condition, "p50_ms"),
            "p99_ms": _per_target(results, condition, "p99_ms"),
            "server_cpu_ms_per_request": _per_target(
                results, condition, "server_cpu_ms_per_request"
            ),
            "emulator_cpu_ms_per_request": _per_target(
                results, condition, "emulator_cpu_ms_per_request"
            ),
            "busiest_worker_share": _per_target(results, condition, "busiest_worker_share"),
        }
    return out


# -- Markdown ------------------------------------------------------------------------------


def fmt(value: dict[str, float] | None, digits: int = 2) -> str:
    if not value:
        return "n/a"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    figs = results["figures"]
    plan = results["plan"]
    before = results["machine_before"]
    intro = (
        f"Measured {before['date']} at {before['commit'] or 'a working tree'} on "
        f"{before['cpus']} cores (load average before {before['load_average'][0]}, after "
        f"{results['machine_after']['load_average'][0]}); {results['elapsed_seconds']:.0f} s. "
        f"Each configuration: gunicorn with gunicorn.conf.py, 2 workers x 4 threads; wrk, "
        f"{plan['connections']} connections, tokens of {plan['users']} users rotated; "
        f"{plan['rounds']} alternating rounds of {plan['seconds']} s per condition. "
        "Values: median (min-max) over rounds; ratios are paired within a round."
    )
    sections = [
        intro,
        _configurations(results),
        _figures(results, figs),
        _cache(results["micro"]),
        _validation(results["micro"]["validation"]),
    ]
    if "profile" in results:
        sections.append(_profile(results["profile"]))
    return "\n\n".join(sections) + "\n"


def _configurations(results: dict[str, Any]) -> str:
    figs = results["figures"]
    header = ["configuration"]
    for condition in figs["conditions"]:
        label = CONDITION_LABELS[condition]
        header += [f"req/s, {label}", f"p50 / p99 ms, {label}"]
    header += ["server CPU ms/request, loopback", "busiest worker's CPU share", "failed requests"]
    rows = []
    for key, target in results["targets"].items():
        row = [target["label"]]
        for condition in figs["conditions"]:
            f = figs[condition]
            p50, p99 = f["p50_ms"].get(key), f["p99_ms"].get(key)
            row += [
                fmt(f["rps"].get(key), 0),
                f"{p50['median']:.1f} / {p99['median']:.1f}" if p50 and p99 else "n/a",
            ]
        loop = figs[figs["conditions"][0]]
        shares = [figs[c]["busiest_worker_share"].get(key) for c in figs["conditions"]]
        failed = sum(
            r["socket_errors"] + sum(n for s, n in r["statuses"].items() if s != "200")
            for rounds in target["rounds"].values()
            for r in rounds
        )
        row += [
            fmt(loop["server_cpu_ms_per_request"].get(key)),
            " / ".join(f"{s['median']:.2f}" if s else "n/a" for s in shares),
            str(failed),
        ]
        rows.append(row)
    return (
        "### Throughput and latency\n\n"
        + _table(header, rows)
        + "\n\nBusiest worker's CPU share: of the two workers' CPU time in a round, the "
        "part the busier one used (0.50 is an even spread, 1.00 one worker did all); "
        "per condition. Failed requests: answers other than 200 and socket errors, all "
        "rounds."
    )


def _figures(results: dict[str, Any], figs: dict[str, Any]) -> str:
    conditions = figs["conditions"]
    header = ["#", "figure", *(CONDITION_LABELS[c] for c in conditions), "target"]

    def row(number: str, name: str, cells: Sequence[str], target: str) -> list[str]:
        return [number, name, *cells, target]

    def each(key: str) -> list[str]:
        return [fmt(figs[c].get(key)) for c in conditions]

    def steady(c: str) -> str:
        s = figs[c]["steady_state"]
        return (
            f"{s['token_calls']} / {s['key_fetches']} in {s['requests']:,} requests "
            f"by {s['users']} users"
        )

    def warm(c: str, key: str) -> str:
        value = figs[c]["warmup_token_calls_per_user"].get(key)
        return "n/a" if value is None else f"{value:.2f}"

    redis_note = results["notes"].get(
        "api_redis", "not available: app/config.py does not know TOKEN_CACHE_URL yet"
    )
    redis = results["redis_cache"]
    rows = [
        row("1", "API / bare proxy, req/s", each("api_over_bare"), ">= 0.95"),
        row("1", "bare proxy / API, server CPU per request", each("bare_over_api_server_cpu"), ""),
        row(
            "1",
            "API with gunicorn --reuse-port / bare proxy, req/s",
            each("api_reuse_port_over_bare"),
            "",
        ),
        row(
            "2",
            "token-endpoint calls / key fetches after warm-up",
            [steady(c) for c in conditions],
            "0 / 0",
        ),
        row("3", "API / naive OBO, req/s", each("api_over_naive"), "higher is better"),
        row(
            "4",
            "token-endpoint calls per user, 2 instances on one Redis",
            [warm(c, "api_redis") if redis else redis_note for c in conditions],
            "1",
        ),
        row(
            "4",
            "API Redis / API in-memory, req/s",
            each("api_redis_over_api") if redis else [redis_note] * len(conditions),
            "",
        ),
        row(
            "",
            "for contrast: token-endpoint calls per user, 1 instance in memory",
            [warm(c, "api") for c in conditions],
            "1 per worker",
        ),
        row(
            "", "API --reuse-port / API shipped config, req/s", each("api_reuse_port_over_api"), ""
        ),
    ]
    return "### Figures\n\n" + _table(header, rows)


def _cache(micro: dict[str, Any]) -> str:
    level1 = micro["level1"]
    redis = micro.get("redis_model")
    sizes = list(level1["lookup_ms"])
    rows = []
    for size in sizes:
        rows.append(
            [
                f"{int(size):,}",
                fmt(level1["lookup_ms"][size], 3),
                fmt(redis["lookup_ms"].get(size), 3) if redis else "n/a",
            ]
        )
    ratio_key = next(k for k in level1 if k.startswith("ratio_"))
    largest, smallest = ratio_key.removeprefix("ratio_").split("_over_")
    rows.append(
        [
            f"{int(largest):,} / {int(smallest):,}",
            fmt(level1[ratio_key]),
            fmt(redis[ratio_key]) if redis else "n/a",
        ]
    )
    memory = level1["memory"]
    rss = ", ".join(f"{v:,} B at {int(k):,} users" for k, v in memory["rss_bytes_per_user"].items())
    secrets = memory["secret_chars_per_user"]
    lines = [
        "### Token cache lookup (in process; target: largest within 1.5x of smallest)",
        "",
        _table(
            [
                "users cached",
                "level 1 (PartitionedTokenCache + MSAL silent), ms CPU",
                f"Redis level: {redis['kind'] if redis else 'n/a'}, ms",
            ],
            rows,
        ),
        "",
        f"Memory per cached user: resident set {rss}; tracemalloc "
        f"{memory['tracemalloc_bytes_per_user']:,} B ({memory['tracemalloc_users']:,} users). "
        f"Secrets per user: access token {secrets['access_token']:,}, refresh token "
        f"{secrets['refresh_token']:,}, ID token {secrets['id_token']:,} characters.",
    ]
    if redis:
        used = redis["redis_used_memory_bytes_per_user"]
        lines.append(
            f"Redis level: entry of about {redis['entry_bytes']:,} B, Redis "
            f"used_memory {used[max(used, key=int)]:,} B per user."
        )
        misses = sum(redis.get("misses", {}).values())
        if misses:
            lines.append(
                f"Redis level: {misses} lookups missed (Redis slower than "
                "TOKEN_CACHE_TIMEOUT, or the circuit breaker open)."
            )
    return "\n".join(lines)


def _validation(validation: dict[str, Any]) -> str:
    rows = [
        [
            "new (never seen)",
            fmt(validation["validate_new_us"], 1),
            fmt(validation["bare_new_us"], 1),
            fmt(validation["ratio_new"]),
        ],
        [
            "seen before",
            fmt(validation["validate_seen_us"], 1),
            fmt(validation["bare_seen_us"], 1),
            fmt(validation["ratio_seen"]),
        ],
    ]
    top = ", ".join(f"{p['function']} {p['own_share']:.0%}" for p in validation["profile"][:5])
    return (
        "### Validation cost (figure 6)\n\n"
        + _table(["token", "validate, us CPU", "bare RSA-2048 verify, us CPU", "ratio"], rows)
        + f"\n\nOwn time in validate (cProfile): {top}."
    )


def _profile(profiles: dict[str, Any]) -> str:
    api, bare = profiles.get("api", {}), profiles.get("bare", {})
    if "parts" not in api:
        return f"### Profile\n\nnot available: {api.get('error')}"

    def per_request(summary: dict[str, Any]) -> dict[str, float]:
        cost = summary.get("server_cpu_ms_per_request", 0.0)
        return {p["name"]: p["share"] * cost for p in summary.get("parts", [])}

    api_ms, bare_ms = per_request(api), per_request(bare)
    rows = [
        [
            name,
            f"{share['share']:.0%}",
            f"{api_ms[name]:.2f}",
            f"{bare_ms.get(name, 0.0):.2f}" if bare_ms else "n/a",
        ]
        for name, share in ((p["name"], p) for p in api["parts"])
    ]
    rows.append(
        [
            "all",
            "100%",
            f"{api['server_cpu_ms_per_request']:.2f}",
            f"{bare.get('server_cpu_ms_per_request', 0.0):.2f}" if bare_ms else "n/a",
        ]
    )
    table = _table(
        [
            "part of warm GET /api/me",
            "API, share of samples",
            "API, CPU ms/request",
            "bare proxy, CPU ms/request",
        ],
        rows,
    )
    functions = ", ".join(f"{f['name']} {f['share']:.0%}" for f in api["functions"][:10])
    packages = ", ".join(f"{p['name']} {p['share']:.0%}" for p in api["packages"][:8])
    return (
        f"### Profile (py-spy on the workers, {api['samples']} busy samples of the API)"
        f"\n\n{table}\n\nAPI, own time by function: {functions}.\n\nAPI, own time by "
        f"package: {packages}."
    )


# -- chart ---------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = results["figures"]
    keys = list(results["targets"])
    labels = [results["targets"][k]["label"] for k in keys]
    figure, axes = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / max(1, len(figs["conditions"]))
    for axis, metric, title in (
        (axes[0], "rps", "requests/s (higher is better)"),
        (axes[1], "p99_ms", "p99 latency, ms (lower is better)"),
    ):
        for index, condition in enumerate(figs["conditions"]):
            values = [figs[condition][metric].get(k) or {} for k in keys]
            medians = [v.get("median", 0.0) for v in values]
            errors = [
                [m - v.get("min", m) for m, v in zip(medians, values, strict=True)],
                [v.get("max", m) - m for m, v in zip(medians, values, strict=True)],
            ]
            positions = [
                i + (index - (len(figs["conditions"]) - 1) / 2) * width for i in range(len(keys))
            ]
            axis.bar(
                positions, medians, width, yerr=errors, capsize=3, label=CONDITION_LABELS[condition]
            )
        axis.set_title(title)
        axis.set_xticks(range(len(keys)))
        axis.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8)
    before = results["machine_before"]
    figure.suptitle(
        f"GET /api/me, {before['cpus']} cores, median and min-max of "
        f"{results['plan']['rounds']} rounds ({before['date']})",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
