"""Deterministic sample corpus for the demo, the tests and the benchmarks.

Made to be hard the way real data is (the easy version let a naive baseline score 1.00):
topic vocabularies overlap (each topic shares 40% of its words with a neighbour topic), label
noise and annotator errors are class-dependent (most go to that confusable neighbour),
near-duplicates are made by real edits (word substitutions, deletions, insertions, swapped
sentences, boilerplate headers and footers), and the eval set's contamination is partial and
reformatted (re-cased, re-punctuated, re-spaced, hard-wrapped), beside near-miss copies that
share no 13 words in a row and must stay clean.

Writes into OUTDIR:
- `corpus.jsonl`: English-like documents (topic vocabulary + Zipfian common words, sentences,
  punctuation, accents, CJK, emoji), planted byte-identical copies, reformatted copies (differing
  only in case or whitespace: near duplicates at Jaccard 1.0) and near-duplicates with controlled
  edit rates, a labelled subset whose given `label` carries planted noise, and a few deliberately
  broken lines;
- `labels.jsonl`: one row per (item, annotator, label), annotators of planted accuracy;
- `truth.json`: the planted ground truth (byte-identical groups, reformatted copies, edit rates,
  true labels, noisy items, annotator accuracies, broken lines).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from warehouse.outputs import OutputDir

TOPICS = ["sports", "science", "finance", "health", "travel", "cooking"]
FUNCTION_WORDS = ["the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "they", "you", "were", "her", "she", "there", "been", "one", "all", "we", "their"]
ACCENTED = ["café", "naïve", "résumé", "façade", "über", "niño", "São", "Zürich", "crème", "jalapeño"]
CJK = ["数据", "模型", "训练", "语言", "東京", "研究", "학습", "データ"]
EMOJI = ["🙂", "🚀", "📈", "🍜", "⚽", "🧪"]
EDIT_RATES = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
TOPIC_WORDS, SHARED_WORDS = 250, 100  # each topic's last 100 words are its neighbour's first 100
TOPIC_SHARE = 0.15  # share of a document's words drawn from its topic's vocabulary
MIXED_DOCS, MIXED_SHARE = 0.3, 0.4  # 30% of documents take 40% of their topic words from the neighbour
NEIGHBOUR_SHARE = 0.7  # share of label flips and annotator errors that go to the neighbour topic
BOILERPLATE = ["Subscribe to our newsletter for more stories like this one.",
               "All rights reserved. Reproduced with permission of the original publisher.",
               "Share this article: email, print or save it for later reading.",
               "Posted in General | Leave a comment | Read the full story on our site."]
ANNOTATOR_ACCURACY = {"ann_a": 0.95, "ann_b": 0.9, "ann_c": 0.85, "ann_d": 0.8, "ann_e": 0.6}
BROKEN_LINES = [
    b'{"id": "broken-1", "text": "an unterminated string}',
    b'{"id": "broken-2", "body": "the text field is missing"}',
    b'{"id": "broken-3", "text": 12345}',
    b'{"id": "broken-4", "text": "   "}',
    b'{"id": "broken-5", "text": "bad bytes \xff\xfe here"}',
    b'["an", "array", "not", "an", "object"]',
]


@dataclass(frozen=True)
class DemoConfig:
    docs: int = 5000
    seed: int = 0
    words_mean: int = 250
    exact_dup_rate: float = 0.03
    near_dup_rate: float = 0.05
    labelled: int | None = None  # default: min(2000, docs // 5)
    label_noise: float = 0.08
    annotators_per_item: int = 3

    def __post_init__(self) -> None:
        if self.docs < 1:
            raise ValueError("docs must be >= 1")
        if self.words_mean < 5:
            raise ValueError("words_mean must be >= 5")
        if not 0 <= self.exact_dup_rate + self.near_dup_rate < 1:
            raise ValueError("exact_dup_rate + near_dup_rate must be in [0, 1)")
        if not 0 <= self.label_noise < 1:
            raise ValueError("label_noise must be in [0, 1)")


def _make_vocab(rng: np.random.Generator, n: int) -> list[str]:
    onsets = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou"]
    codas = ["", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "rk"]
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(1, 4))
        w = "".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] for _ in range(k))
        words.add(w + codas[rng.integers(len(codas))])
    return sorted(words)


class _Writer:
    def __init__(self, cfg: DemoConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        own = TOPIC_WORDS - SHARED_WORDS
        vocab = _make_vocab(self.rng, 6000 + own * len(TOPICS))
        self.rng.shuffle(vocab)
        self.common = np.array(FUNCTION_WORDS + vocab[:6000], dtype=object)
        ranks = np.arange(1, len(self.common) + 1)
        self.common_cdf = np.cumsum(1 / ranks) / (1 / ranks).sum()
        pool = vocab[6000:] + vocab[6000:6000 + SHARED_WORDS]  # cyclic: the last topic overlaps the first
        self.topic_words = [np.array(pool[own * t: own * t + TOPIC_WORDS], dtype=object)
                            for t in range(len(TOPICS))]

    def confused(self, topic: int) -> str:
        """A wrong label: mostly the neighbour topic (the one sharing vocabulary), else any other."""
        if self.rng.random() < NEIGHBOUR_SHARE:
            return TOPICS[(topic + 1) % len(TOPICS)]
        return str(self.rng.choice([t for t in TOPICS if t != TOPICS[topic]]))

    def words(self, topic: int) -> list[str]:
        n = max(5, int(self.rng.lognormal(np.log(self.cfg.words_mean), 0.35)))
        from_topic = self.rng.random(n) < TOPIC_SHARE
        out = self.common[np.minimum(np.searchsorted(self.common_cdf, self.rng.random(n)), len(self.common) - 1)]
        k = int(from_topic.sum())
        if k:
            # Some documents sit between two topics: part of their topic words are the neighbour's.
            mix = MIXED_SHARE if self.rng.random() < MIXED_DOCS else 0.0
            other = self.rng.random(k) < mix
            words = self.rng.choice(self.topic_words[topic], size=k)
            if other.any():
                words[other] = self.rng.choice(self.topic_words[(topic + 1) % len(TOPICS)], size=int(other.sum()))
            out[from_topic] = words
        out = out.tolist()
        r = self.rng.random()
        if r < 0.10:
            out[int(self.rng.integers(n))] = ACCENTED[int(self.rng.integers(len(ACCENTED)))]
        elif r < 0.14:
            out[int(self.rng.integers(n))] = CJK[int(self.rng.integers(len(CJK)))]
        elif r < 0.17:
            out[int(self.rng.integers(n))] += EMOJI[int(self.rng.integers(len(EMOJI)))]
        return out

    def render(self, words: list[str]) -> str:
        """Sentences of 6-20 words: capitalised, commas, full stops, the odd question mark."""
        parts: list[str] = []
        i = 0
        while i < len(words):
            k = int(self.rng.integers(6, 21))
            sent = words[i:i + k]
            sent[0] = sent[0][:1].upper() + sent[0][1:]
            if len(sent) > 8:
                c = int(self.rng.integers(3, len(sent) - 3))
                sent[c] = sent[c] + ","
            parts.append(" ".join(sent) + ("?" if self.rng.random() < 0.08 else "."))
            i += k
        return " ".join(parts)

    def edit(self, words: list[str], rate: float, topic: int) -> list[str]:
        """Substitute, delete or insert ~rate of the words (at least one edit)."""
        out = list(words)
        n_edits = max(1, round(rate * len(out)))
        for _ in range(n_edits):
            op = self.rng.random()
            pos = int(self.rng.integers(len(out)))
            new = str(self.rng.choice(self.topic_words[topic]))
            if op < 0.6:
                out[pos] = new
            elif op < 0.8 and len(out) > 5:
                del out[pos]
            else:
                out.insert(pos, new)
        return out

    def near_copy(self, words: list[str], rate: float, topic: int) -> tuple[str, list[str]]:
        """A near-duplicate as people make them: word edits, then perhaps two sentences swapped
        and a boilerplate header or footer. Returns (text, the edits made)."""
        how = ["words"]
        sentences = self.render(self.edit(words, rate, topic)).split(". ")
        if len(sentences) > 3 and self.rng.random() < 0.3:
            i = int(self.rng.integers(len(sentences) - 2))
            sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
            how.append("reorder")
        text = ". ".join(sentences)
        if self.rng.random() < 0.3:
            plate = BOILERPLATE[int(self.rng.integers(len(BOILERPLATE)))]
            text = f"{plate} {text}" if self.rng.random() < 0.5 else f"{text} {plate}"
            how.append("boilerplate")
        return text, how


def scaling_observations(path: str | Path, seed: int = 0, noise: float = 0.01) -> dict:
    """Write a synthetic isoFLOP-style sweep (N, D, loss) drawn from a known Chinchilla-form law with
    multiplicative noise, for tests that check a fit recovers a known law. Not measurements:
    the file is named so, and the demo fits Epoch AI's published points instead."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    true = {"E": 1.85, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    rows = []
    for c in np.geomspace(1e18, 1e21, 7):
        for n in np.geomspace(2e7, 2e9, 9):
            d = c / (6 * n)
            if not 1e8 <= d <= 1e12:
                continue
            loss = true["E"] + true["A"] / n ** true["alpha"] + true["B"] / d ** true["beta"]
            rows.append({"N": n, "D": d, "loss": loss * float(np.exp(rng.normal(0, noise))), "run": f"c{c:.0e}-n{n:.0e}"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return {"path": str(path), "points": len(rows), "true_law": true}


FILES = ("corpus.jsonl", "labels.jsonl", "truth.json", "scaling_synthetic.csv", "eval_set.jsonl",
         "predictions_previous.jsonl", "predictions_current.jsonl", "gates.toml")


def generate(outdir: str | Path, cfg: DemoConfig = DemoConfig(), force: bool = False) -> dict:
    """Write the sample corpus; return a summary (paths and planted counts).

    The files are made in a staging folder and published together; a file of the user's with
    one of these names is never replaced unless `force` (warehouse.outputs)."""
    target = OutputDir(outdir, force=force, what="sample-data folder")
    target.check_writable(FILES)
    stage = target.staging()
    try:
        summary = _generate(stage, cfg)
        here, there = str(stage), str(target.path)
        truth = stage / "truth.json"
        truth.write_text(truth.read_text().replace(json.dumps(here)[1:-1], json.dumps(there)[1:-1]))
        target.publish(stage, list(FILES))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {k: v.replace(here, there) if isinstance(v, str) else v for k, v in summary.items()}


def _generate(out: Path, cfg: DemoConfig) -> dict:
    w = _Writer(cfg)
    rng = w.rng
    n_labelled = cfg.labelled if cfg.labelled is not None else min(2000, cfg.docs // 5)
    base: list[tuple[str, int, list[str], str]] = []  # id, topic, words, text
    records: list[dict] = []
    exact_groups: dict[str, list[str]] = {}
    reformatted: list[dict] = []
    near: list[dict] = []
    for i in range(cfg.docs):
        doc_id = f"doc-{i:07d}"
        r = rng.random()
        if base and r < cfg.exact_dup_rate:
            src_id, topic, words, text = base[int(rng.integers(len(base)))]
            if rng.random() < 0.3:  # same after normalisation: case or whitespace differ (near, J = 1)
                how = "upper" if rng.random() < 0.5 else "spaces"
                text = text.upper() if how == "upper" else text.replace(" ", "  ", 3)
                reformatted.append({"id": doc_id, "source": src_id, "how": how})
            else:  # byte-identical
                exact_groups.setdefault(src_id, [src_id]).append(doc_id)
        elif base and r < cfg.exact_dup_rate + cfg.near_dup_rate:
            src_id, topic, words, _ = base[int(rng.integers(len(base)))]
            rate = float(EDIT_RATES[int(rng.integers(len(EDIT_RATES)))])
            text, how = w.near_copy(words, rate, topic)
            near.append({"id": doc_id, "source": src_id, "edit_rate": rate, "edits": how})
        else:
            topic = int(rng.integers(len(TOPICS)))
            words = w.words(topic)
            text = w.render(words)
            base.append((doc_id, topic, words, text))
        records.append({"id": doc_id, "text": text, "topic": TOPICS[topic]})

    # Labelled subset: the given label is the topic, flipped for a planted fraction.
    order = rng.permutation(len(records))[:n_labelled]
    true_labels: dict[str, str] = {}
    noisy: list[str] = []
    for idx in sorted(order.tolist()):
        rec = records[idx]
        true_labels[rec["id"]] = rec["topic"]
        given = rec["topic"]
        if rng.random() < cfg.label_noise:
            given = w.confused(TOPICS.index(rec["topic"]))
            noisy.append(rec["id"])
        rec["label"] = given

    ann_rows: list[dict] = []
    texts = {records[i]["id"]: records[i]["text"] for i in order.tolist()}
    names = list(ANNOTATOR_ACCURACY)
    for doc_id, truth in true_labels.items():
        for ann in rng.choice(names, size=cfg.annotators_per_item, replace=False).tolist():
            label = truth
            if rng.random() > ANNOTATOR_ACCURACY[ann]:
                label = w.confused(TOPICS.index(truth))
            ann_rows.append({"id": doc_id, "text": texts[doc_id], "annotator": ann, "label": label})

    corpus_path = out / "corpus.jsonl"
    broken_at = sorted(rng.choice(len(records), size=min(len(BROKEN_LINES), len(records)),
                                  replace=False).tolist())
    broken_lines: list[int] = []
    with open(corpus_path, "wb") as fh:
        line = 0
        for i, rec in enumerate(records):
            if broken_at and i == broken_at[0]:
                fh.write(BROKEN_LINES[len(broken_lines)] + b"\n")
                line += 1
                broken_lines.append(line)
                broken_at.pop(0)
            fh.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
            line += 1
    labels_path = out / "labels.jsonl"
    with open(labels_path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in ann_rows)
    truth = {
        "config": cfg.__dict__,
        "exact_groups": list(exact_groups.values()),
        "reformatted": reformatted,
        "near_duplicates": near,
        "true_labels": true_labels,
        "noisy_labels": noisy,
        "annotator_accuracy": ANNOTATOR_ACCURACY,
        "broken_lines": broken_lines,
    }
    obs = scaling_observations(out / "scaling_synthetic.csv", seed=cfg.seed)
    ev = _eval_files(out, w, records, rng)
    truth["eval"] = ev
    truth["scaling_law"] = obs["true_law"]
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return {
        "corpus": str(corpus_path), "labels": str(labels_path), "truth": str(out / "truth.json"),
        "docs": len(records), "exact_duplicates": sum(len(g) - 1 for g in exact_groups.values()),
        "reformatted_duplicates": len(reformatted),
        "near_duplicates": len(near), "labelled": len(true_labels), "noisy_labels": len(noisy),
        "annotation_rows": len(ann_rows), "broken_lines": len(broken_lines),
        "scaling_synthetic": obs["path"], "scaling_points": obs["points"],
        "eval_set": ev["eval_set"], "predictions_previous": ev["previous"], "predictions_current": ev["current"],
        "gates": ev["gates"],
    }


def _reformat(words: list[str], rng: np.random.Generator) -> tuple[str, str]:
    """The copy as it turns up in a scraped page: re-cased, re-punctuated, re-spaced or hard-wrapped
    with words broken at the line ends. Returns (text, how)."""
    how = str(rng.choice(["case", "punctuation", "whitespace", "line-split"]))
    if how == "case":
        return " ".join(x.upper() if rng.random() < 0.5 else x.capitalize() for x in words), how
    if how == "punctuation":
        return " ".join(x.rstrip(",.?") + str(rng.choice(["", "", ";", " -", ":"])) for x in words), how
    if how == "whitespace":
        return "".join(x + str(rng.choice(["  ", "\t", "\n", " \n\n "])) for x in words).strip(), how
    lines, line = [], ""
    for x in words:
        if len(line) + len(x) > 30 and len(x) > 5 and x.isalpha():
            lines.append(f"{line} {x[:len(x) // 2]}-".strip())  # "contami-\nnation"
            line = x[len(x) // 2:]
        elif len(line) + len(x) > 30:
            lines.append(line)
            line = x
        else:
            line = f"{line} {x}".strip()
    return "\n".join([*lines, line]), how


def _eval_files(out: Path, w: _Writer, records: list[dict], rng: np.random.Generator, n_items: int = 240) -> dict:
    """A topic-classification eval set with planted contamination of three kinds (a verbatim
    40-word window of a training document; 20 words of one, reformatted, inside new text; and
    near-misses: a 40-word window with every 8th word replaced, which shares no 13 words in a row
    and must stay clean), a "safety" slice, predictions of a previous and a current model (the
    current one regresses on one topic), and a gates file."""
    items, contaminated, near_miss, kinds = [], [], [], {}
    n_copy = max(3, n_items // 8)
    picks = rng.choice(len(records), size=min(n_copy + n_copy // 2, len(records)), replace=False)
    for j, i in enumerate(picks.tolist()):
        words = records[i]["text"].split()
        topic = TOPICS.index(records[i]["topic"])
        start = int(rng.integers(0, max(1, len(words) - 40)))
        window = words[start:start + 40]
        ev_id = f"ev-{j:04d}"
        if j % 3 == 0 and j < n_copy:
            text, kinds[ev_id] = " ".join(window), "verbatim"
        elif j < n_copy:
            part, how = _reformat(window[:20], rng)
            text, kinds[ev_id] = w.render(w.words(topic)[:10]) + " " + part + " " + w.render(w.words(topic)[:10]), \
                f"partial, {how}"
        else:
            text = " ".join(str(rng.choice([v for v in w.topic_words[topic] if v != x])) if k % 8 == 7 else x
                            for k, x in enumerate(window))
            kinds[ev_id] = "near-miss"
            near_miss.append(ev_id)
        if kinds[ev_id] != "near-miss":
            contaminated.append(ev_id)
        items.append({"id": ev_id, "input": text, "target": records[i]["topic"]})
    for j in range(len(items), n_items):
        topic = int(rng.integers(len(TOPICS)))
        items.append({"id": f"ev-{j:04d}", "input": w.render(w.words(topic)[:40]), "target": TOPICS[topic]})
    for it in items:
        it["slices"] = ["safety"] if rng.random() < 0.15 else []
    weak = TOPICS[2]
    previous, current = [], []
    for it in items:
        p_prev = 0.86
        p_cur = 0.92 if it["target"] != weak else 0.55
        for acc, dest in ((p_prev, previous), (p_cur, current)):
            ok = rng.random() < acc
            dest.append({"id": it["id"], "prediction": it["target"] if ok else str(rng.choice(
                [t for t in TOPICS if t != it["target"]]))})
    paths = {"eval_set": out / "eval_set.jsonl", "previous": out / "predictions_previous.jsonl",
             "current": out / "predictions_current.jsonl", "gates": out / "gates.toml"}
    for key, rows in (("eval_set", items), ("previous", previous), ("current", current)):
        paths[key].write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    paths["gates"].write_text(
        '[[gate]]\nname = "overall floor"\nslice = "all"\nmetric_min = 0.7\naction = "block"\n\n'
        '[[gate]]\nname = "no slice regresses more than 10 points"\nslice = "*"\nmax_regression = 0.10\n'
        'action = "review"\n')
    return {**{k: str(v) for k, v in paths.items()}, "contaminated": contaminated, "near_miss": near_miss,
            "contamination_kinds": kinds, "regressed_label": weak}
