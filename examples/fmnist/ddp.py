"""Fashion-MNIST MLP with PyTorch DistributedDataParallel (gloo), written for
Kubeflow's PyTorchJob environment: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK.
Trainyard sets exactly these (see ddp.yaml), so the same script runs on a
cluster under the training operator.

Each rank trains on its shard of the data; gradients are averaged by DDP.
Every rank prints a checksum of its final parameters (they must be equal);
rank 0 evaluates, prints metrics in Katib's format and saves TorchScript.
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import fmnist_data
from train import build_model, evaluate


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=128, help="per rank")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--output-dir", default=os.environ.get("TRAINYARD_OUTPUT_DIR", "."))
    a = p.parse_args()

    dist.init_process_group("gloo")  # env:// rendezvous: MASTER_ADDR/PORT, WORLD_SIZE, RANK
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts them)
    x, y = fmnist_data.load("train", limit=a.train_limit)
    xtr, ytr = torch.from_numpy(x[rank::world].copy()), torch.from_numpy(y[rank::world].copy())
    xte, yte = (torch.from_numpy(t) for t in fmnist_data.load("test"))
    print(f"rank {rank}/{world}: {len(xtr)} train images, master {os.environ['MASTER_ADDR']}:"
          f"{os.environ['MASTER_PORT']}, threads {torch.get_num_threads()}", flush=True)

    model = nn.parallel.DistributedDataParallel(build_model(a.hidden, a.dropout))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    # Every rank must take the same number of steps, or the allreduce hangs.
    steps_per_epoch = len(x) // world // a.batch_size
    total, step = steps_per_epoch * a.epochs, 0
    gen = torch.Generator().manual_seed(1000 + rank)
    start = time.time()
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(len(xtr), generator=gen)
        running = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * a.batch_size:(i + 1) * a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
            if rank == 0 and step == 1:
                print(f"first step done at {time.time():.6f}", flush=True)  # for bench/ddp_overhead.py
            if rank == 0 and step % a.log_every == 0:
                print(f"step={step} steps={total} loss={loss.item():.4f} "
                      f"step_time={(time.time() - start) / step:.5f}", flush=True)
        if rank == 0:
            acc = evaluate(model.module, xte, yte)
            print(f"epoch={epoch} epochs={a.epochs} train_loss={running / steps_per_epoch:.4f} "
                  f"test_accuracy={acc:.4f}", flush=True)

    checksum = sum(p.detach().double().sum().item() for p in model.module.parameters())
    print(f"rank {rank} parameter checksum {checksum:.10f}", flush=True)
    if rank == 0:
        os.makedirs(a.output_dir, exist_ok=True)
        model.module.eval()
        torch.jit.script(model.module).save(os.path.join(a.output_dir, "model.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
