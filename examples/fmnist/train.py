"""Fashion-MNIST MLP in PyTorch, written to run as a Trainyard TrainJob.

Prints metrics in Katib's format (name=value), which Trainyard collects:
  step=S steps=T loss=L                     every --log-every steps
  epoch=E epochs=N train_loss=L test_accuracy=A   after each epoch
and saves the model as TorchScript to $TRAINYARD_OUTPUT_DIR/model.pt.
"""
import argparse
import os
import time

import torch
import torch.nn as nn

import fmnist_data


def build_model(hidden, dropout):
    return nn.Sequential(
        nn.Linear(784, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden // 2), nn.ReLU(),
        nn.Linear(hidden // 2, 10))


def evaluate(model, x, y, batch=2000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default=os.environ.get("TRAINYARD_OUTPUT_DIR", "."))
    a = p.parse_args()

    torch.manual_seed(a.seed)
    xtr, ytr = (torch.from_numpy(t) for t in fmnist_data.load("train", limit=a.train_limit))
    xte, yte = (torch.from_numpy(t) for t in fmnist_data.load("test", limit=a.test_limit))
    print(f"data: {len(xtr)} train, {len(xte)} test images; torch threads: {torch.get_num_threads()}", flush=True)

    model = build_model(a.hidden, a.dropout)
    opt = (torch.optim.Adam(model.parameters(), lr=a.lr) if a.optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9))
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = (len(xtr) + a.batch_size - 1) // a.batch_size
    total = steps_per_epoch * a.epochs
    step = 0
    start = time.time()
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(len(xtr))
        running = 0.0
        for i in range(0, len(xtr), a.batch_size):
            idx = perm[i:i + a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
            if step % a.log_every == 0:
                print(f"step={step} steps={total} loss={loss.item():.4f}", flush=True)
        acc = evaluate(model, xte, yte)
        print(f"epoch={epoch} epochs={a.epochs} train_loss={running / steps_per_epoch:.4f} "
              f"test_accuracy={acc:.4f}", flush=True)

    os.makedirs(a.output_dir, exist_ok=True)
    model.eval()
    path = os.path.join(a.output_dir, "model.pt")
    torch.jit.script(model).save(path)
    print(f"saved TorchScript model to {path} after {time.time() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
