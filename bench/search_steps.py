"""Search-step throughput, compile time and peak memory, side by side with the original PyTorch code (a benchmark).

    python bench/search_steps.py --list
    python bench/search_steps.py --case darts-16-bilevel-1st --steps 8
    python bench/search_steps.py --peers /path/to/peers --rounds 2      # every case, each beside its PyTorch peer

A case is (space, size, batch, mode, relaxation). Each runs in a fresh subprocess so that its peak resident memory
(ru_maxrss) is its own: build the supernet and state, time the first call (trace + compile + one step) from an
empty compile cache, then time --steps further steps and report the median and the spread. Rows are appended as
JSON lines to --out (default bench/results/search_steps.jsonl) with the CPU model and flags (lscpu).

With ``--peers PEERS`` (a folder set up as ../shared/peers/README.md says: the DARTS and AutoDL-Projects sources,
a venv with the CPU torch wheel and bench_peers.py), every case that has a PyTorch counterpart runs right after
that counterpart's ``bench_peers.py --case ID``, in the same run, and the row gets the PyTorch median, spread and
peak memory and the ratios. ``--rounds`` repeats the whole list (the machine is noisy: report the spread).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from typing import NamedTuple


class Case(NamedTuple):
    space: str  # darts, nb201, darts-rnn
    width: int  # channels (C) or hidden size
    depth: int  # cells (DARTS), cells per stage (NB201); the RNN's bptt
    batch: int
    mode: str
    hessian: str = "exact"
    relaxation: str = "softmax"
    temperature: float = 1.0
    peer: str | None = None  # the bench_peers.py case with the same work
    partial: int = 1  # PC-DARTS: partial channels K (and edge normalization) when > 1
    method: str = ""  # entrannas, entrannas-dst, toponas (DARTS space): the method's network and relaxation
    arch_scale: float = 1e-3  # std of the random architecture parameters (DST's sparsity depends on their spread)


def _darts_cases():
    cases = {}
    for tag, C, L, peer_cfg in (("", 16, 8, "std"), ("c8l5-", 8, 5, "red")):
        for b in (16, 64):
            p = f"darts_cnn_{peer_cfg}_{{}}_b{b}"
            cases[f"darts-{tag}{b}-bilevel-1st"] = Case("darts", C, L, b, "bilevel-1st", peer=p.format("1st"))
            cases[f"darts-{tag}{b}-bilevel-2nd-fd"] = Case("darts", C, L, b, "bilevel-2nd", "finite_difference",
                                                           peer=p.format("2nd"))
            cases[f"darts-{tag}{b}-bilevel-2nd"] = Case("darts", C, L, b, "bilevel-2nd", peer=p.format("2nd"))
            cases[f"darts-{tag}{b}-single"] = Case("darts", C, L, b, "single")
    for b in (64, 128, 256):  # PC-DARTS against the plain supernet, and the larger batches it is for
        cases[f"darts-{b}-bilevel-1st-pc4"] = Case("darts", 16, 8, b, "bilevel-1st", partial=4)
    cases["darts-128-bilevel-1st"] = Case("darts", 16, 8, 128, "bilevel-1st")
    # issue 18: EnTranNAS, EnTranNAS-DST (dense at the start of a search; sparse: logits spread by 1 at temperature
    # 1, which keeps 1-4 connections per node, 10 per cell for this key) and TopoNAS, beside the DARTS supernet of
    # the same size and batch
    for tag, C, L in (("", 16, 8), ("c8l5-", 8, 5)):
        for b in (16, 64):
            cases[f"darts-{tag}{b}-entrannas-1st"] = Case("darts", C, L, b, "bilevel-1st", method="entrannas")
            cases[f"darts-{tag}{b}-entrannas-dst-1st-dense"] = Case("darts", C, L, b, "bilevel-1st",
                                                                    method="entrannas-dst")
            cases[f"darts-{tag}{b}-entrannas-dst-1st-sparse"] = Case("darts", C, L, b, "bilevel-1st",
                                                                     method="entrannas-dst", arch_scale=1.0)
            cases[f"darts-{tag}{b}-toponas-1st"] = Case("darts", C, L, b, "bilevel-1st", method="toponas")
    return cases


CASES = {
    "nb201-64-bilevel-1st": Case("nb201", 16, 5, 64, "bilevel-1st", peer="nb201_dartsv1_b64"),
    "nb201-64-gdas": Case("nb201", 16, 5, 64, "bilevel-1st", relaxation="gdas", temperature=10.0,
                          peer="nb201_gdas_b64"),
    "nb201-64-bilevel-2nd-fd": Case("nb201", 16, 5, 64, "bilevel-2nd", "finite_difference", peer="nb201_dartsv2_b64"),
    "nb201-64-bilevel-2nd": Case("nb201", 16, 5, 64, "bilevel-2nd", peer="nb201_dartsv2_b64"),
    "nb201-64-single": Case("nb201", 16, 5, 64, "single"),
    **_darts_cases(),
    "darts-rnn-64-bilevel-1st": Case("darts-rnn", 300, 35, 64, "bilevel-1st", peer="darts_rnn_1st_b64"),
    "darts-rnn-64-bilevel-2nd-fd": Case("darts-rnn", 300, 35, 64, "bilevel-2nd", "finite_difference",
                                        peer="darts_rnn_2nd_b64"),
    "darts-rnn-64-bilevel-2nd": Case("darts-rnn", 300, 35, 64, "bilevel-2nd", peer="darts_rnn_2nd_b64"),
    "darts-rnn-64-single": Case("darts-rnn", 300, 35, 64, "single"),
}
RNN_VOCAB = 10_000  # the peer's token count (PTB's vocabulary)


def cpu_description() -> dict:
    """CPU model, core count and flags from lscpu (a bench row is only comparable with rows of the same CPU)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {"cpu_model": None}
    info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    return {"cpu_model": info.get("Model name"), "cpus": info.get("CPU(s)"), "cpu_flags": info.get("Flags")}


CHOICES = {"auto": None, "yes": True, "no": False}


def build(case: Case, key):
    """(model, arch, batch, val_batch, loss_fn, accuracy_fn) of a case, on random inputs of the peer's shapes."""
    import jax

    from jaxnas.nn.entrannas import EnTranNetwork
    from jaxnas.nn.recurrent import DartsRnnSearchCell
    from jaxnas.nn.sequence import LanguageModel
    from jaxnas.nn.supernet import DartsSearchNetwork, NB201Supernet
    from jaxnas.registry import get_space
    from jaxnas.search.steps import accuracy, cross_entropy

    k_x, k_y, k_vx, k_vy = jax.random.split(key, 4)
    pc = case.partial > 1
    space_options = {"edge_normalization": True} if pc else {"topology": True} if case.method == "toponas" else {}
    arch = get_space(case.space, **space_options).init_arch(key, scale=case.arch_scale)
    if case.space == "darts-rnn":
        model = LanguageModel(DartsRnnSearchCell(hidden=case.width), RNN_VOCAB, case.width)
        shape = (case.batch, case.depth)

        def tokens(k):
            return jax.random.randint(k, shape, 0, RNN_VOCAB)

        return model, arch, (tokens(k_x), tokens(k_y)), (tokens(k_vx), tokens(k_vy)), cross_entropy, None
    options = {"partial_channels": case.partial, "edge_normalization": True} if pc else {}
    if case.method.startswith("entrannas"):
        model = EnTranNetwork(C=case.width, layers=case.depth,
                              derivation="dst" if case.method == "entrannas-dst" else "top2")
    elif case.method == "toponas":
        model = DartsSearchNetwork(C=case.width, layers=case.depth, topology_sizes=(2,))
    elif case.space == "darts":
        model = DartsSearchNetwork(C=case.width, layers=case.depth, **options)
    else:
        model = NB201Supernet(C=case.width, N=case.depth, **options)

    def images(kx, ky):
        return jax.random.normal(kx, (case.batch, 32, 32, 3)), jax.random.randint(ky, (case.batch,), 0, 10)

    return model, arch, images(k_x, k_y), images(k_vx, k_vy), cross_entropy, accuracy


def prepare(case: Case, split: bool | None = None, chain: bool | None = None):
    """``(model, state, step, batch, val_batch, init seconds)`` of a case: DARTS's optimizers, ``make_step`` as a
    search builds it (``split=None``: its default for the backend)."""
    import jax

    from jaxnas import relax
    from jaxnas.search.steps import OptimConfig, init_search_state, make_arch_optimizer, make_step, make_weight_optimizer

    cfg = OptimConfig()
    w_opt, a_opt = make_weight_optimizer(cfg, 1000), make_arch_optimizer(cfg)
    key = jax.random.PRNGKey(0)
    model, arch, batch_xy, val_xy, loss_fn, accuracy_fn = build(case, key)
    t0 = time.perf_counter()
    state = init_search_state(model, arch, batch_xy[0], key, w_opt, a_opt)
    init_s = time.perf_counter() - t0
    edge_keys = tuple(k for k in arch if k.endswith("_edges"))
    relaxation = relax.with_passthrough(case.relaxation, edge_keys)
    extra = {}
    if case.method == "entrannas-dst":
        from jaxnas.spaces import DartsSpace
        space = DartsSpace()
        relaxation = relax.dst(space.node_counts, [p != "none" for p in space.primitives])
    if case.method == "toponas":  # the passive-aggressive term at the method's weight
        from jaxnas.search.regularizers import passive_aggressive
        extra["arch_penalty"] = lambda w: 0.1 * passive_aggressive(w, (2, 3, 4, 5), (2,))
    step = make_step(model, mode=case.mode, relaxation=relaxation, w_optimizer=w_opt, a_optimizer=a_opt,
                     hessian=case.hessian, temperature=case.temperature, loss_fn=loss_fn, accuracy_fn=accuracy_fn,
                     split=split, chain_cells=chain, **extra)
    return model, state, step, batch_xy, val_xy, init_s


def time_steps(step, state, batch, val_batch, steps: int):
    """``(first call seconds, seconds of each further step, minor page faults per further step, state, metrics)``."""
    import jax

    t0 = time.perf_counter()
    state, metrics = step(state, batch, val_batch)
    jax.block_until_ready((state, metrics))
    first_s = time.perf_counter() - t0
    times = []
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        t0 = time.perf_counter()
        state, metrics = step(state, batch, val_batch)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / max(steps, 1)
    return first_s, times, faults, state, metrics


def run_case(name: str, steps: int, split: str = "auto", chain: str = "auto") -> dict:
    import jax
    import jax.numpy as jnp

    from jaxnas.nn import ops

    case = CASES[name]
    model, state, step, batch_xy, val_xy, init_s = prepare(case, CHOICES[split], CHOICES[chain])
    first_s, times, faults, state, metrics = time_steps(step, state, batch_xy, val_xy, steps)
    med = statistics.median(times)
    return {
        "case": name, **case._asdict(), "hessian": case.hessian if case.mode == "bilevel-2nd" else None,
        "impl": {k: ops.default_impl(k) for k in ops.KINDS}, "split": hasattr(step, "programs"),
        "chain": hasattr(getattr(step, "programs", {}).get("gradients"), "network"),
        "edge_grouping": getattr(model, "edge_grouping", None),
        "backend": jax.default_backend(), "jax": jax.__version__,
        "init_s": round(init_s, 2), "first_step_s (trace+compile+run)": round(first_s, 1),
        "median_step_s": round(med, 3), "min_step_s": round(min(times), 3), "max_step_s": round(max(times), 3),
        "steps_per_s": round(1.0 / med, 3), "step_times_s": [round(t, 3) for t in times],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "loss_finite": bool(jnp.isfinite(metrics["loss"])), "page_faults_per_step": int(faults),
    }


def run_peer(peers: str, peer: str, steps: int, timeout: int) -> dict:
    """One bench_peers.py case in its own process (the peer's own threads setting): its median, spread, peak."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONWARNINGS="ignore")
    cmd = [os.path.join(peers, "venv", "bin", "python"), os.path.join(peers, "bench_peers.py"), "--case", peer,
           "--warmup", "2", "--iters", str(steps), "--min-time", "0"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"peer_error": f"timed out after {timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        return {"peer_error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    r = json.loads(lines[-1][len("RESULT "):])
    return {"pytorch_median_s": round(r["median"], 3), "pytorch_min_s": round(r["min"], 3),
            "pytorch_max_s": round(r["max"], 3), "pytorch_steps": r["iters"],
            "pytorch_peak_gb": round(r["peak_rss_mb"] / 1024, 2), "torch": r.get("torch")}


def compile_times(log: str) -> dict:
    """Seconds XLA spent compiling each program of more than a second, from the worker's jax_log_compiles log."""
    times = {}
    for name, secs in re.findall(r"Finished XLA compilation of (\S+) in ([0-9.e+-]+) sec", log):
        if float(secs) >= 1.0:
            times[name] = round(times.get(name, 0.0) + float(secs), 1)
    return times


def run_jaxnas(args, name: str, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps), "--split", args.split,
           "--chain", args.chain]
    cmd += ["--cache", args.cache] if args.cache else []
    cmd += [f"--xla-option={o}" for o in args.xla_option]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": name, "error": f"timed out after {args.timeout} s"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        errors = [ln for ln in lines if re.match(r"^[\w.]+: ", ln) and ("Error" in ln or "Exception" in ln)]
        last = (errors or lines)[-1:]
        if proc.returncode < 0:  # killed: by the kernel's OOM killer when it is SIGKILL during a compile
            return {"case": name, "error": f"worker killed by {signal.Signals(-proc.returncode).name} (out of memory?)",
                    "last_log_line": last[0] if last else None}
        return {"case": name, "error": last[0] if last else f"worker exited with status {proc.returncode}"}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["compile_s"] = compile_times(proc.stderr)
    return row


def xla_options(pairs: list[str]) -> dict:
    """``NAME=VALUE`` strings as compiler options (true/false as booleans, integers as integers)."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--xla-option {pair!r}: expected NAME=VALUE")
        out[name] = {"true": True, "false": False}.get(value.lower(), int(value) if value.isdigit() else value)
    return out


def markdown_table(rows: list[dict]) -> str:
    """The rows as the markdown table of docs/cpu-performance.md (one line per case and round)."""
    out = ["| case | round | jaxnas s/step (min-max) | first step s | peak GB | PyTorch s/step (min-max) | PyTorch GB "
           "| PyTorch / jaxnas |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['case']} | {r.get('round', '')} | {r['error']} | | | "
                       f"{r.get('pytorch_median_s', '-')} | {r.get('pytorch_peak_gb', '-')} | |")
            continue
        ours = f"{r['median_step_s']:.3f} ({r['min_step_s']:.2f}-{r['max_step_s']:.2f})"
        theirs = (f"{r['pytorch_median_s']:.3f} ({r['pytorch_min_s']:.2f}-{r['pytorch_max_s']:.2f})"
                  if "pytorch_median_s" in r else "-")
        ratio = f"**{r['pytorch_over_jaxnas']}x**" if "pytorch_over_jaxnas" in r else "-"
        out.append(f"| {r['case']} | {r.get('round', '')} | {ours} | {r['first_step_s (trace+compile+run)']:.0f} | "
                   f"{r['peak_rss_gb']:.1f} | {theirs} | {r.get('pytorch_peak_gb', '-')} | {ratio} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    ap.add_argument("--steps", type=int, default=8, help="timed steps after the first one (both sides)")
    ap.add_argument("--rounds", type=int, default=1, help="run the list this many times")
    ap.add_argument("--peers", help="a peer-harness folder (../shared/peers/README.md): run each case's PyTorch "
                    "counterpart right before it")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "search_steps.jsonl"))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per case")
    ap.add_argument("--split", choices=sorted(CHOICES), default="auto", help="make_step(split=...)")
    ap.add_argument("--chain", choices=sorted(CHOICES), default="auto", help="make_step(chain_cells=...): a "
                    "split step's supernet gradient as per-cell programs (auto: the JAXNAS_CPU_CHAIN setting)")
    ap.add_argument("--note", help="stored with each result row")
    ap.add_argument("--cache", help="JAX persistent compilation cache folder: a second run with the same programs "
                    "skips compiling (its compile figures are then cache loads); for trying run-time settings")
    ap.add_argument("--xla-option", action="append", default=[], metavar="NAME=VALUE",
                    help="an XLA compiler option added to jaxnas's own for every step program (e.g. "
                    "xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_COMPILE); repeatable")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--markdown", metavar="NOTE", help="print the rows of --out whose note is NOTE as a markdown "
                    "table, and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.markdown:
        with open(args.out) as f:
            rows = [r for r in map(json.loads, f) if r.get("note") == args.markdown]
        print(markdown_table(rows))
        return 0
    if args.list:
        for name, case in CASES.items():
            print(f"{name:30} {case.mode:12} {case.relaxation:8} peer: {case.peer or '-'}")
        return 0
    if args.worker:
        from jaxnas.platform import hostmem

        host_malloc = hostmem.keep_host_memory()  # as the CLI does, with JAXNAS_CPU_MALLOC=keep
        import jax

        jax.config.update("jax_log_compiles", True)
        if args.xla_option:
            from jaxnas.platform import xla

            extra, base = xla_options(args.xla_option), xla.compiler_options
            xla.compiler_options = lambda: {**(base() or {}), **extra}
        if args.cache:
            jax.config.update("jax_compilation_cache_dir", args.cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        print(json.dumps({**run_case(args.worker, args.steps, args.split, args.chain),
                          "host_malloc_kept": host_malloc}))
        return 0
    if args.peers and not os.path.isfile(os.path.join(args.peers, "bench_peers.py")):
        ap.error(f"--peers {args.peers}: no bench_peers.py there (set it up as ../shared/peers/README.md says)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from jaxnas.platform import hostmem

    env = hostmem.hugepage_environment() or dict(os.environ)  # as the jaxnas command runs (JAXNAS_CPU_MALLOC)
    env.setdefault("JAXNAS_COMPILATION_CACHE", "off")
    cpu = cpu_description()
    rows = []
    for rnd in range(1, args.rounds + 1):
        peer_rows = {}  # one PyTorch run per peer case and round, right before its first jaxnas case
        for name in args.case or list(CASES):
            peer = CASES[name].peer
            if args.peers and peer and peer not in peer_rows:
                print(f"[{time.strftime('%H:%M:%S')}] round {rnd}: PyTorch {peer}", flush=True)
                peer_rows[peer] = run_peer(args.peers, peer, args.steps, args.timeout)
            print(f"[{time.strftime('%H:%M:%S')}] round {rnd}: jaxnas {name}", flush=True)
            row = run_jaxnas(args, name, env)
            if args.peers and peer:
                row.update(peer_case=peer, **peer_rows[peer])
                if "median_step_s" in row and "pytorch_median_s" in row:
                    row["pytorch_over_jaxnas"] = round(row["pytorch_median_s"] / row["median_step_s"], 2)
                    row["jaxnas_over_pytorch_memory"] = round(row["peak_rss_gb"] / row["pytorch_peak_gb"], 2)
            row.update(round=rnd, date=time.strftime("%Y-%m-%d %H:%M"), **cpu)
            if args.note:
                row["note"] = args.note
            if args.cache:
                row["compile_cache"] = args.cache
            if args.xla_option:
                row["xla_options"] = xla_options(args.xla_option)
            row["cpu_malloc"] = hostmem.malloc_choice()
            if env.get("GLIBC_TUNABLES"):
                row["glibc_tunables"] = env["GLIBC_TUNABLES"]
            rows.append(row)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps({k: v for k, v in row.items() if k != "cpu_flags"}), flush=True)
    print(f"\n{'case':30} {'round':>5} {'s/step (min-max)':>22} {'first s':>8} {'peak GB':>8} "
          f"{'PyTorch s/step (min-max)':>26} {'PT GB':>6} {'ratio':>6}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:30} {r['round']:5} error: {r['error']}")
            continue
        ours = f"{r['median_step_s']:.3f} ({r['min_step_s']:.2f}-{r['max_step_s']:.2f})"
        theirs = (f"{r['pytorch_median_s']:.3f} ({r['pytorch_min_s']:.2f}-{r['pytorch_max_s']:.2f})"
                  if "pytorch_median_s" in r else "-")
        print(f"{r['case']:30} {r['round']:5} {ours:>22} {r['first_step_s (trace+compile+run)']:8.1f} "
              f"{r['peak_rss_gb']:8.2f} {theirs:>26} {r.get('pytorch_peak_gb', '-'):>6} "
              f"{r.get('pytorch_over_jaxnas', '-'):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
