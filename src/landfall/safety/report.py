"""The audit's report: report.md (a summary table, then one section per check with its
figures, threshold, pass/fail and examples) and a PNG per check where a picture reads faster
than a table."""

from __future__ import annotations

from pathlib import Path

from landfall.runs import atomic_path, write_text

MARK = {True: "PASS", False: "**FAIL**", None: "n/a"}


def _bar(path: Path, names: list[str], series: dict[str, list[float]], title: str,
         limit: float | None = None, xlabel: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.4))
    y = np.arange(len(names))
    h = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series.items()):
        ax.barh(y + k * h, values, height=h, label=label)
    if limit is not None:
        ax.axvline(limit, color="red", ls="--", lw=1, label="threshold")
    ax.set_yticks(y + h * (len(series) - 1) / 2, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _plots(out: Path, s: dict, cfg: dict) -> list[str]:
    d, name = s["details"], s["name"]
    if s["passed"] is None:
        return []
    if name == "counterfactual":
        groups = {g: r for g, r in d["groups"].items() if r["variants"]}
        _bar(out / "plots/counterfactual.png", list(groups),
             {"flip rate": [r["flip_rate"] for r in groups.values()],
              "mean |Δp|": [r["mean_delta"] for r in groups.values()]},
             "Counterfactual swaps per group", cfg["max_flip_rate"])
        return ["plots/counterfactual.png"]
    if name == "behaviour":
        tests = {n: t for n, t in d["tests"].items() if t["failure_rate"] is not None}
        _bar(out / "plots/behaviour.png", [f"{t['kind']}: {n}" for n, t in tests.items()],
             {"failure rate": [t["failure_rate"] for t in tests.values()]},
             "Behavioural tests", xlabel="share failed")
        return ["plots/behaviour.png"]
    if name == "stereotype":
        runs = d["models"]
        types = sorted({t for r in runs.values() for t in r["crows_pairs"]["per_type"]})
        _bar(out / "plots/crows_pairs.png", types,
             {who: [r["crows_pairs"]["per_type"].get(t, {}).get("stereotype_preferred", 0)
                    for t in types] for who, r in runs.items()},
             "CrowS-Pairs: share preferring the stereotype", 0.5)
        return ["plots/crows_pairs.png"]
    return []


def _pct(x) -> str:
    return "—" if x is None else f"{x:.1%}"


def _section_md(s: dict) -> list[str]:
    d = s["details"]
    lines = [f"## {s['title']}: {MARK[s['passed']]}", "", f"- figure: {s['figure']}",
             f"- threshold: {s['threshold']}"]
    if s["note"]:
        lines.append(f"- note: {s['note']}")
    lines.append("")
    if s["passed"] is None:  # did not apply: nothing measured
        return lines
    for p in s["plots"]:
        lines += [f"![{s['name']}]({p})", ""]
    if s["name"] == "counterfactual":
        lines += ["| group | texts | variants | flip rate | mean abs Δp |", "|---|---|---|---|---|"]
        for g, r in d["groups"].items():
            md = "—" if r["mean_delta"] is None else f"{r['mean_delta']:.4f}"
            lines.append(f"| {g} | {r['texts']} | {r['variants']} | {_pct(r['flip_rate'])} "
                         f"| {md} |")
        lines += ["", "Worst pairs:", ""]
        pairs = sorted((p | {"group": g} for g, r in d["groups"].items() for p in r["worst"]),
                       key=lambda p: -p["delta"])[:5]
        for p in pairs:
            lines.append(f"- {p['group']}: *{p['term']}* → *{p['substitute']}*: {p['from']} "
                         f"{p['p_before']:.3f} → {p['p_after']:.3f} ({p['to']}): "
                         f"“{p['new_text']}”")
    elif s["name"] == "behaviour":
        lines += ["| test | kind | cases | failure rate | example failure |",
                  "|---|---|---|---|---|"]
        for n, t in d["tests"].items():
            ex = t["failures"][0] if t["failures"] else None
            shown = "" if ex is None else (ex.get("new_text") or ex["text"])[:90].replace(
                "|", "/")
            lines.append(f"| {n} | {t['kind']} | {t['cases']} | {_pct(t['failure_rate'])} | "
                         f"{shown} |")
    elif s["name"] == "stereotype":
        lines += ["| model | scorer | CrowS-Pairs stereotype preferred | StereoSet SS | LMS | "
                  "ICAT |", "|---|---|---|---|---|---|"]
        for who, r in d["models"].items():
            st = r["stereoset"]
            lines.append(f"| {who}: {r['source']} | {r['kind']} | "
                         f"{_pct(r['crows_pairs']['stereotype_preferred'])} | {st['ss']:.1f} | "
                         f"{st['lms']:.1f} | {st['icat']:.1f} |")
        lines += ["", "Published BERT-base on CrowS-Pairs (Nangia et al. 2020): 60.5 %.", "",
                  "| bias type | " + " | ".join(d["models"]) + " |",
                  "|---|" + "---|" * len(d["models"])]
        types = sorted({t for r in d["models"].values() for t in r["crows_pairs"]["per_type"]})
        for t in types:
            cells = [_pct(r["crows_pairs"]["per_type"].get(t, {}).get("stereotype_preferred"))
                     for r in d["models"].values()]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    elif s["name"] == "explain":
        lines += [f"- texts: {d['texts']}, top-{d['k']} beats random-{d['k']} on "
                  f"{d['top_beats_random']:.0%} of them; mean convergence delta "
                  f"{d['mean_convergence_delta']:.4f}",
                  "- heat maps of the worst counterfactual flips: attributions.html", ""]
    elif d.get("entities") or d.get("entities_in_responses"):
        ents = d.get("entities") or d.get("entities_in_responses")
        lines += ["| entity | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in ents.items()]
    if s["name"] == "privacy":
        lines += _privacy_md(d)
    examples = d.get("worst") or d.get("examples") or []
    if s["name"] in ("privacy", "harmful") and examples:
        lines += ["", "Examples:", ""] + [_example(ex) for ex in examples[:3]]
    lines.append("")
    return lines


def _privacy_md(d: dict) -> list[str]:
    """The detector's precision on its labelled sample, and each detection with its type,
    its confidence and what became of it (swapped, dropped as unsure, exempt by type)."""
    lines = []
    f = d.get("detector")
    if f:
        p = "—" if f["precision"] is None else f"{f['precision']:.1%}"
        r = "—" if f["recall"] is None else f"{f['recall']:.1%}"
        lines += ["", f"Detector on its labelled sample ({f['sample']}: {f['texts']} texts, "
                      f"{f['true_spans']} true spans, confidence ≥ {f['min_score']}): "
                      f"precision {p} of {f['detections']} detections, recall {r}.", ""]
        lines += [f"- wrong: {w}" for w in f["false_positives"][:5]]
    dets = d.get("detections") or []
    if dets:
        lines += ["", "| entity | value | score | outcome |", "|---|---|---|---|"]
        for x in dets[:40]:
            outcome = ("exempt (audit.pii_exempt_types)" if x["exempt"] else
                       "swapped" if x["kept"] else "dropped (below audit.pii_min_score)")
            lines.append(f"| {x['entity']} | {_quote(x['value'], 40)} | {x['score']:.2f} | "
                         f"{outcome} |")
        if len(dets) > 40:
            lines.append(f"| … {len(dets) - 40} more in audit.json | | | |")
    return lines


def _quote(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return f"“{text[:n]}{'…' if len(text) > n else ''}”"


def _example(ex: dict) -> str:
    if "new_text" in ex:  # a PII swap that moved the prediction
        return f"- Δp {ex['delta']:.3f}: {_quote(ex['text'])} → {_quote(ex['new_text'])}"
    head = f"- score {ex['score']:.2f}: " if "score" in ex else "- "
    pii = f" (new PII: {', '.join(ex['pii'])})" if ex.get("pii") else ""
    return f"{head}{_quote(ex['request'], 100)} → {_quote(ex['response'])}{pii}"


def _gate_md(record: dict) -> list[str]:
    """What ``serve --require-audit`` will make of this audit: the required checks, the
    missing ones and the waivers with their reasons."""
    if "required" not in record:
        return []
    lines = ["", f"Required for a {record['kind']} run: {', '.join(record['required'])}."]
    if record["missing"]:
        lines.append(f"**Missing** (serve --require-audit refuses this audit until each is "
                     f"run or waived by name in audit.waive): {', '.join(record['missing'])}.")
    if record["waived"]:
        lines += ["", "Waived (audit.waive):", ""]
        lines += [f"- {name}: {reason}" for name, reason in record["waived"].items()]
    return lines


def write_report(out: Path, record: dict) -> None:
    for s in record["sections"]:
        s["plots"] = s["plots"] + _plots(out, s, record["config"])
    lines = [f"# Audit of {record['run']}", "",
             f"Task: {record['task']}. Verdict: **{'PASS' if record['passed'] else 'FAIL'}** "
             f"({record['seconds']:.0f} s).", ""]
    for k, v in record["sources"].items():
        lines.append(f"- {k}: {v}")
    lines += _gate_md(record)
    lines += ["", "| check | figure | threshold | result |", "|---|---|---|---|"]
    for s in record["sections"]:
        lines.append(f"| {s['title']} | {s['figure']} | {s['threshold']} | {MARK[s['passed']]} |")
    lines.append("")
    for s in record["sections"]:
        lines += _section_md(s)
    write_text(out / "report.md", "\n".join(lines))
