"""Everything a run needs from its data: examples, split, label set, token ids."""

from __future__ import annotations

from dataclasses import dataclass

from landfall.config import DataConfig, expand_env
from landfall.data.labels import encode_labels, infer_labels
from landfall.data.readers import Example, read_examples
from landfall.data.splits import blocked_split, stratified_split
from landfall.data.tokens import tokenize
from landfall.data.votes import vote_columns, vote_targets
from landfall.errors import ConfigError


@dataclass
class Split:
    examples: list[Example]
    y: list[int]
    docs: list[list[int]]  # token ids, no special tokens
    votes: list[list[float]] | None = None  # vote share per class (data.vote_fields)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]


@dataclass
class Prepared:
    labels: list[str]
    train: Split
    validation: Split
    train_source: str
    validation_source: str


def read_split(cfg: DataConfig, which: str, seed: int) -> tuple[list[Example], str]:
    raw = getattr(cfg, which)
    source = expand_env(raw, f"data.{which}")
    examples = read_examples(
        source, text_field=cfg.text_field, label_field=cfg.label_field,
        label_names=cfg.names(), extra_fields=vote_columns(cfg.vote_fields),
        # for an aclImdb root or a hub dataset: the official split of that name
        split="test" if which == "validation" else "train",
    )
    limit = cfg.limit if which == "train" else cfg.validation_limit
    if limit and limit < len(examples):
        # a seeded stratified sample, not the first rows: files are often sorted by label
        examples = stratified_split(examples, limit / len(examples), seed)[1]
    return examples, source


def carve(cfg: DataConfig, seed: int) -> tuple[list[Example], list[Example], list[str], str, str]:
    """A run's training and validation examples, its labels and both sources, before any
    ``validation_limit`` on a carved split: ``data.validation``'s file, or the seeded,
    stratified ``validation_fraction`` of train. Benches call it to score a run on exactly
    the split it was validated on."""
    if not cfg.train:
        raise ConfigError("data.train is empty: name a training file, folder or hub dataset")
    seed = cfg.split_seed_for(seed)
    train, train_source = read_split(cfg, "train", seed)
    labels = infer_labels(train, source=train_source)
    if cfg.validation:
        val, val_source = read_split(cfg, "validation", seed)
    else:
        if cfg.split_block:
            train, val = blocked_split(train, cfg.validation_fraction, seed, cfg.split_block)
            how = f"in blocks of {cfg.split_block} rows, "
        else:
            train, val = stratified_split(train, cfg.validation_fraction, seed)
            how = ""
        val_source = (f"{train_source} (seeded {cfg.validation_fraction:.0%} split, {how}"
                      f"seed {seed})")
    return train, val, labels, train_source, val_source


def prepare(cfg: DataConfig, tokenizer, seed: int) -> Prepared:
    """Read train (and validation, or carve it), infer labels, tokenise both (cached)."""
    train, val, labels, train_source, val_source = carve(cfg, seed)
    if not cfg.validation and cfg.validation_limit and cfg.validation_limit < len(val):
        val = stratified_split(val, cfg.validation_limit / len(val), cfg.split_seed_for(seed))[1]
    # augmentation comes after the split: augmented text never reaches validation
    if cfg.augment == "eda":
        from landfall.data.augment import augment_examples

        train = augment_examples(train, per_example=cfg.augment_per_example,
                                 alpha=cfg.augment_alpha, seed=seed)
    elif cfg.augment == "paraphrase":
        from landfall.data.paraphrase import paraphrase_examples

        train = paraphrase_examples(train, per_example=cfg.augment_per_example, seed=seed,
                                    model=cfg.augment_model)
    y_train = encode_labels(train, labels, label_field=cfg.label_field)
    y_val = encode_labels(val, labels, label_field=cfg.label_field)
    votes = vote_targets(train, labels, cfg.vote_fields) if cfg.vote_fields else None
    train_docs = tokenize([e.text for e in train], tokenizer, desc="tokenising train")
    val_docs = tokenize([e.text for e in val], tokenizer, desc="tokenising validation")
    return Prepared(
        labels, Split(train, y_train, train_docs, votes), Split(val, y_val, val_docs),
        train_source, val_source,
    )
