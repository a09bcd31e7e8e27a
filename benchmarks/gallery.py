"""Benchmark of galleries at scale: build time, single-query latency, recall@10, peak memory.

    python benchmarks/gallery.py                                  # 100,000 vectors
    python benchmarks/gallery.py --sizes 100000 1000000 --json out.json
    python benchmarks/gallery.py --only numpy embedded            # a subset of the rows
    python benchmarks/gallery.py --deepface-python /tmp/df103/bin/python

Data (seeded, cached in ``.cache/bench/gallery``): N x 512 float32 unit embeddings that look like
a face gallery — N/10 identities, each face = normalize(identity centre + noise), so faces of a
person are closer to each other than to anyone else — and Q held-out queries, each a perturbed copy
of a stored face, so the 10 nearest neighbours are meaningful.  The exact top-10 (cosine) is
computed once with a blocked matmul; every row's recall@10 is measured against it.

Rows, each in its own process (its peak RSS is the worker's own ``VmHWM``; for stores with a
server started by the worker, the server processes' peak RSS is summed from ``/proc``):

* ``numpy exact``: blocked matvec + argpartition over the whole matrix — the memory-bandwidth bound
  of exact search (N x 512 x 4 bytes read per query);
* ``faiss flat`` / ``faiss HNSW`` (reference rows, the raw library, not a facepipe store);
* every facepipe ``store`` plugin that is installed: the embedded store (folder path), pgvector
  (``postgresql://``, server from ``tests/helpers/postgres.py``) and Milvus (``milvus://``, Milvus
  Lite from ``tests/helpers/milvus.py``), ``exact=True`` and, when the store keeps an ANN index,
  ``exact=False``; a store or server that is not available is skipped with the reason;
* deepface's ``search`` (its ``sqlite`` datastore, run in deepface's interpreter): the vectors go
  in through its own ``SqliteClient.insert_embeddings`` (what ``register`` calls after embedding
  the images), the faiss index through its ``build_index``, and ``search`` runs its own code with
  only the image -> embedding step replaced by the query vector; ``search_method`` ``exact`` and
  ``ann``.

Build time = inserting all vectors + building the index (for lazily indexed stores the first
ANN search is included).  Latency = one query per call (``k=10``), p50 / p99 over the queries.

Goals (this machine): embedded ANN p50 <= 2 ms at recall@10 >= 0.95 on 1M; pgvector HNSW
p50 <= 10 ms; exact search over 1M <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import BENCH_CACHE, REPO, machine_load, print_table, run_worker, worker_main  # noqa: E402

DIM = 512
K = 10
FINGERPRINT = "bench-synthetic-512"
DEFAULT_DEEPFACE_PYTHON = "/tmp/df103/bin/python"
CASES = ("numpy", "faiss", "embedded", "pgvector", "milvus", "deepface")


# ------------------------------------------------------------------------------------ data
def data_folder(n: int, queries: int, seed: int, root: Path = BENCH_CACHE / "gallery") -> Path:
    """Write (once) ``base.npy`` (n x 512), ``queries.npy``, ``truth.npy`` (exact top-10 ids)."""
    import numpy as np

    folder = root / f"n{n}_q{queries}_s{seed}"
    if (folder / "truth.npy").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    identities = max(1, n // 10)
    centres = _unit(rng.standard_normal((identities, DIM), dtype=np.float32))
    owner = rng.integers(0, identities, size=n)
    base = np.lib.format.open_memmap(folder / "base.part.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for start in range(0, n, 65536):  # chunks keep memory flat at 1M
        stop = min(n, start + 65536)
        noise = _unit(rng.standard_normal((stop - start, DIM), dtype=np.float32))
        base[start:stop] = _unit(centres[owner[start:stop]] + noise)
    base.flush()
    picked = rng.choice(n, size=queries, replace=False)
    noise = _unit(rng.standard_normal((queries, DIM), dtype=np.float32))
    query = _unit(np.asarray(base[picked]) + 0.5 * noise)
    np.save(folder / "owner.npy", owner.astype(np.int32))
    np.save(folder / "queries.npy", query)
    del base
    os.replace(folder / "base.part.npy", folder / "base.npy")
    np.save(folder / "truth.npy", exact_top_k(np.load(folder / "base.npy", mmap_mode="r"), query, K))
    return folder


def _unit(x: Any) -> Any:
    import numpy as np

    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(base: Any, queries: Any, k: int, block: int = 65536) -> Any:
    """Ids of the ``k`` largest dot products per query (= smallest cosine distance), blocked."""
    import numpy as np

    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best_sim = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(base), block):
        sims = np.asarray(queries @ np.asarray(base[start:start + block]).T)
        part = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        best_ids = np.concatenate([best_ids, part + start], axis=1)
        best_sim = np.concatenate([best_sim, np.take_along_axis(sims, part, axis=1)], axis=1)
        keep = np.argsort(-best_sim, axis=1, kind="stable")[:, :k]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_sim = np.take_along_axis(best_sim, keep, axis=1)
    return best_ids


def recall_at_k(found: list[list[int]], truth: Any, k: int = K) -> float:
    """Mean fraction of the exact top-k found in each answer's first k."""
    hits = [len(set(f[:k]) & set(int(t) for t in truth[i][:k])) / k for i, f in enumerate(found)]
    return sum(hits) / max(1, len(hits))


def latency_stats(times: list[float]) -> dict[str, float]:
    """p50 / p99 in milliseconds."""
    ordered = sorted(times)

    def pct(p: float) -> float:
        return 1000.0 * ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "queries": len(ordered)}


def time_queries(search: Callable[[Any], list[int]], queries: Any, budget_s: float,
                 minimum: int = 20) -> tuple[list[float], list[list[int]]]:
    """Single-query wall times and answers; stops after ``budget_s`` once ``minimum`` ran."""
    times: list[float] = []
    found: list[list[int]] = []
    spent = 0.0
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        found.append(ids)
        spent += elapsed
        if spent > budget_s and len(times) >= minimum:
            break
    return times, found


def measured_row(label: str, search: Callable[[Any], list[int]], folder: Path, budget_s: float,
                 **extra: Any) -> dict[str, Any]:
    """Latency + recall of one search function over the folder's queries."""
    import numpy as np

    queries = np.load(folder / "queries.npy")
    truth = np.load(folder / "truth.npy")
    times, found = time_queries(search, queries, budget_s)
    return {"label": label, **latency_stats(times), "recall": recall_at_k(found, truth), **extra}


def descendants_peak_rss_mib(root: int | None = None) -> float | None:
    """Sum of VmHWM (peak RSS) over the live descendants of ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    family, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid and p not in family]
        family.update(kids)
        frontier.extend(kids)
    return _sum_hwm(family) if family else None


def _sum_hwm(pids: set[int]) -> float | None:
    total, seen = 0, False
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    seen = True
        except OSError:
            continue
    return total / 1024.0 if seen else None


# ------------------------------------------------------------------------------------ workers
def worker_numpy(folder: Path, budget_s: float) -> dict[str, Any]:
    """Exact search in plain numpy: blocked matvec + argpartition (the bandwidth bound)."""
    import numpy as np

    start = time.perf_counter()
    base = np.load(folder / "base.npy")  # in RAM, as a store's exact path would hold it
    load_s = time.perf_counter() - start
    block = 131072

    def search(q: Any) -> list[int]:
        ids, sims = [], []
        for s in range(0, len(base), block):
            scores = base[s:s + block] @ q
            part = np.argpartition(-scores, min(K, len(scores) - 1))[:K]
            ids.append(part + s)
            sims.append(scores[part])
        all_ids, all_sims = np.concatenate(ids), np.concatenate(sims)
        return all_ids[np.argsort(-all_sims)[:K]].tolist()

    row = measured_row("numpy exact (blocked matvec)", search, folder, budget_s, build_s=load_s,
                       build_note="np.load into RAM")
    row["gb_per_s"] = base.nbytes / 1e9 / (row["p50_ms"] / 1000.0)
    return {"rows": [row]}


def worker_faiss(folder: Path, budget_s: float) -> dict[str, Any]:
    """Reference rows: faiss IndexFlatIP (exact) and IndexHNSWFlat (M=32) on the same vectors."""
    import faiss
    import numpy as np

    base = np.load(folder / "base.npy")
    rows = []
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    flat_s = time.perf_counter() - start
    rows.append(measured_row("faiss flat (reference)", lambda q: flat.search(q[None], K)[1][0].tolist(),
                             folder, budget_s, build_s=flat_s))
    flat.reset()  # frees its copy of the vectors before the HNSW build
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(base)
    hnsw_s = time.perf_counter() - start
    for ef in (64, 128):
        hnsw.hnsw.efSearch = ef
        rows.append(measured_row(f"faiss HNSW M=32 ef={ef} (reference)",
                                 lambda q: hnsw.search(q[None], K)[1][0].tolist(), folder, budget_s,
                                 build_s=hnsw_s))
    return {"rows": rows}


def find_store(kind: str) -> tuple[str | None, str]:
    """Name of the installed store plugin for ``kind`` (embedded / pgvector / milvus), else why not."""
    from facepipe.registry import default_registry

    registry = default_registry()
    names = registry.names("store")
    for name in names:
        spec = registry.get("store", name)
        if kind == "embedded" and getattr(spec, "local", False):
            return name, ""
        if kind == "pgvector" and {"postgresql", "postgres"} & set(getattr(spec, "schemes", ())):
            return name, ""
        if kind == "milvus" and "milvus" in getattr(spec, "schemes", ()):
            return name, ""
    return None, f"no {kind} store plugin registered (stores: {', '.join(names) or 'none'})"


def server_url(kind: str, stack: Any) -> tuple[str | None, str]:
    """(url, reason) of a loopback test server from ``tests/helpers`` (stopped when ``stack`` closes)."""
    sys.path.insert(0, str(REPO))
    try:
        if kind == "pgvector":
            from tests.helpers import postgres

            why = postgres.missing()
            if why:
                return None, why
            server = postgres.start()
            stack.callback(server.stop)
            return server.url(), ""
        from tests.helpers import milvus

        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gallery-milvus-")))
        return stack.enter_context(milvus.milvus_lite_server(data)), ""
    except Exception as exc:  # noqa: BLE001 - any failure means "skip with the reason"
        return None, f"{kind} test server not available ({type(exc).__name__}: {exc})"


def worker_store(kind: str, folder: Path, budget_s: float, exact_only: bool = False,
                 batch: int = 10000) -> dict[str, Any]:
    """Build a facepipe store of ``kind`` from the vectors, then time exact and ANN searches."""
    import contextlib

    import numpy as np
    from facepipe.registry import default_registry
    from facepipe.types import StoredFace

    name, reason = find_store(kind)
    if name is None:
        return {"skipped": reason}
    with contextlib.ExitStack() as stack:
        if kind == "embedded":
            url = str(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gallery-bench-"))) / "gallery")
        else:
            url, reason = server_url(kind, stack)
            if url is None:
                return {"skipped": reason}
        registry = default_registry()
        spec = registry.get("store", name)
        store = registry.create("store", name, {"url": url, "metric": "cosine", "fingerprint": FINGERPRINT})
        base = np.load(folder / "base.npy", mmap_mode="r")
        owner = np.load(folder / "owner.npy")
        start = time.perf_counter()
        for s in range(0, len(base), batch):
            rows = np.ascontiguousarray(base[s:s + batch])
            faces = [StoredFace(id=f"{i:032x}", identity=f"person{owner[i]}", fingerprint=FINGERPRINT)
                     for i in range(s, s + len(rows))]
            store.add(rows, faces)
        insert_s = time.perf_counter() - start
        for method in ("build_index", "flush", "optimize"):  # an explicit index step, when the store has one
            if callable(getattr(store, method, None)):
                getattr(store, method)()
                break
        index_s = time.perf_counter() - start - insert_s
        queries = np.load(folder / "queries.npy")
        approximate = bool(getattr(spec, "approximate", False)) and not exact_only
        first_s = 0.0
        if approximate:  # the first ANN search may build a lazy index: count it in the build
            t0 = time.perf_counter()
            store.search(queries[:1], K, exact=False)
            first_s = time.perf_counter() - t0
        build_s = insert_s + index_s + first_s

        def searcher(exact: bool) -> Callable[[Any], list[int]]:
            return lambda q: [int(i, 16) for i, _ in store.search(q[None], K, exact=exact)[0]]

        out = [measured_row(f"{kind} exact ({name})", searcher(True), folder, budget_s, build_s=insert_s + index_s,
                            insert_s=insert_s)]
        if approximate:
            out.append(measured_row(f"{kind} ANN ({name})", searcher(False), folder, budget_s, build_s=build_s,
                                    insert_s=insert_s))
        # the servers are this worker's children: sum of their processes' peak RSS (shared buffers
        # count once per process, so this is an upper bound)
        server_rss = descendants_peak_rss_mib() if kind != "embedded" else None
        for row in out:
            row["server_rss_mib"] = server_rss
        close = getattr(store, "close", None)
        if callable(close):
            close()
        return {"rows": out}


def worker_deepface(folder: Path, budget_s: float, exact_max: int, batch: int = 10000) -> dict[str, Any]:
    """deepface 0.0.103's ``search`` on its sqlite datastore (runs in deepface's interpreter).

    Its exact search loads every row as Python floats per query (~40 bytes a number): above
    ``exact_max`` rows it would need tens of GB, so that row is skipped with the reason.
    """
    import numpy as np
    from deepface import DeepFace
    from deepface.modules import datastore
    from deepface.modules.database.sqlite import SqliteClient

    model, detector = "Facenet512", "skip"
    base = np.load(folder / "base.npy", mmap_mode="r")
    work = tempfile.mkdtemp(prefix="gallery-deepface-")
    path = os.path.join(work, "deepface.sqlite")
    client = SqliteClient(connection_details=path)
    face = np.zeros((1, 1, 3), dtype=np.float32)  # register stores the aligned face; a tiny one here
    start = time.perf_counter()
    for s in range(0, len(base), batch):
        records = [{"img_name": f"{i:032x}", "face": face, "model_name": model, "detector_backend": detector,
                    "aligned": True, "l2_normalized": True, "embedding": row.tolist()}
                   for i, row in enumerate(np.asarray(base[s:s + batch]), start=s)]
        client.insert_embeddings(records, batch_size=100)  # register's own insert path and batch size
    insert_s = time.perf_counter() - start
    client.close()
    start = time.perf_counter()
    datastore.build_index(model_name=model, detector_backend=detector, align=True, l2_normalize=True,
                          database_type="sqlite", connection_details=path)
    index_s = time.perf_counter() - start

    current: dict[str, Any] = {}

    def embeddings_of_query(*_args: Any, **_kwargs: Any) -> list[dict[str, Any]]:
        # replaces only image -> embedding: the rest of search is deepface's own code
        return [{"embedding": current["q"].tolist(), "facial_area": {"x": 0, "y": 0, "w": 1, "h": 1},
                 "img_index": 0}]

    setattr(datastore, "__get_embeddings", embeddings_of_query)
    image = np.zeros((8, 8, 3), dtype=np.uint8)

    def searcher(method: str) -> Callable[[Any], list[int]]:
        def search(q: Any) -> list[int]:
            current["q"] = q
            found = DeepFace.search(img=image, model_name=model, detector_backend=detector,
                                    distance_metric="cosine", l2_normalize=True, similarity_search=True, k=K,
                                    database_type="sqlite", connection_details=path, search_method=method,
                                    return_type="dict")
            return [int(hit["id"]) - 1 for hit in (found[0] if found else [])]  # sqlite ids start at 1
        return search

    rows = []
    if len(base) <= exact_max:
        rows.append(measured_row("deepface 0.0.103 search exact (sqlite)", searcher("exact"), folder, budget_s,
                                 build_s=insert_s, insert_s=insert_s))
    else:
        rows.append({"label": "deepface 0.0.103 search exact (sqlite)",
                     "skipped": f"{len(base):,} rows > --deepface-exact-max {exact_max:,}: every query would load "
                                f"~{len(base) * DIM * 40 / 1e9:.0f} GB of Python floats"})
    rows.append(measured_row("deepface 0.0.103 search ann (sqlite+faiss)", searcher("ann"), folder, budget_s,
                             build_s=insert_s + index_s, insert_s=insert_s))
    return {"rows": rows, "db_mib": os.path.getsize(path) / 2**20}


# ------------------------------------------------------------------------------------ parent
def run_case(case: str, folder: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Run one case's worker in a fresh process; yields its rows (or one skipped/error row)."""
    python = sys.executable
    if case == "deepface":
        python = args.deepface_python
        if not python or not Path(python).exists():
            yield {"label": "deepface 0.0.103 search", "skipped": f"no deepface interpreter at {python!r}"}
            return
    cmd = [python, str(Path(__file__).resolve()), "--worker", case, "--folder", str(folder),
           "--budget", str(args.budget), "--deepface-exact-max", str(args.deepface_exact_max)]
    if args.exact_only:
        cmd.append("--exact-only")
    result = run_worker(cmd, timeout=args.timeout)
    if "skipped" in result or "error" in result:
        reason = result.get("skipped") or result.get("error")
        row = {"label": case, "skipped": reason}
        if "error" in result:
            row["log"] = (result.get("traceback") or result.get("log") or "")[-1500:]
        yield row
        return
    for row in result.get("rows", []):
        if "skipped" in row:
            yield row
            continue
        row["process_rss_mib"] = result.get("self_peak_rss_mib") or result["peak_rss_mib"]
        row["process_s"] = result["process_s"]
        yield row


def goals(rows: list[dict[str, Any]], n: int) -> list[str]:
    """Lines saying which of the issue's goals the figures meet (goals are stated for 1M)."""
    lines = []
    scale = "" if n >= 1_000_000 else f" (measured at N={n:,}; the goals are for 1M)"
    for row in rows:
        if "p50_ms" not in row:
            continue
        label, p50, rec = row["label"], row["p50_ms"], row.get("recall", 0.0)
        if label.startswith("embedded ANN"):
            ok = p50 <= 2.0 and rec >= 0.95
            lines.append(f"embedded ANN p50 <= 2 ms at recall@10 >= 0.95: {p50:.2f} ms, {rec:.3f} -> "
                         f"{'met' if ok else 'NOT met'}{scale}")
        elif label.startswith("pgvector ANN"):
            lines.append(f"pgvector HNSW p50 <= 10 ms: {p50:.2f} ms -> {'met' if p50 <= 10 else 'NOT met'}{scale}")
        elif "exact" in label and not label.startswith("deepface"):
            lines.append(f"exact <= 150 ms ({label}): {p50:.1f} ms -> {'met' if p50 <= 150 else 'NOT met'}{scale}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="gallery sizes N")
    parser.add_argument("--queries", type=int, default=200, help="held-out queries Q")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES), help="rows to run")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds of queries per row (at least 20 queries run)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    parser.add_argument("--deepface-python", default=DEFAULT_DEEPFACE_PYTHON)
    parser.add_argument("--deepface-exact-max", type=int, default=200_000,
                        help="largest N for deepface's exact search (it loads all rows as Python lists per query)")
    parser.add_argument("--exact-only", action="store_true",
                        help="stores: exact search only (no ANN build; HNSW over 1M takes long on 2 cores)")
    parser.add_argument("--json", type=Path, help="write all rows here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        workers: dict[str, Callable[[], dict[str, Any]]] = {
            "numpy": lambda: worker_numpy(args.folder, args.budget),
            "faiss": lambda: worker_faiss(args.folder, args.budget),
            "deepface": lambda: worker_deepface(args.folder, args.budget, args.deepface_exact_max),
        }
        for kind in ("embedded", "pgvector", "milvus"):
            workers[kind] = (lambda k: lambda: worker_store(k, args.folder, args.budget, args.exact_only))(kind)
        body = workers[args.worker]

        def with_own_peak() -> dict[str, Any]:
            # ru_maxrss of a fresh child starts at the parent's RSS at fork time (kept across exec);
            # VmHWM belongs to the worker's own address space
            result = body()
            result["self_peak_rss_mib"] = _sum_hwm({os.getpid()})
            return result

        return worker_main(with_own_peak)

    report: dict[str, Any] = {"load_before": machine_load(), "sizes": {}}
    print(f"machine: {report['load_before']['uptime']}", flush=True)
    for n in args.sizes:
        start = time.perf_counter()
        folder = data_folder(n, args.queries, args.seed)
        print(f"\nN={n:,} x {DIM}, Q={args.queries}: data + exact top-{K} ready in "
              f"{time.perf_counter() - start:.1f} s ({folder})", flush=True)
        rows: list[dict[str, Any]] = []
        for case in args.only:
            for row in run_case(case, folder, args):
                row["load"] = os.getloadavg()[0]
                rows.append(row)
                status = row.get("skipped") or (
                    f"build {row['build_s']:.1f} s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                    f"recall {row['recall']:.3f}, RSS {row['process_rss_mib']:.0f} MiB, load {row['load']:.2f}")
                print(f"  {row['label']}: {status}", flush=True)
        report["sizes"][str(n)] = rows
        print()
        print_table(
            ["store", "build s", "p50 ms", "p99 ms", "recall@10", "queries", "proc RSS MiB", "server RSS MiB",
             "load1"],
            [[r["label"], f"{r['build_s']:.1f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['recall']:.3f}",
              str(r["queries"]), f"{r['process_rss_mib']:.0f}",
              "-" if r.get("server_rss_mib") is None else f"{r['server_rss_mib']:.0f}", f"{r['load']:.2f}"]
             for r in rows if "p50_ms" in r])
        for r in rows:
            if "skipped" in r:
                print(f"skipped {r['label']}: {r['skipped']}")
                if r.get("log"):
                    print("    " + "\n    ".join(r["log"].strip().splitlines()[-6:]))
        for r in rows:
            if "gb_per_s" in r:
                print(f"numpy exact reads {n * DIM * 4 / 1e9:.2f} GB per query: {r['gb_per_s']:.1f} GB/s at p50")
        for line in goals(rows, n):
            print("goal: " + line)
    report["load_after"] = machine_load()
    print(f"\nmachine after: {report['load_after']['uptime']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
