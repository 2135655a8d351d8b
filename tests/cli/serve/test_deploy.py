"""`mlops deploy`: a stable endpoint (the `mlops-worker route` router) in front of services named
DEPLOYMENT-vN, and the rollouts that move its traffic from one model version to another, seen by
a user. Each test works in its own project with mlp@1 and mlp@2 registered (the same ONNX file
twice) and a deployment 'web' serving mlp@1, drives real rollouts with real workers while
`mlops serve load` sends traffic through the router, injects the faults a rollout must survive
(a version that answers 500, an incompatible input signature, a worker or the controller killed
with SIGKILL, no traffic at all), and checks what a user notices: exit codes, the result on stdout,
`deploy status` and `deploy history`, the registry alias, the load's failed requests and the
processes left afterwards. `deploy rm --force` in the fixture must leave nothing running.

Exit codes: 0 ok, 2 usage, 3 not found, 4 conflict, 6 rolled back or refused by the signature
gate, 7 worker unhealthy."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN, Result, clean_env, expect_error, make_home, parse_one_document
from serving import MODELS, Project, checked, processes_in, request_for, running

MLP = MODELS / "mlp.onnx"  # input "features" [batch, 4]
CNN = MODELS / "cnn.onnx"  # input "image" [batch, 1, 8, 8]: incompatible with mlp's callers
FEATURES = request_for("mlp", np.zeros((1, 4), dtype=np.float32), flat=True)  # what the deployment's clients send
READY = ("--ready-timeout", "30s")


class Deployed(Project):
    """A project whose deployment 'web' serves mlp@1; starts commands in the background too."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.children: list[subprocess.Popen] = []
        self.url = ""

    def spawn(self, *args, env: dict | None = None) -> subprocess.Popen:
        """`mlops ARGS` started in the background (stdout and stderr kept for finish())."""
        child = subprocess.Popen([str(BIN), *map(str, args)], cwd=self.path, env=clean_env(env),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.children.append(child)
        return child

    @staticmethod
    def finish(child: subprocess.Popen, timeout: float = 60) -> Result:
        stdout, stderr = child.communicate(timeout=timeout)
        return Result(child.returncode, stdout, stderr)

    def load(self, seconds: float, concurrency: int = 4) -> subprocess.Popen:
        """`serve load web --json` in the background, given a moment to start sending."""
        child = self.spawn("--json", "serve", "load", "web", "-c", concurrency, "-d", f"{seconds}s")
        time.sleep(0.5)
        assert child.poll() is None, self.finish(child)
        return child

    def load_report(self, child: subprocess.Popen) -> dict:
        result = self.finish(child)
        assert result.returncode == 0, result
        report = checked(parse_one_document(result.stdout), "serve-load")
        assert report["requests"] == report["succeeded"] + report["failed"] and report["requests"] > 0, report
        return report

    def status(self, name: str = "web") -> dict:
        return self.doc("deploy", "status", name, schema="deploy-status")

    def weights(self, name: str = "web") -> dict[str, int]:
        """service -> weight in the router's live table."""
        return {backend["service"]: backend["weight"] for backend in self.status(name)["backends"]}

    def events(self, name: str = "web") -> list[dict]:
        return self.doc("deploy", "history", name, schema="deploy-history")["events"]

    def last_rollout_events(self) -> list[dict]:
        """The events from the last rollout's "starting" on."""
        events = self.events()
        starts = [i for i, event in enumerate(events) if event["phase"] == "starting"]
        assert starts, events
        return events[starts[-1]:]

    def services(self) -> dict[str, dict]:
        return {service["service"]: service for service in self.doc("serve", "ls", schema="serve-ls")["services"]}

    def alias(self, alias: str) -> str:
        return self.doc("model", "show", f"mlp@{alias}")["ref"]

    def alias_moves(self) -> list[tuple]:
        moves = self.doc("model", "alias", "history", "mlp", schema="model-alias-history")["moves"]
        return [(move["alias"], move["from"], move["to"], move["command"]) for move in moves]

    def answered_by(self) -> str:
        """The backend that answers a client's request through the router (it must succeed)."""
        request = urllib.request.Request(f"{self.url}/v2/models/mlp/infer", data=json.dumps(FEATURES).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.headers["X-Mlops-Backend"]
        except urllib.error.HTTPError as error:
            refusal = f"HTTP {error.code}: {error.read().decode()}"
            raise AssertionError(f"the deployment refused a client: {refusal}") from None

    def wait_for(self, condition, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s: {self.status()}"
            time.sleep(0.05)


@pytest.fixture
def deployed(project):
    """'web' serving mlp@1 (mlp@2 registered too). Afterwards `deploy rm --force` must leave no
    router, worker or services row behind; whatever it left is killed and the test fails."""
    make_home(project)
    deployed = Deployed(project)
    assert deployed.doc("model", "register", "mlp", MLP)["ref"] == "mlp@1"
    assert deployed.doc("model", "register", "mlp", MLP)["ref"] == "mlp@2"
    created = deployed.doc("deploy", "create", "web", "--model", "mlp@1", *READY, schema="deploy-create")
    assert (created["deployment"], created["stable_version"], created["phase"]) == ("web", 1, "stable")
    assert running(created["router_pid"]) and created["router_alive"]
    deployed.url = created["url"]
    yield deployed
    for child in deployed.children:
        if child.poll() is None:
            child.kill()
        child.communicate()
    try:
        for listed in deployed.doc("deploy", "ls", schema="deploy-ls")["deployments"]:
            deployed.run("deploy", "rm", listed["deployment"], "--force")
        left = (deployed.rows(), processes_in(project))
        deployed.run("serve", "stop", "--all", "--timeout", "5s")
    finally:
        for pid in processes_in(project):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert left == ([], []), f"`deploy rm --force` left (services rows, processes) behind: {left}"


def seconds_between(earlier: str, later: str) -> float:
    parse = lambda at: datetime.fromisoformat(at.replace("Z", "+00:00"))  # noqa: E731
    return (parse(later) - parse(earlier)).total_seconds()


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mlops: deploy web: ")]


# 1. A healthy canary under load ---------------------------------------------------------------------


def test_a_healthy_canary_is_promoted_under_load_without_a_failed_request(deployed):
    old = deployed.services()["web-v1"]
    load = deployed.load(7)
    result = deployed.run("deploy", "canary", "web", "--to", "mlp@2", "--steps", "25,50,100", "--interval", "1s",
                          "--min-requests", "5", "--set-alias", "production", *READY)
    assert load.poll() is None, "the load ended before the rollout: it did not cover all of it"
    assert result.returncode == 0, result
    assert result.stdout.strip() == f"'web' now serves mlp@2 at {deployed.url}", result
    lines = progress_lines(result.stderr)
    assert lines[0] == "mlops: deploy web: canary from version 1 to 2", lines
    assert any("step 3: 100% to version 2" in line for line in lines), lines
    assert lines[-1] == ("mlops: deploy web: promoted: version 2 is stable, version 1 stops; "
                         "mlp@production now names version 2"), lines

    report = deployed.load_report(load)
    assert (report["failed"], report["errors"]) == (0, {}), report

    status = deployed.status()
    assert (status["phase"], status["stable_version"], status["previous_version"]) == ("stable", 2, 1)
    assert (status["rollout"], status["controller"]) == (None, None)
    assert status["last_rollout"]["outcome"] == "promoted" and status["router"]["ready"]
    backends = [(b["service"], b["version"], b["weight"], b["healthy"]) for b in status["backends"]]
    assert backends == [("web-v2", 2, 100, True)], status
    assert list(deployed.services()) == ["web-v2"] and not running(old["pid"])
    assert deployed.answered_by() == "web-v2"

    # Every step was analysed on real traffic, at the weights asked for, and passed.
    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", *["progressing"] * 3, "finishing", "stable"], events
    analysed = [e["details"] for e in events if e["details"]["analysis"]]
    assert [d["weight"] for d in analysed] == [25, 50, 100]
    assert all(d["analysis"]["verdict"] == "pass" for d in analysed), analysed
    assert all(d["analysis"]["candidate"]["requests"] >= 5 for d in analysed), analysed

    assert deployed.alias("production") == "mlp@2"
    assert deployed.alias_moves() == [("production", None, 2, "mlops deploy canary web")]


# 2. Blue-green under load ---------------------------------------------------------------------------


def test_a_blue_green_switch_under_load_keeps_the_old_worker_warm_for_the_delay(deployed):
    old = deployed.services()["web-v1"]
    load = deployed.load(7)
    rollout = deployed.spawn("deploy", "bluegreen", "web", "--to", "mlp@2", "--pre-analysis",
                             "1s,max-error-rate=0.01,min-requests=5", "--scale-down-delay", "2s", *READY)
    deployed.wait_for(lambda: deployed.status()["phase"] == "finishing", "the switch")
    # During the delay: all traffic on green, blue still running (at weight 0) to switch back to.
    assert deployed.weights() == {"web-v1": 0, "web-v2": 100}
    assert running(old["pid"]) and deployed.services()["web-v1"]["state"] == "ready"
    assert deployed.answered_by() == "web-v2"

    result = deployed.finish(rollout)
    assert load.poll() is None, "the load ended before the rollout: it did not cover all of it"
    assert result.returncode == 0, result
    assert result.stdout.strip() == f"'web' now serves mlp@2 at {deployed.url}", result
    assert not running(old["pid"]) and list(deployed.services()) == ["web-v2"]
    assert deployed.weights() == {"web-v2": 100}

    report = deployed.load_report(load)
    assert (report["failed"], report["errors"]) == (0, {}), report

    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", "progressing", "finishing", "stable"]
    assert "passed its smoke test (5 requests) and pre-analysis" in events[1]["reason"], events
    assert events[1]["details"]["pre_analysis"]["verdict"] == "pass"
    assert seconds_between(events[2]["at"], events[3]["at"]) >= 1.9, "blue was stopped before --scale-down-delay 2s"
    assert deployed.status()["last_rollout"]["outcome"] == "promoted"


# 3. A failing canary under load ---------------------------------------------------------------------


def test_a_canary_that_answers_500_is_rolled_back_and_the_alias_stays(deployed):
    deployed.ok("model", "alias", "set", "mlp", "production", "1")
    load = deployed.load(4)
    result = deployed.run("--json", "deploy", "canary", "web", "--to", "mlp@2", "--steps", "25,50,100", "--interval",
                          "1s", "--min-requests", "10", "--set-alias", "production", *READY,
                          env={"MLOPS_WORKER_FAIL_AFTER": "10"})  # the smoke test's 5 pass; then 500s
    assert result.returncode == 6, result
    document = checked(parse_one_document(result.stdout), "deploy-rollout")
    assert (document["outcome"], document["phase"], document["stable_version"]) == ("rolled back", "stable", 1)
    assert "error rate" in document["reason"] and "--max-error-rate 1%" in document["reason"], document
    expect_error(result, 6, "the rollout of 'web' was rolled back", "error rate", after_progress=True)

    status = deployed.status()
    assert (status["phase"], status["stable_version"], status["previous_version"]) == ("stable", 1, None)
    assert status["last_rollout"]["outcome"] == "rolled back" and "error rate" in status["last_rollout"]["reason"]
    assert deployed.weights() == {"web-v1": 100}
    assert list(deployed.services()) == ["web-v1"], "the failed canary's worker is still running"
    assert deployed.answered_by() == "web-v1"

    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", "progressing", "aborting", "stable"]
    assert "error rate" in events[2]["reason"], events[2]
    assert events[3]["reason"].startswith("rolled back to version 1: ")

    assert deployed.alias("production") == "mlp@1"
    assert [move[2] for move in deployed.alias_moves()] == [1], "the alias moved to the version that failed"

    # The clients saw the canary's 500s until the rollback, and none after it.
    report = deployed.load_report(load)
    assert set(report["errors"]) == {"HTTP 500"} and report["succeeded"] > report["failed"], report
    after = deployed.doc("serve", "load", "web", "-c", "2", "-d", "1s", schema="serve-load")
    assert after["failed"] == 0 and after["succeeded"] > 0, after

    # The numbers that failed are kept for `deploy status` and `deploy history`, also when the
    # window ended early.
    assert events[2]["details"]["analysis"] and events[2]["details"]["analysis"]["verdict"] == "fail", \
        f"the rollback's event does not carry the analysis that failed: {events[2]}"
    last_analysis = deployed.status()["last_analysis"]
    assert last_analysis and last_analysis["verdict"] == "fail", \
        f"`deploy status` shows no failed analysis for a rollout that analysis rolled back: {last_analysis}"


# 4. An incompatible input signature -----------------------------------------------------------------


def test_an_incompatible_signature_is_refused_before_traffic_and_fails_when_forced(deployed):
    assert deployed.doc("model", "register", "mlp", CNN)["ref"] == "mlp@3"
    canary = ("deploy", "canary", "web", "--to", "mlp@3", "--steps", "50,100", "--interval", "1s",
              "--min-requests", "5", *READY)
    deployed.fails(6, *canary, needles=("mlp@3's inputs are not compatible with mlp@1's", "features", "--force"))
    assert [e["phase"] for e in deployed.events()] == ["stable"], "the refused rollout started"
    assert list(deployed.services()) == ["web-v1"] and deployed.status()["last_rollout"] is None

    # Forced, with the request clients send as the smoke test: refused before any client request.
    sample = deployed.write("features.json", FEATURES)
    result = deployed.run(*canary, "--force", "--sample", sample)
    expect_error(result, 6, "the smoke test of version 3 failed", "HTTP 4", after_progress=True)
    assert "mlops: warning: mlp@3's inputs are not compatible" in result.stderr and "--force" in result.stderr, result
    assert result.stdout == f"'web' is back on mlp@1 at {deployed.url}\n", result
    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", "aborting", "stable"], f"traffic went to version 3: {events}"
    assert events[0]["details"]["warnings"], events[0]
    assert list(deployed.services()) == ["web-v1"] and deployed.answered_by() == "web-v1"

    # Forced, with the default smoke test (built from the new signature) and clients under load:
    # the analysis sees the clients' requests refused and rolls it back.
    load = deployed.load(4)
    result = deployed.run(*canary, "--force")
    expect_error(result, 6, "the rollout of 'web' was rolled back", "error rate", after_progress=True)
    assert [e["phase"] for e in deployed.last_rollout_events()] == ["starting", "progressing", "aborting", "stable"]
    report = deployed.load_report(load)
    assert report["errors"] and all(error.startswith("HTTP 4") for error in report["errors"]), report
    status = deployed.status()
    assert (status["phase"], status["stable_version"]) == ("stable", 1)
    assert list(deployed.services()) == ["web-v1"] and deployed.answered_by() == "web-v1"


# 5. The canary's worker killed ----------------------------------------------------------------------


def test_a_canary_whose_worker_is_killed_is_rolled_back_and_no_client_notices(deployed):
    load = deployed.load(6)
    rollout = deployed.spawn("deploy", "canary", "web", "--to", "mlp@2", "--steps", "50,100", "--interval", "3s",
                             "--min-requests", "5", *READY)
    deployed.wait_for(lambda: deployed.weights().get("web-v2") == 50, "step 1 (50% to version 2)")
    [canary] = [b for b in deployed.status()["backends"] if b["service"] == "web-v2"]
    assert canary["alive"] and running(canary["pid"])
    time.sleep(0.5)  # clients' requests reach it
    os.kill(canary["pid"], signal.SIGKILL)

    result = deployed.finish(rollout)
    expect_error(result, 6, "the rollout of 'web' was rolled back",
                 f"the worker of version 2 died (pid {canary['pid']})", after_progress=True)
    assert result.stdout == f"'web' is back on mlp@1 at {deployed.url}\n", result
    status = deployed.status()
    assert (status["phase"], status["stable_version"]) == ("stable", 1)
    assert "died" in status["last_rollout"]["reason"]
    assert deployed.weights() == {"web-v1": 100} and list(deployed.services()) == ["web-v1"]
    assert deployed.answered_by() == "web-v1"
    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", "progressing", "aborting", "stable"]
    assert "the worker of version 2 died" in events[2]["reason"]

    # Requests in flight on the killed worker were sent again to the stable one.
    report = deployed.load_report(load)
    assert (report["failed"], report["errors"]) == (0, {}), report


# 6. The controller killed ---------------------------------------------------------------------------


def kill_controller_in_step_1(deployed: Deployed, to: str):
    """Starts a canary to `to` (50,100 every 2 s), SIGKILLs its mlops in step 1's window."""
    rollout = deployed.spawn("deploy", "canary", "web", "--to", to, "--steps", "50,100", "--interval", "2s",
                             "--min-requests", "0", *READY)
    deployed.wait_for(lambda: deployed.weights().get("web-v2") == 50, "step 1 (50% to version 2)")
    rollout.kill()
    rollout.communicate()
    status = deployed.status()
    assert (status["phase"], status["rollout"]["step"]) == ("progressing", 0), status
    assert status["controller"] == {"pid": rollout.pid, "alive": False}
    assert deployed.weights() == {"web-v1": 50, "web-v2": 50}
    shown = deployed.ok("deploy", "status", "web")
    assert "not running: `mlops deploy resume web` goes on, `mlops deploy abort web` goes back" in shown, shown
    assert deployed.answered_by() in ("web-v1", "web-v2")  # the router keeps serving without its controller


def test_a_rollout_whose_mlops_was_killed_is_finished_by_resume(deployed):
    kill_controller_in_step_1(deployed, "mlp@2")
    result = deployed.run("deploy", "resume", "web")
    assert result.returncode == 0, result
    assert result.stdout.strip() == f"'web' now serves mlp@2 at {deployed.url}", result
    assert progress_lines(result.stderr)[0].startswith("mlops: deploy web: resumed by pid "), result
    status = deployed.status()
    assert (status["phase"], status["stable_version"], status["controller"]) == ("stable", 2, None)
    assert deployed.weights() == {"web-v2": 100} and list(deployed.services()) == ["web-v2"]
    assert [e["phase"] for e in deployed.last_rollout_events()] == ["starting", "progressing", "progressing",
                                                                   "finishing", "stable"]
    assert "nothing to do" in deployed.doc("deploy", "resume", "web", schema="deploy-rollout")["outcome"]


def test_a_rollout_whose_mlops_was_killed_is_undone_by_abort(deployed):
    kill_controller_in_step_1(deployed, "mlp@2")
    # Going back is what abort was asked to do: exit 0, outcome "rolled back".
    document = deployed.doc("deploy", "abort", "web", schema="deploy-rollout")
    assert (document["outcome"], document["stable_version"]) == ("rolled back", 1), document
    assert document["reason"] == "aborted by `mlops deploy abort`", document
    status = deployed.status()
    assert (status["phase"], status["stable_version"], status["controller"]) == ("stable", 1, None)
    assert status["last_rollout"]["outcome"] == "rolled back"
    assert deployed.weights() == {"web-v1": 100} and list(deployed.services()) == ["web-v1"]
    assert deployed.answered_by() == "web-v1"
    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", "progressing", "aborting", "stable"]
    assert events[2]["reason"] == "aborted by `mlops deploy abort`"
    # Nothing is left to resume or abort.
    assert deployed.doc("deploy", "resume", "web", schema="deploy-rollout")["outcome"] == "nothing to do"
    assert deployed.doc("deploy", "abort", "web", schema="deploy-rollout")["outcome"] == "nothing to do"


# 7, 8. Pauses ---------------------------------------------------------------------------------------


def test_a_pause_step_stops_the_canary_until_promote(deployed):
    document = deployed.doc("deploy", "canary", "web", "--to", "mlp@2", "--steps", "50,pause,100", "--interval", "1s",
                            "--min-requests", "0", *READY, schema="deploy-rollout")
    assert (document["outcome"], document["phase"], document["stable_version"]) == ("paused", "paused", 1)
    assert "paused at step 2 of 3 with 50% of requests on version 2" in document["reason"]
    assert "`mlops deploy promote web`" in document["reason"]
    status = deployed.status()
    assert (status["phase"], status["rollout"]["step"]) == ("paused", 1)
    assert not status["controller"]["alive"], "the canary's mlops is still running while paused"
    assert deployed.weights() == {"web-v1": 50, "web-v2": 50}
    # resume does not skip a pause, and no new rollout starts over it.
    assert deployed.doc("deploy", "resume", "web", schema="deploy-rollout")["outcome"] == "paused"
    deployed.fails(4, "deploy", "canary", "web", "--to", "mlp@2", needles=("rollout under way (paused)",))

    result = deployed.run("deploy", "promote", "web")
    assert result.returncode == 0, result
    assert result.stdout.strip() == f"'web' now serves mlp@2 at {deployed.url}"
    assert "mlops: deploy web: promoted past the pause by `mlops deploy promote`" in result.stderr
    assert deployed.weights() == {"web-v2": 100} and list(deployed.services()) == ["web-v2"]
    assert [e["phase"] for e in deployed.last_rollout_events()] == ["starting", "progressing", "progressing", "paused",
                                                                   "progressing", "finishing", "stable"]
    deployed.fails(4, "deploy", "promote", "web", needles=("'web' is not paused (it is stable)",))


def test_a_manual_blue_green_waits_at_weight_0_until_promote(deployed):
    result = deployed.run("deploy", "bluegreen", "web", "--to", "mlp@2", "--manual", "--scale-down-delay", "0", *READY)
    assert result.returncode == 0, result
    assert "paused at step 1 of 2 with 0% of requests on version 2" in result.stdout, result
    assert deployed.status()["phase"] == "paused"
    assert deployed.weights() == {"web-v1": 100, "web-v2": 0}
    assert deployed.services()["web-v2"]["state"] == "ready"
    assert {deployed.answered_by() for _ in range(10)} == {"web-v1"}

    promoted = deployed.doc("deploy", "promote", "web", schema="deploy-rollout")
    assert (promoted["outcome"], promoted["stable_version"], promoted["previous_version"]) == ("promoted", 2, 1)
    assert deployed.weights() == {"web-v2": 100} and list(deployed.services()) == ["web-v2"]
    assert deployed.answered_by() == "web-v2"


# 9. Rollback ----------------------------------------------------------------------------------------


def test_rollback_returns_to_the_version_before_the_promotion_and_its_alias(deployed):
    deployed.fails(3, "deploy", "rollback", "web", needles=("'web' has had no promotion to roll back",))
    deployed.ok("deploy", "bluegreen", "web", "--to", "mlp@2", "--scale-down-delay", "0", "--set-alias", "production",
                *READY)
    assert deployed.alias("production") == "mlp@2"

    # The old version's worker, started again, fails its smoke test: version 2 keeps serving.
    result = deployed.run("deploy", "rollback", "web", *READY, env={"MLOPS_WORKER_FAIL_AFTER": "2"})
    expect_error(result, 6, "the smoke test of version 1 failed", after_progress=True)
    assert result.stdout == f"'web' is back on mlp@2 at {deployed.url}\n", result
    assert deployed.weights() == {"web-v2": 100} and list(deployed.services()) == ["web-v2"]
    assert deployed.answered_by() == "web-v2" and deployed.alias("production") == "mlp@2"

    document = deployed.doc("deploy", "rollback", "web", *READY, schema="deploy-rollout")
    assert (document["stable_version"], document["previous_version"], document["phase"]) == (1, 2, "stable"), document
    assert document["outcome"] == "promoted", document  # version 1 was promoted again
    status = deployed.status()
    assert (status["last_rollout"]["strategy"], status["last_rollout"]["outcome"]) == ("rollback", "promoted")
    assert deployed.weights() == {"web-v1": 100} and list(deployed.services()) == ["web-v1"]
    assert deployed.answered_by() == "web-v1"
    assert deployed.alias("production") == "mlp@1"
    assert [move[1:3] for move in deployed.alias_moves()] == [(None, 2), (2, 1)]
    assert [e["phase"] for e in deployed.last_rollout_events()] == ["starting", "progressing", "finishing", "stable"]


# 10. Refusals -------------------------------------------------------------------------------------


def test_refusals_name_the_problem_and_change_nothing(deployed):
    for verb in (("status",), ("history",), ("rm",), ("promote",), ("abort",), ("resume",), ("rollback",),
                 ("canary", "--to", "mlp@2")):
        deployed.fails(3, "deploy", verb[0], "nope", *verb[1:], needles=("no deployment named 'nope'",
                                                                         "the deployments are web"))
    deployed.fails(4, "deploy", "create", "web", "--model", "mlp@1", needles=("the deployment 'web' exists",))
    same = deployed.doc("deploy", "canary", "web", "--to", "mlp@1", schema="deploy-rollout")
    assert (same["outcome"], same["stable_version"]) == ("nothing to do", 1)
    assert "mlp@1 is already the stable version of 'web'" in same["reason"]
    for steps in ("50,20", "0", "abc", "101", "10,,50"):
        deployed.fails(2, "deploy", "canary", "web", "--to", "mlp@2", "--steps", steps, needles=("--steps",))
    deployed.fails(2, "deploy", "canary", "web", "--to", "mlp@2", "--interval", "0", needles=("--interval",))
    deployed.ok("model", "register", "other", MLP)
    deployed.fails(2, "deploy", "canary", "web", "--to", "other@1", needles=("'web' serves the model mlp, not other",))
    assert [e["phase"] for e in deployed.events()] == ["stable"] and list(deployed.services()) == ["web-v1"]

    # While a rollout is under way, driven by a live mlops.
    rollout = deployed.spawn("deploy", "canary", "web", "--to", "mlp@2", "--steps", "50,100", "--interval", "3s",
                             "--min-requests", "0", *READY)
    deployed.wait_for(lambda: deployed.status()["phase"] == "progressing", "step 1")
    deployed.fails(4, "deploy", "canary", "web", "--to", "mlp@2",
                   needles=("'web' has a rollout under way (progressing)",))
    deployed.fails(4, "deploy", "bluegreen", "web", "--to", "mlp@2", needles=("rollout under way",))
    deployed.fails(4, "deploy", "rollback", "web", needles=("rollout under way",))
    deployed.fails(4, "deploy", "resume", "web", needles=(f"being driven by another mlops (pid {rollout.pid})",))
    deployed.fails(4, "deploy", "rm", "web", needles=("rollout under way", f"driven by pid {rollout.pid}", "--force"))
    assert rollout.poll() is None and deployed.status()["phase"] == "progressing"

    # An abort from another shell (exit 0: asked for) ends the rollout the first mlops was driving
    # (exit 6: its rollout was rolled back).
    aborted = deployed.run("deploy", "abort", "web")
    assert aborted.returncode == 0 and aborted.stdout == f"'web' is back on mlp@1 at {deployed.url}\n", aborted
    result = deployed.finish(rollout)
    expect_error(result, 6, "aborted by `mlops deploy abort`", after_progress=True)
    assert deployed.status()["phase"] == "stable" and list(deployed.services()) == ["web-v1"]


def test_create_on_a_taken_port_leaves_nothing_and_rm_stops_everything(deployed):
    taken = int(deployed.url.rsplit(":", 1)[1])
    result = deployed.run("deploy", "create", "api", "--model", "mlp@1", "--port", taken, *READY)
    expect_error(result, 7, "the router of 'api'", "in use")
    assert [d["deployment"] for d in deployed.doc("deploy", "ls", schema="deploy-ls")["deployments"]] == ["web"]
    assert list(deployed.services()) == ["web-v1"], "the failed deployment's worker was left running"
    deployed.fails(2, "deploy", "create", "api", "--model", "mlp@1", "--port", "70000", needles=("--port",))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    created = deployed.doc("deploy", "create", "api", "--model", "mlp@latest", "--port", port, *READY,
                           schema="deploy-create")
    assert (created["url"], created["stable_version"]) == (f"http://127.0.0.1:{port}", 2)
    assert sorted(deployed.services()) == ["api-v2", "web-v1"]
    api = deployed.services()["api-v2"]

    removed = deployed.run("deploy", "rm", "api")
    assert removed.returncode == 0 and removed.stdout == "removed 'api': its router and workers are stopped\n", removed
    assert not running(created["router_pid"]) and not running(api["pid"])
    assert list(deployed.services()) == ["web-v1"]
    deployed.fails(3, "deploy", "status", "api", needles=("no deployment named 'api'",))
    # The history outlives both: the failed creation and the removal.
    history = [(e["phase"], e["reason"]) for e in deployed.events("api")]
    assert history == [("stable", "created for mlp@1"), ("removed", "creation failed"), ("stable", "created for mlp@2"),
                       ("removed", "removed by `mlops deploy rm`")], history


# 11. Inconclusive -----------------------------------------------------------------------------------


def test_a_canary_without_traffic_is_rolled_back_after_three_inconclusive_windows(deployed):
    result = deployed.run("deploy", "canary", "web", "--to", "mlp@2", "--steps", "50,100", "--interval", "1s",
                          "--min-requests", "50", *READY)
    expect_error(result, 6, "the rollout of 'web' was rolled back", "3 windows in a row", "inconclusive",
                 "fewer than --min-requests 50", after_progress=True)
    events = deployed.last_rollout_events()
    assert [e["phase"] for e in events] == ["starting", *["progressing"] * 3, "aborting", "stable"], events
    assert all("measuring again" in e["reason"] for e in events[2:4]), events
    assert all(e["details"]["analysis"]["verdict"] == "inconclusive" for e in events[2:5]), events
    status = deployed.status()
    assert (status["phase"], status["stable_version"]) == ("stable", 1)
    assert "inconclusive" in status["last_rollout"]["reason"]
    assert list(deployed.services()) == ["web-v1"] and deployed.answered_by() == "web-v1"


# 12. What died comes back ---------------------------------------------------------------------------


def test_resume_starts_again_a_router_and_a_stable_worker_that_died(deployed):
    """After a reboot (here: both SIGKILLed) the endpoint comes back on its URL, as the row says."""
    status = deployed.status()
    old_router = status["router"]["pid"]
    [old_worker] = status["backends"]
    os.kill(old_worker["pid"], signal.SIGKILL)
    deployed.wait_for(lambda: not running(old_worker["pid"]), "the worker ending")
    shown = deployed.ok("deploy", "status", "web")
    assert f"pid {old_worker['pid']} (dead)" in shown, shown
    os.kill(old_router, signal.SIGKILL)
    deployed.wait_for(lambda: not running(old_router), "the router ending")
    status = deployed.status()
    assert (status["router"]["alive"], status["router"]["ready"], status["backends"]) == (False, False, []), status
    shown = deployed.ok("deploy", "status", "web")
    assert "dead: `mlops deploy resume web` starts it again" in shown, shown

    result = deployed.run("deploy", "resume", "web")
    assert (result.returncode, result.stdout) == (0, f"'web' serves mlp@1 at {deployed.url} again\n"), result
    new_worker = deployed.services()["web-v1"]["pid"]
    status = deployed.status()
    new_router = status["router"]["pid"]
    assert status["router"]["alive"] and status["url"] == deployed.url and new_router != old_router, status
    assert progress_lines(result.stderr) == [
        f"mlops: deploy web: restarted the worker of version 1 (web-v1, pid {new_worker}): pid {old_worker['pid']} had died",
        f"mlops: deploy web: restarted the router (pid {new_router}, port {deployed.url.rsplit(':', 1)[1]}): pid "
        f"{old_router} had died; its log is deployments/web/router.log.1"], result
    assert (deployed.path / ".mlops/deployments/web/router.log.1").exists()
    assert deployed.weights() == {"web-v1": 100} and deployed.answered_by() == "web-v1"
    assert [e["reason"].split(" (")[0] for e in deployed.events()[-2:]] == ["restarted the worker of version 1",
                                                                            "restarted the router"]
    again = deployed.doc("deploy", "resume", "web", schema="deploy-rollout")
    assert (again["outcome"], again["restarted"]) == ("nothing to do", []), again
    # The router alone, in --json.
    os.kill(new_router, signal.SIGKILL)
    deployed.wait_for(lambda: not running(new_router), "the router ending")
    document = deployed.doc("deploy", "resume", "web", schema="deploy-rollout")
    new_router = document["router_pid"]
    assert (document["outcome"], document["restarted"]) == ("restarted", [f"the router (pid {new_router})"]), document
    assert running(new_router) and deployed.answered_by() == "web-v1"

    # A rollout's transitions keep the new router's pid (they once wrote back the one they read).
    promoted = deployed.doc("deploy", "canary", "web", "--to", "mlp@2", "--steps", "100", "--interval", "1s",
                            "--min-requests", "0", *READY, schema="deploy-rollout")
    assert (promoted["outcome"], promoted["router_pid"]) == ("promoted", new_router), promoted
    assert deployed.status()["router"] == {**deployed.status()["router"], "pid": new_router, "alive": True}


def test_a_router_restarted_by_a_rollout_keeps_its_sticky_header(deployed):
    created = deployed.doc("deploy", "create", "api", "--model", "mlp@1", "--sticky-header", "X-User", *READY,
                           schema="deploy-create")
    os.kill(created["router_pid"], signal.SIGKILL)
    deployed.wait_for(lambda: not running(created["router_pid"]), "the router ending")
    # The rollout's first table goes to a router started again from the row, on the same port.
    promoted = deployed.doc("deploy", "canary", "api", "--to", "mlp@2", "--steps", "100", "--interval", "1s",
                            "--min-requests", "0", *READY, schema="deploy-rollout")
    assert (promoted["outcome"], promoted["url"], promoted["router_alive"]) == ("promoted", created["url"], True)
    argv = Path(f"/proc/{promoted['router_pid']}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--sticky-header") + 1] == b"X-User", argv


def test_a_row_damaged_outside_mlops_is_reported_and_can_still_be_removed(deployed):
    connection = sqlite3.connect(deployed.db)
    connection.execute("UPDATE deployments SET phase = 'progressing', rollout = '{\"strategy\": 1}' WHERE name = 'web'")
    connection.commit()
    connection.close()
    deployed.fails(5, "deploy", "status", "web", needles=("deployment 'web'", "cannot read",
                                                          "changed by something other than mlops"))
    deployed.fails(5, "deploy", "abort", "web", needles=("deployment 'web'",))
    [listed] = deployed.doc("deploy", "ls", schema="deploy-ls")["deployments"]
    assert (listed["deployment"], listed["phase"], listed["router_alive"]) == ("web", "progressing", True), listed
    deployed.fails(5, "deploy", "rm", "web", needles=("`mlops deploy rm web --force` removes it",))
    router = listed["router_pid"]
    removed = deployed.run("deploy", "rm", "web", "--force")
    assert removed.returncode == 0, removed
    assert not running(router) and deployed.services() == {}
    assert deployed.doc("deploy", "ls", schema="deploy-ls")["deployments"] == []
