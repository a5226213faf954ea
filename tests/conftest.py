"""Shared fixtures: environment for offline, token-free local Ray; one Ray cluster per session;
seeded synthetic corpora and stores."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMODB = ROOT.parent / "shared" / "data" / "emodb"
RAY_TMP = Path(tempfile.gettempdir()) / f"albsent-ray-{os.getpid()}"  # one per xdist worker


# The files that take longest (measured with --durations), longest first: with `--dist=loadfile
# --no-loadscope-reorder` an xdist worker takes the next file in collection order, so the long ones
# start first and the two workers end together. Only the order changes; unlisted files follow.
LONGEST_FIRST = ["test_cluster.py", "test_integrity.py", "test_augment.py", "test_safety.py", "test_safety_verify.py",
                 "test_roundtrip.py", "test_sweep_resume.py", "test_stages.py", "test_sweep.py", "test_ssl.py",
                 "test_groups.py", "test_jobs.py", "test_store.py", "test_object_store.py", "test_demo.py",
                 "test_runtime.py", "test_cli.py", "test_select.py", "test_security.py"]


def pytest_addoption(parser, pluginmanager):
    """pyproject's addopts run two pytest-xdist workers (`--numprocesses=2 --dist=loadfile
    --no-loadscope-reorder`). Under `-p no:xdist` (debugging) nobody defines those options: accept
    them here, and run in one process."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist (disabled: these options are ignored)")
        group.addoption("--numprocesses", default=None)
        group.addoption("--dist", default="no")
        group.addoption("--no-loadscope-reorder", action="store_true")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: unlisted files keep their order


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster (2 CPUs, loopback) per pytest process (each xdist worker has its own),
    shared by the tests that need Ray; stopped at the end."""
    import ray

    from albsent.runner.ray_private import loopback_node_ip
    from albsent.runner.session import LOOPBACK_ENV, environ

    if not ray.is_initialized():  # on loopback only, as albsent's own local clusters
        with environ(LOOPBACK_ENV), loopback_node_ip():
            ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(RAY_TMP), logging_level="WARNING")
    yield ray
    ray.shutdown()
    shutil.rmtree(RAY_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    """The tiny random SSL model zoo (albsent.testing.tiny_ssl), saved once: key -> folder."""
    from albsent.testing.tiny_ssl import tiny_models

    return {k: str(v) for k, v in tiny_models(tmp_path_factory.mktemp("ssl")).items()}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """24 seeded clips (3 classes x 4 x 2 speakers); returns the manifest path."""
    from albsent.testing.synth import make_corpus

    return make_corpus(tmp_path_factory.mktemp("corpus"), n_per_class=4, speakers=2, seed=0)


@pytest.fixture(scope="session")
def store(corpus, ray_local, tmp_path_factory) -> Path:
    """MFCC + short-term store of `corpus` (read-only for tests: copy before modifying)."""
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract

    out = tmp_path_factory.mktemp("stores") / "base"
    extract(str(corpus), str(out), ExtractConfig(), progress=False)
    return out


def emodb_manifest(name: str = "manifest_sentiment.csv") -> Path:
    path = EMODB / name
    if not path.is_file():
        pytest.skip(f"EMO-DB not present at {EMODB}")
    return path


@pytest.fixture
def torch_one_thread():
    """Tiny torch models on a shared 2-core machine: one intra-op thread is faster and kinder;
    the previous setting is restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
