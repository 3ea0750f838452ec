"""`make eval`: how well the NLU understands held-out questions, against a baseline pipeline.

For our pipeline (config.yml) and the baseline (bench/baseline_config.yml, Rasa's default
WhitespaceTokenizer pipeline) it trains an NLU model on data/nlu, runs `rasa test nlu` on
tests/nlu_holdout.yml, and, for ours, k-fold cross-validation on the training data. Rasa's reports
and plots (confusion matrix, confidence histogram) land in results/eval/; the figures are printed.

    .venv/bin/python bench/eval_nlu.py [--folds 5] [--skip-cv] [--only LABEL-PREFIX]
        [--also before=path/to/config.yml ...]

`--also` adds pipelines evaluated like ours (holdout and cross-validation), e.g. the config of an
earlier commit (`git show HEAD~1:config.yml > /tmp/before.yml`) for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.rasa.model import rasa_env
from bot.settings import PROJECT_ROOT

OUT = PROJECT_ROOT / "results" / "eval"
PIPELINES = {
    "ours (jieba + dictionary)": PROJECT_ROOT / "config.yml",
    "baseline (whitespace)": PROJECT_ROOT / "bench" / "baseline_config.yml",
}
TARGETS = {"intent accuracy": 0.95, "intent macro-F1": 0.93, "district F1": 0.95}


def rasa(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "rasa", *args], cwd=PROJECT_ROOT, env=rasa_env(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def read_report(directory: Path) -> dict[str, float]:
    intents = json.loads((directory / "intent_report.json").read_text())
    figures = {
        "intent accuracy": intents["accuracy"],
        "intent macro-F1": intents["macro avg"]["f1-score"],
    }
    # One entity report per extractor; the best district figure is what the action sees.
    for report in sorted(directory.glob("*Extractor_report.json")) + sorted(
        directory.glob("DIETClassifier_report.json")
    ):
        district = json.loads(report.read_text()).get("district")
        if district:
            name = report.name.removesuffix("_report.json")
            figures[f"district F1 ({name})"] = district["f1-score"]
    districts = [v for k, v in figures.items() if k.startswith("district F1 (")]
    figures["district F1"] = max(districts, default=0.0)
    return figures


def evaluate(label: str, config: Path, folds: int | None) -> dict[str, dict[str, float]]:
    slug = label.split()[0]
    model_dir = OUT / slug
    started = time.monotonic()
    rasa("train", "nlu", "--config", str(config), "--nlu", "data/nlu",
         "--out", str(model_dir), "--fixed-model-name", slug)  # fmt: skip
    trained = time.monotonic() - started
    rasa("test", "nlu", "--model", str(model_dir / f"{slug}.tar.gz"),
         "--nlu", "tests/nlu_holdout.yml", "--out", str(model_dir / "holdout"))  # fmt: skip
    results = {"holdout": read_report(model_dir / "holdout")}
    results["holdout"]["training seconds"] = trained
    if folds:
        rasa("test", "nlu", "--cross-validation", "--folds", str(folds), "--config", str(config),
             "--nlu", "data/nlu", "--out", str(model_dir / "cross-validation"))  # fmt: skip
        results[f"{folds}-fold CV"] = read_report(model_dir / "cross-validation")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-cv", action="store_true", help="holdout only (much faster)")
    parser.add_argument("--only", help="evaluate only the pipelines whose label starts with this")
    parser.add_argument("--also", action="append", default=[], metavar="LABEL=CONFIG",
                        help="another pipeline to evaluate like ours (repeatable)")  # fmt: skip
    args = parser.parse_args()
    pipelines = dict(PIPELINES)
    for extra in args.also:
        label, _, path = extra.partition("=")
        pipelines[label] = Path(path).resolve()
    OUT.mkdir(parents=True, exist_ok=True)

    all_results: dict[str, dict[str, dict[str, float]]] = {}
    for label, config in pipelines.items():
        if args.only and not label.startswith(args.only):
            continue
        print(f"Evaluating {label} ...", flush=True)
        cross_validated = label not in PIPELINES or config.name == "config.yml"
        all_results[label] = evaluate(
            label, config, None if args.skip_cv or not cross_validated else args.folds
        )

    (OUT / "summary.json").write_text(json.dumps(all_results, indent=2, ensure_ascii=False))
    print(f"\nReports and plots: {OUT.relative_to(PROJECT_ROOT)}/")
    for label, by_set in all_results.items():
        for data_set, figures in by_set.items():
            print(f"\n{label} — {data_set}")
            for name, value in figures.items():
                target = TARGETS.get(name)
                mark = "" if target is None else ("  ok" if value >= target else f"  < {target}")
                print(f"  {name:<36} {value:8.3f}{mark}")


if __name__ == "__main__":
    main()
