"""Results of a load run: the terminal table, JSON, CSV (one row per turn), and a PNG or HTML report."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bridge_loadtest.stats import METRICS, PERCENTILES, RunStats, TurnRecord


def result_dict(stats: RunStats, meta: dict[str, Any]) -> dict[str, Any]:
    """Everything ``--json`` writes: run parameters, percentiles in ms, counts, errors, processes."""
    out = dict(meta)
    out.update(stats.summary())
    out["timeseries"] = {
        "second": list(range(len(stats.seconds))),
        "turns": [s.turns for s in stats.seconds],
        "errors": [s.errors for s in stats.seconds],
        "underruns": [s.underruns for s in stats.seconds],
        "active_npcs": [s.active_npcs for s in stats.seconds],
        "bridge_ms_max": [round(s.bridge_max, 3) for s in stats.seconds],
        "bridge_ms_mean": [round(s.bridge_sum / s.bridge_count, 3) if s.bridge_count else None for s in stats.seconds],
    }
    return out


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def print_summary(console: Console, stats: RunStats, meta: dict[str, Any]) -> None:
    table = Table(title="latency (ms)", title_justify="left")
    table.add_column("metric")
    table.add_column("count", justify="right")
    for q in PERCENTILES:
        table.add_column(f"p{q:g}", justify="right")
    table.add_column("max", justify="right")
    for key, (label, _unit) in METRICS.items():
        s = stats.histograms[key].summary()
        if not s["count"] and key in ("interrupt", "audio_gap"):
            continue
        table.add_row(label, str(s["count"]), *(_fmt(s[f"p{q:g}"]) for q in PERCENTILES), _fmt(s["max"]))
    console.print(table)
    summary = stats.summary()
    turns, audio = summary["turns"], summary["audio"]
    console.print(
        f"sessions opened {stats.sessions_opened}, failed {stats.sessions_failed} · turns {turns['total']} "
        f"(completed {turns['completed']}, interrupted {turns['interrupted']}, failed {turns['failed']}, "
        f"cut at end {turns['cut_at_end']}, skipped as unsupported {turns['skipped_unsupported']}; "
        f"{', '.join(f'{k} {v}' for k, v in turns['by_kind'].items())})"
    )
    console.print(
        f"audio: {audio['frames']} frames, {audio['seconds']:.1f} s · underruns {audio['underruns']} "
        f"in {audio['turns_with_underruns']} turn(s) ({audio['underruns_upstream']} already late at the daemon's "
        f"receipt) · seq gaps {audio['seq_gaps']}"
        f" · prebuffer {meta.get('options', {}).get('prebuffer_ms', 0):g} ms"
    )
    if stats.errors:
        errors = Table(title="errors by code", title_justify="left")
        errors.add_column("code")
        errors.add_column("count", justify="right")
        for code, count in sorted(stats.errors.items(), key=lambda kv: -kv[1]):
            errors.add_row(code, str(count))
        console.print(errors)
    else:
        console.print("errors: none")
    procs = meta.get("processes") or {}
    for name, p in procs.items():
        console.print(
            f"{name} (pid {p.get('pid')}): CPU mean {_fmt(p.get('cpu_pct_mean'))} %, max {_fmt(p.get('cpu_pct_max'))} %"
            f" of a core; RSS {_fmt(p.get('rss_mb_baseline'))} → peak {_fmt(p.get('rss_mb_peak'))} MB"
        )
    lag = stats.histograms["generator_lag"].percentile(99)
    if lag is not None and lag > 20:
        console.print(
            f"[yellow]note: the load generator's event loop lagged {lag:.0f} ms at p99; client-side delay is "
            "part of these numbers (use fewer NPCs per generator, or Locust workers)[/yellow]"
        )


def write_json(path: Path, stats: RunStats, meta: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result_dict(stats, meta), indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, stats: RunStats) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=TurnRecord.columns())
        writer.writeheader()
        for rec in stats.turns:
            writer.writerow(rec.row())


def _figure(stats: RunStats, meta: dict[str, Any]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    fig.suptitle(
        f"convai-bridge loadtest: {meta.get('npcs')} NPCs, {meta.get('backend')} backend, "
        f"{meta.get('duration_s')} s ({meta.get('target', {}).get('description', '')})",
        fontsize=11,
    )
    turns = [t for t in stats.turns if not t.error or t.error == "cut"]
    ax = axes[0][0]
    for attr, label, marker in (("first_text_ms", "first text", "o"), ("first_audio_ms", "first audio", "x")):
        pts = [(t.start_s, getattr(t, attr)) for t in turns if getattr(t, attr) is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=8, marker=marker, label=label, alpha=0.6)
    ax.set_title("user turn end → first bot output, over time")
    ax.set_xlabel("run time (s)")
    ax.set_ylabel("ms")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)

    ax = axes[0][1]
    secs = list(range(len(stats.seconds)))
    ax.plot(secs, [s.bridge_max if s.bridge_count else math.nan for s in stats.seconds], label="max",
            color="tab:red")
    ax.plot(
        secs,
        [s.bridge_sum / s.bridge_count if s.bridge_count else math.nan for s in stats.seconds],
        label="mean",
        color="tab:blue",
    )
    ax.set_title("bridge-added latency per second (events)")
    ax.set_xlabel("run time (s)")
    ax.set_ylabel("ms")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(secs, [s.active_npcs for s in stats.seconds], color="tab:gray", linestyle="--", label="active NPCs")
    twin.set_ylabel("active NPCs")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="upper left")

    ax = axes[1][0]
    for key, label in (("first_text", "first text"), ("first_audio", "first audio"), ("session_open", "open")):
        data = stats.histograms[key].samples_for_plot()
        if data.size:
            ax.hist(data, bins=40, alpha=0.5, label=label)
    ax.set_title("latency histograms")
    ax.set_xlabel("ms")
    ax.set_ylabel("count")
    ax.legend()
    ax.grid(alpha=0.3)

    ax = axes[1][1]
    for key, label in (("bridge", "events"), ("bridge_audio", "audio_out (incl. pacing)")):
        data = stats.histograms[key].samples_for_plot()
        if data.size:
            lo, hi = max(1e-3, float(data.min())), max(float(data.max()), 1e-2)
            bins = [lo * (hi / lo) ** (i / 40) for i in range(41)] if hi > lo else 40
            ax.hist(data, bins=bins, alpha=0.5, label=label)
    ax.set_xscale("log")
    ax.set_title("bridge-added latency histogram")
    ax.set_xlabel("ms (log)")
    ax.set_ylabel("count")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_report(path: Path, stats: RunStats, meta: dict[str, Any]) -> None:
    """``.png``: the four plots; ``.html``: plots (embedded) plus the tables, one self-contained file."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = _figure(stats, meta)
    try:
        if path.suffix.lower() == ".html":
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            path.write_text(_html(stats, meta, base64.b64encode(buf.getvalue()).decode()), encoding="utf-8")
        else:
            fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)


def _html(stats: RunStats, meta: dict[str, Any], png_b64: str) -> str:
    rows = []
    for key, (label, _unit) in METRICS.items():
        s = stats.histograms[key].summary()
        cells = "".join(f"<td>{_fmt(s[f'p{q:g}'])}</td>" for q in PERCENTILES)
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{s['count']}</td>{cells}<td>{_fmt(s['max'])}</td></tr>")
    head = "".join(f"<th>p{q:g}</th>" for q in PERCENTILES)
    errors = "".join(
        f"<tr><td>{html.escape(code)}</td><td>{count}</td></tr>" for code, count in sorted(stats.errors.items())
    ) or "<tr><td colspan=2>none</td></tr>"
    summary = html.escape(json.dumps({k: v for k, v in result_dict(stats, meta).items() if k != "timeseries"},
                                     indent=2))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>convai-bridge loadtest</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>convai-bridge loadtest</h1>
<p>{html.escape(str(meta.get('npcs')))} NPCs · backend {html.escape(str(meta.get('backend')))} ·
{html.escape(str(meta.get('duration_s')))} s · {html.escape(str(meta.get('target', {}).get('description', '')))}</p>
<h2>Latency (ms)</h2><table><tr><th>metric</th><th>count</th>{head}<th>max</th></tr>{''.join(rows)}</table>
<h2>Errors by code</h2><table><tr><th>code</th><th>count</th></tr>{errors}</table>
<h2>Plots</h2><img alt="latency plots" src="data:image/png;base64,{png_b64}">
<h2>Summary</h2><pre>{summary}</pre></body></html>
"""
