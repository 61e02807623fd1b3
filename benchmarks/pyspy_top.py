"""Top entries of a py-spy profile (``py-spy record -f raw``, collapsed stacks).

    python benchmarks/pyspy_top.py PROFILE.txt [--top 15]

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(total), as shares of all samples; a function is ``name (file)``, its line numbers merged.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

__all__ = ["top_entries"]

_LINE = re.compile(r":\d+\)$")


def _frame(text: str) -> str:
    name, _, where = text.partition(" (")
    where = _LINE.sub("", where.rstrip(")") + ")").rstrip(")")
    parts = where.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else where
    return f"{name} ({short})"


def top_entries(path: str, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(samples, [(function, self samples)], [(function, total samples)]), most first."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    with open(path) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            samples += count
            frames = [_frame(x) for x in stack.split(";") if " (" in x]
            if frames:
                own[frames[-1]] += count
            for name in set(frames):
                total[name] += count
    return samples, own.most_common(top), total.most_common(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    samples, own, total = top_entries(args.profile, args.top)
    print(f"{samples} samples (non-idle)")
    print("self%  function")
    for name, count in own:
        print(f"{100 * count / samples:5.1f}  {name}")
    print("total% function")
    for name, count in total:
        print(f"{100 * count / samples:5.1f}  {name}")


if __name__ == "__main__":
    main()
