"""`python -m repurpose.evaluation --gt SPLIT.json --pred PRED.jsonl [--out FILE]`.

The evaluator alone: no params file, no Prefect, no torch; default thresholds 0.5..0.9.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from repurpose import io
from repurpose.errors import UserError
from repurpose.evaluation.evaluator import DEFAULT_BUCKETS, evaluate_files
from repurpose.evaluation.metrics import THRESHOLDS


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate and print (or write) the metrics JSON."""
    parser = argparse.ArgumentParser(prog="python -m repurpose.evaluation",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="split JSON (ground truth)")
    parser.add_argument("--pred", required=True, help="predictions JSONL")
    parser.add_argument("--out", help="metrics JSON to write (default: print)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--length-buckets", type=float, nargs="*", default=list(DEFAULT_BUCKETS))
    args = parser.parse_args(argv)
    try:
        result = evaluate_files(args.gt, args.pred, args.thresholds, args.length_buckets)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        io.write_json(args.out, result)
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
