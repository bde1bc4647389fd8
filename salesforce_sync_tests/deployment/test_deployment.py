"""The deployment shapes the README documents, started as a user starts them.

- Production: the code location as its own gRPC server, the webserver and the daemon as separate processes
  on one PostgreSQL-backed instance (deploy/production); the integration's sensor requests a run, the
  queued run coordinator launches it, and it completes.
- `dagster dev` in the project folder with nothing set comes up on local state.
- The containerised instance (deploy/docker) loads, with its Docker run launcher.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from salesforce_sync.store import AudienceStore

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any Dagster or salesforce-sync setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "SALESFORCE_SYNC_", "AUDIENCE_STORE"))}
    env.update(extra)
    return env


class Processes:
    """Started processes, stopped (and their logs kept for a failure message) when the test ends."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((name, process))
        return process

    def tails(self) -> str:
        return "\n".join(f"--- {name} ---\n" + (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                         for name, _ in self.started)

    def stop(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


def wait_for(what: str, probe, processes: Processes, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.started:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode} while waiting for {what}\n{processes.tails()}")
        result = probe()
        if result:
            return result
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{processes.tails()}")


def graphql(port: int, query: str) -> dict | None:
    try:
        response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10)
    except requests.ConnectionError:
        return None
    return response.json().get("data") if response.ok else None


RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"


@pytest.mark.slow
@pytest.mark.postgres
def test_code_server_webserver_and_daemon_on_postgres_run_what_the_sensor_requests(
        tmp_path: Path, postgres_database_url: str, processes: Processes, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = make_url(postgres_database_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy/production/dagster.yaml", home / "dagster.yaml")
    grpc_port, web_port = free_port(), free_port()
    workspace = yaml.safe_load((REPO / "deploy/production/workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"]["port"] = grpc_port
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    start = (datetime.now(UTC) - timedelta(hours=6)).strftime("%Y-%m-%d %H:00")
    (tmp_path / "integrations.yaml").write_text(f"""
projects: [deploy]
integrations:
  - id: deployed
    project: deploy
    environment: emulator
    emulator: {{seed: 3, leads: 60, contacts: 30, campaign_members: 10}}
    frequency: 60
    start: "{start}"
    objects:
      Lead:
        sync_rules: {{match: all, rules: [{{field: Email, operator: is_set}}]}}
        field_mappings: []
""")
    env = clean_env(
        DAGSTER_HOME=str(home), DAGSTER_PG_HOST=pg.host or "127.0.0.1", DAGSTER_PG_USERNAME=pg.username or "postgres",
        DAGSTER_PG_PASSWORD=pg.password or "", DAGSTER_PG_DB=pg.database or "", DAGSTER_PG_PORT=str(pg.port or 5432),
        SALESFORCE_SYNC_CONFIG=str(tmp_path / "integrations.yaml"), SALESFORCE_SYNC_HOME=str(tmp_path / "sync_home"),
        AUDIENCE_STORE_URL=f"sqlite:///{tmp_path / 'audience.db'}")

    processes.start("code-server", [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
                                    "-m", "salesforce_sync.dagster_defs.definitions", "-a", "defs",
                                    "--location-name", "salesforce_sync"], env, tmp_path)
    processes.start("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                  "-w", str(tmp_path / "workspace.yaml")], env, tmp_path)
    processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")], env, tmp_path)

    def finished_runs() -> list[dict] | None:
        data = graphql(web_port, RUNS)
        runs = (data or {}).get("runsOrError", {}).get("results") or []
        done = [run for run in runs if run["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                and {"key": "dagster/sensor_name", "value": "sync_deployed_windows"} in run["tags"]]
        return done or None

    runs = wait_for("a run launched by the sensor to finish", finished_runs, processes, timeout=240)
    run = runs[0]
    assert run["status"] == "SUCCESS", processes.tails()
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert tags.get("salesforce_sync/integration") == "deployed"

    # It went through the queue: enqueued first, then started by the daemon's coordinator.
    for key in ("DAGSTER_PG_HOST", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB", "DAGSTER_PG_PORT"):
        monkeypatch.setenv(key, env[key])
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        # The instance batches its bookkeeping (salesforce_sync.dagster_defs.instance), on PostgreSQL too.
        assert type(instance.event_log_storage).__name__ == "BatchedPostgresEventLogStorage"
        planned = instance.all_logs(run["runId"], of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        assert planned and instance.get_materialized_partitions(planned[0].dagster_event.asset_key)
        enqueued = instance.all_logs(run["runId"], of_type=dg.DagsterEventType.RUN_ENQUEUED)
        starting = instance.all_logs(run["runId"], of_type=dg.DagsterEventType.RUN_STARTING)
    finally:
        instance.dispose()
    assert enqueued and starting and enqueued[0].timestamp <= starting[0].timestamp

    with AudienceStore(env["AUDIENCE_STORE_URL"]) as store:
        counts = store.user_counts("deploy")
    assert int(counts["live"].sum()) > 0


@pytest.mark.slow
def test_dagster_dev_in_the_project_folder_with_nothing_set_comes_up_on_local_state(
        tmp_path: Path, processes: Processes) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, project / name)
    port = free_port()
    env = clean_env(SALESFORCE_SYNC_HOME=str(tmp_path / "sync_home"))
    processes.start("dagster-dev", [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)], env, project)

    def location_loaded() -> bool:
        data = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                             "locationOrLoadError { __typename } } } } }")
        entries = (data or {}).get("workspaceOrError", {}).get("locationEntries") or []
        return any(entry["name"] == "salesforce_sync"
                   and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation" for entry in entries)

    wait_for("the webserver to load the salesforce_sync code location", location_loaded, processes, timeout=120)
    assert list(project.glob(".tmp_dagster_home_*")), "dagster dev keeps its local state in the project folder"
    # Its instance (./dagster.yaml's instance_class) writes events in batches, on the batching SQLite event log.
    info = graphql(port, "{ instance { info } }")["instance"]["info"]
    assert "event_log_storage: BatchedSqliteEventLogStorage" in info, info


def test_the_containerised_instance_loads_with_its_docker_run_launcher(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(REPO / "deploy/docker/dagster.yaml", tmp_path / "dagster.yaml")
    for key, value in {"DAGSTER_PG_HOST": "postgres", "DAGSTER_PG_USERNAME": "dagster", "DAGSTER_PG_PASSWORD": "x",
                       "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_PORT": "5432"}.items():
        monkeypatch.setenv(key, value)
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    config, _ = dagster_instance_config(str(tmp_path))
    ref = InstanceRef.from_dir(str(tmp_path))
    launcher = ref.run_launcher  # imports dagster_docker and validates the launcher's config against its schema
    assert type(launcher).__name__ == "DockerRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    compose = yaml.safe_load((REPO / "deploy/docker/compose.yaml").read_text())
    workspace = yaml.safe_load((REPO / "deploy/docker/workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] in compose["services"]
    assert set(compose["services"]) >= {"postgres", "code", "webserver", "daemon"}
    assert compose["networks"]["salesforce_sync"]["name"] == config["run_launcher"]["config"]["network"]
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    assert "salesforce_sync.dagster_defs.definitions" in dockerfile and "4266" in dockerfile
    assert str(workspace["load_from"][0]["grpc_server"]["port"]) in dockerfile
