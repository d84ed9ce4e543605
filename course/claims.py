"""The claims the chapters test: each declared once, with the document and section it comes from.

A chapter states a claim with ``ch.claim(claim_id, measured, holds, ...)``; the text, the source
and the section come from here, and the run writes them with its measurement and verdict to
``<out>/claims.json``. ``course claims`` gathers those files into one table (console, Markdown,
CSV) and, with ``--run``, runs the chapters whose claims are missing or stale.

The documents are the course's source material: five articles on deep-learning optimization
(listed in ``DOCUMENTS`` by title), plus the MNIST-1D paper for chapter 8's data set.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

DOCUMENTS = {
    "stable-loops": "Engineering Stable Training Loops: A Practical Guide to Modern Optimizer "
                    "Stacks (Codcompass)",
    "demystifying": "Demystifying Deep Learning Optimization: From Feature Scaling to Adam and "
                    "Beyond (S. Rurangamirwa, DEV Community)",
    "tricks": "Deep Learning Optimization: from SGD to Adam, the tricks that make deep networks "
              "actually train",
    "chapter-14": "Chapter 14: Optimization in Deep Learning",
    "mnist1d": "Greydanus, Scaling down Deep Learning (2020), the MNIST-1D paper",
}

VERDICTS = {True: "consistent with our run", False: "not what we measured",
            None: "inconclusive at this size"}


@dataclass(frozen=True)
class Claim:
    id: str
    chapter: int
    text: str
    source: str  # a key of DOCUMENTS
    section: str

    @property
    def document(self) -> str:
        return DOCUMENTS[self.source]


CLAIMS = (
    Claim("scaling_saves_epochs", 1, "Feature scaling reduces the required training epochs by "
          "40-60%", "stable-loops", "Current Situation Analysis"),
    Claim("minmax_outliers", 1, "Min-max scaling is highly sensitive to outliers, which compress "
          "the legitimate variation into a tiny range", "demystifying",
          "1. Feature Scaling, pros and cons"),
    Claim("bn_higher_rates", 2, "Batch normalization allows about 10x higher learning rates",
          "demystifying", "2. Batch Normalization, pros and cons"),
    Claim("bn_small_batches", 2, "Batch normalization becomes unstable when mini-batches are "
          "smaller than 8 (one document says below 4); GroupNorm or LayerNorm are the "
          "alternatives", "tricks", "BatchNorm's Hidden Failure Modes"),
    Claim("bn_inference_mode", 2, "Forgetting inference mode makes BatchNorm use the statistics "
          "of the test batch, which for a single example are wrong and give wildly different "
          "predictions", "tricks", "BatchNorm's Hidden Failure Modes"),
    Claim("updates_per_epoch", 3, "1,000,000 records in mini-batches of 128 give over 7,800 "
          "updates per epoch (batch gradient descent: 1)", "demystifying",
          "3. Mini-Batch Gradient Descent, example"),
    Claim("minibatch_faster", 3, "Mini-batch gradient descent converges dramatically faster "
          "than full-batch processing", "demystifying", "3. Mini-Batch Gradient Descent, pros"),
    Claim("linear_scaling_rule", 3, "Scale the learning rate linearly with the batch size (the "
          "linear scaling rule)", "tricks", "Why Each Trick Exists"),
    Claim("double_batch_half_rate", 3, "Doubling the batch size has a similar effect to halving "
          "the learning rate", "tricks", "Why Each Trick Exists"),
    Claim("accumulation_equivalent", 3, "Accumulating gradients over several small batches "
          "gives the optimization of one large batch", "chapter-14",
          "Modern Optimization Techniques: Gradient Accumulation"),
    Claim("momentum_window", 4, "With beta near 0.9, momentum averages roughly the last 10 "
          "gradients", "demystifying", "4. Gradient Descent with Momentum"),
    Claim("momentum_valley", 4, "Momentum damps the oscillations in a narrow valley and "
          "converges faster than plain gradient descent", "tricks", "Why Each Trick Exists"),
    Claim("momentum_faster", 4, "SGD with momentum converges faster than plain SGD",
          "chapter-14", "Momentum"),
    Claim("rmsprop_steps", 5, "RMSProp shrinks the step along a direction whose gradients are "
          "large and enlarges it along one whose gradients are small", "demystifying",
          "5. RMSProp"),
    Claim("rmsprop_oscillation", 5, "RMSProp restricts the oscillation along the steep "
          "direction while keeping progress along the shallow one", "demystifying",
          "5. RMSProp"),
    Claim("optimizer_memory", 5, "RMSProp's memory overhead is medium, Adam's high (2x state "
          "tensors)", "stable-loops", "the optimizer comparison table"),
    Claim("adamw_vs_l2", 6, "AdamW generalizes better than Adam with an L2 penalty",
          "chapter-14", "AdamW"),
    Claim("adam_3_5x", 6, "Adam converges 3-5x faster than vanilla SGD", "stable-loops",
          "Current Situation Analysis"),
    Claim("warmup_stabilizes", 7, "Warmup (a small rate for the first steps, rising to the "
          "target) prevents early instability", "tricks", "Modern Deep Learning Training Recipe"),
    Claim("schedule_helps", 7, "Add a schedule (step decay, cosine annealing) to improve "
          "convergence", "demystifying", "7. Learning Rate Decay"),
    Claim("range_test_steepest", 7, "The best learning rate is in the steepest-descent region "
          "of the range test, just before the loss starts to rise", "chapter-14",
          "Learning Rate Finder"),
    Claim("scaling_with_warmup", 7, "Scale the learning rate with the batch size (the linear "
          "scaling rule) and add a warmup", "chapter-14",
          "Large Batch Training and Learning Rate Scaling"),
    Claim("cosine_or_plateau", 7, "Cosine annealing or ReduceLROnPlateau: either decays the "
          "rate well (with early stopping to end training when the validation loss stops "
          "improving)", "tricks", "Modern Deep Learning Training Recipe"),
    Claim("time_decay_epoch_50", 7, "Starting at 0.1, time-based decay brings the rate to 0.01 "
          "by epoch 50", "demystifying", "7. Learning Rate Decay, example"),
    Claim("cnn_reaches_paper", 8, "A small CNN reaches the paper's CNN accuracy (94%) on "
          "MNIST-1D in minutes", "mnist1d", "its table of test accuracies"),
    Claim("careful_beats_larger", 8, "The same network trained with good initialization and "
          "proper scheduling can outperform a larger network trained carelessly", "tricks",
          "A Good Model with Bad Optimization Is Worthless"),
    Claim("adam_2_4_worse", 8, "Adam can underperform by 2-4% in final accuracy without weight "
          "decay or careful scheduling", "stable-loops", "Current Situation Analysis"),
    Claim("sgd_cosine_ceiling", 8, "SGD with momentum and cosine decay has the highest "
          "generalization ceiling of the five strategies (SGD, SGD + momentum, RMSProp, "
          "Adam/AdamW, SGD + cosine decay)", "stable-loops", "the optimizer comparison table"),
    Claim("wrong_rate_diverges", 8, "A 10x wrong learning rate often makes the difference "
          "between a model that trains and one that diverges", "tricks",
          "A Good Model with Bad Optimization Is Worthless"),
)
BY_ID = {c.id: c for c in CLAIMS}


def claim(claim_id: str) -> Claim:
    try:
        return BY_ID[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}: declare it in course/claims.py "
                       f"(known: {', '.join(BY_ID)})") from None


# Minutes each chapter's run took on the project's 2-core test machine (quick, full): what
# ``course claims --run`` announces before it starts.
MINUTES = {1: (1, 5), 2: (1, 2), 3: (1, 1), 4: (1, 1), 5: (1, 2), 6: (1, 2), 7: (1, 2),
           8: (1, 14)}


def expected_minutes(chapter: int, quick: bool) -> float:
    quick_minutes, full_minutes = MINUTES.get(chapter, (1, 10))
    return float(quick_minutes if quick else full_minutes)


# ------------------------------------------------------------------------------- gathering

def claims_file(out_root: Path, stem: str) -> Path:
    return Path(out_root) / stem / "claims.json"


def load_run(path: Path) -> dict | None:
    """A chapter run's claims.json, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def stale_reason(run: dict | None, chapter_file: Path, *, quick_ok: bool = True) -> str | None:
    """Why a chapter's recorded run needs running again (None when it does not)."""
    if run is None:
        return "not run yet"
    if not run.get("complete"):
        return "its last run did not finish"
    if not quick_ok and run.get("mode") != "full":
        return "measured in a quick run"
    if run.get("code") != code_hash(chapter_file):
        return "the chapter's code changed since"
    made = {c["id"] for c in run.get("claims", [])}
    wanted = {c.id for c in CLAIMS if c.chapter == run.get("chapter")}
    if wanted - made:
        return "claims missing from its record"
    return None


def code_hash(chapter_file: Path) -> str | None:
    """A hash of a chapter script's code, without its comments and blank lines (its Markdown
    cells are comments): what the measurements depend on."""
    import hashlib

    try:
        lines = Path(chapter_file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    code = "\n".join(line.rstrip() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def gather(out_root: Path) -> list[dict]:
    """One row per declared claim, in chapter order: the latest record of its chapter's run, or
    a row that says the chapter has not run."""
    from course.catalog import CHAPTERS

    rows = []
    for chapter in CHAPTERS:
        run = load_run(claims_file(out_root, chapter.stem))
        recorded = {c.get("id"): c for c in (run or {}).get("claims", [])}
        for c in (c for c in CLAIMS if c.chapter == chapter.number):
            got = recorded.get(c.id)
            row = {"chapter": c.chapter, "id": c.id, "claim": c.text, "source": c.document,
                   "section": c.section}
            if got is None:
                row.update(verdict="not measured", measured=(
                    f"run chapter {c.chapter} first (course run {c.chapter})" if run is None
                    else "not recorded by the chapter's last run"), mode="", effect="",
                    spread="", seeds="", reason="", dataset="", device="", when="")
            else:
                row.update(verdict=got["verdict"], measured=got["measured"], mode=run["mode"],
                           effect=got.get("effect") or "", spread=got.get("spread") or "",
                           seeds=got.get("seeds") or "", reason=got.get("reason") or "",
                           dataset=run.get("dataset") or "", device=run.get("device") or "",
                           when=run.get("finished") or run.get("started") or "")
            rows.append(row)
    return rows


COLUMNS = ("chapter", "claim", "source", "section", "mode", "verdict", "measured", "effect",
           "spread", "seeds", "reason", "dataset", "device", "when")


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=("id",) + COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: list[dict]) -> str:
    lines = ["| # | claim (source) | verdict | measured |", "|---|---|---|---|"]
    for r in rows:
        verdict = r["verdict"] + (f" ({r['mode']} run)" if r["mode"] and r["mode"] != "full"
                                  else "")
        if r["reason"]:
            verdict += f": {r['reason']}"
        lines.append(f"| {r['chapter']} | {_cell(r['claim'])} (*{_cell(r['source'])}*, "
                     f"{_cell(r['section'])}) | {_cell(verdict)} | {_cell(r['measured'])} |")
    return "\n".join(lines) + "\n"


