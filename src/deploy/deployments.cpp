#include "mlops/deploy/deployments.hpp"

#include "mlops/core/error.hpp"
#include "mlops/store/statement.hpp"
#include "mlops/store/transaction.hpp"
#include "mlops/util/child_process.hpp"
#include "mlops/util/time.hpp"
#include "mlops/util/url.hpp"

#include <fmt/format.h>

namespace mlops::deploy {

namespace {

constexpr const char* columns =
  "name, model, host, port, device, router_pid, router_start, token, log_path, stable_version, stable_service, "
  "previous_version, phase, rollout, last_rollout, controller_pid, controller_start, created_at, updated_at, "
  "sticky_header";

nlohmann::json json_column(store::Statement& row, int column)
{
  auto text = row.column_optional_text(column);
  return text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
}

std::optional<std::string> json_text(const nlohmann::json& document)
{
  return document.is_null() ? std::nullopt : std::optional(document.dump());
}

// A rollout column's text: SQL NULL for none.
template <typename Stored>
std::optional<std::string> json_text(const std::optional<Stored>& rollout)
{
  return rollout ? std::optional(rollout->to_json().dump()) : std::nullopt;
}

// Only mlops writes these columns, so a row it cannot read was changed by something else: an
// error naming the deployment, rather than a JSON library's message from whichever command
// touched the row next.
void read_rollouts(store::Statement& row, Deployment& d, Reading reading)
{
  if (reading == Reading::without_rollouts) {
    return;
  }
  try {
    if (auto text = row.column_optional_text(13)) {
      d.rollout = Rollout::from_json(nlohmann::json::parse(*text));
    }
    if (auto text = row.column_optional_text(14)) {
      d.last_rollout = FinishedRollout::from_json(nlohmann::json::parse(*text));
    }
  } catch (const nlohmann::json::exception& error) {
    throw Error(ExitCode::integrity, fmt::format("the row of deployment '{}' holds a rollout that mlops cannot read "
                                                 "({}); was the database changed by something other than mlops? "
                                                 "`mlops deploy rm {} --force` removes it",
                                                 d.name, error.what(), d.name));
  }
  if (d.phase != "stable" && !d.rollout) {
    throw Error(ExitCode::integrity, fmt::format("the deployment '{}' is {}, but its row holds no rollout; was the "
                                                 "database changed by something other than mlops? `mlops deploy rm {} "
                                                 "--force` removes it",
                                                 d.name, d.phase, d.name));
  }
}

Deployment read_deployment(store::Statement& row, Reading reading)
{
  Deployment d;
  d.name = row.column_text(0);
  d.model = row.column_text(1);
  d.host = row.column_text(2);
  d.port = static_cast<int>(row.column_int64(3));
  d.device = row.column_text(4);
  d.router_pid = static_cast<int>(row.column_int64(5));
  d.router_start = row.column_int64(6);
  d.token = row.column_text(7);
  d.log_path = row.column_text(8);
  d.stable_version = row.column_int64(9);
  d.stable_service = row.column_text(10);
  d.previous_version = row.column_optional_int64(11);
  d.phase = row.column_text(12);
  d.controller_pid = static_cast<int>(row.column_int64(15));
  d.controller_start = row.column_int64(16);
  d.created_at = row.column_text(17);
  d.updated_at = row.column_text(18);
  d.sticky_header = row.column_text(19);
  read_rollouts(row, d, reading);
  return d;
}

void add_event(store::Database& db, const Deployment& d, const std::string& reason, const nlohmann::json& details)
{
  auto step = d.rollout ? std::optional(d.rollout->step) : std::nullopt;
  db.prepare("INSERT INTO deployment_events (deployment, at, phase, step, reason, details) VALUES (?, ?, ?, ?, ?, ?)")
    .bind_all(d.name, d.updated_at, d.phase, step, reason, json_text(details))
    .run();
}

} // namespace

std::string Deployment::url() const
{
  return util::http_url(host, port);
}

std::filesystem::path Deployment::dir(const Home& home) const
{
  return home.dir() / "deployments" / name;
}

std::vector<Deployment> Deployments::list(Reading reading)
{
  auto select = m_db.prepare(fmt::format("SELECT {} FROM deployments ORDER BY name", columns));
  std::vector<Deployment> all;
  while (select.step()) {
    all.push_back(read_deployment(select, reading));
  }
  return all;
}

std::optional<Deployment> Deployments::find(const std::string& name, Reading reading)
{
  auto select = m_db.prepare(fmt::format("SELECT {} FROM deployments WHERE name = ?", columns));
  select.bind(1, name);
  if (!select.step()) {
    return std::nullopt;
  }
  return read_deployment(select, reading);
}

Deployment Deployments::get(const std::string& name, Reading reading)
{
  if (auto found = find(name, reading)) {
    return *found;
  }
  std::vector<std::string> names;
  for (const auto& d : list(Reading::without_rollouts)) {
    names.push_back(d.name);
  }
  throw Error(ExitCode::not_found,
              fmt::format("no deployment named '{}'; {}", name,
                          names.empty() ? std::string("there is none: `mlops deploy create NAME --model M@REF` makes one")
                                        : fmt::format("the deployments are {}", fmt::join(names, ", "))));
}

void Deployments::insert(const Deployment& d, const std::string& reason)
{
  store::write_transaction(m_db, [&] {
    if (find(d.name)) {
      throw Error(ExitCode::conflict, fmt::format("the deployment '{}' exists; `mlops deploy status {}` shows it, "
                                                  "`mlops deploy rm {}` removes it",
                                                  d.name, d.name, d.name));
    }
    m_db
      .prepare(fmt::format("INSERT INTO deployments ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           columns))
      .bind_all(d.name, d.model, d.host, d.port, d.device, d.router_pid, d.router_start, d.token, d.log_path,
                d.stable_version, d.stable_service, d.previous_version, d.phase, json_text(d.rollout),
                json_text(d.last_rollout), d.controller_pid, d.controller_start, d.created_at, d.updated_at,
                d.sticky_header)
      .run();
    add_event(m_db, d, reason, nullptr);
  });
}

bool Deployments::transition(const Deployment& expected, Deployment changed, const std::string& reason,
                             const nlohmann::json& details, const std::function<void()>& also)
{
  if (changed.phase != "stable" && !changed.rollout) {
    // Every other phase is a rollout's: a row without one could not be read back.
    throw Error(ExitCode::failure, fmt::format("internal error: '{}' would be {} with no rollout", changed.name,
                                               changed.phase));
  }
  bool done = false;
  store::write_transaction(m_db, [&] {
    auto current = find(expected.name);
    done = current && current->phase == expected.phase && current->rollout == expected.rollout &&
           current->updated_at == expected.updated_at;
    if (!done) {
      return;
    }
    // updated_at has a microsecond: two transitions in one microsecond would look like none.
    changed.updated_at = util::now_iso8601();
    if (changed.updated_at == expected.updated_at) {
      changed.updated_at += "+";
    }
    m_db
      .prepare("UPDATE deployments SET stable_version = ?, stable_service = ?, previous_version = ?, phase = ?, "
               "rollout = ?, last_rollout = ?, controller_pid = ?, controller_start = ?, updated_at = ? WHERE name = ?")
      .bind_all(changed.stable_version, changed.stable_service, changed.previous_version, changed.phase,
                json_text(changed.rollout), json_text(changed.last_rollout), changed.controller_pid,
                changed.controller_start, changed.updated_at, changed.name)
      .run();
    add_event(m_db, changed, reason, details);
    if (also) {
      also();
    }
  });
  return done;
}

bool Deployments::claim_controller(const std::string& name, int pid, std::int64_t process_start)
{
  bool claimed = false;
  store::write_transaction(m_db, [&] {
    auto current = find(name);
    claimed = current && (current->controller_pid == pid ||
                          !util::process_alive(current->controller_pid, current->controller_start));
    if (claimed) {
      m_db.prepare("UPDATE deployments SET controller_pid = ?, controller_start = ? WHERE name = ?")
        .bind_all(pid, process_start, name)
        .run();
    }
  });
  return claimed;
}

void Deployments::record_router(const std::string& name, int pid, std::int64_t process_start, int port)
{
  bool recorded = false;
  store::write_transaction(m_db, [&] {
    m_db.prepare("UPDATE deployments SET router_pid = ?, router_start = ?, port = ? WHERE name = ?")
      .bind_all(pid, process_start, port, name)
      .run();
    recorded = m_db.changes() == 1;
  });
  if (!recorded) {
    throw Error(ExitCode::conflict, fmt::format("the deployment '{}' was removed while its router started", name));
  }
}

void Deployments::note(const std::string& name, const std::string& reason)
{
  store::write_transaction(m_db, [&] {
    auto d = get(name);
    d.updated_at = util::now_iso8601();
    add_event(m_db, d, reason, nullptr);
  });
}

void Deployments::remove(const Deployment& d, const std::string& reason)
{
  store::write_transaction(m_db, [&] {
    m_db.prepare("DELETE FROM deployments WHERE name = ?").bind(1, d.name).run();
    auto gone = d;
    gone.phase = "removed";
    gone.rollout.reset();
    gone.updated_at = util::now_iso8601();
    add_event(m_db, gone, reason, nullptr);
  });
}

std::vector<DeploymentEvent> Deployments::events(const std::string& name, std::optional<std::int64_t> after)
{
  auto select = m_db.prepare("SELECT id, deployment, at, phase, step, reason, details FROM deployment_events "
                             "WHERE deployment = ? AND id > ? ORDER BY id");
  select.bind_all(name, after.value_or(0));
  std::vector<DeploymentEvent> events;
  while (select.step()) {
    DeploymentEvent event;
    event.id = select.column_int64(0);
    event.deployment = select.column_text(1);
    event.at = select.column_text(2);
    event.phase = select.column_text(3);
    event.step = select.column_optional_int64(4);
    event.reason = select.column_text(5);
    event.details = json_column(select, 6);
    events.push_back(std::move(event));
  }
  return events;
}

} // namespace mlops::deploy
