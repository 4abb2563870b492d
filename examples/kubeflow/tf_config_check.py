"""Checks the TF_CONFIG a TFJob replica receives, the way TensorFlow's
MultiWorkerMirroredStrategy / ParameterServerStrategy would read it
(TensorFlow itself is not installable here).

Usage: tf_config_check.py EXPECTED_CLUSTER_JSON REPLICAS_TO_WAIT_FOR

Each replica asserts that TF_CONFIG names its own role and index (as
TRAINYARD_REPLICA, e.g. "worker-1", says), lists the expected number of peers
per role at distinct host:port addresses, leaves the evaluator out of
"cluster" and says environment "cloud"; a replica in the cluster also binds
its own address, as a TF server would. It then leaves a mark in the job's
shared outputs dir. The chief exits only when every replica has left its mark,
so the job succeeds only if all of them passed.
"""
import json
import os
import socket
import sys
import time


def main():
    expected = json.loads(sys.argv[1])  # e.g. {"chief": 1, "worker": 2, "ps": 1}
    wait_for = int(sys.argv[2])
    config = json.loads(os.environ["TF_CONFIG"])
    role, index = os.environ["TRAINYARD_REPLICA"].rsplit("-", 1)
    task = config["task"]
    assert task == {"type": role, "index": int(index)}, (task, role, index)
    assert config["environment"] == "cloud", config
    cluster = config["cluster"]
    assert "evaluator" not in cluster, cluster
    assert {k: len(v) for k, v in cluster.items()} == expected, (cluster, expected)
    addresses = [a for peers in cluster.values() for a in peers]
    assert len(set(addresses)) == len(addresses), addresses
    if role != "evaluator":
        host, port = cluster[role][int(index)].rsplit(":", 1)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port)))
    marks = os.path.join(os.environ["TRAINYARD_OUTPUT_DIR"], "tf-config-ok")
    os.makedirs(marks, exist_ok=True)
    open(os.path.join(marks, f"{role}-{index}"), "w").close()
    print(f"tf_config ok: {role} {index} of {json.dumps(cluster, sort_keys=True)}", flush=True)
    if role == "chief":
        deadline = time.time() + 120
        while len(os.listdir(marks)) < wait_for:
            if time.time() > deadline:
                sys.exit(f"only {sorted(os.listdir(marks))} checked their TF_CONFIG")
            time.sleep(0.05)
        print(f"all {wait_for} replicas checked their TF_CONFIG", flush=True)


if __name__ == "__main__":
    main()
