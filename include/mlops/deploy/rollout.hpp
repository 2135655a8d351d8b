#pragma once
// Deployments and their rollouts: what `mlops deploy` does. A deployment is a router (`mlops-worker
// route`, the stable endpoint) in front of services named DEPLOYMENT-vN. A rollout moves traffic
// from the stable version to a new one and is a state machine persisted in the deployment's row
// (deployments.hpp). The mlops process that drives it (the controller) records each transition
// before acting on it, and every action is idempotent, so a controller that is killed leaves a
// row that says the truth, and `deploy resume` (or `deploy abort`) carries on from it:
//
//   stable ──deploy canary / bluegreen / rollback──▶ starting
//                                                      │ new worker ready, smoke test and
//                                                      │ pre-analysis passed
//                                                      ▼
//        ┌───────────────────────────────────▶ progressing (step i: weight w% to the new version,
//        │ deploy promote                          │  then analysis of the step's window)
//     paused ◀── step i is "pause" ────────────────┤ passed: step i+1
//        │                                          │ failed more than --failure-limit times,
//        │                                          │ inconclusive 3 times, new worker died
//        │                                          ▼
//        └──────── deploy abort ───────────────▶ aborting ──▶ stable (old version; alias unchanged)
//                                                  ▲  traffic back to the stable worker,
//                                                  │  new worker stopped
//   progressing ── last step passed ──▶ finishing ─┤ (abort, or the new worker died)
//                                          │ 100% to the new version, old one warm for the
//                                          │ scale-down delay, then stopped, alias moved
//                                          ▼
//                                        stable (new version)
//
// The router's table follows from the row: stable 100% (stable, starting at 0% for the new
// one, aborting); 100-w/w (progressing, paused); 0/100 (finishing). The table is written, under
// the deployment's lock file, by whoever moved the row last, so an abort from another shell and
// a controller mid-step cannot leave the router with a stale table.

#include "mlops/deploy/analysis.hpp"
#include "mlops/deploy/deployments.hpp"
#include "mlops/registry/registry.hpp"
#include "mlops/serve/services.hpp"
#include "mlops/util/file_lock.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlops::deploy {

struct CreateRequest
{
  std::string name;
  registry::ModelRef ref;
  std::string host = "127.0.0.1";
  int port = 0;  // the stable endpoint's; 0 picks a free one
  std::string device = "auto";
  std::string sticky_header;
  std::chrono::milliseconds ready_timeout{60'000};
};

struct RolloutRequest
{
  std::string name;
  registry::ModelRef to;
  std::string strategy;            // canary or bluegreen
  std::vector<std::string> steps;  // weights in percent, or "pause"
  std::optional<Criteria> analysis;      // of each step's window (canary), after the switch (blue-green)
  std::optional<Criteria> pre_analysis;  // blue-green, on synthetic requests to the new version alone
  int failure_limit = 0;
  std::chrono::milliseconds scale_down_delay{0};
  std::optional<std::string> set_alias;
  std::string sample_body;  // the smoke test's request; empty: one built from the signature
  bool force = false;       // deploy despite an incompatible input signature
  std::chrono::milliseconds ready_timeout{60'000};
};

struct RolloutResult
{
  std::string outcome;  // promoted, rolled back, paused, nothing to do
  std::string reason;
  Deployment deployment;
  std::vector<std::string> warnings;
  std::vector<std::string> restarted;  // what `deploy resume` found dead and started again
};

// Each transition, as it happens, for the command's progress lines.
using EventReporter = std::function<void(const DeploymentEvent& event)>;

class Deployer
{
public:
  Deployer(const Home& home, store::Database& db, std::filesystem::path worker, EventReporter report);

  Deployment create(const CreateRequest& request);
  // Throws Error(gate_failed) for an incompatible signature without --force; otherwise returns
  // how the rollout ended (the command turns "rolled back" into exit 6).
  RolloutResult start_rollout(const RolloutRequest& request);
  RolloutResult rollback(const std::string& name, std::chrono::milliseconds ready_timeout);
  RolloutResult promote(const std::string& name);
  // Starts again what died (the stable version's worker, the router: after a reboot, say), then
  // carries on the rollout under way, if any.
  RolloutResult resume(const std::string& name);
  RolloutResult abort(const std::string& name);
  void remove(const std::string& name, bool force);
  // The row, the router's live table and health, the processes, the last analysis.
  nlohmann::json status(const std::string& name);

private:
  RolloutResult begin(Deployment deployment, Rollout rollout, const std::string& reason,
                      std::vector<std::string> warnings);
  RolloutResult drive(const std::string& name);
  void run_starting(const Deployment& deployment);
  void run_progressing(const Deployment& deployment);
  void run_finishing(const Deployment& deployment);
  void run_aborting(const Deployment& deployment);
  bool move(const Deployment& from, Deployment to, const std::string& reason, const nlohmann::json& details = nullptr,
            const std::function<void()>& also = {});
  bool abort_with(const Deployment& deployment, const std::string& reason, const nlohmann::json& details = nullptr);
  void note(const std::string& name, const std::string& reason);  // an event that changes no state
  void report_new_events(const std::string& name);
  std::int64_t latest_event(const std::string& name);
  void clean_up_after(const Deployment& deployment);
  // Sleeps `duration` while watching the row, the new worker and Ctrl-C; false when the row
  // moved meanwhile (the caller re-reads it), or the new worker died (the rollout is aborted),
  // or `aborted_early`, asked every quarter second, aborted it.
  bool watch(const Deployment& deployment, std::chrono::milliseconds duration,
             const std::function<bool()>& aborted_early = {});
  // Derives the router's table from the row and sends it; a router that died is started again
  // from it, on its port (then true).
  bool apply_routes(const std::string& name);
  // Held while the router's table is derived from the row and sent, while a router starts, and
  // while a deployment is removed.
  util::FileLock lock(const Deployment& deployment);
  // The service DEPLOYMENT-vVERSION.
  serve::Service start_backend(const Deployment& deployment, std::int64_t version,
                               std::chrono::milliseconds ready_timeout);
  void start_router(const Deployment& deployment, std::chrono::milliseconds ready_timeout);
  std::vector<std::string> restart_what_died(const std::string& name);
  void claim(const Deployment& deployment);

  const Home& m_home;
  store::Database& m_db;
  Deployments m_deployments;
  std::filesystem::path m_worker;
  EventReporter m_report;
  std::int64_t m_last_event = 0;
};

} // namespace mlops::deploy
