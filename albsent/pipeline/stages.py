"""The staged pipeline for model extractors (SSL): the model never waits for the CPU.

    decode (CPU tasks) -> model (actor pool: GPU, or CPU) -> write (CPU tasks)

Decoding and preprocessing scale with the cluster's CPUs (CPU nodes of a mixed cluster too),
the model actors get ready batches of segments, and Parquet parts are written by other tasks
while the model runs the next batch; Ray Data's backpressure bounds what waits between stages.
Rows between stages are one per input: `utterance_id` plus a `payload` object (the manifest
item, what decoding found, the segments' samples until the model has used them, then the
features), so a block always holds whole inputs and becomes one part, as in ExtractBlock.
Stored values are those of ExtractBlock (same decode, same batching of segments, same rows).
The classes are plain (no Ray), like worker.py.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd

from albsent.pipeline.worker import ExtractBlock, Loaded, Quarantined


class Sized:
    """Stands in for an array once its samples are no longer needed: only `.size` is read."""

    def __init__(self, size: int):
        self.size = size


def _frame(payloads: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({"utterance_id": [p["item"]["utterance_id"] for p in payloads], "payload": payloads})


def _split(batch: pd.DataFrame) -> tuple[list[dict], list[Loaded], list[Quarantined]]:
    """-> (every item in order, the usable inputs, the quarantined ones)."""
    payloads = list(batch["payload"])
    loaded = [Loaded(p["item"], p["dec"], p["utt"], p["segs"], p.get("copies", [])) for p in payloads
              if p["status"] == "ok"]
    quarantined = [Quarantined(p["item"], p["reason"], p["error"]) for p in payloads if p["status"] == "quarantined"]
    return [p["item"] for p in payloads], loaded, quarantined


class DecodeStage(ExtractBlock):
    """CPU: read, decode, preprocess and cut segments; the model's input, nothing more."""

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        items = batch.to_dict("records")
        loaded, quarantined = self.decode(items)
        done = {}
        for x in loaded:  # the segments carry the audio from here on
            done[x.item["utterance_id"]] = {"item": x.item, "status": "ok", "dec": replace(x.dec, samples=Sized(0)),
                                            "utt": Sized(x.utt.size), "segs": x.segs,
                                            "copies": [replace(c, utt=Sized(c.utt.size)) for c in x.copies]}
        for q in quarantined:
            done[q.item["utterance_id"]] = {"item": q.item, "status": "quarantined", "reason": q.reason,
                                            "error": q.error}
        return _frame([done[i["utterance_id"]] for i in items])


class ModelStage(ExtractBlock):
    """The actor pool: features for every segment of a batch in one call (a clip whose features
    fail is quarantined alone, as in ExtractBlock); the samples are dropped before returning."""

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        _, loaded, quarantined = _split(batch)
        before = len(quarantined)
        t = time.perf_counter()
        feats = self._extract_all(loaded, quarantined)
        seconds = time.perf_counter() - t
        failed = {q.item["utterance_id"]: (q.reason, q.error) for q in quarantined[before:]}
        index = {x.item["utterance_id"]: k for k, x in enumerate(loaded)}
        out = []
        for p in batch["payload"]:
            uid = p["item"]["utterance_id"]
            if p["status"] == "ok" and uid in failed:
                p = {"item": p["item"], "status": "quarantined", "reason": failed[uid][0], "error": failed[uid][1]}
            elif p["status"] == "ok":
                segs = [replace(s, samples=Sized(s.samples.size)) for s in p["segs"]]
                copies = [replace(c, segs=[replace(s, samples=Sized(s.samples.size)) for s in c.segs])
                          for c in p.get("copies", [])]
                p = {**p, "feats": feats[index[uid]], "segs": segs, "copies": copies}
            out.append(p)
        if out:
            out[0] = {**out[0], "extract_s": seconds}
        return _frame(out)


class WriteStage(ExtractBlock):
    """CPU: one Parquet part per block (rows, then quarantine entries); the per-input summary."""

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        items, loaded, quarantined = _split(batch)
        feats = [p["feats"] for p in batch["payload"] if p["status"] == "ok"]
        return self.write(items, loaded, feats, quarantined, sum(p.get("extract_s", 0.0) for p in batch["payload"]))

