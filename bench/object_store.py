"""Object-storage input vs the same corpus on local disk, in the same run.

    .venv/bin/python bench/object_store.py [--clips 600] [--seconds 2] [--repeats 2]

A local S3-compatible server (moto's ThreadedMotoServer, a dev dependency) is started here and
the corpus uploaded to a bucket; `albsent extract` (MFCC + short-term, one local Ray cluster
started once and inherited by the workers with the AWS_* settings) then reads the manifest and
clips from `s3://` and, separately, from disk, into a local store each time. The figure is the
ratio of the two wall times (interleaved runs, best of --repeats). moto serves objects from
Python in this process, so its throughput is a lower bound for a real object store; on 2 vCPUs
it also competes with the workers for CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import boto3
    from _common import many_clips
    from moto.server import ThreadedMotoServer

    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.runner.session import ray_session

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://{host}:{port}")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="albsent-s3bench-"))
    try:
        manifest = many_clips(tmp / "corpus", args.clips, args.seconds)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="corpus")
        t = time.perf_counter()
        for f in sorted((tmp / "corpus").rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), "corpus", str(f.relative_to(tmp / "corpus")))
        print(f"{args.clips} clips of {args.seconds} s uploaded in {time.perf_counter() - t:.1f} s", flush=True)
        inputs = {"local": str(manifest), "s3": "s3://corpus/manifest.csv"}
        best = {k: float("inf") for k in inputs}
        with ray_session(num_cpus=os.cpu_count()):
            for r in range(args.repeats):
                for name, src in inputs.items():
                    out = tmp / f"store-{name}-{r}"
                    t = time.perf_counter()
                    s = extract(src, str(out), ExtractConfig(), progress=False)
                    best[name] = min(best[name], time.perf_counter() - t)
                    assert s.stored == args.clips, s
                    shutil.rmtree(out)
        audio = args.clips * args.seconds
        for name, wall in best.items():
            print(f"{name:<6} {wall:6.1f} s  ({audio / wall:.0f} audio s/s)")
        print(f"s3 / local wall time: {best['s3'] / best['local']:.2f}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
