"""deploy/kubernetes/, rendered by kustomize (`kubectl kustomize`, the
kustomize built into kubectl) and checked by tools we did not write:
every rendered manifest validates against a current Kubernetes schema
(`kubernetes-validate`, strict: no unknown fields), and both the sources
and the rendered output pass `yamllint`.

Also checked: the shape a distributed run depends on — an Indexed Job of
producers whose completions and parallelism equal the fleet's WORKERS,
processors as a Deployment in one group, a final account Job, the
ConfigMap and the Secret reaching every pod.
"""

import pathlib
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml
from yamllint import config as yamllint_config
from yamllint import linter

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
# yamllint's defaults, with longer lines, no `---` required, and sequences
# indented or not as long as a file keeps to one way (kustomize writes them
# unindented, the sources indent them).
LINT = yamllint_config.YamlLintConfig(
    "extends: default\n"
    "rules:\n"
    "  line-length: {max: 120}\n"
    "  document-start: disable\n"
    "  indentation: {spaces: consistent, indent-sequences: consistent}\n"
)


def _rendered():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # The machine image ships kubectl 1.32 (kustomize 5.5); Debian's
        # kubernetes-client is 1.20, whose kustomize 2 reads none of this.
        pytest.fail("kubectl (for its built-in kustomize 5) is not on PATH")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _lint(text, name):
    problems = [f"{name}:{p.line}:{p.column} {p.desc} ({p.rule})" for p in linter.run(text, LINT)]
    assert problems == [], "\n".join(problems)


def test_every_rendered_manifest_validates_against_the_current_schema():
    docs = [d for d in yaml.safe_load_all(_rendered()) if d]
    version = kubernetes_validate.latest_version()
    kinds = []
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.append((doc["kind"], doc["metadata"]["name"]))
    assert ("Job", "mskbench-producers") in kinds and ("Job", "mskbench-account") in kinds, kinds
    assert ("Deployment", "mskbench-processor") in kinds, kinds
    assert any(kind == "ConfigMap" for kind, _ in kinds) and ("Secret", "mskbench-credentials") in kinds
    assert all(d["metadata"].get("namespace", "mskbench") == "mskbench" for d in docs)


def test_the_fleet_is_one_indexed_job_as_wide_as_its_workers():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(_rendered()) if d}
    (config,) = [d for (kind, _), d in docs.items() if kind == "ConfigMap"]
    workers = int(config["data"]["WORKERS"])
    job = docs[("Job", "mskbench-producers")]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == workers
    (produce,) = job["template"]["spec"]["containers"]
    args = produce["args"]
    assert args[0] == "produce" and "--workers" in args and "--start-at" in args, args
    assert "/results/worker-$(JOB_COMPLETION_INDEX).json" in args, args
    processors = docs[("Deployment", "mskbench-processor")]["spec"]
    assert processors["replicas"] >= 2
    assert "--group" in processors["template"]["spec"]["containers"][0]["args"]
    for key in [("Job", "mskbench-producers"), ("Deployment", "mskbench-processor"), ("Job", "mskbench-account")]:
        (container,) = docs[key]["spec"]["template"]["spec"]["containers"]
        refs = [next(iter(r.values()))["name"] for r in container["envFrom"]]
        assert config["metadata"]["name"] in refs and "mskbench-credentials" in refs, (key, refs)


def test_the_sources_and_the_rendered_output_pass_yamllint():
    for path in sorted(DEPLOY.glob("*.yaml")):
        _lint(path.read_text(), path.name)
    _lint(_rendered(), "rendered")
