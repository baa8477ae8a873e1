"""``report.md`` of a causal-LM run: the generation evaluation beside its baselines."""

from __future__ import annotations

from pathlib import Path

from landfall import runs


def _f(x, fmt=".3f") -> str:
    return "-" if x is None else format(x, fmt)


def write_generation_report(out_dir: Path, title: str, result: dict, plots: dict) -> Path:
    v = result["validation"]
    lines = [f"# {title}", "", f"Scored on {v['n']} requests.", "",
             "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | MiniLM cosine | entity carried | "
             "mean words | seconds |", "|---|---|---|---|---|---|---|---|"]
    for name, s in v["systems"].items():
        lines.append(f"| {name} | {_f(s['rouge1'])} | {_f(s['rouge2'])} | {_f(s['rougeL'])} | "
                     f"{_f(s['similarity'])} | {_f(s['entity_carried'], '.1%')} | "
                     f"{_f(s['length_words']['mean'], '.0f')} | {_f(s['seconds'], '.0f')} |")
    leads = [(n, s["rougeL_lead_of_fine_tuned"]) for n, s in v["systems"].items()
             if "rougeL_lead_of_fine_tuned" in s]
    if leads:
        lines += ["", "The fine-tuned model's ROUGE-L lead (paired, 95 % bootstrap interval; an "
                  "interval that holds 0 is a tie):", ""]
        lines += [f"- over {n}: {d['mean'] * 100:+.1f} points [{d['ci95_low'] * 100:+.1f}, "
                  f"{d['ci95_high'] * 100:+.1f}]" for n, d in leads]
    ref = v["reference_length_words"]
    lines += ["", f"References: {ref['mean']:.0f} words on average (median {ref['median']:.0f}).",
              ""]
    loss = result.get("validation_loss") or {}
    if loss.get("loss") is not None:
        lines += [f"Validation loss per response token: {loss['loss']:.4f} (perplexity "
                  f"{loss['perplexity']:.2f}) at step {loss['step']}.", ""]
    t = result.get("train") or {}
    if t.get("trainable_params"):
        lines += [f"Trainable parameters: {t['trainable_params']:,} of {t['total_params']:,} "
                  f"({t.get('peft', 'none')}); training {t.get('train_seconds', 0) / 60:.1f} min, "
                  f"{t.get('samples_per_s', 0):.2f} samples/s.", ""]
    lines += ["## Per category (fine-tuned)", "", "| category | n | ROUGE-L | cosine |",
              "|---|---|---|---|"]
    for c, s in v["per_category"].items():
        lines.append(f"| {c} | {s['n']} | {_f(s['rougeL'])} | {_f(s.get('similarity'))} |")
    for name, path in plots.items():
        lines += ["", f"## {name}", "", f"![{name}]({path})"]
    return runs.write_text(out_dir / runs.REPORT, "\n".join(lines) + "\n")
