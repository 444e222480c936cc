"""Argument types of the project's management commands: a bad value is one clear line."""

import argparse
import math
from collections.abc import Callable


def number_between(low: float, high: float, *, whole: bool = True) -> Callable[[str], float]:
    """An argparse type: a number from `low` to `high` (a whole one unless `whole` is False)."""

    def parse(text: str):
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if math.isnan(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"give a value from {low:g} to {high:g}, not {text}")
        return value

    return parse
