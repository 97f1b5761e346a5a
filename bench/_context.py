"""What every measurement gets: sizes for a full or a quick run, repeats, the output folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Context:
    quick: bool = False
    repeats: int = 7
    out: Path = Path(__file__).resolve().parent / "out"
    verbose: bool = True

    # Sizes (the targets are stated for the full sizes).
    @property
    def entries(self) -> int:
        return 300 if self.quick else 10_000

    @property
    def small_entries(self) -> int:
        return 10

    @property
    def resnet_width(self) -> int:
        return 16 if self.quick else 1

    @property
    def big_bytes(self) -> int:
        return (8 << 20) if self.quick else (1 << 30)

    @property
    def fast_repeats(self) -> int:
        """Repeats for calls of a few tens of milliseconds: more pairs, steadier medians."""
        return self.repeats if self.quick else 3 * self.repeats

    @property
    def warmup(self) -> int:
        return 0 if self.quick else 1

    def log(self, text: str) -> None:
        if self.verbose:
            import sys

            print(f"  .. {text}", file=sys.stderr, flush=True)
