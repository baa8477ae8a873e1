"""``landfall assistant build``: split the data, train (or adopt) the member runs, mine the
templates, index the knowledge base, choose the routing thresholds on the tuning rows, and
write the assistant's run directory with its manifest."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from landfall.apps.assistant import data as D
from landfall.apps.assistant.knowledge import Document, KnowledgeBase
from landfall.apps.assistant.prompts import grounded_prompt, sources_line
from landfall.config import Config
from landfall.errors import LandfallError

PASSAGE_DROPOUT = 0.2  # share of generator training rows without passages (the plain request)
UNANSWERABLE = 0.08  # out-of-domain requests with passages, answered "I don't know"


def kb_documents(rows: list[D.Row], prefix: str = "train") -> list[Document]:
    return [Document(f"{prefix}:{r.line}", r.request, r.response, r.intent, f"line {r.line}")
            for r in rows]


def generator_rows(cfg: Config, rows: list[D.Row], kb: KnowledgeBase, ood: list[str],
                   seed: int) -> list[dict]:
    """Training pairs of the grounded generator: each request with the top-k passages
    retrieved from ``kb`` (never its own pair), answered by its written response after a
    ``Sources:`` line naming the passages of the same intent; a share without passages; and
    out-of-domain requests whose answer is the don't-know message."""
    r_cfg, rng = cfg.retrieval, random.Random(seed)  # seeded sampling  # nosec B311
    own = {d.id: i for i, d in enumerate(kb.docs)}
    exclude = [{own[f"train:{r.line}"]} if f"train:{r.line}" in own else set() for r in rows]
    hits = kb.search([r.request for r in rows], r_cfg.top_k, exclude)
    out = []
    for r, found in zip(rows, hits, strict=True):
        if rng.random() < PASSAGE_DROPOUT:
            out.append({"instruction": r.request, "response": r.response, "intent": r.intent})
            continue
        passages = [(d.title, d.text) for d, _ in found]
        used = [i for i, (d, _) in enumerate(found, 1) if d.intent == r.intent]
        out.append({"instruction": grounded_prompt(r.request, passages, r_cfg.passage_words),
                    "response": sources_line(used) + "\n" + r.response, "intent": r.intent})
    n_ood = min(len(ood), round(UNANSWERABLE * len(rows)))
    texts = rng.sample(ood, n_ood)
    for text, found in zip(texts, kb.search(texts, r_cfg.top_k), strict=True):
        passages = [(d.title, d.text) for d, _ in found]
        out.append({"instruction": grounded_prompt(text, passages, r_cfg.passage_words),
                    "response": sources_line([]) + "\n" + cfg.assistant.dont_know_message,
                    "intent": D.OOS})
    rng.shuffle(out)
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    from landfall.runs import write_text

    return write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def sample_stratified(rows: list[D.Row], n: int, seed: int) -> list[D.Row]:
    if not n or n >= len(rows):
        return rows
    from landfall.data.splits import stratified_split

    class _Ex:
        def __init__(self, i: int) -> None:
            self.i, self.label = i, rows[i].intent

    _, keep = stratified_split([_Ex(i) for i in range(len(rows))], n / len(rows), seed)
    return [rows[x.i] for x in sorted(keep, key=lambda x: x.i)]


def say(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


class timed:
    """Say what starts and how long it took (the build's steps are minutes long)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> timed:
        self.t = time.perf_counter()
        say(f"{self.label} ...")
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            say(f"{self.label}: {time.perf_counter() - self.t:.1f} s")


# --- the build ---------------------------------------------------------------------------

def _member_overrides(cfg: Config) -> list[str]:
    return [x.strip() for x in cfg.members.set.split(";") if x.strip()]


def _is_preset(spec: str) -> bool:
    return spec.endswith((".toml", ".yaml", ".yml"))


def _train_member(name: str, preset: str, overrides: list[str], out: Path) -> Path:
    from landfall.config import load_config
    from landfall.training.run import train

    if (out / "landfall.toml").is_file() and (out / "model").is_dir():
        say(f"{name}: {out} is already trained (kept)")
        return out
    cfg = load_config(preset, overrides)
    with timed(f"training the {name} ({preset})"):
        train(cfg, out)
    return out


def _member(cfg: Config, name: str, run_dir: Path, prepare) -> str:
    """A member: adopted (a run directory, checked) or trained from a preset inside RUN."""
    from landfall.apps.assistant.manifest import check_member

    spec = getattr(cfg.members, name)
    if not spec:
        return ""
    if _is_preset(spec):
        if not Path(spec).is_file():
            raise LandfallError(f"members.{name}: preset {spec} does not exist")
        out = run_dir / "members" / name
        _train_member(name, spec, prepare() + _member_overrides(cfg), out)
        return f"members/{name}"
    check_member(spec, name)
    return str(Path(spec).resolve())


def _classifier_data(cfg: Config, splits: D.Splits, run_dir: Path, ood: list[str],
                     ood_tune: list[str]) -> list[str]:
    ho = D.holdout(cfg)
    rows = [{"text": r.request, "intent": r.intent} for r in splits.train if r.intent not in ho]
    rows += [{"text": t, "intent": D.OOS} for t in ood]
    tune = [{"text": r.request, "intent": r.intent} for r in splits.tune if r.intent not in ho]
    tune += [{"text": t, "intent": D.OOS} for t in ood_tune]
    write_jsonl(run_dir / "data" / "classifier_train.jsonl", rows)
    write_jsonl(run_dir / "data" / "classifier_tune.jsonl", tune)
    return [f"data.train={run_dir / 'data' / 'classifier_train.jsonl'}",
            f"data.validation={run_dir / 'data' / 'classifier_tune.jsonl'}",
            "data.text_field=text", "data.label_field=intent", f"train.seed={cfg.assistant.seed}"]


def _generator_data(cfg: Config, splits: D.Splits, run_dir: Path, ood: list[str],
                    embedder) -> list[str]:
    ho = D.holdout(cfg)
    train = [r for r in splits.train if r.intent not in ho]
    tune = [r for r in splits.tune if r.intent not in ho]
    # the passages of the generator's training prompts come from its own training pairs only
    # (never a held-out intent's, never the request's own pair)
    kb = KnowledgeBase.build(kb_documents(train), embedder)
    seed = cfg.assistant.seed
    sample = sample_stratified(train, cfg.members.generator_limit, seed)
    with timed(f"retrieving passages for {len(sample)} generator training pairs"):
        write_jsonl(run_dir / "data" / "generator_train.jsonl",
                    generator_rows(cfg, sample, kb, ood, seed))
        write_jsonl(run_dir / "data" / "generator_tune.jsonl",
                    generator_rows(cfg, tune, kb, ood, seed + 1))
    return [f"data.train={run_dir / 'data' / 'generator_train.jsonl'}",
            f"data.validation={run_dir / 'data' / 'generator_tune.jsonl'}",
            f"train.seed={seed}"]


def guard_on_vetted(run_dir: Path) -> dict:
    """How many of the business's own answers (templates, knowledge-base answers) the answer
    guard would withhold: refusals that are false by construction, for the user to review
    (``guardrails.output_threshold``) before the service refuses them to customers."""
    from landfall.apps.assistant.assistant import Assistant

    a = Assistant(run_dir, generator=False, fill_profile=False)
    out = {}
    for name, texts in (("templates", [t.text for ts in a.templates.values() for t in ts]),
                        ("knowledge", [d.text for d in a.kb.docs])):
        verdicts = a.guard["output"].check(texts)
        flagged = [i for i, v in enumerate(verdicts) if v.harmful]
        out[name] = {"answers": len(texts), "withheld": len(flagged),
                     "max_score": round(max((v.score for v in verdicts), default=0.0), 4),
                     "examples": [texts[i][:120] for i in flagged[:3]]}
    if out["templates"]["withheld"] or out["knowledge"]["withheld"]:
        say(f"warning: the answer guard withholds {out['templates']['withheld']} template(s) "
            f"and {out['knowledge']['withheld']} knowledge-base answer(s) of "
            f"{out['knowledge']['answers']} (manifest: guard_on_vetted_answers)")
    return out


def build(cfg: Config, run_dir: str | Path) -> dict:
    """Build (or finish building) the assistant run ``run_dir``; returns its summary."""
    import tomli_w

    from landfall import runs
    from landfall.apps.assistant import templates as T
    from landfall.apps.assistant.manifest import Manifest
    from landfall.apps.assistant.routing import candidates, choose_thresholds
    from landfall.apps.assistant.slots import EntityFinder, read_profile
    from landfall.config import expand_env
    from landfall.inference.embed import Embedder

    if cfg.task.name != "assistant":
        raise LandfallError(f"task.name is {cfg.task.name!r}: an assistant config says "
                            "[task] name = \"assistant\"")
    run_dir = Path(run_dir)
    a = cfg.assistant
    profile = read_profile(a.profile) if a.profile else {}  # a bad profile fails first
    candidates(cfg.retrieval.consensus_candidates)  # and a bad list of passage counts
    for name in ("classifier", "generator", "guard"):  # every input checked before training
        spec = getattr(cfg.members, name)
        if spec and not _is_preset(spec):
            from landfall.apps.assistant.manifest import check_member

            check_member(spec, name)
        elif spec and not Path(spec).is_file():
            raise LandfallError(f"members.{name}: preset {spec} does not exist")
    source = expand_env(a.data, "assistant.data")
    rows = D.read_rows(source, cfg, require_response=True)
    splits = D.split_rows(rows, cfg)
    ho = D.holdout(cfg)
    unknown = ho - {r.intent for r in rows}
    if unknown:
        raise LandfallError(f"assistant.holdout_intents: {sorted(unknown)} are not intents of "
                            f"{source}")
    run_dir.mkdir(parents=True, exist_ok=True)
    for part in ("train", "tune", "validation"):
        D.write_rows(run_dir / "data" / f"{part}.jsonl", getattr(splits, part))
    ood = D.out_of_domain(cfg, a.seed)
    rng = random.Random(a.seed)  # seeded sampling, not security  # nosec B311
    rng.shuffle(ood)
    n_tune = len(ood) // 5
    ood_tune, ood_train = ood[:n_tune], ood[n_tune:]
    embedder = Embedder(cfg.retrieval.embedder)
    members = {
        "classifier": _member(cfg, "classifier", run_dir,
                              lambda: _classifier_data(cfg, splits, run_dir, ood_train,
                                                       ood_tune)),
        "generator": _member(cfg, "generator", run_dir,
                             lambda: _generator_data(cfg, splits, run_dir, ood_train,
                                                     embedder)),
        "guard": _member(cfg, "guard", run_dir, lambda: []),
    }
    known = [r for r in splits.train if r.intent not in ho]
    with timed("mining templates"):
        T.write(run_dir / T.FILE, T.mine(known, embedder, a.templates_per_intent,
                                             a.template_centrality, a.seed))
    with timed(f"indexing {len(splits.train)} knowledge-base documents"):
        kb = KnowledgeBase.build(kb_documents(splits.train), embedder,
                                 dense_weight=cfg.retrieval.dense_weight,
                                 sparse_weight=cfg.retrieval.sparse_weight)
        kb.save(run_dir / "knowledge")
    if a.profile:
        runs.copy_file(a.profile, run_dir / "profile.toml")
    finder = EntityFinder.learn((r.entity_type, r.entity_value) for r in splits.train)
    runs.write_text(run_dir / runs.CONFIG, tomli_w.dumps(cfg.to_dict()))
    manifest = Manifest(run_dir, members, {"template": 1.01, "oos": 1.01, "kb_cosine": 1.0},
                        finder.to_json(), {
                            "data": source, "holdout_intents": sorted(ho),
                            "rows": {"train": len(splits.train), "tune": len(splits.tune),
                                     "validation": len(splits.validation)},
                            "profile_slots": sorted(profile)})
    manifest.write()
    with timed("choosing the routing thresholds on the tuning rows"):
        manifest.thresholds = choose_thresholds(run_dir, cfg, splits.tune, ood_tune)
    manifest.write()
    if members["guard"]:
        with timed("the answer guard on the templates and the knowledge base"):
            manifest.extra["guard_on_vetted_answers"] = guard_on_vetted(run_dir)
        manifest.write()
    say(f"assistant written to {run_dir}")
    return {"output": str(run_dir), "members": members, "thresholds": manifest.thresholds,
            "rows": manifest.extra["rows"], "templates": str(run_dir / T.FILE)}
