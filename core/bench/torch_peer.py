"""PyTorch peer of `deno task bench --torch` and of the GPU suite: A·B products and the same
BottleneckMLP training step (Linear in; per block x + Linear(GELU(Linear(LayerNorm(x)))); Linear
out; Adam; softmax cross-entropy; batch and data resident on the device), timed the bench's way:
`count` products or `steps` steps back to back, one synchronisation at the end, median of
`repeats` after one warm-up. On CUDA it measures fp32 (TF32 off) and, for reference, TF32 on;
elsewhere fp32 with PyTorch's own thread settings, as a user gets them (on 2 cores: 1 intra-op
thread, while OpenBLAS runs its matmuls on both cores; forcing 2 intra-op threads as well
oversubscribes the cores and made the default recipe 3x slower), unless the request names
"threads". Reports which BLAS PyTorch's CPU matmuls ran on: Debian's PyTorch links the generic
libblas.so.3, which is the slow reference BLAS unless an optimised one (libopenblas0-pthread) is
installed.

Reads the request as JSON on stdin:
  {"items": [{"kind": "matmul", "key", "m", "n", "k", "count"},
             {"kind": "train", "key", "features", "classes", "width", "expansion", "depth",
              "batch", "lr", "steps"}, ...],
   "repeats": 5, "budget_seconds": 35 (optional), "require_cuda": false, "threads": (optional)}
With a budget, each measurement gets an equal share of what is left and fewer products, steps or
repeats when its probe says the full count would not fit (what ran is in its line). With
"require_cuda" and no CUDA, nothing is measured. Prints one JSON object per line, flushed, so a
caller that stops it keeps what it printed: {"kind": "info", ...} first, then per item and
precision {"kind": "result", "key", "precision", "seconds", "count", "repeats", "gflops" or
"samples_per_sec"} or {"kind": "error", "key", "precision", "error"}, and {"kind": "done"}."""
import ctypes
import json
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

req = json.load(sys.stdin)
cuda = torch.cuda.is_available()
dev = torch.device("cuda" if cuda else "cpu")
if not cuda and req.get("threads"):
    torch.set_num_threads(req["threads"])
started = time.perf_counter()


def emit(obj):
    print(json.dumps(obj), flush=True)


def blas():
    """(name, threads) of the BLAS behind CPU matmuls: what the process has mapped (Debian picks
    libblas.so.3 through its alternatives), else what PyTorch was built with."""
    if cuda:
        return "cuBLAS", None
    torch.matmul(torch.ones(8, 8), torch.ones(8, 8))
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        libs = set()
    openblas = sorted(p for p in libs if re.search(r"libopenblas[^/]*\.so", p))
    if openblas:
        try:
            return "openblas", ctypes.CDLL(openblas[0]).openblas_get_num_threads()
        except (OSError, AttributeError):
            return "openblas", None
    if any("libmkl" in p for p in libs):
        return "mkl", torch.get_num_threads()
    if any(re.search(r"/blas/libblas\.so", p) for p in libs):
        return "reference", 1
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return (found.group(1) if found else "unknown"), None


def sync():
    if cuda:
        torch.cuda.synchronize()


def run_timed(fn, n):
    start = time.perf_counter()
    fn(n)
    sync()
    return time.perf_counter() - start


def measure(fn, count, repeats, budget):
    """(median seconds of `fn(count')`, count', repeats') after a warm-up; with a budget, a probe
    of growing counts estimates one operation and count', repeats' shrink to fit it."""
    if budget is None:
        run_timed(fn, count)
        return statistics.median(run_timed(fn, count) for _ in range(repeats)), count, repeats
    t0 = time.perf_counter()
    run_timed(fn, 1)
    n, t = 1, run_timed(fn, 1)
    while t < 0.02 and n < count:
        n = min(count, n * 8)
        t = run_timed(fn, n)
    per_op = t / n
    left = budget - (time.perf_counter() - t0)
    c, r = count, repeats
    if per_op * c * r > left:
        r = max(1, int(left / (per_op * c)))
        if per_op * c * r > left:
            c = max(1, int(left / (per_op * r)))
    return statistics.median(run_timed(fn, c) for _ in range(r)), c, r


class Block(nn.Module):
    def __init__(self, thin, wide):
        super().__init__()
        self.norm = nn.LayerNorm(thin)
        self.fc1 = nn.Linear(thin, wide)
        self.fc2 = nn.Linear(wide, thin)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class BottleneckMLP(nn.Module):
    def __init__(self, features, classes, width, expansion, depth):
        super().__init__()
        self.linear_in = nn.Linear(features, width)
        self.blocks = nn.Sequential(*[Block(width, width * expansion) for _ in range(depth)])
        self.linear_out = nn.Linear(width, classes)

    def forward(self, x):
        return self.linear_out(self.blocks(self.linear_in(x)))


def matmul_item(item, repeats, budget):
    m, n, k = item["m"], item["n"], item["k"]
    a = torch.full((m, k), 0.5, device=dev)
    b = torch.full((k, n), 0.25, device=dev)
    c = torch.empty((m, n), device=dev)

    def products(count):
        for _ in range(count):
            torch.matmul(a, b, out=c)

    seconds, count, reps = measure(products, item["count"], repeats, budget)
    return {"seconds": seconds, "count": count, "repeats": reps,
            "gflops": 2 * m * n * k * count / seconds / 1e9}


def train_item(item, repeats, budget):
    torch.manual_seed(0)
    batch = item["batch"]
    model = BottleneckMLP(item["features"], item["classes"], item["width"], item["expansion"],
                          item["depth"]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=item["lr"])
    x = torch.randn(batch, item["features"], device=dev)
    y = torch.randint(0, item["classes"], (batch,), device=dev)

    def steps(count):
        for _ in range(count):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    seconds, count, reps = measure(steps, item["steps"], repeats, budget)
    return {"seconds": seconds, "count": count, "repeats": reps,
            "samples_per_sec": count * batch / seconds}


blas_name, blas_threads = blas()
emit({
    "kind": "info",
    "cuda": cuda,
    "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    "blas": blas_name,
    "blas_threads": blas_threads,
    "version": torch.__version__,
    "threads": torch.get_num_threads(),
})
if req.get("require_cuda") and not cuda:
    emit({"kind": "done"})
    sys.exit(0)
precisions = ["fp32", "tf32"] if cuda else ["fp32"]
tasks = [(item, p) for item in req["items"] for p in precisions]
total = req.get("budget_seconds")
for i, (item, precision) in enumerate(tasks):
    budget = None
    if total is not None:
        budget = (total - (time.perf_counter() - started)) / (len(tasks) - i)
        if budget <= 0:
            emit({"kind": "error", "key": item["key"], "precision": precision,
                  "error": f"skipped: the {total:g} s budget was spent"})
            continue
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        run = matmul_item if item["kind"] == "matmul" else train_item
        emit({"kind": "result", "key": item["key"], "precision": precision,
              **run(item, req["repeats"], budget)})
    except Exception as e:  # one failed measurement (e.g. out of memory) must not lose the rest
        emit({"kind": "error", "key": item["key"], "precision": precision,
              "error": f"{type(e).__name__}: {e}"})
    if cuda:
        torch.cuda.empty_cache()
emit({"kind": "done"})
