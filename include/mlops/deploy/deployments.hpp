#pragma once
// Deployments as rows: the `deployments` table (one row per stable endpoint, holding the state
// of the rollout under way) and `deployment_events` (the audit trail). Every change of a row
// goes through transition(), which checks that nobody else changed the row since it was read
// and writes the event in the same transaction.

#include "mlops/deploy/rollout_plan.hpp"
#include "mlops/home/home.hpp"
#include "mlops/store/database.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlops::deploy {

struct Deployment
{
  std::string name;
  std::string model;
  std::string host;
  int port = 0;
  std::string device;
  int router_pid = 0;
  std::int64_t router_start = 0;
  std::string token;
  std::string log_path;
  std::int64_t stable_version = 0;
  std::string stable_service;
  std::optional<std::int64_t> previous_version;
  std::string phase = "stable";
  std::optional<Rollout> rollout;               // there is one whenever the phase is not stable
  std::optional<FinishedRollout> last_rollout;  // none before the first one ends
  int controller_pid = 0;
  std::int64_t controller_start = 0;
  std::string created_at;
  std::string updated_at;
  std::string sticky_header;  // the router's --sticky-header; empty for none

  std::string url() const;
  std::filesystem::path dir(const Home& home) const;  // .mlops/deployments/NAME
};

struct DeploymentEvent
{
  std::int64_t id = 0;
  std::string deployment;
  std::string at;
  std::string phase;
  std::optional<std::int64_t> step;
  std::string reason;
  nlohmann::json details;
};

enum class Reading { whole, without_rollouts };

class Deployments
{
public:
  explicit Deployments(store::Database& db) : m_db(db) {}

  // Reading a row throws Error(integrity) when its rollout columns are not what mlops writes, or
  // a phase other than stable has no rollout; without_rollouts leaves them out, so that `deploy
  // ls` and `deploy rm --force` still work on such a row.
  std::vector<Deployment> list(Reading reading = Reading::whole);
  std::optional<Deployment> find(const std::string& name, Reading reading = Reading::whole);
  Deployment get(const std::string& name, Reading reading = Reading::whole);  // Error(not_found) listing them

  // Inserts a new row and its "created" event; Error(conflict) when the name is taken.
  void insert(const Deployment& deployment, const std::string& reason);
  // Writes `changed` over the row if the row still has `expected`'s phase, rollout and
  // updated_at (else returns false: another process moved it), with an event.
  // `also` runs in the same transaction, after the check (a promotion moves the alias there).
  bool transition(const Deployment& expected, Deployment changed, const std::string& reason,
                  const nlohmann::json& details = nullptr, const std::function<void()>& also = {});
  // Makes this process the rollout's controller unless another live one is: false then.
  bool claim_controller(const std::string& name, int pid, std::int64_t process_start);
  // The router's process and port, once it has started (these columns are not the rollout's
  // state: transition() leaves them alone, so a restarted router is never written over).
  // Error(conflict) when the row is gone (the caller stops the router it started).
  void record_router(const std::string& name, int pid, std::int64_t process_start, int port);
  // An event that changes no state (a worker restarted), for the audit trail.
  void note(const std::string& name, const std::string& reason);
  // Removes the row, leaving the events and a "removed" one.
  void remove(const Deployment& deployment, const std::string& reason);

  std::vector<DeploymentEvent> events(const std::string& name, std::optional<std::int64_t> after = std::nullopt);

private:
  store::Database& m_db;
};

} // namespace mlops::deploy
