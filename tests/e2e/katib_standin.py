#!/usr/bin/env python3
"""Stands in for the programs of Katib's example Experiments, logging as they do:
  --style mxnet    : Python logging to stderr with timestamps, "Epoch[N] Train-accuracy=A" and
                     "Epoch[N] Validation-accuracy=A" (mxnet-mnist; StdOut collector)
  --style pytorch  : "Train Epoch: N [i/60000 (p%)]\\tloss=L" progress lines, then
                     "Validation-accuracy=A" (pytorch-mnist; StdOut collector)
  --style katib-text : "{metricName: accuracy, metricValue: A};{metricName: loss, metricValue: L}"
                     lines to a file (file-metrics-collector, TEXT format with a metricsFormat regex)
The metrics are a smooth function of --lr, best at lr = 0.03, so the best trial is known."""
import argparse
import logging
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", required=True, choices=["mxnet", "pytorch", "katib-text"])
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--num-epochs", type=int, default=3)
    ap.add_argument("--log-path", default="")
    a = ap.parse_args()
    logging.basicConfig(format="%(asctime)s %(levelname)-8s %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ", level=logging.INFO)
    log = logging.getLogger()
    out = open(a.log_path, "a") if a.log_path else None
    if out:
        os.makedirs(os.path.dirname(a.log_path), exist_ok=True)
    for epoch in range(1, a.num_epochs + 1):
        acc = round(1 - abs(a.lr - 0.03) * 10 - 0.1 / epoch, 6)
        loss = round(abs(a.lr - 0.03) * 10 + 0.1 / epoch, 6)
        if a.style == "mxnet":
            log.info("Epoch[%d] Batch [0-100]\tSpeed: 51234.56 samples/sec\taccuracy=0.100000", epoch)
            log.info("Epoch[%d] Train-accuracy=%f", epoch, acc - 0.01)
            log.info("Epoch[%d] Time cost=1.234", epoch)
            log.info("Epoch[%d] Validation-accuracy=%f", epoch, acc)
        elif a.style == "pytorch":
            for i, pct in ((0, 0), (6400, 11), (12800, 21)):
                print(f"Train Epoch: {epoch} [{i}/60000 ({pct}%)]\tloss={loss + 0.5 - pct / 100:.4f}", flush=True)
            log.info("Validation-accuracy=%f", acc)
        else:
            out.write(f"{{metricName: accuracy, metricValue: {acc}}};{{metricName: loss, metricValue: {loss}}}\n")
            out.flush()


if __name__ == "__main__":
    main()
