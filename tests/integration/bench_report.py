"""Print bench-results.json (written by `make bench`) as one Markdown table, each result against its target.

python tests/integration/bench_report.py [bench-results.json]
"""

import json
import sys
from pathlib import Path
from typing import Any

RATIO_TARGET, RATIO_SLACK_SECONDS = 1.2, 0.05
COST_ESTIMATES_TARGET = 200
FOUR_WORKERS_SPEEDUP_TARGET = 3.0
FIRST_QUERY_TARGET = 2.0
FIXED_TAX_TARGET_SECONDS = 0.025
PSS_GROWTH_TARGET = 1.2  # times one columnar copy of the dataset
SQL_ON_POSTGRESQL_TARGET_BYTES = 150 * 2**20
LARGER_DATASET_TARGET = 12.0  # times the same release on ten times fewer rows


VERSION_RATIO_TARGET = 1.10


def _row(name: str, entry: dict[str, Any]) -> list[str]:
    if "version_ratio" in entry:
        now, baseline = entry["now_seconds"], entry["baseline_seconds"]
        result = f"baseline {baseline:.3f} s, ratio {entry['version_ratio']:.2f} ({entry['runs']} runs each)"
        met = _yes(entry["version_ratio"] <= VERSION_RATIO_TARGET)
        return [name, f"{now:.3f} s", "", result, f"≤ {VERSION_RATIO_TARGET:.2f} times the baseline", met]
    if "http_seconds" in entry:
        http, local = entry["http_seconds"], entry["in_process_seconds"]
        result = f"raw HTTP {http:.3f} s = in-process + {(http - local) * 1000:.0f} ms ({entry['runs']} runs)"
        met = _yes(http <= local + FIXED_TAX_TARGET_SECONDS)
        target = f"≤ in-process + {FIXED_TAX_TARGET_SECONDS * 1000:.0f} ms"
        return [name, f"{entry['client_seconds']:.3f} s", f"{local:.3f} s", result, target, met]
    if "ratio" in entry:
        seen, local = entry["client_seconds"], entry["in_process_seconds"]
        met = seen <= RATIO_TARGET * local + RATIO_SLACK_SECONDS
        return [name, f"{seen:.3f} s", f"{local:.3f} s", f"ratio {entry['ratio']:.2f}", "≤ 1.2 (+50 ms)", _yes(met)]
    if "requests_per_second" in entry:
        met = entry["requests_per_second"] >= COST_ESTIMATES_TARGET
        result = f"{entry['requests_per_second']:.1f} /s ({entry['requests']} in {entry['seconds']:.1f} s)"
        return [name, "", "", result, f"≥ {COST_ESTIMATES_TARGET} /s", _yes(met)]
    if "jobs_per_second" in entry:
        result = (
            f"{entry['jobs_per_second']:.2f} jobs/s ({entry['jobs']} in {entry['seconds']:.1f} s), "
            f"speed-up {entry['speedup']:.2f}"
        )
        four = name.startswith("Mixed load, 4 ")
        target = f"speed-up ≥ {FOUR_WORKERS_SPEEDUP_TARGET:.0f} ({entry['cpu_count']} cores)" if four else ""
        met = _yes(entry["speedup"] >= FOUR_WORKERS_SPEEDUP_TARGET) if four else ""
        return [name, "", "", result, target, met]
    if "first_seconds" in entry:
        return _scale_row(name, entry)
    return [name, "", "", json.dumps(entry), "", ""]


def _scale_row(name: str, entry: dict[str, Any]) -> list[str]:
    """A scale result against the targets that apply to it: first query, pool memory, and the 20 M-row time."""
    first, warm = entry["first_seconds"], entry["warm_seconds"]
    growth = entry["pool_pss_after"] - entry["pool_pss_before"]
    result = [
        f"first {first:.3f} s, warm {warm:.3f} s (ratio {first / warm:.1f})",
        f"pool PSS ({entry.get('pool_processes', 1)} processes) {entry['pool_pss_before'] / 2**20:.0f} → "
        f"{entry['pool_pss_after'] / 2**20:.0f} MiB",
    ]
    targets = [f"first ≤ {FIRST_QUERY_TARGET:.0f} times warm"]
    met = [first <= FIRST_QUERY_TARGET * warm]
    if "columnar_bytes" in entry:
        ratio = growth / entry["columnar_bytes"]
        result.append(
            f"growth {growth / 2**20:.0f} MiB = {ratio:.2f} times the {entry['columnar_bytes'] / 2**20:.0f} MiB copy"
        )
        if entry.get("source") == "PostgreSQL" and name.startswith("Scale: SmartNoise-SQL"):
            targets.append(f"growth ≤ {SQL_ON_POSTGRESQL_TARGET_BYTES / 2**20:.0f} MiB")
            met.append(growth <= SQL_ON_POSTGRESQL_TARGET_BYTES)
        else:
            targets.append(f"growth ≤ {PSS_GROWTH_TARGET} times copy")
            met.append(ratio <= PSS_GROWTH_TARGET)
    if "smaller_warm_seconds" in entry:
        ratio = warm / entry["smaller_warm_seconds"]
        result.append(f"{ratio:.1f} times the 2 M-row time")
        targets.append(f"≤ {LARGER_DATASET_TARGET:.0f} times 2 M rows")
        met.append(ratio <= LARGER_DATASET_TARGET)
    return [name, "", "", "; ".join(result), "; ".join(targets), " / ".join(_yes(m) for m in met)]


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table: benchmark, wall time seen, in-process time, result, target, met."""
    header = ["Benchmark", "Seen by client (median)", "In-process (median)", "Result", "Target", "Met"]
    rows = [header, ["---"] * len(header), *(_row(name, entry) for name, entry in results.items())]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results.json")
    print(table(json.loads(path.read_text())))
