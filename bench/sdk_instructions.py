"""Instructions executed per OpenAI client call, instrumented and raw, counted by callgrind.

``bench/sdk_overhead.py`` times the calls; on a shared machine its figures
move by a few percent from run to run, and part of what it measures is how
the processor's caches fare when faultprint's code runs between the client
library's. This benchmark counts the work instead: the machine instructions
the process executes (all threads, the export thread included), under
valgrind's callgrind. Whatever else the machine is doing, the count moves
by a few tenths of a percent at most from run to run: how the export
thread's work interleaves with the calling thread's moves when garbage
collections fall.

Each candidate runs in its own process under callgrind, with the same
warm-up (every candidate called ``--warm-up`` times, 50 by default) and the same workload as
``sdk_overhead.py``: the OpenAI client on the in-process mock transport,
blocks of 20 calls, each block followed by ``faultprint.flush()``. One more
process does only the warm-up; its count is subtracted from each
candidate's, which leaves the instructions of the measured calls (and of
their flushes). Calls per candidate: ``--calls``.

Candidates: the raw client (the baseline); the instrumented client; the raw
call inside a bare SDK span with six GenAI attributes (for reference); the
instrumented client with spans ended by the caller
(``background_finish=False``). Per candidate, the count is also split
between the calling thread and the rest (faultprint's export thread).

callgrind simulates one processor running the threads one at a time: it
counts work, not time. It does not see what a second core, the real caches
or the branch predictor add; that is what ``sdk_overhead.py`` measures.

Run: ``/work/venv/bin/python bench/sdk_instructions.py [--calls 200]`` (needs
``valgrind``; about a minute and a half on two cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = 20  # calls between flushes, as in sdk_overhead.py
CANDIDATES = ("raw", "instrumented", "raw+bare span", "instrumented, ended by the caller")
#: the process whose count is subtracted from every candidate's
WARM_UP_ONLY = "warm-up only"


def child(mode: str, calls: int, warm_up: int) -> None:
    """Run in the measured process: warm up every candidate, then ``calls`` calls of ``mode``."""
    sys.path.insert(0, str(HERE))
    import faultprint
    from sdk_overhead import configure, openai_candidates

    provider = configure()
    every = openai_candidates(provider.get_tracer("bench"))
    fns = {name: every[name] for name in CANDIDATES}
    for fn in fns.values():
        for _ in range(warm_up):
            fn()
        faultprint.flush(30)
    if mode != WARM_UP_ONLY:
        fn = fns[mode]
        done = 0
        while done < calls:
            for _ in range(min(BLOCK, calls - done)):
                fn()
            done += BLOCK
            faultprint.flush(30)
    faultprint.shutdown()


def _totals(path: Path) -> int:
    """Instructions in one callgrind output file (its ``summary:`` or ``totals:`` line)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no instruction total in {path}")


def count(valgrind: str, mode: str, calls: int, warm_up: int) -> tuple[int, int]:
    """(calling thread, other threads) instructions of one candidate's process."""
    with tempfile.TemporaryDirectory(prefix="fp-callgrind-") as tmp:
        out = Path(tmp) / "cg.out"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                mode,
                "--calls",
                str(calls),
                "--warm-up",
                str(warm_up),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
        if result.returncode != 0:
            raise SystemExit(f"{mode}: valgrind failed ({result.returncode}):\n{result.stderr}")
        files = sorted(Path(tmp).glob("cg.out-*"))  # one per thread
        main = [f for f in files if f.name.endswith("-01")]
        if len(main) != 1:
            raise SystemExit(f"{mode}: no output for the main thread in {[f.name for f in files]}")
        calling = _totals(main[0])
        others = sum(_totals(f) for f in files if f not in main)
        return calling, others


def main() -> None:
    """Count every candidate's instructions and print the ratios to the raw client."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="measured calls per candidate")
    parser.add_argument(
        "--warm-up", type=int, default=50, help="calls of each candidate before counting"
    )
    parser.add_argument("--child", choices=(*CANDIDATES, WARM_UP_ONLY), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls < 1 or args.warm_up < 1:
        parser.error("--calls and --warm-up must be positive")
    if args.child:
        child(args.child, args.calls, args.warm_up)
        return
    if importlib.util.find_spec("openai") is None:
        print("openai: not installed, skipped")
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind: not found (install Debian's valgrind package); nothing counted")
        sys.exit(1)
    modes = (WARM_UP_ONLY, *CANDIDATES)
    with ThreadPoolExecutor(max_workers=max(1, min(len(modes), os.cpu_count() or 1))) as pool:
        found = pool.map(lambda mode: count(valgrind, mode, args.calls, args.warm_up), modes)
        counts = dict(zip(modes, found, strict=True))
    base_calling, base_others = counts[WARM_UP_ONLY]
    per_call = {
        m: ((c - base_calling) / args.calls, (o - base_others) / args.calls)
        for m, (c, o) in counts.items()
        if m != WARM_UP_ONLY
    }
    raw = sum(per_call["raw"])
    for mode in CANDIDATES:
        calling, others = per_call[mode]
        total = calling + others
        print(
            f"instructions: {mode}: {total / 1000:.1f} k/call, ratio {total / raw:.4f} "
            f"(calling thread {calling / 1000:.1f} k, other threads {others / 1000:.1f} k)"
        )
    inst = sum(per_call["instrumented"])
    print(
        f"instructions: instrumented / raw = {inst / raw:.4f} = added work "
        f"{100 * (inst / raw - 1):+.1f}% (target for the added cost: <= 5%); "
        f"bare SDK span around the raw call: {sum(per_call['raw+bare span']) / raw:.4f}"
    )


if __name__ == "__main__":
    main()
