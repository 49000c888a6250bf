"""PyTorch peer of `deno task bench --torch`: the bench's A·B product and the same BottleneckMLP
training step (Linear in; per block x + Linear(GELU(Linear(LayerNorm(x)))); Linear out; Adam;
softmax cross-entropy; batch and data resident on the device), timed the bench's way: `products`
products or `steps` steps back to back, one synchronisation at the end, median of `repeats` after
one warm-up. On CUDA it measures fp32 (TF32 off) and, for reference, TF32 on; elsewhere fp32 with
PyTorch's own thread settings, as a user gets them (on 2 cores: 1 intra-op thread, while OpenBLAS
runs its matmuls on both cores; forcing 2 intra-op threads as well oversubscribes the cores and
made the default recipe 3x slower), unless the request names "threads".
Reports which BLAS PyTorch's CPU matmuls ran on: Debian's PyTorch links the generic libblas.so.3,
which is the slow reference BLAS unless an optimised one (libopenblas0-pthread) is installed.
Reads the request as JSON on stdin; prints the results as JSON on stdout."""
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


def timed(fn, repeats):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def measure(tf32):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    n = req["size"]
    a = torch.full((n, n), 0.5, device=dev)
    b = torch.full((n, n), 0.25, device=dev)
    c = torch.empty((n, n), device=dev)

    def products():
        for _ in range(req["products"]):
            torch.matmul(a, b, out=c)

    matmul_s = timed(products, req["repeats"])
    batch = req["batch"]
    model = BottleneckMLP(req["features"], req["classes"], req["width"], req["expansion"],
                          req["depth"]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=req["lr"])
    x = torch.randn(batch, req["features"], device=dev)
    y = torch.randint(0, req["classes"], (batch,), device=dev)

    def steps():
        for _ in range(req["steps"]):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    train_s = timed(steps, req["repeats"])
    return {
        "matmul_gflops": 2 * n ** 3 * req["products"] / matmul_s / 1e9,
        "train_samples_per_sec": req["steps"] * batch / train_s,
    }


blas_name, blas_threads = blas()
print(json.dumps({
    "device": torch.cuda.get_device_name(0) if cuda else "cpu",
    "blas": blas_name,
    "blas_threads": blas_threads,
    "version": torch.__version__,
    "threads": torch.get_num_threads(),
    "fp32": measure(False),
    "tf32": measure(True) if cuda else None,
}))
