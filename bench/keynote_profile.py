"""py-spy profiles of our server during a keynote case, and a summary of them by function.

    python bench/keynote_profile.py PROFILE.txt [--top 25]     # summarise a raw (collapsed-stack) profile

bench/keynote.py --profile records each of our cases with ``py-spy record --format raw --threads`` (idle
samples excluded, so the numbers are CPU samples), and prints the summary: per function (name and file, line
numbers merged), its own samples (it was the running frame) and its inclusive samples (it was anywhere on the
stack, counted once per stack), as shares of all samples; plus each thread's share.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

RATE = 200  # samples per second
ROOT_SHARE = 0.97  # py-spy sometimes misses the outermost frames of a stack
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class Summary:
    samples: int = 0
    own: dict[str, int] = field(default_factory=dict)
    inclusive: dict[str, int] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    # per thread: samples of each function on that thread's stacks
    per_thread: dict[str, dict[str, int]] = field(default_factory=dict)

    def wrappers(self) -> set[str]:
        """Functions under (nearly) every sample of some thread (thread bootstrap, ``main``, the event loop's
        ``run``): they say which thread, not where the time goes, so the ranking leaves them out."""
        out = set()
        for functions in self.per_thread.values():
            total = functions.get("", 0)  # the thread's samples with Python frames
            out.update(name for name, count in functions.items() if count >= ROOT_SHARE * total)
        return out

    def top(self, count: int) -> list[tuple[str, int, int]]:
        """(function, inclusive, own) of the ``count`` functions with the most inclusive samples."""
        skip = self.wrappers()
        ranked = sorted(
            ((name, n) for name, n in self.inclusive.items() if name not in skip or self.own.get(name, 0)),
            key=lambda item: (-item[1], item[0]),
        )[:count]
        return [(name, total, self.own.get(name, 0)) for name, total in ranked]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install py-spy (it is in the `bench` extra)")
    return found


def start_recording(
    pid: int, seconds: int, output: Path, rate: int = RATE, native: bool = False
) -> subprocess.Popen[bytes]:
    """py-spy in the background for ``seconds``, writing collapsed stacks (one line per distinct stack), of the
    server and its database workers. Only the thread holding the GIL is sampled (``--gil``): each process is
    bound by one core's worth of Python, so that is where its time goes (waits and fsyncs run without the GIL). py-spy pauses the process for each
    sample (its default): stacks read without pausing come out torn. ``native`` adds C frames (slower)."""
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--threads",
            "--gil",
            "--subprocesses",  # the databases run in worker processes of the server
            *(["--native"] if native else []),
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def short_frame(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (to/file.py)``: lines merged, paths kept short."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    parts = match.group("file").replace("\\", "/").split("/")
    where = (
        "/".join(parts[-3:])
        if "site-packages" not in parts
        else "/".join(parts[parts.index("site-packages") + 1 :])
    )
    return f"{match.group('name')} ({where})"


def thread_label(frame: str) -> str:
    """``thread (0x7f..): durability:/long/path`` -> ``durability``."""
    name = frame.split("): ", 1)[1] if "): " in frame else frame
    return name.split(":", 1)[0] if "/" in name else name


def summarize(path: Path) -> Summary:
    summary = Summary()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # with --threads the first frames name the process and thread, e.g. `thread (0x7F..)`
        thread = thread_label(next((f for f in frames[:2] if f.startswith("thread ")), "?"))
        functions = [short_frame(f) for f in frames if not f.startswith(("thread ", "process "))]
        summary.samples += count
        summary.threads[thread] = summary.threads.get(thread, 0) + count
        on_thread = summary.per_thread.setdefault(thread, {})
        if functions:
            on_thread[""] = on_thread.get("", 0) + count
        if functions:
            summary.own[functions[-1]] = summary.own.get(functions[-1], 0) + count
        for function in set(functions):
            summary.inclusive[function] = summary.inclusive.get(function, 0) + count
            on_thread[function] = on_thread.get(function, 0) + count
    return summary


def format_summary(summary: Summary, top: int = 25, possible: int | None = None) -> str:
    """Functions ranked by inclusive samples, then by own samples; ``possible`` = rate x seconds."""
    if not summary.samples:
        return "  (no samples)"
    of = f" of ~{possible:,} possible" if possible else ""
    lines = [
        f"  {summary.samples:,}{of} samples had a thread holding the GIL; by thread: "
        + ", ".join(
            f"{name} {100 * n / summary.samples:.0f}%"
            for name, n in sorted(summary.threads.items(), key=lambda item: -item[1])
        ),
        f"  {'incl%':>6} {'own%':>6}  by inclusive samples (own + callees; thread entry points left out)",
    ]
    for name, total, own in summary.top(top):
        lines.append(f"  {100 * total / summary.samples:6.1f} {100 * own / summary.samples:6.1f}  {name}")
    lines.append(f"  {'incl%':>6} {'own%':>6}  by own samples")
    by_own = sorted(summary.own.items(), key=lambda item: (-item[1], item[0]))[: max(10, top // 2)]
    for name, own in by_own:
        total = summary.inclusive.get(name, 0)
        lines.append(f"  {100 * total / summary.samples:6.1f} {100 * own / summary.samples:6.1f}  {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(format_summary(summarize(args.profile), args.top))


if __name__ == "__main__":
    main()
