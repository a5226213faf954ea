"""Every YAML under configs/ and cluster/ parses; stage configs build with their dataclass (read
as `--config` reads them: `extends:` resolved); the cluster-launcher and KubeRay files have the
keys Ray needs and agree with each other and with the resource labels the job configs ask for.
Files are discovered, so new configs are covered."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from albsent.config import build, read_yaml
from albsent.registry import JOBS, STAGES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "jobs"))
import _job  # noqa: E402

FOLDER_STAGE = {"sweeps": "sweep", "latent": "pretrain", "paper": "train"}
YAMLS = sorted(p for d in ("configs", "cluster") for p in (ROOT / d).rglob("*.y*ml"))
STAGE_CONFIGS = [p for p in YAMLS if p.parts[len(ROOT.parts)] == "configs"]
CLUSTER = ROOT / "cluster"


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def candidate_stages(path: Path) -> list[str]:
    """jobs/<stage>_*.yaml; a folder convention; a file named after its stage; the stage of the
    `albsent STAGE ... --config` usage line every config carries; else any stage."""
    if path.parent.name == "jobs":
        return [path.stem.split("_")[0]]
    if path.parent.name in FOLDER_STAGE:
        return [FOLDER_STAGE[path.parent.name]]
    if path.stem in STAGES:
        return [path.stem]
    used = re.findall(r"albsent\s+(\w+)\b[^\n]*--config", path.read_text())
    return [s for s in dict.fromkeys(used) if s in STAGES] or list(STAGES)


@pytest.mark.parametrize("path", YAMLS, ids=rel)
def test_yaml_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs), f"{rel(path)}: expected YAML mapping(s)"


@pytest.mark.parametrize("path", STAGE_CONFIGS, ids=rel)
def test_stage_config_builds(path):
    data = read_yaml(path)  # every `extends:` resolves
    errors, built = [], 0
    for stage in candidate_stages(path):
        try:
            if path.parent.name == "jobs":
                assert stage in JOBS, f"{rel(path)}: no jobs/{stage}.py for this job config"
                paths, data = _job.split(stage, data)
            build(STAGES[stage].config_class(), data)
            built += 1
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(f"{stage}: {exc}")
    assert built, f"{rel(path)} builds with no stage config: " + " | ".join(errors)


def test_job_configs_run_existing_entrypoints():
    for path in (ROOT / "configs" / "jobs").glob("*.yaml"):
        stage = path.stem.split("_")[0]
        assert (ROOT / "jobs" / f"{stage}.py").is_file(), f"{rel(path)}: no jobs/{stage}.py"
    entrypoints = {p.stem for p in (ROOT / "jobs").glob("*.py") if not p.stem.startswith("_")}
    assert entrypoints == set(JOBS), "jobs/*.py and albsent.registry.COMMANDS' job keys disagree"


# ---- cluster/ ------------------------------------------------------------------------------

def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def requested_labels() -> set[str]:
    """Custom Ray resources the extraction job configs ask for (e.g. cpu_node, gpu_node)."""
    out = set()
    for path in (ROOT / "configs" / "jobs").glob("extract_*.yaml"):
        out |= set(read_yaml(path).get("resources", {}))
    return out


def test_launcher_config():
    import ray

    c = load("cluster.yaml")
    for key in ("cluster_name", "max_workers", "provider", "available_node_types", "head_node_type",
                "head_start_ray_commands", "worker_start_ray_commands", "idle_timeout_minutes"):
        assert key in c, f"cluster/cluster.yaml: missing {key}"
    assert c["provider"]["type"] and c["head_node_type"] in c["available_node_types"]
    assert ray.__version__ in c["docker"]["image"], "the image's Ray version must match the installed Ray"
    workers = {k: v for k, v in c["available_node_types"].items() if k != c["head_node_type"]}
    for name, t in workers.items():
        assert {"node_config", "resources", "min_workers", "max_workers"} <= set(t), name
        assert 0 <= t["min_workers"] <= t["max_workers"] <= c["max_workers"], name
    offered = {r for t in workers.values() for r in t["resources"]}
    assert requested_labels() <= offered, f"job configs ask for {requested_labels() - offered}, no node type offers it"
    gpu = [t for t in workers.values() if t["resources"].get("GPU")]
    cpu = [t for t in workers.values() if not t["resources"].get("GPU")]
    assert any("gpu_node" in t["resources"] for t in gpu) and any("cpu_node" in t["resources"] for t in cpu)
    assert c["available_node_types"][c["head_node_type"]]["resources"].get("CPU") == 0


def _groups(spec: dict) -> dict[str, dict]:
    out = {}
    for g in spec["workerGroupSpecs"]:
        assert {"groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"} <= set(g)
        assert 0 <= g["minReplicas"] <= g.get("replicas", g["minReplicas"]) <= g["maxReplicas"], g["groupName"]
        raw = g["rayStartParams"].get("resources", '"{}"')
        out[g["groupName"]] = {"resources": json.loads(json.loads(raw)),
                               "container": g["template"]["spec"]["containers"][0]}
    return out


def test_kuberay_raycluster():
    import ray

    rc = load("kuberay/raycluster.yaml")
    assert rc["apiVersion"] == "ray.io/v1" and rc["kind"] == "RayCluster" and rc["metadata"]["name"]
    spec = rc["spec"]
    assert spec["rayVersion"] == ray.__version__ and spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["template"]["spec"]["containers"][0]["image"]
    groups = _groups(spec)
    offered = {r for g in groups.values() for r in g["resources"]}
    assert requested_labels() <= offered
    for g in groups.values():
        limits = g["container"]["resources"]["limits"]
        assert ("gpu_node" in g["resources"]) == ("nvidia.com/gpu" in limits), "gpu_node only on GPU pods"


def test_kuberay_rayjob_runs_a_job_on_the_same_cluster_spec():
    job = load("kuberay/rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["python", entry[1]] and (ROOT / entry[1]).is_file(), spec["entrypoint"]
    assert (ROOT / entry[entry.index("--config") + 1]).is_file()
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["working_dir"] and set(env) <= {"working_dir", "excludes", "env_vars", "pip", "py_modules"}
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["rayClusterSpec"] == load("kuberay/raycluster.yaml")["spec"], "rayjob.yaml drifted from raycluster.yaml"


def test_runtime_env():
    env = load("runtime_env.yaml")
    assert set(env) <= {"working_dir", "excludes", "env_vars", "pip", "py_modules", "conda", "config"}
    assert {".venv/", ".git/"} <= set(env["excludes"])
    assert all(isinstance(v, str) for v in env.get("env_vars", {}).values()), "env_vars values must be strings"


def test_readme_names_only_files_that_exist():
    text = (CLUSTER / "README.md").read_text()
    named = set(re.findall(r"\b((?:jobs|configs|cluster)/[\w./-]+\.(?:py|yaml))", text))
    assert named, "cluster/README.md names no jobs or configs"
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"cluster/README.md names files that do not exist: {missing}"
